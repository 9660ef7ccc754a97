"""``flywheel panels``: insight panels (focus groups) from a panel file, drawn by seeded
stratified sampling, with answers, status and export."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select

from plugin.cli.context import AppContext, handle_errors, json_option, pass_app, workspace_option
from plugin.db.models import Panel
from plugin.services import panel_invites
from plugin.services import panels as service
from plugin.services.panel_spec import read_spec
from plugin.services.program_rules import load_programs, load_rules


@click.group()
def panels() -> None:
    """Insight panels: eligibility, quotas, a seeded draw, and who answered what."""


@panels.command("create")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@workspace_option
@json_option
@pass_app
@handle_errors
def create(app: AppContext, path: Path, workspace: str | None, as_json: bool) -> None:
    """Create a panel from a TOML panel file (see docs/panels.md)."""
    spec = read_spec(path)
    with app.session() as session:
        ws = app.workspace(session, workspace)
        panel_id = service.create(session.connection(), ws.id, spec)
        session.commit()
    if as_json:
        app.emit_json({"id": panel_id, "name": spec["name"]})
        return
    app.out.print(f"panel {panel_id} created: {escape(spec['name'])}")
    app.out.print(f"next: `flywheel panels draw {panel_id}`")


@panels.command("list")
@workspace_option
@json_option
@pass_app
@handle_errors
def list_(app: AppContext, workspace: str | None, as_json: bool) -> None:
    """Panels with their status."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
        rows = session.execute(
            select(Panel.id, Panel.name, Panel.status, Panel.created_at).where(Panel.workspace_id == ws.id)
        ).all()
    data: list[dict[str, Any]] = [
        {"id": r[0], "name": r[1], "status": r[2], "created_at": r[3].isoformat()} for r in rows
    ]
    if as_json:
        app.emit_json({"panels": data})
        return
    table = Table("id", "name", "status", "created")
    for p in data:
        table.add_row(str(p["id"]), escape(p["name"]), p["status"], p["created_at"][:16])
    app.out.print(table if data else "no panels yet: `flywheel panels create FILE`")


@panels.command("draw")
@click.argument("panel_id", type=int)
@click.option(
    "--seed",
    type=click.IntRange(0, 2**31 - 1),
    default=None,
    help="The same seed on the same data draws the same panel.",
)
@workspace_option
@json_option
@pass_app
@handle_errors
def draw_(app: AppContext, panel_id: int, seed: int | None, workspace: str | None, as_json: bool) -> None:
    """Draw the panel and its reserve; prints the manifest."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
        with app.progress("drawing"):
            manifest = service.run_draw(session.connection(), ws.id, panel_id, seed)
        session.commit()
    if as_json:
        app.emit_json(manifest)
        return
    table = Table("stratum", "eligible", "selected", "reserve", "short of minimum")
    for name in manifest["eligible"]:
        counts = (manifest[k].get(name, 0) for k in ("eligible", "selected", "reserve"))
        table.add_row(name, *(str(c) for c in counts), str(manifest["shortfall"].get(name, "")))
    app.out.print(f"panel {panel_id} drawn with seed {manifest['seed']}")
    app.out.print(table)
    if manifest["excluded"]:
        app.out.print("left out: " + ", ".join(f"{k} {v:,}" for k, v in manifest["excluded"].items()))
    if manifest["shortfall"]:
        app.out.print("[bold]quotas not met[/bold]: no stratum was filled from another; widen the criteria")


@panels.command("respond")
@click.argument("panel_id", type=int)
@click.argument("member_id", type=int)
@click.argument("answer", type=click.Choice(service.ANSWERS))
@workspace_option
@json_option
@pass_app
@handle_errors
def respond(app: AppContext, panel_id: int, member_id: int, answer: str, workspace: str | None,
            as_json: bool) -> None:  # fmt: skip
    """Record an answer; a decline or no response is replaced from the same stratum's reserve."""
    rules = load_rules(app.settings.programs_config)
    with app.session() as session:
        ws = app.workspace(session, workspace)
        out = service.respond(session.connection(), ws.id, panel_id, member_id, answer, rules=rules)
        session.commit()
    if as_json:
        app.emit_json(out)
        return
    app.out.print(f"member {member_id}: {answer}")
    if out.get("replacement"):
        app.out.print(f"member {out['replacement']} moves up from the reserve")
    elif out.get("note"):
        app.out.print(out["note"])


def _sent(app: AppContext, what: str, sent: Any, as_json: bool) -> None:
    if as_json:
        app.emit_json({what: len(sent.members), "members": sent.members, "skipped": sent.skipped})
        return
    app.out.print(f"{what} {len(sent.members):,} member(s)")
    for why, n in sent.skipped.items():
        if n:
            app.out.print(f"  skipped {n:,}: {why}")


@panels.command("invite")
@click.argument("panel_id", type=int)
@click.option("--deadline-days", type=click.IntRange(1, 90), default=7, show_default=True)
@workspace_option
@json_option
@pass_app
@handle_errors
def invite(app: AppContext, panel_id: int, deadline_days: int, workspace: str | None, as_json: bool) -> None:
    """Send focus_group.invitation to every selected member not yet invited (replacements too),
    in their language, with signed accept and decline links."""
    policy = load_programs(app.settings.programs_config)
    with app.session() as session:
        ws = app.workspace(session, workspace)
        sent = panel_invites.invite(session.connection(), app.settings, ws.id, panel_id, policy=policy,
                                    deadline_days=deadline_days)  # fmt: skip
        session.commit()
    _sent(app, "invited", sent, as_json)


@panels.command("remind")
@click.argument("panel_id", type=int)
@workspace_option
@json_option
@pass_app
@handle_errors
def remind(app: AppContext, panel_id: int, workspace: str | None, as_json: bool) -> None:
    """One focus_group.reminder to each invited member who has not answered yet."""
    policy = load_programs(app.settings.programs_config)
    with app.session() as session:
        ws = app.workspace(session, workspace)
        sent = panel_invites.remind(session.connection(), app.settings, ws.id, panel_id, policy=policy)
        session.commit()
    _sent(app, "reminded", sent, as_json)


@panels.command("expire")
@click.argument("panel_id", type=int)
@workspace_option
@json_option
@pass_app
@handle_errors
def expire(app: AppContext, panel_id: int, workspace: str | None, as_json: bool) -> None:
    """Invitations past their deadline become no-responses, replaced from the reserve (run daily)."""
    rules = load_rules(app.settings.programs_config)
    with app.session() as session:
        ws = app.workspace(session, workspace)
        done = panel_invites.expire(session.connection(), ws.id, panel_id, rules=rules)
        session.commit()
    if as_json:
        app.emit_json({"no_response": done})
    else:
        app.out.print(
            f"{len(done):,} invitation(s) expired; {sum(1 for d in done if d['replacement']):,} replaced"
        )


@panels.command("crm-sync")
@click.argument("panel_id", type=int)
@click.option("--crm", "kind", type=click.Choice(["hubspot", "salesforce"]), default=None)
@workspace_option
@json_option
@pass_app
@handle_errors
def crm_sync(app: AppContext, panel_id: int, kind: str | None, workspace: str | None, as_json: bool) -> None:
    """Put the panel's members on a HubSpot static list or in a Salesforce Campaign (after
    `crm sync` has given them their CRM records)."""
    from plugin.services.panel_crm import sync_panel

    with app.session() as session:
        ws = app.workspace(session, workspace)
    done = sync_panel(app.engine, app.settings, ws.id, panel_id, kind)
    if as_json:
        app.emit_json(done)
        return
    app.out.print(
        f"{done['added']:,} added to {escape(done['list'])} ({done['already_there']:,} already there)"
    )
    if done["not_in_crm_yet"]:
        app.out.print(f"{done['not_in_crm_yet']:,} not in the CRM yet: run `flywheel crm sync` first")


@panels.command("status")
@click.argument("panel_id", type=int)
@workspace_option
@json_option
@pass_app
@handle_errors
def status(app: AppContext, panel_id: int, workspace: str | None, as_json: bool) -> None:
    """Where each stratum stands: selected, invited, accepted, declined, reserve..."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
        data = service.status(session.connection(), ws.id, panel_id)
    if as_json:
        app.emit_json(data)
        return
    app.out.print(f"panel {panel_id}: {escape(data['name'])} ({data['status']})")
    for stratum, counts in data["strata"].items():
        app.out.print(f"  {stratum}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


@panels.command("export")
@click.argument("panel_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@workspace_option
@pass_app
@handle_errors
def export(app: AppContext, panel_id: int, fmt: str, workspace: str | None) -> None:
    """The panel's members and reserve (CSV), or its manifest and members (JSON), on stdout."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
        rows = service.members(session.connection(), ws.id, panel_id)
        data = service.status(session.connection(), ws.id, panel_id)
    if fmt == "json":
        app.emit_json({"manifest": data["manifest"], "members": rows})
        return
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=["member_id", "name", "email", "locale", "stratum", "role", "rank", "status"]
    )
    writer.writeheader()
    writer.writerows(rows)
    sys.stdout.write(out.getvalue())
