"""Panel invitations and their link pages in six languages: every message carries both links and
an unambiguous deadline, right-to-left languages are marked and their links isolated, unknown
locales fall back to English, the pages escape what they show and only a POST form can change
anything, and a message embedded in an event validates against the published schema."""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from plugin.services.panel_messages import KINDS, LANGUAGES, RTL, STATES, language_of, page, render
from plugin.services.panel_texts import TEXTS
from webhooks import events as ev
from webhooks.events import EventError, MemberRef

ACCEPT = "https://flywheel.example.com/p/27/i/5f3c9a/accept?sig=Ab-9_x"
DECLINE = "https://flywheel.example.com/p/27/i/5f3c9a/decline?sig=Ab-9_x"
DEADLINE = datetime(2026, 5, 18, 23, 59, tzinfo=timezone(timedelta(hours=2)))  # 21:59 UTC
SHOWN = "2026-05-18 21:59 UTC"
PANEL = "Mobile app onboarding, June 2026"
FSI, PDI = "\u2068", "\u2069"
SCHEMA_DIR = Path(ev.__file__).resolve().parent / "schema"


def _render(kind: str, locale: str | None, name: str | None = "Lena", panel: str = PANEL) -> Any:
    return render(
        kind, locale, name=name, panel=panel, accept_url=ACCEPT, decline_url=DECLINE, deadline=DEADLINE
    )


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text, of a page."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def named(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


@cache
def _validator(event_type: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{event_type}.v1.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_language_renders_both_links_on_their_own_lines_and_the_deadline_in_utc(
    language: str, kind: str
) -> None:
    message = _render(kind, language)
    assert message.locale == language
    assert message.direction == ("rtl" if language in {"he", "ar"} else "ltr")
    lines = message.text.split("\n")
    wrap = (lambda s: f"{FSI}{s}{PDI}") if language in RTL else (lambda s: s)
    assert wrap(ACCEPT) in lines and wrap(DECLINE) in lines
    assert lines.index(wrap(ACCEPT)) < lines.index(wrap(DECLINE))
    assert wrap(SHOWN) in message.text  # converted from +02:00 to UTC, ISO date and time
    assert wrap("Lena") in message.text and wrap(PANEL) in message.text
    assert PANEL in message.subject and "\n" not in message.subject
    if language != "en":  # really written in the language, not the English text
        english = _render(kind, "en")
        assert message.subject != english.subject
        assert not set(lines) & {line for line in english.text.split("\n") if line and "http" not in line}


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_reminder_says_something_else_than_the_invitation_and_no_name_gives_a_plain_greeting(
    language: str,
) -> None:
    invitation, reminder = _render("invitation", language), _render("reminder", language)
    assert invitation.subject != reminder.subject and invitation.text != reminder.text
    anonymous = _render("invitation", language, name=None)
    assert anonymous.text.split("\n")[0] == TEXTS[language]["greeting"]
    assert _render("invitation", language, name="   ").text == anonymous.text
    assert "{" not in anonymous.text and "None" not in anonymous.text


def test_rtl_languages_isolate_every_inserted_value_and_ltr_ones_add_no_marks() -> None:
    for language in ("he", "ar"):
        message = _render("invitation", language, name="Dana")
        assert message.direction == "rtl"
        for value in ("Dana", PANEL, SHOWN, ACCEPT, DECLINE):
            assert f"{FSI}{value}{PDI}" in message.text
        assert f"{FSI}{PANEL}{PDI}" in message.subject
        assert message.text.count(FSI) == message.text.count(PDI)
    for language in ("en", "de", "zh", "ru"):
        message = _render("reminder", language)
        assert FSI not in message.text + message.subject and PDI not in message.text + message.subject


@pytest.mark.parametrize(
    ("locale", "language"),
    [
        ("he-IL", "he"),
        ("zh_Hans_CN", "zh"),
        ("zh-TW", "zh"),
        ("AR-eg", "ar"),
        (" de ", "de"),
        ("iw", "he"),
        ("ru-RU", "ru"),
        ("en-GB", "en"),
        ("fr-FR", "en"),
        ("uk-UA", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_the_language_of_a_locale(locale: str | None, language: str) -> None:
    assert language_of(locale) == language


@pytest.mark.parametrize("locale", ["fr-FR", None, "xx"])
def test_an_unknown_or_missing_locale_falls_back_to_english(locale: str | None) -> None:
    assert _render("invitation", locale) == _render("invitation", "en")
    assert _render("invitation", locale).text.startswith("Hello Lena,\n")
    tags = _Tags(page(locale, state="expired", panel=PANEL))
    assert tags.named("html") == [{"lang": "en", "dir": "ltr"}]
    assert page(locale, state="expired", panel=PANEL) == page("en-US", state="expired", panel=PANEL)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("state", STATES)
def test_every_page_is_a_complete_localized_page_with_no_script_and_no_external_asset(
    language: str, state: str
) -> None:
    markup = page(f"{language}-XX", state=state, panel=PANEL, action_url="/p/27/i/5f3c9a/accept?sig=Ab")
    tags = _Tags(markup)
    assert markup.startswith("<!doctype html>\n")
    assert tags.named("html") == [{"lang": language, "dir": "rtl" if language in RTL else "ltr"}]
    assert {"charset": "utf-8"} in tags.named("meta")
    assert any(m.get("name") == "viewport" for m in tags.named("meta"))
    assert len(tags.named("style")) == 1 and len(tags.named("title")) == 1
    assert not tags.named("script") and not tags.named("link") and not tags.named("img")
    assert "<script" not in markup.lower() and "javascript:" not in markup.lower()
    assert not any(a in ("src", "href") or a.startswith("on") for _, attrs in tags.tags for a in attrs)
    shown = "".join(tags.text)
    assert TEXTS[language][f"{state}.title"] in shown and TEXTS[language][f"{state}.text"] in shown
    assert PANEL in shown


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("state", ["confirm_accept", "confirm_decline"])
def test_a_confirm_page_asks_with_one_post_button_to_the_action_url(language: str, state: str) -> None:
    action = "/p/27/i/5f3c9a/accept?sig=Ab&lang=he"
    markup = page(language, state=state, panel=PANEL, action_url=action)
    tags = _Tags(markup)
    assert tags.named("form") == [{"method": "post", "action": action}]
    assert 'action="/p/27/i/5f3c9a/accept?sig=Ab&amp;lang=he"' in markup  # escaped in the attribute
    assert tags.named("button") == [{"type": "submit"}]
    assert TEXTS[language][f"{state}.button"] in "".join(tags.text)
    assert not tags.named("script") and not tags.named("input")


@pytest.mark.parametrize("state", ["accepted", "declined", "expired", "invalid"])
def test_only_the_confirm_pages_have_a_form(state: str) -> None:
    markup = page("de-DE", state=state, panel=PANEL, action_url="/p/27/i/5f3c9a/accept")
    tags = _Tags(markup)
    assert not tags.named("form") and not tags.named("button")
    assert "/p/27/i/5f3c9a/accept" not in markup


def test_the_invalid_page_works_without_a_panel_and_says_nothing_changed() -> None:
    tags = _Tags(page(None, state="invalid", panel=""))
    assert not any(attrs.get("class") == "panel" for _, attrs in tags.tags)
    assert "nothing has been changed" in "".join(tags.text)
    assert "nothing has been changed" in "".join(_Tags(page("en", state="expired", panel=PANEL)).text)


def test_a_panel_name_is_escaped_in_the_page_and_names_in_any_script_are_kept() -> None:
    hostile = '<script>alert("x")</script> & <b onmouseover=1>'
    markup = page("he-IL", state="confirm_accept", panel=hostile, action_url="/p/1/accept")
    tags = _Tags(markup)
    assert "<script" not in markup and "<b " not in markup and not tags.named("script")
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b onmouseover=1&gt;" in markup
    assert hostile in "".join(tags.text)  # shown to the member as written, not run
    for panel in ("פאנל חוויית משתמש", "移动应用入门小组", "Müller & Söhne"):
        assert panel in "".join(_Tags(page("zh", state="accepted", panel=panel)).text)
    for name in ("דנה לוי", "王芳", "<script>", "{panel} {0}"):
        for language in LANGUAGES:
            message = _render("invitation", language, name=name)
            assert name in message.text  # kept exactly; plain text, escaping is the receiver's business
    braces = render(
        "reminder",
        "en",
        name="Ann",
        panel="Panel {x}",
        accept_url="https://f.example.com/a?{x}",
        decline_url=DECLINE,
        deadline=DEADLINE,
    )
    assert "“Panel {x}”" in braces.text and "\nhttps://f.example.com/a?{x}\n" in braces.text


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        _render("survey", "en")
    with pytest.raises(ValueError, match="timezone-aware"):
        render("invitation", "en", name=None, panel=PANEL, accept_url=ACCEPT, decline_url=DECLINE,
               deadline=datetime(2026, 5, 18, 21, 59))  # fmt: skip
    with pytest.raises(ValueError, match="accept_url"):
        render("invitation", "en", name=None, panel=PANEL, accept_url="/p/27/accept", decline_url=DECLINE,
               deadline=DEADLINE)  # fmt: skip
    with pytest.raises(ValueError, match="one line"):
        _render("invitation", "en", panel="Panel\nBcc: someone@example.com")
    with pytest.raises(ValueError, match="state"):
        page("en", state="maybe", panel=PANEL)
    with pytest.raises(ValueError, match="action_url"):
        page("en", state="confirm_decline", panel=PANEL)
    for bad in ("javascript:alert(1)", "//evil.example.com/p", "data:text/html,x"):
        with pytest.raises(ValueError, match="action_url"):
            page("en", state="confirm_accept", panel=PANEL, action_url=bad)


def test_every_language_has_every_text_with_the_same_placeholders() -> None:
    fields = string.Formatter()
    english = TEXTS["en"]
    assert set(TEXTS) == set(LANGUAGES)
    for language, table in TEXTS.items():
        assert set(table) == set(english), language
        for key, text in table.items():
            assert text.strip() == text and text, (language, key)
            assert {f for _, f, _, _ in fields.parse(text) if f} == {
                f for _, f, _, _ in fields.parse(english[key]) if f
            }, (language, key)
            if language != "en":
                assert text != english[key], (language, key)


def _panel_event(kind: str, member: MemberRef, message: dict[str, Any] | None) -> dict[str, Any]:
    common: dict[str, Any] = {
        "workspace": "acme",
        "occurred_at": datetime(2026, 5, 4, 8, 0, tzinfo=UTC),
        "member": member,
        "panel_id": 27,
        "panel_name": PANEL,
        "accept_url": ACCEPT,
        "decline_url": DECLINE,
        "expires_at": DEADLINE,
        "message": message,
    }
    if kind == "invitation":
        return ev.focus_group_invitation(**common)
    return ev.focus_group_reminder(**common, deadline=DEADLINE - timedelta(days=2))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("locale", ["he-IL", "zh-CN", "de-DE", None])
def test_a_rendered_message_in_an_event_validates_against_the_schema(kind: str, locale: str | None) -> None:
    member = MemberRef(4821, "דנה לוי", locale, "dana.levi@example.com")
    message = _render(kind, locale, name=member.name)
    payload = _panel_event(kind, member, message.as_dict())
    errors = [e.message for e in _validator(payload["type"]).iter_errors(payload)]
    assert errors == []
    assert payload["data"]["message"] == message.as_dict()
    assert json.loads(ev.body(payload))["data"]["message"]["text"] == message.text  # marks survive the body
    without = _panel_event(kind, member, None)
    assert "message" not in without["data"] and not list(_validator(payload["type"]).iter_errors(without))


def test_the_builders_and_the_schema_refuse_a_malformed_message() -> None:
    good = _render("invitation", "ar").as_dict()
    dana = MemberRef(4821, "دانة", "ar")
    bad_messages: list[dict[str, Any]] = [
        good | {"direction": "up"},
        good | {"text": ""},
        good | {"subject": 7},
        good | {"subject": "Invitation\r\nBcc: x@example.com"},
        good | {"html": "<p>hi</p>"},
        {k: v for k, v in good.items() if k != "locale"},
    ]
    for kind in KINDS:
        for bad in bad_messages:
            with pytest.raises(EventError, match="message"):
                _panel_event(kind, dana, bad)
    payload = _panel_event("reminder", dana, good)
    validator = _validator("focus_group.reminder")
    validator.validate(payload)
    for bad in ({"html": "<p>hi</p>"}, {"direction": "auto"}, {"subject": "a\nb"}):
        broken = json.loads(json.dumps(payload))
        broken["data"]["message"] |= bad
        with pytest.raises(ValidationError):
            validator.validate(broken)
    del payload["data"]["message"]["text"]
    with pytest.raises(ValidationError):
        validator.validate(payload)
