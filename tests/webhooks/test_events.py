"""The outgoing events: every example and every builder's payload matches its published schema,
the builders refuse what a receiver could not trust (naive times, floats for money, an unknown
type), and the body is the same UTF-8 bytes for the same payload."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from webhooks import events as ev
from webhooks.events import EVENT_TYPES, Deal, EventError, MemberRef, Prospect

SCHEMA_DIR = Path(ev.__file__).resolve().parent / "schema"
WHEN = datetime(2026, 3, 2, 9, 15, tzinfo=timezone(timedelta(hours=2)))
DANA = MemberRef(4821, "דנה לוי", "he-IL", "dana.levi@example.com")
DANA_NO_CONSENT = MemberRef(4821, "דנה לוי", "he-IL")
LINKS = {"member": "https://flywheel.example.com/members/4821"}
CRM = {"hubspot": "51234567"}


@cache
def validator(event_type: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{event_type}.v1.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def assert_valid(payload: dict[str, Any]) -> None:
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in validator(payload["type"]).iter_errors(payload)
    ]
    assert errors == []


def test_every_type_has_one_schema_and_one_example_and_no_stray_files() -> None:
    assert {p.name for p in SCHEMA_DIR.glob("*.v1.json")} == {f"{t}.v1.json" for t in EVENT_TYPES}
    assert {p.name for p in (SCHEMA_DIR / "examples").glob("*.json")} == {f"{t}.json" for t in EVENT_TYPES}
    for event_type in EVENT_TYPES:
        schema = validator(event_type).schema
        assert schema["$id"] == f"https://flywheel.dev/schemas/webhooks/{event_type}.v1.json"
        assert schema["additionalProperties"] is False
        assert set(schema["required"]) == {"type", "version", "timestamp", "workspace", "data"}


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_example_validates_against_its_schema(event_type: str) -> None:
    example = json.loads((SCHEMA_DIR / "examples" / f"{event_type}.json").read_text(encoding="utf-8"))
    assert example["type"] == event_type and example["version"] == ev.SCHEMA_VERSION
    assert_valid(example)


def _program_events(member: MemberRef) -> list[dict[str, Any]]:
    common: dict[str, Any] = {"workspace": "acme", "occurred_at": WHEN, "member": member}
    panel: dict[str, Any] = {
        "panel_id": 27,
        "panel_name": "Mobile onboarding",
        "accept_url": "https://flywheel.example.com/p/27/accept",
        "decline_url": "https://flywheel.example.com/p/27/decline",
        "expires_at": WHEN + timedelta(days=14),
    }
    return [
        ev.referral_invitation(
            **common, code="DANA-7K2Q", referral_url="https://acme.example.com/r/DANA-7K2Q", campaign=None
        ),
        ev.referral_converted(
            **common,
            code="DANA-7K2Q",
            campaign="spring-2026",
            prospect=Prospect("王芳", "Weiß Logistik GmbH", "wang.fang@example.org"),
            deal=Deal("18450221337", Decimal("12500.00"), "EUR", WHEN),
            crm=CRM,
        ),
        ev.referral_converted(
            **common,
            code="DANA-7K2Q",
            campaign=None,
            prospect=Prospect(None, None),
            deal=Deal("0065g00000XyZ", None, None, None),
        ),
        ev.reward_granted(
            **common,
            reward_id=912,
            kind="money",
            amount=Decimal("50.00"),
            currency="EUR",
            reason="Thanks for the referral",
            status="approved",
            idempotency_key="reward-912",
            links=LINKS,
        ),
        ev.reward_granted(
            **common,
            reward_id=913,
            kind="points",
            amount=Decimal("500"),
            currency=None,
            reason="Answer accepted",
            status="fulfilled",
            idempotency_key="reward-913",
        ),
        ev.focus_group_invitation(**common, **panel, reasons=["Answered 3 surveys"]),
        ev.focus_group_reminder(**common, **panel, deadline=WHEN + timedelta(days=10)),
    ]


def _scored_events(member: MemberRef) -> list[dict[str, Any]]:
    common: dict[str, Any] = {"workspace": "acme", "occurred_at": WHEN, "crm": CRM, "links": LINKS}
    trigger = {
        "activity_id": 880412,
        "type": "post",
        "title": "Enterprise plan pricing?",
        "url": "https://community.example.com/t/9921",
        "occurred_at": WHEN - timedelta(hours=3),
    }
    return [
        ev.advocate_promoted(
            **common,
            member=member,
            score=71.4,
            level="champion",
            previous_level=None,
            reasons=["Gave 14 answers"],
        ),
        ev.lead_signal(
            **common,
            member=member,
            score=58.25,
            grade="A2",
            hot=True,
            triggers=[
                trigger,
                {
                    **trigger,
                    "activity_id": 7,
                    "title": None,
                    "url": None,
                    "occurred_at": "2026-03-01T08:00:00+09:00",
                },
            ],
            reasons=[],
        ),
        ev.lead_signal(
            **common, member=member, score=0, grade=None, hot=False, triggers=[], reasons=["Quiet lately"]
        ),
        ev.churn_risk_raised(
            **common,
            member=member,
            organization=None,
            score=0.41,
            band="medium",
            previous_band="low",
            reasons=["Renewal due in 42 days"],
        ),
    ]


@pytest.mark.parametrize("member", [DANA, DANA_NO_CONSENT], ids=["with-email", "without-email"])
def test_every_builders_payload_validates_and_carries_the_email_only_when_given(member: MemberRef) -> None:
    payloads = _program_events(member) + _scored_events(member)
    assert {p["type"] for p in payloads} == set(EVENT_TYPES) - {"ping"}
    for payload in payloads:
        assert_valid(payload)
        assert payload["timestamp"] == "2026-03-02T07:15:00Z"  # converted to UTC, with Z
        assert payload["data"]["member"]["name"] == "דנה לוי"
        if member.email is None:
            assert "email" not in payload["data"]["member"]
        else:
            assert payload["data"]["member"]["email"] == "dana.levi@example.com"


def test_organization_level_churn_and_ping_have_no_member_and_validate() -> None:
    churn = ev.churn_risk_raised(
        workspace="acme",
        occurred_at=WHEN,
        member=None,
        organization={"id": 58, "name": "Müller & Söhne AG", "domain": "mueller.example.org"},
        score=0.7132,
        band="high",
        previous_band=None,
        reasons=["The account's most active person has gone quiet"],
        crm={},
        links={},
    )
    assert_valid(churn)
    assert churn["data"]["member"] is None
    assert churn["data"]["organization"]["name"] == "Müller & Söhne AG"
    assert churn["data"]["risk"] == {"probability": 0.7132, "band": "high", "previous_band": None}
    ping = ev.ping(workspace="acme", occurred_at=WHEN, endpoint_id=3)
    assert_valid(ping)
    assert ping["data"]["member"] is None and ping["data"]["endpoint_id"] == 3
    assert (ping["data"]["crm"], ping["data"]["reasons"], ping["data"]["links"]) == ({}, [], {})


def test_the_lead_signal_names_its_triggers_in_utc() -> None:
    lead = _scored_events(DANA)[1]
    first, second = lead["data"]["triggers"]
    assert first == {
        "activity_id": 880412,
        "type": "post",
        "title": "Enterprise plan pricing?",
        "url": "https://community.example.com/t/9921",
        "occurred_at": "2026-03-02T04:15:00Z",
    }
    assert second["occurred_at"] == "2026-02-28T23:00:00Z" and second["url"] is None
    assert lead["data"]["score"] == {"value": 58.25, "grade": "A2", "hot": True}


def test_an_unknown_type_and_a_naive_datetime_raise() -> None:
    with pytest.raises(EventError, match="unknown event type"):
        ev.envelope("member.deleted", workspace="acme", occurred_at=WHEN, data={})
    naive = datetime(2026, 3, 2, 9, 15)
    with pytest.raises(EventError, match="timezone-aware"):
        ev.envelope("ping", workspace="acme", occurred_at=naive, data={})
    with pytest.raises(EventError, match="timezone-aware"):
        ev.ping(workspace="acme", occurred_at=naive, endpoint_id=1)
    with pytest.raises(EventError, match="closed_at"):
        Deal("1", None, None, naive).as_dict()
    with pytest.raises(EventError, match=r"trigger\.occurred_at"):
        ev.lead_signal(
            workspace="acme",
            occurred_at=WHEN,
            member=DANA,
            score=1,
            grade=None,
            hot=False,
            triggers=[{"activity_id": 1, "type": "post", "occurred_at": "2026-03-01T08:00:00"}],
            reasons=[],
            crm={},
            links={},
        )


def _churn(member: MemberRef | None, organization: dict[str, Any] | None, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"score": 0.7, "band": "high", "previous_band": "medium"} | kw
    return ev.churn_risk_raised(
        workspace="acme",
        occurred_at=WHEN,
        member=member,
        organization=organization,
        reasons=[],
        crm={},
        links={},
        **args,
    )


def test_churn_needs_exactly_one_of_member_and_organization() -> None:
    with pytest.raises(EventError, match="exactly one"):
        _churn(DANA, {"id": 58, "name": "Acme", "domain": "acme.example.com"})
    with pytest.raises(EventError, match="exactly one"):
        _churn(None, None)
    with pytest.raises(EventError, match="band"):
        _churn(DANA, None, band="critical")
    with pytest.raises(EventError, match="between 0 and 1"):
        _churn(DANA, None, score=1.5)


def test_the_schema_refuses_a_churn_event_about_both() -> None:
    payload = _churn(DANA, None)
    assert_valid(payload)
    payload["data"]["organization"] = {"id": 58, "name": None, "domain": None}
    with pytest.raises(ValidationError):
        validator("churn.risk_raised").validate(payload)


def test_the_body_is_utf8_compact_sorted_and_deterministic() -> None:
    payload = _scored_events(DANA)[0]
    raw = ev.body(payload)
    assert "דנה לוי".encode() in raw
    assert b"\\u" not in raw and b": " not in raw and b", " not in raw
    shuffled = json.loads(json.dumps(payload))
    shuffled["data"] = dict(reversed(list(shuffled["data"].items())))
    assert ev.body(shuffled) == raw == ev.body(copy.deepcopy(payload))
    assert raw.startswith(b'{"data":{"crm":') and json.loads(raw) == payload


def test_the_body_refuses_what_is_not_json() -> None:
    with pytest.raises(EventError, match="not plain JSON"):
        ev.body({"type": "ping", "data": {"amount": Decimal("1.00")}})


def test_money_is_a_decimal_string_and_never_a_float() -> None:
    programs = _program_events(DANA)
    converted, reward, points = programs[1], programs[3], programs[4]
    assert (
        converted["data"]["deal"]["amount"] == "12500.00" and converted["data"]["deal"]["currency"] == "EUR"
    )
    assert reward["data"]["reward"]["amount"] == "50.00"
    assert points["data"]["reward"]["amount"] == "500" and points["data"]["reward"]["currency"] is None
    assert b'"amount":"50.00"' in ev.body(reward)
    assert Deal("1", Decimal("1E+3"), "USD", None).as_dict()["amount"] == "1000"

    grant: Callable[..., dict[str, Any]] = ev.reward_granted
    base: dict[str, Any] = {
        "workspace": "acme",
        "occurred_at": WHEN,
        "member": DANA,
        "reward_id": 1,
        "kind": "money",
        "currency": "EUR",
        "reason": "Thanks",
        "status": "approved",
        "idempotency_key": "k",
    }
    for bad in (50.0, 50, Decimal("NaN"), Decimal("-5"), Decimal("0")):
        with pytest.raises(EventError):
            grant(**base, amount=bad)
    with pytest.raises(EventError, match="currency"):
        grant(**(base | {"kind": "points"}), amount=Decimal("5"))
    with pytest.raises(EventError, match="ISO 4217"):
        grant(**(base | {"currency": "eur"}), amount=Decimal("5"))
    with pytest.raises(EventError, match="255"):
        grant(**(base | {"idempotency_key": "k" * 256}), amount=Decimal("5"))


def test_the_schema_refuses_an_extra_top_level_field_and_a_numeric_amount() -> None:
    payload = ev.ping(workspace="acme", occurred_at=WHEN, endpoint_id=3)
    assert_valid(payload)
    with pytest.raises(ValidationError, match="Additional properties"):
        validator("ping").validate(payload | {"extra": True})
    reward = _program_events(DANA)[3]
    reward["data"]["reward"]["amount"] = 50.0
    with pytest.raises(ValidationError):
        validator("reward.granted").validate(reward)
    reward["data"]["reward"]["amount"] = "50.00"
    reward["timestamp"] = "2026-03-02T09:15:00+02:00"  # the schema wants UTC with Z
    with pytest.raises(ValidationError):
        validator("reward.granted").validate(reward)


def test_builders_refuse_input_a_receiver_could_not_use() -> None:
    common: dict[str, Any] = {
        "workspace": "acme",
        "occurred_at": WHEN,
        "member": DANA,
        "previous_level": None,
    }
    bad_parts: list[dict[str, Any]] = [
        {"crm": {"pipedrive": "1"}, "links": {}, "reasons": []},
        {"crm": {}, "links": {"member": "/members/4821"}, "reasons": []},
        {"crm": {}, "links": {"Member Page": "https://flywheel.example.com/"}, "reasons": []},
        {"crm": {}, "links": {}, "reasons": "one string, not a list"},
    ]
    for bad in bad_parts:
        with pytest.raises(EventError):
            ev.advocate_promoted(**common, score=70, level="champion", **bad)
    with pytest.raises(EventError, match="between 0 and 100"):
        ev.advocate_promoted(**common, score=101, level="champion", crm={}, links={}, reasons=[])
    with pytest.raises(EventError, match="positive integer"):
        MemberRef(0, "x", None)
    with pytest.raises(EventError, match="email"):
        MemberRef(1, "x", None, "not-an-address")
    with pytest.raises(EventError, match="deadline"):
        ev.focus_group_reminder(
            workspace="acme",
            occurred_at=WHEN,
            member=DANA,
            panel_id=1,
            panel_name="Panel",
            accept_url="https://flywheel.example.com/a",
            decline_url="https://flywheel.example.com/d",
            expires_at=WHEN,
            deadline=WHEN.astimezone(UTC) + timedelta(seconds=1),
        )


def test_every_event_names_the_consent_its_email_needs_and_the_plugin_knows_it() -> None:
    from plugin.db.models.member import CONSENT_PURPOSES

    assert set(ev.EMAIL_CONSENT) == set(EVENT_TYPES)
    assert {p for p in ev.EMAIL_CONSENT.values() if p is not None} <= set(CONSENT_PURPOSES)
    assert ev.EMAIL_CONSENT["focus_group.invitation"] == "research" and ev.EMAIL_CONSENT["ping"] is None


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_the_user_docs_show_each_example_as_published(event_type: str) -> None:
    docs = (SCHEMA_DIR.parents[1] / "docs" / "webhooks.md").read_text(encoding="utf-8")
    example = (SCHEMA_DIR / "examples" / f"{event_type}.json").read_text(encoding="utf-8").rstrip("\n")
    assert f"### `{event_type}`" in docs
    assert f"```json\n{example}\n```" in docs
