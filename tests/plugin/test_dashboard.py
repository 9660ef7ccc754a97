"""The dashboard through Flask's test client: signing in (lockout, rate limit, session), CSRF on
every form, pages and buttons by role, each page with data, the panel builder and draw, inviting
advocates to refer, and replaying a webhook."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select, update

from plugin.db.models import Panel, PanelDraw, PanelMember, ReferralInvite, User, WebhookDelivery
from plugin.settings import Settings
from tests.plugin.api import conftest as api_fixtures
from tests.plugin.dashboard_data import (
    NAMES,
    PASSWORD,
    SALESFORCE,
    add_users,
    csrf_token,
    email,
    make_app,
    post,
    seed,
    sign_in,
)

scored = api_fixtures.scored  # the scored community, Hebrew- and Arabic-named members included


@pytest.fixture
def data(engine: Engine, settings: Settings, workspace_id: int, scored: dict[str, int]) -> dict[str, Any]:
    return seed(engine, settings, workspace_id, scored)


@pytest.fixture
def users(engine: Engine, workspace_id: int) -> dict[str, int]:
    """Only the users: for the tests of signing in and CSRF, which need no community."""
    return add_users(engine, workspace_id)


@pytest.fixture
def app(engine: Engine, settings: Settings) -> Flask:
    return make_app(settings, engine)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def as_role(app: Flask, role: str) -> FlaskClient:
    client = app.test_client()
    assert sign_in(client, role).status_code == 302
    return client


# --- signing in ---------------------------------------------------------------------------------


def test_signing_in_starts_a_fresh_http_only_session_and_signing_out_ends_it(
    client: FlaskClient, users: dict[str, int]
) -> None:
    assert client.get("/dashboard/advocates").headers["Location"].startswith("/dashboard/sign-in?next=")
    before = csrf_token(client.get("/dashboard/sign-in").text)
    done = client.post(
        "/dashboard/sign-in",
        data={
            "email": email("admin"),
            "password": PASSWORD,
            "csrf_token": before,
            "next": "/dashboard/leads",
        },
    )
    assert done.status_code == 302 and done.headers["Location"] == "/dashboard/leads"
    cookie = done.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "flywheel_session=" in cookie
    overview = client.get("/dashboard/")
    assert overview.status_code == 200 and overview.headers["Cache-Control"] == "no-store"
    assert csrf_token(overview.text) != before  # a new session: the old token is gone with it
    out = client.post("/dashboard/sign-out", data={"csrf_token": csrf_token(overview.text)})
    assert out.status_code == 302
    assert client.get("/dashboard/").status_code == 302  # back to the sign-in page


def test_a_wrong_password_is_refused_alike_and_five_lock_the_account(
    client: FlaskClient, engine: Engine, users: dict[str, int]
) -> None:
    for _ in range(5):
        wrong = sign_in(client, "marketer", "not the password at all")
        assert wrong.status_code == 401 and "wrong email or password" in wrong.text.lower()
        assert f'value="{email("marketer")}"' in wrong.text  # the email is kept, the password is not
    assert sign_in(client, "marketer").status_code == 401  # locked, even with the right password
    with engine.connect() as conn:
        locked = conn.execute(select(User.locked_until).where(User.email == email("marketer"))).scalar()
    assert locked is not None
    assert sign_in(client, "nobody").status_code == 401  # an unknown email reads the same


def test_sign_in_is_rate_limited_per_address(
    engine: Engine, settings: Settings, users: dict[str, int]
) -> None:
    import dataclasses

    from plugin.web.app import create_app

    app = create_app(
        dataclasses.replace(settings, signin_rate_limit="3 per minute", cookie_secure=False), engine
    )
    client = app.test_client()
    statuses = [sign_in(client, "sales", "wrong password here").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    assert "Too many attempts" in client.post("/dashboard/sign-in").text
    assert client.get("/dashboard/sign-in").status_code == 200  # the page itself is not limited


def test_next_never_leaves_the_dashboard_and_a_disabled_user_is_out_at_once(
    client: FlaskClient, engine: Engine, users: dict[str, int]
) -> None:
    token = csrf_token(client.get("/dashboard/sign-in").text)
    done = client.post(
        "/dashboard/sign-in",
        data={"email": email("sales"), "password": PASSWORD, "csrf_token": token, "next": "//evil.example/x"},
    )
    assert done.headers["Location"] == "/dashboard/"
    assert client.get("/dashboard/leads").status_code == 200
    with engine.begin() as conn:
        conn.execute(update(User).where(User.email == email("sales")).values(disabled_at=func.now()))
    assert client.get("/dashboard/leads").status_code == 302


# --- CSRF and roles -----------------------------------------------------------------------------


def test_every_unsafe_request_needs_the_csrf_token(app: Flask, engine: Engine, users: dict[str, int]) -> None:
    anonymous = app.test_client()
    refused = anonymous.post("/dashboard/sign-in", data={"email": email("admin"), "password": PASSWORD})
    assert refused.status_code == 400 and "The form expired" in refused.text
    admin = as_role(app, "admin")
    for url in ("/dashboard/panels/new", "/dashboard/advocates/invite", "/dashboard/webhooks/replay",
                "/dashboard/sign-out"):  # fmt: skip
        answer = admin.post(url, data={"name": "x", "member": "1", "msg_id": "msg_x"})
        assert answer.status_code == 400, url
        assert answer.mimetype == "text/html"
    bad = admin.post("/dashboard/panels/new", data={"name": "x", "csrf_token": "forged"})
    assert bad.status_code == 400
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Panel)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(ReferralInvite)).scalar_one() == 0
    page = admin.get("/dashboard/panels/new").text
    assert page.count('name="csrf_token"') == page.count("<form") - page.count('<form method="get"')


def test_each_role_sees_only_its_pages_and_buttons_and_is_refused_the_rest(
    app: Flask, data: dict[str, Any]
) -> None:
    pages = {
        "/dashboard/": ("admin", "marketer", "researcher", "sales"),
        "/dashboard/advocates": ("admin", "marketer", "researcher", "sales"),
        "/dashboard/leads": ("admin", "marketer", "researcher", "sales"),
        "/dashboard/churn": ("admin", "marketer", "researcher", "sales"),
        "/dashboard/members": ("admin", "marketer", "researcher", "sales"),
        f"/dashboard/members/{data['noa']}": ("admin", "marketer", "researcher", "sales"),
        "/dashboard/panels": ("admin", "marketer", "researcher"),
        "/dashboard/panels/new": ("admin", "researcher"),
        "/dashboard/programs": ("admin", "marketer"),
        "/dashboard/webhooks": ("admin",),
        "/dashboard/crm": ("admin",),
    }
    for role in ("admin", "marketer", "researcher", "sales"):
        client = as_role(app, role)
        for url, roles in pages.items():
            answer = client.get(url)
            assert answer.status_code == (200 if role in roles else 403), (role, url)
        overview = client.get("/dashboard/").text
        assert ('href="/dashboard/webhooks"' in overview) == (role == "admin")
        assert ('href="/dashboard/panels"' in overview) == (role != "sales")
        advocates = client.get("/dashboard/advocates").text
        assert ("Invite to refer" in advocates) == (role in ("admin", "marketer"))
        refused = post(client, "/dashboard/webhooks/replay", {"msg_id": "msg_x"})
        assert refused.status_code == (403 if role != "admin" else 302)
        if role == "sales":
            assert "Not allowed" in refused.text and "sales" in refused.text
            member = client.get(f"/dashboard/members/{data['noa']}").text
            assert (
                "Your role does not see consent" in member and "research" not in member.split("Consent")[-1]
            )
            assert post(client, "/dashboard/advocates/invite", {"member": data["ann"]}).status_code == 403


# --- pages with data ----------------------------------------------------------------------------


def test_the_overview_has_svg_charts_with_titles_and_tables_and_the_latest_crossings(
    app: Flask, data: dict[str, Any]
) -> None:
    page = as_role(app, "sales").get("/dashboard/")
    html = page.text
    assert '<html lang="en" dir="ltr">' in html and 'href="#main"' in html and '<main id="main"' in html
    assert "style=" not in html and "<script" not in html  # nothing the CSP would block
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert html.count("<svg") == 4 and html.count('role="img"') == 4
    assert "Active members per week" in html and "Customers by churn risk band" in html
    assert re.search(r"<rect [^>]+><title>week ending 2026-06-01: \d+</title></rect>", html)
    assert html.count("<details") == 4 and '<th scope="row">week ending 2026-06-01</th>' in html
    crossings = html.split("Latest crossings")[1]
    assert "became a champion" in crossings and "lead turned hot" in crossings
    assert 'dir="auto">Dana</a>' in crossings


def test_the_leaderboard_ranks_advocates_with_levels_and_reasons(app: Flask, data: dict[str, Any]) -> None:
    html = as_role(app, "marketer").get("/dashboard/advocates").text
    rows = re.findall(r'<tr>\s*<td><input type="checkbox" name="member" value="(\d+)"', html)
    assert rows[0] == str(data["ann"]) and len(rows) > 10
    first = html.split("<tbody>")[1].split("</tr>")[0]
    assert "tag-champion" in first and '<ul class="reasons"><li dir="auto">' in first
    assert '<th scope="col" class="num">Rank</th>' in html
    champions = as_role(app, "sales").get("/dashboard/advocates?level=champion").text
    assert champions.count('class="name" dir="auto"') >= 1 and "tag-observer" not in champions


def test_hot_leads_show_their_signals_and_a_link_to_the_crm_record(app: Flask, data: dict[str, Any]) -> None:
    html = as_role(app, "sales").get("/dashboard/leads").text
    assert 'dir="auto">Dana</a>' in html and "tag-hot" in html
    assert "What does the enterprise pricing look like?" in html  # the post that made her hot
    assert f'href="{SALESFORCE}/lightning/r/Lead/00Q5e000001AbCd/view"' in html
    assert 'dir="auto">Rex</a>' not in html  # not hot
    assert 'dir="auto">Rex</a>' in as_role(app, "sales").get("/dashboard/leads?all=1").text


def test_churn_shows_accounts_at_risk_with_reasons_and_their_people(app: Flask, data: dict[str, Any]) -> None:
    html = as_role(app, "sales").get("/dashboard/churn?all=1").text
    assert "oldco.io" in html and "custco.io" in html
    oldco = html.split("oldco.io")[1].split("</article>")[0]
    assert '<ul class="reasons">' in oldco and f'href="/dashboard/members/{data["sid"]}"' in oldco


def test_a_member_profile_has_identities_timeline_scores_consent_programs_and_crm(
    app: Flask, data: dict[str, Any]
) -> None:
    admin = as_role(app, "admin")
    noa = admin.get(f"/dashboard/members/{data['noa']}").text
    assert '<h1><span id="member-name" dir="auto">נועה כהן</span></h1>' in noa
    assert "Advocate:" in noa and '<li dir="auto">' in noa  # a score with its reasons
    assert '<h2 id="identities-heading">Identities</h2>' in noa and "discourse" in noa
    assert noa.count("<time datetime=") == 3  # her three answers
    assert "research" in noa and "marketing" in noa and "granted" in noa
    assert "Programs" in noa and "Not invited to refer yet" in noa
    layla = admin.get(f"/dashboard/members/{data['layla']}").text
    assert '<h1><span id="member-name" dir="auto">ليلى حداد</span></h1>' in layla
    cto = admin.get(f"/dashboard/members/{data['cto']}").text
    assert f"{SALESFORCE}/lightning/r/Lead/00Q5e000001AbCd/view" in cto
    marketer = as_role(app, "marketer").get(f"/dashboard/members/{data['noa']}").text
    assert "marketing" in marketer.split("Consent")[-1] and '<th scope="row">research</th>' not in marketer
    assert admin.get("/dashboard/members/999999").status_code == 404


def test_names_in_every_script_are_shown_escaped_and_with_their_own_direction(
    app: Flask, data: dict[str, Any]
) -> None:
    html = as_role(app, "sales").get("/dashboard/members?sort=id").text
    for name, _ in NAMES.values():
        if name.startswith("<"):
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and name not in html
        else:
            assert f'dir="auto">{name}</a>' in html
    found = as_role(app, "sales").get("/dashboard/members?q=%D7%A0%D7%95%D7%A2%D7%94").text  # נועה
    assert "נועה כהן" in found and "Ann" not in found


def test_referrals_rewards_webhooks_and_crm_pages_render_their_data(app: Flask, data: dict[str, Any]) -> None:
    admin = as_role(app, "admin")
    assert "No referrals" in admin.get("/dashboard/programs").text
    hooks = admin.get("/dashboard/webhooks").text
    assert "https://hooks.example.com/flywheel" in hooks and 'dir="auto">Marketing automation' in hooks
    crm = admin.get("/dashboard/crm").text
    assert "Salesforce" in crm and SALESFORCE in crm and "created 27" in crm and "{}" not in crm


# --- actions ------------------------------------------------------------------------------------

PANEL_FORM = {
    "name": "Onboarding study",
    "size": "4",
    "reserve": "2",
    "seed": "2027",
    "stratify_by": "customer",
    "levels": ["champion", "advocate", "contributor", "participant", "observer"],
    "active_within_days": "365",
    "own_domains": "flywheel.example",
    "other_active_panels": "1",
    "quota_name_0": "customer",
    "quota_min_0": "1",
    "quota_max_0": "2",
    "quota_name_1": "prospect",
    "quota_min_1": "2",
    "quota_max_1": "3",
}


def test_a_researcher_builds_previews_creates_and_draws_a_panel_and_sees_its_manifest(
    app: Flask, engine: Engine, data: dict[str, Any]
) -> None:
    client = as_role(app, "researcher")
    form = "/dashboard/panels/new"
    preview = post(client, form, {**PANEL_FORM, "action": "preview"}, page=form)
    assert preview.status_code == 200 and "Preview:" in preview.text
    table = preview.text.split("Eligible members per stratum")[1].split("</table>")[0]
    assert re.search(r'<th scope="row">customer</th><td class="num">[1-9]', table)
    assert re.search(r'<th scope="row">prospect</th><td class="num">[1-9]', table)
    assert 'value="Onboarding study"' in preview.text  # the form comes back as typed
    with engine.connect() as conn:
        assert (
            conn.execute(select(func.count()).select_from(Panel)).scalar_one() == 0
        )  # a preview saves nothing
    created = post(client, form, {**PANEL_FORM, "action": "create"}, page=form)
    assert created.status_code == 302
    panel_url = created.headers["Location"]
    panel_page = client.get(panel_url).text
    assert "Not drawn yet" in panel_page and "Draw the panel" in panel_page
    drawn = post(client, panel_url + "/draw", page=panel_url)
    assert drawn.status_code == 302 and drawn.headers["Location"].endswith("#manifest")
    shown = client.get(panel_url).text
    assert "Drawn with seed 2027" in shown and '<strong id="manifest-seed">2027</strong>' in shown
    manifest = shown.split('id="manifest-table"')[1].split("</table>")[0]
    assert re.search(r'<th scope="row">customer</th><td class="num">1–2</td>', manifest)
    with engine.connect() as conn:
        selected = conn.execute(
            select(func.count()).select_from(PanelMember).where(PanelMember.role == "selected")
        ).scalar_one()
        assert conn.execute(select(func.count()).select_from(PanelDraw)).scalar_one() == 1
    assert selected == 4 and shown.count('<td>selected</td><td class="num">') == 4  # role, then order
    assert "Invitations" in shown and "Members and reserve" in shown
    marketer = as_role(app, "marketer")
    assert "Draw" not in marketer.get(panel_url).text.split("Criteria")[0]  # a marketer only looks
    assert post(marketer, panel_url + "/draw").status_code == 403


def test_a_panel_form_with_a_mistake_comes_back_with_the_mistake_named(
    app: Flask, data: dict[str, Any]
) -> None:
    client = as_role(app, "admin")
    form = "/dashboard/panels/new"
    wrong = post(client, form, {**PANEL_FORM, "size": "40", "action": "create"}, page=form)
    assert wrong.status_code == 422
    assert "allow fewer places than the panel" in wrong.text and 'aria-invalid="true"' in wrong.text
    assert 'value="40"' in wrong.text
    typo = post(client, form, {**PANEL_FORM, "reserve": "many", "action": "preview"}, page=form)
    assert typo.status_code == 422 and "The reserve must be a whole number" in typo.text


def test_a_marketer_invites_the_ticked_advocates_to_refer(
    app: Flask, engine: Engine, data: dict[str, Any]
) -> None:
    client = as_role(app, "marketer")
    ticked = [data["ann"], data["noa"], data["rex"]]  # rex gave no marketing consent
    done = post(client, "/dashboard/advocates/invite", {"member": ticked, "campaign": "spring"},
                page="/dashboard/advocates")  # fmt: skip
    assert done.status_code == 302
    page = client.get("/dashboard/advocates").text
    assert "Invited 2 advocate(s) to campaign “spring”" in page and "1 no marketing consent" in page
    with engine.connect() as conn:
        invited = set(conn.execute(select(ReferralInvite.member_id)).scalars())
        deliveries = conn.execute(
            select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.status == "pending")
        ).scalar_one()
    assert invited == {data["ann"], data["noa"]} and deliveries == 2  # one referral.invitation each
    again = post(client, "/dashboard/advocates/invite", {"member": [data["ann"]], "campaign": "spring"})
    assert again.status_code == 302
    assert "1 already invited to this campaign" in client.get("/dashboard/advocates").text
    noa = client.get(f"/dashboard/members/{data['noa']}").text
    assert 'Campaign <span dir="auto">spring</span>' in noa


def test_the_replay_button_puts_a_delivery_back_in_line_with_its_original_id(
    app: Flask, engine: Engine, data: dict[str, Any]
) -> None:
    admin = as_role(app, "admin")
    log = admin.get(f"/dashboard/webhooks?endpoint_id={data['endpoint']}&failed=1").text
    assert re.findall(r'name="msg_id" value="([^"]+)"', log) == [data["failed_msg"]]
    assert "tag-failed" in log and "HTTP 503" in log and "503 Service Unavailable" in log
    replayed = post(
        admin, "/dashboard/webhooks/replay", {"msg_id": data["failed_msg"], "endpoint": data["endpoint"]}
    )
    assert replayed.status_code == 302
    assert f"Message {data['failed_msg']} is queued again" in admin.get(replayed.headers["Location"]).text
    with engine.connect() as conn:
        status, attempts = conn.execute(select(WebhookDelivery.status, WebhookDelivery.attempts)).one()
    assert (status, attempts) == ("pending", 0)
    unknown = post(admin, "/dashboard/webhooks/replay", {"msg_id": "msg_unknown"})
    assert "Not replayed: no webhook message msg_unknown" in admin.get(unknown.headers["Location"]).text
