"""Referral programs end to end: champions invited within consent and the contact budget, a
referral captured, fraud checks holding what looks wrong, a won deal in the CRM converting the
referral, the reward granted after its hold, and every step's webhook verified at a receiver."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from standardwebhooks import Webhook as StandardWebhook

from plugin.db.models import (
    Consent,
    CrmConnection,
    CrmDeal,
    Member,
    Outreach,
    Referral,
    ReferralInvite,
    Score,
    ScoreRun,
)
from plugin.errors import ConfigError, NotFound, ValidationFailed
from plugin.services.program_rules import Programs, load_rules
from plugin.services.referrals import attribute, capture, invite, review
from plugin.services.rewards import balances, release
from plugin.services.webhook_endpoints import add_endpoint
from plugin.services.webhook_worker import Worker
from plugin.settings import Settings
from tests.fakes.webhook_receiver import Receiver

POLICY = Programs()
RULES = load_rules()
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
URL = "https://flywheel.example.com"


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings, webhook_allowed_networks="127.0.0.0/8", webhook_allow_http=True, public_url=URL
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def _people(engine: Engine, workspace_id: int) -> dict[str, int]:
    """Three champions (one without marketing consent, one asked two days ago) and a customer."""
    with Session(engine) as session:
        run = ScoreRun(
            workspace_id=workspace_id,
            kinds="advocate",
            mode="full",
            as_of=NOW,
            model_version="t",
            weights_hash="t",
        )
        session.add(run)
        out = {}
        for name, email in [
            ("ada", "ada@acme.example"),
            ("bo", "bo@beta.example"),
            ("cy", "cy@gamma.example"),
            ("cust", "buyer@delta.example"),
        ]:
            member = Member(
                workspace_id=workspace_id,
                display_name=name.title(),
                primary_email=email,
                locale="de-DE",
                lifecycle_stage="customer" if name == "cust" else None,
            )
            session.add(member)
            session.flush()
            out[name] = member.id
            if name != "cust":
                session.add(
                    Score(
                        workspace_id=workspace_id,
                        kind="advocate",
                        subject="member",
                        subject_id=member.id,
                        score=90.0,
                        label="champion",
                        hot=False,
                        run_id=run.id,
                    )
                )
            if name != "bo":
                session.add(
                    Consent(
                        workspace_id=workspace_id,
                        member_id=member.id,
                        purpose="marketing",
                        granted=True,
                        source="form",
                    )
                )
        session.add(
            Outreach(
                workspace_id=workspace_id,
                member_id=out["cy"],
                kind="focus_group.invitation",
                at=NOW - timedelta(days=2),
            )
        )
        session.commit()
    return out


def _deliver(engine: Engine, settings: Settings) -> None:
    worker = Worker(engine, settings, threads=2)
    worker.run(once=True)
    worker.close()


def test_invite_capture_convert_and_reward_with_every_webhook_verified(
    engine: Engine, hook_settings: Settings, workspace_id: int, receiver: Receiver
) -> None:
    people = _people(engine, workspace_id)
    with Session(engine) as session:
        secret = add_endpoint(session, hook_settings, workspace_id, receiver.url).secret
        session.commit()
    receiver.trust(secret)

    with engine.begin() as conn:
        done = invite(
            conn, workspace_id, segment="champions", campaign="winter", policy=POLICY, public_url=URL, now=NOW
        )
    assert done.invited == [people["ada"]]
    assert done.skipped["no marketing consent"] == 1 and done.skipped["over the contact budget"] == 1
    with engine.begin() as conn:  # the same campaign again invites nobody twice
        again = invite(
            conn,
            workspace_id,
            segment="champions",
            campaign="winter",
            policy=POLICY,
            public_url=URL,
            now=NOW + timedelta(days=8),
        )
    # Ada is not invited twice; Cy, asked ten days before, is within the budget again.
    assert again.invited == [people["cy"]] and again.skipped["already invited to this campaign"] == 1
    with engine.connect() as conn:
        code = conn.execute(
            select(ReferralInvite.code).where(ReferralInvite.member_id == people["ada"])
        ).scalar_one()
    assert len(code) >= 12

    with engine.begin() as conn:
        got = capture(
            conn,
            code,
            name="Dana Levi",
            email="Dana@Prospect.example",
            company="Prospect Ltd",
            policy=POLICY,
            now=NOW + timedelta(days=1),
        )
    assert got.status == "pending" and got.reason is None

    with engine.begin() as conn:  # the CRM pull read a won deal for the prospect's new contact
        prospect = conn.execute(
            Member.__table__.insert().values(
                workspace_id=workspace_id,
                primary_email="dana@prospect.example",
                display_name="Dana Levi",
                created_at=NOW,
                updated_at=NOW,
            )
        ).inserted_primary_key[0]
        crm = conn.execute(
            CrmConnection.__table__.insert().values(
                workspace_id=workspace_id, kind="hubspot", credentials_encrypted="x", created_at=NOW
            )
        ).inserted_primary_key[0]
        conn.execute(
            CrmDeal.__table__.insert().values(
                connection_id=crm,
                crm_id="D-77",
                won=True,
                closed=True,
                close_date="2026-12-20",
                member_ids=[prospect],
                read_at=NOW,
            )
        )
        assert attribute(conn, workspace_id, policy=POLICY, rules=RULES, now=NOW + timedelta(days=20)) == [
            got.referral_id
        ]
        assert attribute(conn, workspace_id, policy=POLICY, rules=RULES, now=NOW + timedelta(days=21)) == []
        assert balances(conn, workspace_id)[0]["pending"] == "50"
        assert release(conn, workspace_id, NOW + timedelta(days=35)) != []
        assert balances(conn, workspace_id)[0]["approved"] == "50"

    _deliver(engine, hook_settings)
    types = []
    for headers, body in receiver.raw:
        StandardWebhook(secret).verify(body, headers)
        types.append(json.loads(body)["type"])
    assert types.count("referral.invitation") == 2 and types.count("referral.converted") == 1
    assert [t for t in types if t == "reward.granted"] == ["reward.granted"] * 2  # pending, then approved
    sent = [json.loads(b) for _, b in receiver.raw]
    # Two invitations went out on two threads: pick Ada's, whichever arrived first.
    invitation = next(
        m for m in sent if m["type"] == "referral.invitation" and m["data"]["member"]["id"] == people["ada"]
    )
    assert invitation["data"]["referral"]["url"] == f"{URL}/r/{code}"
    assert invitation["data"]["member"]["locale"] == "de-DE"


@pytest.mark.parametrize(
    ("email", "why"),
    [
        ("ada@acme.example", "self-referral: the prospect's email"),
        ("colleague@acme.example", "self-referral: the prospect works at the advocate's own company"),
        ("buyer@delta.example", "already a customer"),
    ],
)
def test_fraud_checks_hold_with_their_reason(
    engine: Engine, hook_settings: Settings, workspace_id: int, email: str, why: str
) -> None:
    _people(engine, workspace_id)
    with engine.begin() as conn:
        invite(conn, workspace_id, segment="champions", campaign="c", policy=POLICY, public_url=URL, now=NOW)
        code = conn.execute(select(ReferralInvite.code)).scalar_one()
        got = capture(conn, code, name="X", email=email, company=None, policy=POLICY, now=NOW)
    assert got.status == "held" and got.reason is not None and got.reason.startswith(why)


def test_the_first_referral_wins_bursts_are_held_and_a_person_decides(
    engine: Engine, workspace_id: int
) -> None:
    _people(engine, workspace_id)
    burst = dataclasses.replace(POLICY, burst_per_day=2)
    with engine.begin() as conn:
        invite(conn, workspace_id, segment="champions", campaign="c", policy=POLICY, public_url=URL, now=NOW)
        code = conn.execute(select(ReferralInvite.code)).scalar_one()
        first = capture(conn, code, name="P", email="p@one.example", company=None, policy=burst, now=NOW)
        second = capture(conn, code, name="P", email="p@one.example", company=None, policy=burst, now=NOW)
        capture(conn, code, name="Q", email="q@two.example", company=None, policy=burst, now=NOW)
        fourth = capture(conn, code, name="R", email="r@three.example", company=None, policy=burst, now=NOW)
        assert first.status == "pending"
        assert second.status == "held" and f"referral {first.referral_id}" in (second.reason or "")
        assert fourth.status == "held" and (fourth.reason or "").startswith("burst")
        assert review(conn, workspace_id, fourth.referral_id, accept=True) == "pending"
        assert review(conn, workspace_id, second.referral_id, accept=False) == "rejected"
        with pytest.raises(NotFound):
            capture(conn, "not-a-code", name="Z", email="z@z.example", company=None, policy=burst)
    with engine.connect() as conn:
        assert conn.execute(select(Referral.id)).all().__len__() == 4  # nothing dropped silently


def test_links_need_the_public_address(engine: Engine, workspace_id: int) -> None:
    _people(engine, workspace_id)
    with engine.begin() as conn, pytest.raises(ConfigError, match="FLYWHEEL_PUBLIC_URL"):
        invite(conn, workspace_id, segment="champions", campaign="c", policy=POLICY, public_url=None)


def test_cli_invite_capture_list_and_review(
    runner: object, engine: Engine, workspace_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from plugin.cli import cli

    assert isinstance(runner, CliRunner)
    _people(engine, workspace_id)
    monkeypatch.setenv("FLYWHEEL_PUBLIC_URL", URL)
    invited = json.loads(runner.invoke(cli, ["referrals", "invite", "--campaign", "spring", "--json"]).output)
    assert invited["invited"] == 1 and invited["skipped"]["no marketing consent"] == 1
    with engine.connect() as conn:
        code = conn.execute(select(ReferralInvite.code).limit(1)).scalar_one()
    held = runner.invoke(cli, ["referrals", "capture", code, "--name", "Self", "--email", "ada@acme.example"])
    assert held.exit_code == 0 and "held for review" in held.output
    queue = json.loads(runner.invoke(cli, ["referrals", "list", "--status", "held", "--json"]).output)
    assert len(queue["referrals"]) == 1 and queue["referrals"][0]["held_reason"].startswith("self-referral")
    rejected = runner.invoke(
        cli, ["referrals", "review", str(queue["referrals"][0]["id"]), "--reject", "--json"]
    )
    assert json.loads(rejected.output)["status"] == "rejected"
    bad = runner.invoke(cli, ["referrals", "invite", "--segment", "heroes"])
    assert bad.exit_code == 2 and "champions" in bad.output


def test_a_minimum_score_narrows_the_segment(engine: Engine, workspace_id: int) -> None:
    people = _people(engine, workspace_id)
    with engine.begin() as conn:
        none = invite(conn, workspace_id, segment="all", campaign="hi", policy=POLICY, public_url=URL,
                      min_score=95.0, now=NOW)  # fmt: skip
        some = invite(conn, workspace_id, segment="all", campaign="lo", policy=POLICY, public_url=URL,
                      min_score=50.0, now=NOW)  # fmt: skip
    assert none.invited == [] and some.invited == [people["ada"]]


def test_two_referrals_of_one_prospect_at_the_same_moment_leave_one_open(
    engine: Engine, workspace_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plugin.services import referrals

    _people(engine, workspace_id)
    with engine.begin() as conn:
        invite(conn, workspace_id, segment="champions", campaign="c", policy=POLICY, public_url=URL, now=NOW)
        code = conn.execute(select(ReferralInvite.code)).scalar_one()
    # Both requests passed their checks before either was stored: the database still lets one in.
    monkeypatch.setattr(referrals, "_suspicion", lambda *a, **k: None)
    with engine.begin() as conn:
        first = capture(conn, code, name="P", email="p@race.example", company=None, policy=POLICY, now=NOW)
        second = capture(conn, code, name="P", email="p@race.example", company=None, policy=POLICY, now=NOW)
    assert first.status == "pending"
    assert second.status == "held" and "first referral wins" in (second.reason or "")
    with engine.begin() as conn, pytest.raises(ValidationFailed, match="another referral"):
        review(conn, workspace_id, second.referral_id, accept=True)
