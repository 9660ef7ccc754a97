"""``flywheel rewards``: the rewards ledger, grants, approvals, payouts and reversals."""

from __future__ import annotations

import getpass

import click
from rich.markup import escape
from rich.table import Table

from plugin.cli.context import AppContext, handle_errors, json_option, pass_app, workspace_option
from plugin.services.members import find_member
from plugin.services.program_rules import load_rules
from plugin.services.rewards import REASONS, balances, grant, ledger, move, release

by_option = click.option("--by", default=None, help="Who does this (default: the system user).")


def _who(by: str | None) -> str:
    return (by or getpass.getuser() or "cli")[:120]


@click.group()
def rewards() -> None:
    """Points and money earned by members: an append-only ledger."""


@rewards.command("ledger")
@click.option("--member", "member_ref", default=None, help="A member's id or email.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=200)
@workspace_option
@json_option
@pass_app
@handle_errors
def ledger_(
    app: AppContext, member_ref: str | None, limit: int, workspace: str | None, as_json: bool
) -> None:
    """Grants, newest first, with their status, and the balances they add up to."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
        member_id = find_member(session, ws.id, member_ref).id if member_ref else None
        conn = session.connection()
        rows = ledger(conn, ws.id, member_id, limit)
        sums = balances(conn, ws.id, member_id)
    if as_json:
        app.emit_json({"grants": rows, "balances": sums})
        return
    if not rows:
        app.out.print("no rewards yet")
        return
    table = Table("id", "member", "amount", "reason", "status", "key", "created")
    for r in rows:
        unit = r["currency"] or "points"
        status = r["status"] + (
            f" (held to {r['hold_until'][:10]})" if r["status"] == "pending" and r["hold_until"] else ""
        )
        if r["status"] == "pending" and r["needs_approval"]:
            status += " (needs approval)"
        table.add_row(
            str(r["id"]), str(r["member_id"]), f"{r['amount']} {unit}", r["reason"], status,
            escape(r["idempotency_key"][:32]), r["created_at"][:16],
        )  # fmt: skip
    app.out.print(table)
    totals = Table("member", "unit", "pending", "approved (to pay)", "paid")
    for b in sums:
        totals.add_row(str(b["member_id"]), b["unit"], b["pending"], b["approved"], b["paid"])
    app.out.print(totals)


@rewards.command("grant")
@click.argument("member_ref")
@click.option("--reason", type=click.Choice(REASONS), default="manual", show_default=True)
@click.option("--key", required=True, help="Idempotency key: granting again with it creates nothing.")
@click.option("--amount", default=None, help="For manual grants: a decimal, e.g. 25 or 12.50.")
@click.option("--kind", type=click.Choice(["points", "money"]), default=None)
@click.option("--currency", default=None, help="ISO 4217 code for money, e.g. EUR.")
@click.option("--note", default=None)
@click.option(
    "--corrects", type=int, default=None, help="The grant this one corrects (amount may be negative)."
)
@by_option
@workspace_option
@json_option
@pass_app
@handle_errors
def grant_(
    app: AppContext,
    member_ref: str,
    reason: str,
    key: str,
    amount: str | None,
    kind: str | None,
    currency: str | None,
    note: str | None,
    corrects: int | None,
    by: str | None,
    workspace: str | None,
    as_json: bool,
) -> None:
    """Grant a reward by a rule's reason, or a manual one; announced as reward.granted."""
    rules = load_rules(app.settings.programs_config)
    with app.session() as session:
        ws = app.workspace(session, workspace)
        member = find_member(session, ws.id, member_ref)
        result = grant(
            session.connection(), ws.id, member.id, reason, key=key, rules=rules, by=_who(by),
            amount=amount, kind=kind, currency=currency, note=note, corrects=corrects,
        )  # fmt: skip
        session.commit()
    data = {"id": result.grant_id, "created": result.created, "status": result.status}
    if as_json:
        app.emit_json(data)
    elif result.created:
        app.out.print(f"reward {result.grant_id} granted to member {member.id}: {result.status}")
    else:
        app.out.print(
            f"the key is known: reward {result.grant_id} ({result.status}); nothing new was granted"
        )


def _move(app: AppContext, grant_id: int, status: str, by: str | None, note: str | None, ws_slug: str | None,
          as_json: bool) -> None:  # fmt: skip
    with app.session() as session:
        ws = app.workspace(session, ws_slug)
        before = move(session.connection(), ws.id, grant_id, status, by=_who(by), note=note)
        session.commit()
    if as_json:
        app.emit_json({"id": grant_id, "from": before, "status": status})
    else:
        app.out.print(f"reward {grant_id}: {before} -> {status}")


@rewards.command("approve")
@click.argument("grant_id", type=int)
@click.option("--note", default=None)
@by_option
@workspace_option
@json_option
@pass_app
@handle_errors
def approve(app: AppContext, grant_id: int, note: str | None, by: str | None, workspace: str | None,
            as_json: bool) -> None:  # fmt: skip
    """Approve a pending reward (one above the rule's approval threshold waits for this)."""
    _move(app, grant_id, "approved", by, note, workspace, as_json)


@rewards.command("paid")
@click.argument("grant_id", type=int)
@click.option("--note", default=None, help="e.g. the provider's payout id")
@by_option
@workspace_option
@json_option
@pass_app
@handle_errors
def paid(app: AppContext, grant_id: int, note: str | None, by: str | None, workspace: str | None,
         as_json: bool) -> None:  # fmt: skip
    """Record that an approved reward was paid out."""
    _move(app, grant_id, "paid", by, note, workspace, as_json)


@rewards.command("reverse")
@click.argument("grant_id", type=int)
@click.option("--note", required=True, help="Why: kept in the ledger.")
@by_option
@workspace_option
@json_option
@pass_app
@handle_errors
def reverse(app: AppContext, grant_id: int, note: str, by: str | None, workspace: str | None,
            as_json: bool) -> None:  # fmt: skip
    """Reverse a reward (it stays in the ledger, counted nowhere)."""
    _move(app, grant_id, "reversed", by, note, workspace, as_json)


@rewards.command("release")
@workspace_option
@json_option
@pass_app
@handle_errors
def release_(app: AppContext, workspace: str | None, as_json: bool) -> None:
    """Approve every pending reward whose hold is over and that needs no person (run it daily)."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
        done = release(session.connection(), ws.id)
        session.commit()
    if as_json:
        app.emit_json({"approved": done})
    else:
        app.out.print(f"{len(done):,} reward(s) approved after their hold")
