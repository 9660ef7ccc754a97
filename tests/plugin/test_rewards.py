"""The rewards ledger: idempotent grants from rules, holds and approvals, exact money, balances,
reversals and corrections, and reward.granted sent as the ledger records it."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from plugin.cli import cli
from plugin.db.models import Consent, Member, RewardGrant, RewardLine, WebhookMessage
from plugin.errors import ConfigError, ValidationFailed
from plugin.services.program_rules import load_rules
from plugin.services.rewards import balances, grant, ledger, move, release
from plugin.services.webhook_endpoints import add_endpoint
from plugin.settings import Settings

RULES = load_rules()


@pytest.fixture
def member_id(engine: Engine, workspace_id: int) -> int:
    with Session(engine) as session:
        member = Member(
            workspace_id=workspace_id,
            display_name="Леся Українка",
            primary_email="lesya@example.org",
            locale="uk",
        )
        session.add(member)
        session.flush()
        session.add(
            Consent(
                workspace_id=workspace_id,
                member_id=member.id,
                purpose="marketing",
                granted=True,
                source="form",
            )
        )
        session.commit()
        return member.id


@pytest.fixture
def subscribed(engine: Engine, settings: Settings, workspace_id: int) -> None:
    development = dataclasses.replace(
        settings, webhook_allow_http=True, webhook_allowed_networks="127.0.0.0/8"
    )
    with Session(engine) as session:
        add_endpoint(session, development, workspace_id, "http://127.0.0.1:9/hook", events="reward.granted")
        session.commit()


def _sent(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [
            json.loads(b)
            for b in conn.execute(select(WebhookMessage.body).order_by(WebhookMessage.id)).scalars()
        ]


def test_a_referral_reward_waits_its_hold_then_is_approved_and_announced_twice_with_one_key(
    engine: Engine, workspace_id: int, member_id: int, subscribed: None
) -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    with engine.begin() as conn:
        first = grant(
            conn, workspace_id, member_id, "referral_converted", key="ref-42", rules=RULES, by="t", now=now
        )
    assert first.created and first.status == "pending"
    with engine.begin() as conn:
        again = grant(conn, workspace_id, member_id, "referral_converted", key="ref-42", rules=RULES, by="t")
        assert release(conn, workspace_id, now + timedelta(days=13)) == []  # still held
        with pytest.raises(ValidationFailed, match="held until"):
            move(conn, workspace_id, first.grant_id, "approved", by="eve")
    assert (again.created, again.grant_id) == (False, first.grant_id)
    with engine.begin() as conn:
        assert release(conn, workspace_id, now + timedelta(days=14, seconds=1)) == [first.grant_id]
        assert balances(conn, workspace_id) == [
            {"member_id": member_id, "unit": "USD", "pending": "0", "approved": "50", "paid": "0"}
        ]
    sent = _sent(engine)
    assert [m["data"]["reward"]["status"] for m in sent] == ["pending", "approved"]  # type: ignore[index]
    keys = {m["data"]["reward"]["idempotency_key"] for m in sent}  # type: ignore[index]
    assert keys == {"ref-42"}
    assert sent[0]["data"]["member"]["email"] == "lesya@example.org"  # type: ignore[index]  marketing consent
    assert sent[0]["data"]["reward"]["amount"] == "50.0000" or sent[0]["data"]["reward"]["amount"].startswith(
        "50"
    )  # type: ignore[index,union-attr]


def test_large_rewards_wait_for_a_person(
    engine: Engine, workspace_id: int, member_id: int, tmp_path: Path
) -> None:
    override = tmp_path / "programs.toml"
    override.write_text(
        '[rules.referral_converted]\nkind = "money"\namount = "250.50"\ncurrency = "EUR"\n'
        'approve_above = "100"\n'
    )
    rules = load_rules(override)
    with engine.begin() as conn:
        big = grant(conn, workspace_id, member_id, "referral_converted", key="big", rules=rules, by="t")
        assert big.status == "pending" and release(conn, workspace_id) == []  # no hold, but a person must
        move(conn, workspace_id, big.grant_id, "approved", by="eve", note="checked the deal")
        move(conn, workspace_id, big.grant_id, "paid", by="eve", note="payout po_123")
        with pytest.raises(ValidationFailed, match="cannot become approved"):
            move(conn, workspace_id, big.grant_id, "approved", by="eve")
        assert balances(conn, workspace_id)[0]["paid"] == "250.5"
    with engine.connect() as conn:
        lines = conn.execute(select(RewardLine.status, RewardLine.by).order_by(RewardLine.id)).all()
    assert [tuple(line) for line in lines] == [("pending", "t"), ("approved", "eve"), ("paid", "eve")]


def test_money_stays_exact_and_corrections_are_new_entries(
    engine: Engine, workspace_id: int, member_id: int
) -> None:
    with engine.begin() as conn:
        for i in range(10):
            grant(conn, workspace_id, member_id, "manual", key=f"tip-{i}", rules=RULES, by="t",
                  amount="0.10", kind="money", currency="usd")  # fmt: skip
        first = ledger(conn, workspace_id)[-1]
        fix = grant(conn, workspace_id, member_id, "manual", key="fix-1", rules=RULES, by="t",
                    amount="-0.05", kind="money", currency="USD", corrects=first["id"],
                    note="overpaid")  # fmt: skip
        assert fix.created
        assert balances(conn, workspace_id)[0]["approved"] == "0.95"  # exactly, not 0.9500000001
        move(conn, workspace_id, first["id"], "reversed", by="eve", note="duplicate")
        assert balances(conn, workspace_id)[0]["approved"] == "0.85"
        with pytest.raises(ValidationFailed, match="above zero"):
            grant(
                conn,
                workspace_id,
                member_id,
                "manual",
                key="neg",
                rules=RULES,
                by="t",
                amount="-1",
                kind="points",
            )
        with pytest.raises(ValidationFailed):
            grant(
                conn,
                workspace_id,
                member_id,
                "manual",
                key="f",
                rules=RULES,
                by="t",
                amount="0.1",
                kind="money",
            )
        with pytest.raises(ValidationFailed, match="four decimal"):
            grant(
                conn,
                workspace_id,
                member_id,
                "manual",
                key="g",
                rules=RULES,
                by="t",
                amount="0.00001",
                kind="points",
            )
    with engine.connect() as conn:
        assert conn.execute(select(RewardGrant.id)).all().__len__() == 11  # nothing half-written


def test_points_rules_and_a_bad_rules_file(
    engine: Engine, workspace_id: int, member_id: int, tmp_path: Path
) -> None:
    with engine.begin() as conn:
        panel = grant(conn, workspace_id, member_id, "panel_completed", key="panel-7", rules=RULES, by="t")
        assert panel.status == "approved"
        assert balances(conn, workspace_id, member_id) == [
            {"member_id": member_id, "unit": "points", "pending": "0", "approved": "200", "paid": "0"}
        ]
    bad = tmp_path / "bad.toml"
    bad.write_text('[rules.review_written]\nkind = "money"\namount = 0.1\ncurrency = "USD"\n')
    with pytest.raises(ConfigError, match="not a float"):
        load_rules(bad)


def test_cli_grant_twice_ledger_and_approve(
    runner: CliRunner, engine: Engine, workspace_id: int, member_id: int
) -> None:
    args = [
        "rewards",
        "grant",
        "lesya@example.org",
        "--reason",
        "referral_converted",
        "--key",
        "ref-9",
        "--json",
    ]
    first = json.loads(runner.invoke(cli, args).output)
    second = json.loads(runner.invoke(cli, args).output)
    assert first["created"] and not second["created"] and first["id"] == second["id"]
    shown = json.loads(runner.invoke(cli, ["rewards", "ledger", "--json"]).output)
    assert len(shown["grants"]) == 1 and shown["grants"][0]["status"] == "pending"
    assert shown["balances"][0]["pending"] == "50"
    early = runner.invoke(cli, ["rewards", "approve", str(first["id"])])
    assert early.exit_code == 2 and "held until" in early.output
    missing = runner.invoke(
        cli, ["rewards", "grant", "nobody@example.org", "--key", "x", "--amount", "1", "--kind", "points"]
    )
    assert missing.exit_code == 4
