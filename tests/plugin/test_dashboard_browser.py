"""The dashboard in a real headless Chromium (Debian's chromium driven through its chromedriver by
Selenium): sign in, the advocates leaderboard, a member with a Hebrew or Arabic name rendered right
to left, and a panel built, drawn and its manifest shown. Screenshots of each step are kept in
``$FLYWHEEL_SCREENSHOTS`` (default ``tests-output/screenshots/``).

Skipped when chromium or chromedriver is missing, unless FLYWHEEL_REQUIRE_BROWSER=1 (CI): then the
missing browser is a failure."""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from werkzeug.serving import make_server

from plugin.settings import Settings
from tests.plugin.api import conftest as api_fixtures
from tests.plugin.dashboard_data import PASSWORD, email, make_app, seed

CHROMIUM = Path(os.environ.get("FLYWHEEL_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("FLYWHEEL_CHROMEDRIVER", "/usr/bin/chromedriver"))
REQUIRED = os.environ.get("FLYWHEEL_REQUIRE_BROWSER", "").strip() in ("1", "true", "yes")
SHOTS = Path(
    os.environ.get("FLYWHEEL_SCREENSHOTS")
    or Path(__file__).resolve().parents[2] / "tests-output" / "screenshots"
)
WIDTH, HEIGHT = 1280, 900

scored = api_fixtures.scored  # the scored community, Hebrew- and Arabic-named members included


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} is missing (apt-get install -y chromium chromium-driver)"
    return None


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    why = _missing()
    if why:
        if REQUIRED:
            pytest.fail(f"FLYWHEEL_REQUIRE_BROWSER is set but {why}")
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--lang=en-US", "--force-device-scale-factor=1",
                f"--window-size={WIDTH},{HEIGHT}",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):  # fmt: skip
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    browser.set_page_load_timeout(20)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def data(engine: Engine, settings: Settings, workspace_id: int, scored: dict[str, int]) -> dict[str, Any]:
    return seed(engine, settings, workspace_id, scored)


@pytest.fixture
def site(driver: Any, engine: Engine, settings: Settings, data: dict[str, Any]) -> Iterator[str]:
    """The app served on 127.0.0.1 (a free port) in a thread; a browser with no cookies."""
    server = make_server("127.0.0.1", 0, make_app(settings, engine), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="dashboard-test-server", daemon=True)
    thread.start()
    driver.delete_all_cookies()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


def shoot(driver: Any, name: str) -> Path:
    """A screenshot of the whole page, from its top, however long it is (Chromium's DevTools)."""
    driver.execute_script("window.scrollTo(0, 0)")
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 8000), "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path = SHOTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    assert path.stat().st_size > 10_000, f"the screenshot {path} is empty"
    return path


def by(kind: str) -> str:
    from selenium.webdriver.common.by import By

    return str(getattr(By, kind))


def sign_in(driver: Any, site: str, role: str) -> None:
    driver.get(f"{site}/dashboard/sign-in")
    driver.find_element(by("ID"), "email").send_keys(email(role))
    driver.find_element(by("ID"), "password").send_keys(PASSWORD)
    driver.find_element(by("CSS_SELECTOR"), "main form button[type=submit]").click()
    wait_for(driver, lambda d: d.find_elements(by("CSS_SELECTOR"), "nav[aria-label=Main]"))


def wait_for(driver: Any, condition: Any, seconds: float = 10) -> Any:
    """``condition`` once it holds. An element it reads may belong to the page being left (a form
    posted, the next page not yet shown): read again, not failed."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.wait import WebDriverWait

    waiting = WebDriverWait(driver, seconds, ignored_exceptions=(StaleElementReferenceException,))
    return waiting.until(condition)


def heading(driver: Any) -> str:
    return str(driver.find_element(by("TAG_NAME"), "h1").text)


def test_signing_in_opens_the_overview_with_its_charts(driver: Any, site: str) -> None:
    driver.get(f"{site}/dashboard/")
    wait_for(driver, lambda d: "/dashboard/sign-in" in d.current_url)
    assert heading(driver) == "Sign in to Flywheel"
    driver.find_element(by("ID"), "email").send_keys(email("admin"))
    driver.find_element(by("ID"), "password").send_keys("a wrong password")
    shoot(driver, "01-sign-in")
    driver.find_element(by("CSS_SELECTOR"), "main form button[type=submit]").click()
    alert = wait_for(driver, lambda d: d.find_elements(by("CSS_SELECTOR"), "[role=alert]"))
    assert "wrong email or password" in alert[0].text.lower()
    driver.find_element(by("ID"), "password").send_keys(PASSWORD)
    driver.find_element(by("CSS_SELECTOR"), "main form button[type=submit]").click()
    wait_for(driver, lambda d: d.current_url.endswith("/dashboard/"))
    assert heading(driver) == "Community health"
    charts = driver.find_elements(by("CSS_SELECTOR"), "figure.chart svg[role=img]")
    assert len(charts) == 4 and all(c.size["height"] > 100 for c in charts)
    bars = driver.find_elements(by("CSS_SELECTOR"), "figure.chart rect")
    assert any(b.size["height"] > 0 for b in bars)  # drawn, and the stylesheet loaded (CSP allows it)
    fill = driver.execute_script("return getComputedStyle(arguments[0]).fill", bars[0])
    assert fill == "rgb(5, 80, 174)"
    cookie = driver.get_cookie("flywheel_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert driver.execute_script("return document.cookie") == ""  # scripts cannot read the session
    shoot(driver, "02-overview")
    for n, (link, title) in enumerate(
        [("Leads", "Hot leads"), ("Churn", "Churn risk"), ("Members", "Members"),
         ("Referrals and rewards", "Referrals and rewards"), ("Webhooks", "Webhooks"),
         ("CRM", "CRM connections")],
        start=1,
    ):  # fmt: skip
        driver.find_element(by("LINK_TEXT"), link).click()
        wait_for(driver, lambda d, title=title: heading(d) == title)
        shoot(driver, f"02-{n}-{link.split()[0].lower()}")


def test_the_advocates_leaderboard(driver: Any, site: str, data: dict[str, Any]) -> None:
    sign_in(driver, site, "marketer")
    driver.find_element(by("LINK_TEXT"), "Advocates").click()
    wait_for(driver, lambda d: heading(d) == "Advocates")
    rows = driver.find_elements(by("CSS_SELECTOR"), "table.leaderboard tbody tr")
    assert len(rows) > 10
    first = rows[0]
    assert first.find_element(by("CSS_SELECTOR"), "a.name").text == "Ann"
    assert first.find_element(by("CSS_SELECTOR"), ".tag").text == "champion"
    assert first.find_elements(by("CSS_SELECTOR"), "ul.reasons li")
    current = driver.find_element(by("CSS_SELECTOR"), "nav[aria-label=Main] a[aria-current=page]")
    assert current.text == "Advocates"
    shoot(driver, "03-advocates")
    # Tick two advocates and invite them to refer (a real form post, CSRF token included).
    for who in ("ann", "noa"):
        driver.find_element(by("ID"), f"pick-{data[who]}").click()
    campaign = driver.find_element(by("ID"), "campaign")
    campaign.clear()
    campaign.send_keys("spring")
    driver.find_element(by("CSS_SELECTOR"), "#invite-form fieldset button[type=submit]").click()
    status = wait_for(driver, lambda d: d.find_elements(by("CSS_SELECTOR"), "[role=status] .flash"))
    assert "Invited 2 advocate(s)" in status[0].text
    shoot(driver, "04-advocates-invited")


def test_members_with_hebrew_and_arabic_names_are_shown_right_to_left(
    driver: Any, site: str, data: dict[str, Any]
) -> None:
    sign_in(driver, site, "admin")
    for who, name in (("noa", "נועה כהן"), ("layla", "ليلى حداد")):
        driver.get(f"{site}/dashboard/members?sort=advocate")
        link = driver.find_element(by("LINK_TEXT"), name)
        assert driver.execute_script("return getComputedStyle(arguments[0]).direction", link) == "rtl"
        link.click()
        title = wait_for(driver, lambda d: d.find_elements(by("ID"), "member-name"))[0]
        assert title.text == name and driver.current_url.endswith(f"/members/{data[who]}")
        assert driver.execute_script("return getComputedStyle(arguments[0]).direction", title) == "rtl"
        assert driver.execute_script("return document.documentElement.dir") == "ltr"  # the page stays LTR
        other = driver.find_element(by("CSS_SELECTOR"), "h2#scores-heading")
        assert driver.execute_script("return getComputedStyle(arguments[0]).direction", other) == "ltr"
        # Right to left for real: the name's first letter is drawn right of its last one.
        first, last = driver.execute_script(
            """const text = arguments[0].firstChild, range = document.createRange();
            range.setStart(text, 0); range.setEnd(text, 1); const a = range.getBoundingClientRect();
            range.setStart(text, text.length - 1); range.setEnd(text, text.length);
            const b = range.getBoundingClientRect(); return [a.left, b.left];""",
            title,
        )
        assert first > last
        assert driver.find_elements(by("CSS_SELECTOR"), ".score-card ul.reasons li")
        shoot(driver, f"05-member-{who}")


def test_a_researcher_builds_and_draws_a_panel_and_sees_its_manifest(driver: Any, site: str) -> None:
    sign_in(driver, site, "researcher")
    driver.find_element(by("LINK_TEXT"), "Panels").click()
    driver.find_element(by("LINK_TEXT"), "Build a panel").click()
    wait_for(driver, lambda d: heading(d) == "Build a panel")
    values = {
        "name": "Onboarding study, Q3",
        "size": "4",
        "reserve": "2",
        "seed": "2027",
        "active_within_days": "365",
        "quota_name_0": "customer",
        "quota_min_0": "1",
        "quota_max_0": "2",
        "quota_name_1": "prospect",
        "quota_min_1": "2",
        "quota_max_1": "3",
    }
    for field, value in values.items():
        box = driver.find_element(by("ID"), field)
        box.clear()
        box.send_keys(value)
    for level in driver.find_elements(by("CSS_SELECTOR"), "input[name=levels]"):
        if not level.is_selected():
            level.click()
    driver.find_element(by("CSS_SELECTOR"), "button[value=preview]").click()
    preview = wait_for(driver, lambda d: d.find_elements(by("ID"), "preview-heading"))[0]
    assert preview.text.startswith("Preview:")
    eligible = {
        row.find_element(by("TAG_NAME"), "th").text: int(row.find_elements(by("TAG_NAME"), "td")[0].text)
        for row in driver.find_elements(by("CSS_SELECTOR"), "#preview table:first-of-type tbody tr")
    }
    assert eligible["customer"] >= 1 and eligible["prospect"] >= 2
    shoot(driver, "06-panel-preview")
    driver.find_element(by("CSS_SELECTOR"), "button[value=create]").click()
    wait_for(driver, lambda d: heading(d) == "Onboarding study, Q3")
    driver.find_element(by("XPATH"), "//button[normalize-space()='Draw the panel']").click()
    seed_shown = wait_for(driver, lambda d: d.find_elements(by("ID"), "manifest-seed"))[0]
    assert seed_shown.text == "2027"
    manifest = {
        row.find_element(by("TAG_NAME"), "th").text: [
            td.text for td in row.find_elements(by("TAG_NAME"), "td")
        ]
        for row in driver.find_elements(by("CSS_SELECTOR"), "#manifest-table tbody tr")
    }
    assert set(manifest) == {"customer", "prospect"}
    assert sum(int(cells[2]) for cells in manifest.values()) == 4  # selected
    members = driver.find_elements(by("CSS_SELECTOR"), "#panel-members tbody tr")
    assert len(members) >= 4
    shoot(driver, "07-panel-manifest")
