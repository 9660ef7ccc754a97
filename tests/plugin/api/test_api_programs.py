"""``/api/v1/referrals``, ``/api/v1/rewards`` and ``/api/v1/panels``: what each call changes and
answers, field-named validation errors, roles, and other workspaces' ids reading as unknown."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from plugin.db.models import Consent, Member, ReferralInvite, RewardLine
from plugin.settings import Settings
from plugin.web.app import create_app
from tests.plugin.api.conftest import Auth, every_item
from tests.plugin.test_panels import _community
from tests.plugin.test_referrals import _people

URL = "https://flywheel.example.com"
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


@pytest.fixture
def clock() -> dict[str, datetime]:
    return {"now": NOW}


@pytest.fixture
def app(engine: Engine, settings: Settings, clock: dict[str, datetime]) -> Flask:
    """The app with a public address (for referral and panel links) and a clock the test moves."""
    return create_app(dataclasses.replace(settings, public_url=URL), engine, clock=lambda: clock["now"])


# --- referrals -----------------------------------------------------------------------------------


def test_advocates_are_invited_within_consent_and_budget_and_only_once_per_campaign(
    client: FlaskClient, auth: Auth, engine: Engine, workspace_id: int
) -> None:
    people = _people(engine, workspace_id)
    marketer = auth("marketer")
    done = client.post("/api/v1/referrals/invitations", json={"campaign": "spring"}, headers=marketer)
    assert done.status_code == 200, done.json
    assert done.json["invited"] == 1 and done.json["members"] == [people["ada"]]
    assert done.json["skipped"]["no marketing consent"] == 1  # Bo
    assert done.json["skipped"]["over the contact budget"] == 1  # Cy, asked two days ago
    again = client.post("/api/v1/referrals/invitations", json={"campaign": "spring"}, headers=marketer)
    assert again.json["invited"] == 0 and again.json["skipped"]["already invited to this campaign"] == 1
    with engine.connect() as conn:
        assert conn.execute(select(ReferralInvite.member_id)).scalars().all() == [people["ada"]]
    bad = client.post("/api/v1/referrals/invitations", json={"segment": "vips", "limit": 0}, headers=marketer)
    assert bad.status_code == 422 and set(bad.json["errors"]) == {"limit"}
    unknown = client.post("/api/v1/referrals/invitations", json={"segment": "vips"}, headers=marketer)
    assert unknown.status_code == 422 and "segment" in unknown.json["errors"]
    assert client.post("/api/v1/referrals/invitations", json={}, headers=auth("sales")).status_code == 403


def test_referrals_are_captured_listed_and_a_held_one_is_reviewed(
    client: FlaskClient, auth: Auth, engine: Engine, workspace_id: int
) -> None:
    people = _people(engine, workspace_id)
    marketer = auth("marketer")
    client.post("/api/v1/referrals/invitations", json={"campaign": "spring"}, headers=marketer)
    with engine.connect() as conn:
        code = conn.execute(select(ReferralInvite.code)).scalar_one()
    body = {"code": code, "name": "Sam Lee", "email": "Sam@Prospect.example", "company": "Prospect"}
    made = client.post("/api/v1/referrals", json=body, headers=marketer)
    assert made.status_code == 201 and made.json == {
        "id": made.json["id"],
        "status": "pending",
        "held_reason": None,
    }
    held = client.post("/api/v1/referrals", json=body | {"email": "ada@acme.example"}, headers=marketer)
    assert held.status_code == 201 and held.json["status"] == "held"
    assert held.json["held_reason"].startswith("self-referral")
    missing = client.post("/api/v1/referrals", json={"code": code, "email": "x@y.example"}, headers=marketer)
    assert missing.status_code == 422 and set(missing.json["errors"]) == {"name"}
    invalid = client.post("/api/v1/referrals", json=body | {"email": "not-an-email"}, headers=marketer)
    assert invalid.status_code == 422 and "email" in invalid.json["errors"]
    unknown = client.post("/api/v1/referrals", json=body | {"code": "nope"}, headers=marketer)
    assert unknown.status_code == 404

    queue = client.get("/api/v1/referrals?status=held", headers=marketer).json["items"]
    assert [r["id"] for r in queue] == [held.json["id"]]
    every = every_item(client, marketer, "/api/v1/referrals?limit=1")
    assert [r["id"] for r in every] == [held.json["id"], made.json["id"]]  # newest first
    one = client.get(f"/api/v1/referrals/{made.json['id']}", headers=marketer)
    assert one.status_code == 200 and one.json["advocate_id"] == people["ada"]
    assert one.json["campaign"] == "spring" and one.json["prospect_email"] == "sam@prospect.example"
    assert one.json["created_at"].startswith("2026-12-01T12:00:00") and one.json["converted_at"] is None

    url = f"/api/v1/referrals/{held.json['id']}/review"
    assert client.post(url, json={}, headers=marketer).json["errors"] == {
        "accept": "Missing data for required field."
    }
    rejected = client.post(url, json={"accept": False}, headers=marketer)
    assert rejected.status_code == 200 and rejected.json["status"] == "rejected"
    twice = client.post(url, json={"accept": True}, headers=marketer)
    assert twice.status_code == 422 and "not held" in twice.json["detail"]
    assert client.get("/api/v1/referrals?status=held", headers=marketer).json["items"] == []


def test_another_workspace_sees_none_of_the_referrals_and_sales_none_at_all(
    client: FlaskClient, auth: Auth, engine: Engine, workspace_id: int
) -> None:
    _people(engine, workspace_id)
    marketer = auth("marketer")
    client.post("/api/v1/referrals/invitations", json={"campaign": "spring"}, headers=marketer)
    with engine.connect() as conn:
        code = conn.execute(select(ReferralInvite.code)).scalar_one()
    body = {"code": code, "name": "Sam", "email": "sam@prospect.example"}
    made = client.post("/api/v1/referrals", json=body, headers=marketer).json
    other = auth("admin", workspace="other")
    assert client.get(f"/api/v1/referrals/{made['id']}", headers=other).status_code == 404
    assert (
        client.post(
            f"/api/v1/referrals/{made['id']}/review", json={"accept": True}, headers=other
        ).status_code
        == 404
    )
    assert client.get("/api/v1/referrals", headers=other).json == {"items": [], "next_cursor": None}
    theirs = client.post("/api/v1/referrals", json=body | {"email": "kim@prospect.example"}, headers=other)
    assert theirs.status_code == 404  # the code is this workspace's: unknown there
    sales = auth("sales")
    for response in (
        client.get("/api/v1/referrals", headers=sales),
        client.get(f"/api/v1/referrals/{made['id']}", headers=sales),
        client.post("/api/v1/referrals", json=body, headers=sales),
    ):
        assert response.status_code == 403 and response.headers["Content-Type"] == "application/problem+json"
    assert client.get("/api/v1/referrals/2147483648", headers=marketer).status_code == 404


# --- rewards -------------------------------------------------------------------------------------


@pytest.fixture
def member_id(engine: Engine, workspace_id: int) -> int:
    with Session(engine) as session:
        member = Member(workspace_id=workspace_id, display_name="Леся", primary_email="lesya@example.org")
        session.add(member)
        session.flush()
        session.add(Consent(workspace_id=workspace_id, member_id=member.id, purpose="marketing", granted=True,
                            source="form"))  # fmt: skip
        session.commit()
        return member.id


def test_a_grant_by_hand_is_approved_at_once_recorded_as_the_token_and_idempotent(
    client: FlaskClient, auth: Auth, engine: Engine, member_id: int
) -> None:
    marketer = auth("marketer")
    body = {"member_id": member_id, "key": "thanks-1", "amount": "12.50", "kind": "money", "currency": "eur",
            "note": "a great talk"}  # fmt: skip
    made = client.post("/api/v1/rewards", json=body, headers=marketer)
    assert made.status_code == 201, made.json
    got = made.json
    assert got["created"] is True and got["status"] == "approved" and got["reason"] == "manual"
    assert (got["amount"], got["currency"], got["note"]) == ("12.5", "EUR", "a great talk")
    assert got["created_by"].startswith("token:") and got["hold_until"] is None
    again = client.post("/api/v1/rewards", json=body | {"amount": "99"}, headers=marketer)
    assert again.status_code == 200 and again.json["created"] is False and again.json["id"] == got["id"]
    assert again.json["amount"] == "12.5"  # the key's grant, unchanged
    with engine.connect() as conn:
        assert conn.execute(select(RewardLine.by)).scalars().all() == [got["created_by"]]


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"amount": None, "kind": None}, {"amount", "kind"}),
        ({"amount": "12.345678"}, {"amount"}),
        ({"amount": "lots"}, {"amount"}),
        ({"amount": 12.5}, {"amount"}),  # a float is not exact: refused
        ({"amount": "-5"}, {"amount"}),  # negative only corrects a grant
        ({"kind": "points"}, {"currency"}),  # points have no currency
        ({"currency": None}, {"currency"}),  # money needs one
        ({"corrects": 999_999}, {"corrects"}),
        ({"reason": "review_written"}, {"amount", "kind", "currency"}),  # the rule sets them
        ({"reason": "bonus"}, {"reason"}),
        ({"key": ""}, {"key"}),
        ({"member_id": "ann"}, {"member_id"}),
    ],
)
def test_a_bad_grant_names_the_field_and_writes_nothing(
    client: FlaskClient, auth: Auth, engine: Engine, member_id: int, change: dict[str, Any], fields: set[str]
) -> None:
    base = {"member_id": member_id, "key": "k", "amount": "10", "kind": "money", "currency": "USD"}
    body = {k: v for k, v in (base | change).items() if v is not None}  # None: left out
    answer = client.post("/api/v1/rewards", json=body, headers=auth("admin"))
    assert answer.status_code == 422, answer.json
    assert set(answer.json["errors"]) == fields
    assert client.get("/api/v1/rewards", headers=auth("admin")).json["items"] == []


def _grant(client: FlaskClient, headers: dict[str, str], **body: Any) -> Any:
    return client.post("/api/v1/rewards", json=body, headers=headers)


def _move(client: FlaskClient, headers: dict[str, str], reward_id: int, **body: Any) -> Any:
    return client.post(f"/api/v1/rewards/{reward_id}/status", json=body, headers=headers)


def test_rewards_move_through_their_statuses_and_add_up_to_balances(
    client: FlaskClient, auth: Auth, member_id: int, clock: dict[str, datetime]
) -> None:
    admin = auth("admin")
    manual = _grant(client, admin, member_id=member_id, key="m", amount="25", kind="points").json
    rule = _grant(client, admin, member_id=member_id, key="ref-1", reason="referral_converted").json
    assert rule["status"] == "pending" and rule["amount"] == "50" and rule["currency"] == "USD"
    assert rule["hold_until"].startswith("2026-12-15T12:00:00")  # the rule's 14 days from the app's clock

    held = _move(client, admin, rule["id"], status="approved")
    assert held.status_code == 422 and "held until" in held.json["detail"]
    paid = _move(client, admin, manual["id"], status="paid", note="payout 7")
    assert paid.status_code == 200 and paid.json["previous_status"] == "approved"
    assert paid.json["status"] == "paid" and paid.json["id"] == manual["id"]
    unsaid = _move(client, admin, manual["id"], status="reversed")
    assert unsaid.status_code == 422 and set(unsaid.json["errors"]) == {"note"}
    back = _move(client, admin, manual["id"], status="approved")
    assert back.status_code == 422 and "cannot become approved" in back.json["detail"]

    pending = client.get("/api/v1/rewards?status=pending", headers=admin).json["items"]
    assert [r["id"] for r in pending] == [rule["id"]]
    ledger = every_item(client, admin, f"/api/v1/rewards?member_id={member_id}&limit=1")
    assert [r["id"] for r in ledger] == [rule["id"], manual["id"]]
    assert client.get("/api/v1/rewards/balances", headers=admin).json == [
        {"member_id": member_id, "unit": "USD", "pending": "50", "approved": "0", "paid": "0"},
        {"member_id": member_id, "unit": "points", "pending": "0", "approved": "0", "paid": "25"},
    ]

    assert client.post("/api/v1/rewards/release", headers=admin).json == {"approved": []}  # still held
    clock["now"] = NOW + timedelta(days=15)
    assert client.post("/api/v1/rewards/release", headers=admin).json == {"approved": [rule["id"]]}
    approved = client.get(f"/api/v1/rewards?status=approved&member_id={member_id}", headers=admin).json
    assert [r["id"] for r in approved["items"]] == [rule["id"]]
    assert _move(client, admin, rule["id"], status="reversed", note="refund").json["status"] == "reversed"
    after = client.get(f"/api/v1/rewards/balances?member_id={member_id}", headers=admin).json
    assert [b["unit"] for b in after] == ["points"]  # a reversed reward counts nowhere


def test_rewards_of_another_workspace_are_unknown_and_sales_and_researchers_see_none(
    client: FlaskClient, auth: Auth, member_id: int
) -> None:
    admin = auth("admin")
    made = _grant(client, admin, member_id=member_id, key="m", amount="25", kind="points").json
    other = auth("admin", workspace="other")
    assert client.get("/api/v1/rewards", headers=other).json["items"] == []
    assert client.get("/api/v1/rewards/balances", headers=other).json == []
    assert _move(client, other, made["id"], status="paid").status_code == 404
    granted = _grant(client, other, member_id=member_id, key="x", amount="1", kind="points")
    assert granted.status_code == 404  # the member is unknown there
    assert client.get("/api/v1/rewards", headers=admin).json["items"][0]["status"] == "approved"  # untouched
    for role in ("sales", "researcher"):
        assert client.get("/api/v1/rewards", headers=auth(role)).status_code == 403
        assert client.post("/api/v1/rewards/release", headers=auth(role)).status_code == 403


# --- panels --------------------------------------------------------------------------------------

SPEC: dict[str, Any] = {
    "name": "Onboarding study",
    "size": 10,
    "reserve": 4,
    "stratify_by": "customer",
    "exclusions": {"own_domains": ["flywheel.example"], "competitor_domains": ["rival.example"]},
    "quotas": {"customer": {"min": 4, "max": 4}, "prospect": {"min": 6, "max": 6}},
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"quotas": {"customer": {"min": 8, "max": 8}, "prospect": {"min": 4, "max": 4}}}, "quotas"),
        ({"quotas": {}}, "quotas"),
        ({"quotas": {"customer": {"min": 5, "max": 4}, "prospect": {"min": 6, "max": 6}}}, "quotas.customer"),
        ({"eligibility": {"levels": ["vip"]}}, "eligibility.levels.0"),
        ({"eligibility": {"advocate_score": [50]}}, "eligibility.advocate_score"),
        ({"eligibility": {"mood": "happy"}}, "eligibility.mood"),
        ({"colour": "blue"}, "colour"),
        ({"size": "10"}, "size"),
        ({"size": 0}, "size"),
        ({"name": "two\nlines"}, "name"),
        ({"stratify_by": "age"}, "stratify_by"),
        ({"seed": -1}, "seed"),
    ],
)
def test_a_bad_panel_spec_names_the_field(
    client: FlaskClient, auth: Auth, change: dict[str, Any], field: str
) -> None:
    answer = client.post("/api/v1/panels", json=SPEC | change, headers=auth("researcher"))
    assert answer.status_code == 422, answer.json
    assert field in answer.json["errors"], answer.json
    assert client.get("/api/v1/panels", headers=auth("researcher")).json["items"] == []


def test_a_panel_is_created_previewed_drawn_exported_and_invited(
    client: FlaskClient, auth: Auth, engine: Engine, workspace_id: int
) -> None:
    groups = _community(engine, workspace_id)
    researcher = auth("researcher")
    made = client.post("/api/v1/panels", json=SPEC, headers=researcher)
    assert made.status_code == 201, made.json
    panel = made.json
    assert panel["status"] == "draft" and panel["strata"] == {} and panel["manifest"] is None
    assert panel["spec"]["quotas"]["prospect"] == {"min": 6, "max": 6} and panel["spec"]["seed"] is None
    url = f"/api/v1/panels/{panel['id']}"
    assert client.get(url + "/manifest", headers=researcher).status_code == 409  # not drawn yet

    preview = client.get(url + "/preview", headers=researcher).json
    assert preview["eligible"] == {"customer": 40, "prospect": 40} and preview["shortfall"] == {}
    assert preview["excluded"] == {
        "no research consent": 2, "works for the company itself": 1, "works for a competitor": 1,
    }  # fmt: skip
    assert client.get(url, headers=researcher).json["status"] == "draft"  # a preview draws nobody

    drawn = client.post(url + "/draw", json={"seed": 5}, headers=researcher)
    assert drawn.status_code == 200, drawn.json
    assert drawn.json["seed"] == 5 and drawn.json["selected"] == {"customer": 4, "prospect": 6}
    assert drawn.json["criteria"]["quotas"] == SPEC["quotas"] and drawn.json["shortfall"] == {}
    export = client.get(url + "/manifest", headers=researcher).json
    redrawn = client.post(url + "/draw", json={"seed": 5}, headers=researcher)
    assert redrawn.status_code == 200
    assert client.get(url + "/manifest", headers=researcher).json["strata"] == export["strata"]  # same seed
    chosen = [m for rows in export["strata"].values() for m in rows]
    selected = [m for m in export["strata"]["customer"] if m["role"] == "selected"]
    assert len(selected) == 4 and all(m["email"].endswith("@cust.example") for m in selected)
    assert not {m["member_id"] for m in chosen} & set(groups["out"])

    shown = client.get(url, headers=auth("marketer")).json  # marketers see panels, counts only
    assert shown["status"] == "drawn" and shown["manifest"]["seed"] == 5
    assert shown["strata"]["customer"]["selected"] == 4 and shown["strata"]["prospect"]["selected"] == 6
    assert client.get(url + "/manifest", headers=auth("marketer")).status_code == 403

    invited = client.post(url + "/invitations", json={"deadline_days": 3}, headers=researcher)
    assert invited.status_code == 200, invited.json
    assert invited.json["invited"] == 10 and sum(invited.json["skipped"].values()) == 0
    assert client.get(url, headers=researcher).json["strata"]["customer"]["invited"] == 4
    late = client.post(url + "/draw", json={}, headers=researcher)
    assert late.status_code == 422 and "invitations out" in late.json["detail"]
    bad = client.post(url + "/invitations", json={"deadline_days": 91}, headers=researcher)
    assert bad.status_code == 422 and set(bad.json["errors"]) == {"deadline_days"}
    reminded = client.post(url + "/reminders", headers=researcher).json
    assert reminded["reminded"] == 10 and sorted(reminded["members"]) == sorted(invited.json["members"])
    assert client.post(url + "/reminders", headers=researcher).json["reminded"] == 0  # one reminder each

    listed = client.get("/api/v1/panels", headers=auth("marketer")).json
    assert [(p["id"], p["status"]) for p in listed["items"]] == [(panel["id"], "drawn")]


def test_panels_of_another_workspace_are_unknown_and_roles_are_kept(
    client: FlaskClient, auth: Auth, engine: Engine, workspace_id: int
) -> None:
    _community(engine, workspace_id)
    researcher = auth("researcher")
    panel = client.post("/api/v1/panels", json=SPEC, headers=researcher).json
    url = f"/api/v1/panels/{panel['id']}"
    other = auth("admin", workspace="other")
    assert client.get("/api/v1/panels", headers=other).json["items"] == []
    for method, path in [("get", ""), ("get", "/preview"), ("post", "/draw"), ("get", "/manifest"),
                         ("post", "/invitations"), ("post", "/reminders")]:  # fmt: skip
        answer = getattr(client, method)(
            url + path, headers=other, **({"json": {}} if method == "post" else {})
        )
        assert answer.status_code == 404, (path, answer.json)
    assert client.get(url, headers=researcher).json["status"] == "draft"  # their draw did not happen
    marketer = auth("marketer")
    assert client.post("/api/v1/panels", json=SPEC, headers=marketer).status_code == 403
    assert client.post(url + "/draw", json={}, headers=marketer).status_code == 403
    assert client.post(url + "/invitations", json={}, headers=marketer).status_code == 403
    assert client.get("/api/v1/panels", headers=auth("sales")).status_code == 403
    assert client.get("/api/v1/panels").status_code == 401
