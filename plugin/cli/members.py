"""``flywheel members``: look people up, merge and unmerge them, review merge suggestions, and the
GDPR actions: export a member's data, erase a member."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import orjson
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select

from plugin.cli.context import AppContext, handle_errors, json_option, pass_app, workspace_option
from plugin.db.base import utcnow
from plugin.db.models import Member, MergeSuggestion
from plugin.errors import NotFound, ValidationFailed
from plugin.services import gdpr, merges
from plugin.services.members import find_member, member_profile
from plugin.services.suggestions import refresh_suggestions

ACTOR = "cli"


@click.group()
def members() -> None:
    """People: profiles, merges and merge suggestions."""


def _print_profile(app: AppContext, p: dict[str, Any]) -> None:
    org = p["organization"]
    app.out.print(
        f"[bold]{escape(p['display_name'] or '(no name)')}[/bold]  member {p['id']}", highlight=False
    )
    for label in ("primary_email", "locale", "lifecycle_stage", "title"):
        if p[label]:
            app.out.print(f"  {label.replace('_', ' ')}: {escape(str(p[label]))}", highlight=False)
    if org:
        app.out.print(f"  organization: {escape(org['name'])} ({escape(org['domain'])})", highlight=False)
    table = Table(title="identities")
    for col in ("id", "source", "user id", "handle", "email", "verified", "name"):
        table.add_column(col)
    for i in p["identities"]:
        table.add_row(
            str(i["id"]),
            escape(i["source"]),
            escape(i["source_user_id"]),
            escape(i["handle"] or ""),
            escape(i["email"] or ""),
            "yes" if i["verified"] else "no",
            escape(i["name"] or ""),
        )
    app.out.print(table)
    counts = escape(", ".join(f"{k} {v}" for k, v in p["activities"]["by_type"].items()))
    app.out.print(f"  activities: {p['activities']['total']:,}" + (f" ({counts})" if counts else ""))
    for purpose, c in p["consents"].items():
        app.out.print(
            f"  consent {purpose}: {'granted' if c['granted'] else 'withdrawn'} ({c['recorded_at']})"
        )
    for kind, sc in p["scores"].items():
        value = f"{sc['score']:.0%}" if kind == "churn" else f"{sc['score']:.1f}"
        hot = " HOT" if sc["hot"] else ""
        app.out.print(
            f"  {kind} score: {value} ({escape(sc['label'])}{hot}), as of {sc['as_of'][:10]}", highlight=False
        )
        for reason in sc["reasons"]:
            app.out.print(f"    - {escape(reason)}", highlight=False)
    for e in p["merge_log"]:
        state = escape(" [undone]") if e["undone"] else ""
        app.out.print(
            f"  merge log {e['id']}: {e['kind']} {e['source_member_id']} -> {e['target_member_id']}"
            f" ({escape(e['reason'])}){state}",
            highlight=False,
        )


@members.command("show")
@click.argument("member")
@workspace_option
@json_option
@pass_app
@handle_errors
def show(app: AppContext, member: str, workspace: str | None, as_json: bool) -> None:
    """Show MEMBER (an id or an email): identities, organization, activity, consents, merges."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
        profile = member_profile(session, find_member(session, ws.id, member))
    if as_json:
        app.emit_json(profile)
    else:
        _print_profile(app, profile)


@members.command("merge")
@click.argument("target", type=int)
@click.argument("source", type=int)
@click.option("--reason", default="merged by a person", show_default=True)
@workspace_option
@json_option
@pass_app
@handle_errors
def merge(
    app: AppContext, target: int, source: int, reason: str, workspace: str | None, as_json: bool
) -> None:
    """Merge member SOURCE into member TARGET (undo with `flywheel members unmerge LOG_ID`)."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
        entry = merges.merge(session, ws.id, target, source, actor=ACTOR, reason=reason)
        session.commit()
        data = {
            "merge_log_id": entry.id,
            "target": target,
            "source": source,
            "identities_moved": entry.identity_ids,
        }
    if as_json:
        app.emit_json(data)
    else:
        app.out.print(
            f"Merged member {source} into {target} (merge log {entry.id}; "
            f"undo with `flywheel members unmerge {entry.id}`)"
        )


@members.command("unmerge")
@click.argument("log_id", type=int, required=False)
@click.option("--identity", "identity_id", type=int, help="Split this identity off into a member of its own.")
@workspace_option
@json_option
@pass_app
@handle_errors
def unmerge(
    app: AppContext, log_id: int | None, identity_id: int | None, workspace: str | None, as_json: bool
) -> None:
    """Undo merge-log entry LOG_ID, or split one identity off with --identity ID."""
    if (log_id is None) == (identity_id is None):
        raise ValidationFailed(
            "give either a merge-log id or --identity ID", hint="`flywheel members show MEMBER` lists both"
        )
    with app.session() as session:
        ws = app.workspace(session, workspace)
        if log_id is not None:
            entry = merges.undo(session, ws.id, log_id, actor=ACTOR)
        else:
            assert identity_id is not None
            entry = merges.split(session, ws.id, identity_id, actor=ACTOR, reason="split by a person")
        session.commit()
        data = {
            "merge_log_id": entry.id,
            "kind": entry.kind,
            "member": entry.target_member_id,
            "separated_member": entry.source_member_id,
            "identities_moved": entry.identity_ids,
        }
    if as_json:
        app.emit_json(data)
    else:
        app.out.print(
            f"Members {data['member']} and {data['separated_member']} stand apart again "
            f"(merge log {entry.id})"
        )


@members.command("suggestions")
@click.option("--refresh", is_flag=True, help="Look for new candidates first.")
@click.option("--limit", default=50, show_default=True)
@workspace_option
@json_option
@pass_app
@handle_errors
def suggestions(app: AppContext, refresh: bool, limit: int, workspace: str | None, as_json: bool) -> None:
    """Open merge suggestions, most confident first (merge with `flywheel members merge A B`)."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
        if refresh:
            refresh_suggestions(app.engine, ws.id)
        rows = session.scalars(
            select(MergeSuggestion)
            .where(MergeSuggestion.workspace_id == ws.id, MergeSuggestion.status == "open")
            .order_by(MergeSuggestion.confidence.desc(), MergeSuggestion.id)
            .limit(limit)
        ).all()
        names = {
            m.id: m.display_name
            for m in session.scalars(
                select(Member).where(
                    Member.id.in_([r.member_a_id for r in rows] + [r.member_b_id for r in rows])
                )
            )
        }
    data: list[dict[str, Any]] = [
        {
            "id": r.id,
            "member_a": r.member_a_id,
            "member_b": r.member_b_id,
            "name_a": names.get(r.member_a_id),
            "name_b": names.get(r.member_b_id),
            "confidence": r.confidence,
            "evidence": r.evidence,
        }
        for r in rows
    ]
    if as_json:
        app.emit_json(data)
        return
    table = Table(title="open merge suggestions")
    for col in ("id", "member a", "member b", "confidence", "evidence"):
        table.add_column(col)
    for d in data:
        table.add_row(
            str(d["id"]),
            f"{d['member_a']} {escape(d['name_a'] or '')}",
            f"{d['member_b']} {escape(d['name_b'] or '')}",
            f"{d['confidence']:.2f}",
            escape(", ".join(d["evidence"])),
        )
    app.out.print(table)


@members.command("dismiss")
@click.argument("suggestion_id", type=int)
@workspace_option
@json_option
@pass_app
@handle_errors
def dismiss(app: AppContext, suggestion_id: int, workspace: str | None, as_json: bool) -> None:
    """Mark a merge suggestion as wrong: it is never proposed again."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
        row = session.get(MergeSuggestion, suggestion_id)
        if row is None or row.workspace_id != ws.id:
            raise NotFound(
                f"no merge suggestion {suggestion_id}", hint="`flywheel members suggestions` lists them"
            )
        row.status = "dismissed"
        session.commit()
    if as_json:
        app.emit_json({"id": suggestion_id, "status": "dismissed"})
    else:
        app.out.print(f"Suggestion {suggestion_id} dismissed.")


def _member_id(app: AppContext, workspace: str | None, member: str) -> tuple[int, int]:
    """(workspace id, member id) for MEMBER given as an id or an email."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
        if member.isascii() and member.isdigit():
            return ws.id, find_member(session, ws.id, member).id
        return ws.id, find_member(session, ws.id, member).id


@members.command("export")
@click.argument("member")
@click.option(
    "--out", "out", type=click.Path(dir_okay=False, writable=True), default=None, help="Write to FILE."
)
@workspace_option
@json_option
@pass_app
@handle_errors
def export(app: AppContext, member: str, out: str | None, workspace: str | None, as_json: bool) -> None:
    """Everything Flywheel holds about MEMBER (an id or an email), as JSON: profile, identities,
    activities, consents, scores with reasons, programs and CRM records (a GDPR access request)."""
    workspace_id, member_id = _member_id(app, workspace, member)
    with app.engine.connect() as conn:
        data = gdpr.export_member(conn, workspace_id, member_id)
    text = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    Path(out).write_text(text, encoding="utf-8")
    summary = {
        "member_id": data["member"]["id"],
        "file": out,
        "identities": len(data["identities"]),
        "activities": len(data["activities"]),
        "consents": len(data["consents"]),
        "scores": len(data["scores"]),
    }
    if as_json:
        app.emit_json(summary)
    else:
        app.out.print(
            f"wrote member {summary['member_id']}'s data to {escape(out)}: "
            f"{summary['identities']} identities, {summary['activities']:,} activities, "
            f"{summary['consents']} consent records, "
            f"{summary['scores']} scores",
            highlight=False,
        )


@members.command("erase")
@click.argument("member")
@click.option("--reason", required=True, help="Why (kept in the audit line; e.g. the request's reference).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@workspace_option
@json_option
@pass_app
@handle_errors
def erase(app: AppContext, member: str, reason: str, yes: bool, workspace: str | None, as_json: bool) -> None:
    """Erase MEMBER (an id or an email): their personal data and activities go, an anonymous audit
    line stays, and the next `flywheel crm sync` deletes, anonymizes or keeps their CRM record as
    `flywheel crm erasure-policy` says. This cannot be undone."""
    workspace_id, member_id = _member_id(app, workspace, member)
    if not yes:
        with app.engine.connect() as conn:
            root, _ = gdpr.resolve_member(conn, workspace_id, member_id)
            who = conn.execute(
                select(Member.display_name, Member.primary_email).where(Member.id == root)
            ).one()
        label = " ".join(
            p for p in (who.display_name, f"<{who.primary_email}>" if who.primary_email else "") if p
        )
        click.confirm(
            f"Erase member {root} {label} and everything Flywheel holds about them? This cannot be undone",
            abort=True,
            err=True,
        )
    with app.engine.begin() as conn:
        erasure_id = gdpr.erase_member(
            conn, workspace_id, member_id, actor=ACTOR, reason=reason, now=utcnow()
        )
        line = gdpr.erasure(conn, workspace_id, erasure_id)
    if as_json:
        app.emit_json(line | {"crm_plan": gdpr.crm_plan(line)})
        return
    removed = {k: v for k, v in line["removed"].items() if v}
    app.out.print(f"Erased member {line['member_id']} (audit line {line['id']}).")
    app.out.print(
        "removed or blanked: " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in removed.items())
    )
    for step in gdpr.crm_plan(line):
        app.out.print(f"CRM: {escape(step)}", highlight=False)


@members.command("erasures")
@click.option("--limit", default=50, show_default=True)
@workspace_option
@json_option
@pass_app
@handle_errors
def erasures(app: AppContext, limit: int, workspace: str | None, as_json: bool) -> None:
    """The anonymous audit lines of past erasures, newest first, with where their CRM records stand."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
    with app.engine.connect() as conn:
        lines = gdpr.erasures(conn, ws.id, limit=limit)
    if as_json:
        app.emit_json(lines)
        return
    table = Table(title="erasures")
    for col in ("id", "member", "erased at", "by", "reason", "CRM"):
        table.add_column(col)
    for x in lines:
        crm = f"{x['crm_action']}: " + ("done" if x["crm_done_at"] else (x["crm_result"] or "pending"))
        table.add_row(
            str(x["id"]), str(x["member_id"]), x["erased_at"][:19], escape(x["requested_by"]),
            escape(x["reason"] or ""), escape(crm),
        )  # fmt: skip
    app.out.print(table)
