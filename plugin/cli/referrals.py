"""``flywheel referrals``: invite advocates to refer, record referrals, review held ones, and
convert them when the CRM reports a won deal."""

from __future__ import annotations

import click
from rich.markup import escape
from rich.table import Table

from plugin.cli.context import AppContext, handle_errors, json_option, pass_app, workspace_option
from plugin.services.program_rules import load_programs, load_rules
from plugin.services.referrals import attribute, capture, invite, listing, review


@click.group()
def referrals() -> None:
    """Referral programs: personal links for advocates, referrals, conversions."""


@referrals.command("invite")
@click.option(
    "--segment", default="champions", show_default=True, help="Advocate levels, e.g. champions,advocates."
)
@click.option("--campaign", default="default", show_default=True)
@click.option("--limit", type=click.IntRange(1), default=None, help="Invite at most this many.")
@click.option(
    "--min-score", type=click.FloatRange(0, 100), default=None, help="Only advocate scores this high."
)
@workspace_option
@json_option
@pass_app
@handle_errors
def invite_(app: AppContext, segment: str, campaign: str, limit: int | None, min_score: float | None,
            workspace: str | None, as_json: bool) -> None:  # fmt: skip
    """Give each advocate of the segment a personal link (marketing consent and the contact budget
    respected) and send referral.invitation."""
    policy = load_programs(app.settings.programs_config)
    with app.session() as session:
        ws = app.workspace(session, workspace)
        done = invite(session.connection(), ws.id, segment=segment, campaign=campaign, policy=policy,
                      public_url=app.settings.public_url, limit=limit, min_score=min_score)  # fmt: skip
        session.commit()
    if as_json:
        app.emit_json({"invited": len(done.invited), "members": done.invited, "skipped": done.skipped})
        return
    app.out.print(f"invited {len(done.invited):,} advocate(s) to campaign {escape(campaign)}")
    for why, n in done.skipped.items():
        if n:
            app.out.print(f"  skipped {n:,}: {why}")


@referrals.command("capture")
@click.argument("code")
@click.option("--name", required=True)
@click.option("--email", required=True)
@click.option("--company", default=None)
@json_option
@pass_app
@handle_errors
def capture_(app: AppContext, code: str, name: str, email: str, company: str | None, as_json: bool) -> None:
    """Record a referral made with an advocate's code (what the referral form does)."""
    policy = load_programs(app.settings.programs_config)
    with app.session() as session:
        got = capture(session.connection(), code, name=name, email=email, company=company, policy=policy)
        session.commit()
    if as_json:
        app.emit_json({"id": got.referral_id, "status": got.status, "held_reason": got.reason})
    elif got.reason:
        app.out.print(f"referral {got.referral_id} held for review: {escape(got.reason)}")
    else:
        app.out.print(f"referral {got.referral_id} recorded; it converts when the CRM reports a won deal")


@referrals.command("list")
@click.option("--status", type=click.Choice(["pending", "held", "converted", "rejected"]), default=None)
@workspace_option
@json_option
@pass_app
@handle_errors
def list_(app: AppContext, status: str | None, workspace: str | None, as_json: bool) -> None:
    """Referrals, newest first; `--status held` is the review queue."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
        rows = listing(session.connection(), ws.id, status)
    if as_json:
        app.emit_json({"referrals": rows})
        return
    table = Table("id", "advocate", "prospect", "company", "status", "why held / deal")
    for r in rows:
        who = escape(f"{r['prospect']} <{r['email']}>")
        why = escape(r["held_reason"] or r["deal"] or "")
        table.add_row(str(r["id"]), str(r["advocate"]), who, escape(r["company"] or "-"), r["status"], why)
    app.out.print(table if rows else "no referrals")


@referrals.command("review")
@click.argument("referral_id", type=int)
@click.option("--accept/--reject", required=True, help="Back to pending, or rejected for good.")
@workspace_option
@json_option
@pass_app
@handle_errors
def review_(app: AppContext, referral_id: int, accept: bool, workspace: str | None, as_json: bool) -> None:
    """Decide on a referral held by a fraud check."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
        status = review(session.connection(), ws.id, referral_id, accept=accept)
        session.commit()
    if as_json:
        app.emit_json({"id": referral_id, "status": status})
    else:
        app.out.print(f"referral {referral_id} is now {status}")


@referrals.command("attribute")
@workspace_option
@json_option
@pass_app
@handle_errors
def attribute_(app: AppContext, workspace: str | None, as_json: bool) -> None:
    """Convert referrals whose prospect or company won a deal in the CRM (after `crm pull`);
    each converts once, sends referral.converted and grants the reward."""
    policy = load_programs(app.settings.programs_config)
    rules = load_rules(app.settings.programs_config)
    with app.session() as session:
        ws = app.workspace(session, workspace)
        done = attribute(session.connection(), ws.id, policy=policy, rules=rules)
        session.commit()
    if as_json:
        app.emit_json({"converted": done})
    else:
        app.out.print(f"{len(done):,} referral(s) converted")
