"""Setting up: ``init``, ``db``, ``status``, ``hooks`` and ``serve``."""

from __future__ import annotations

import secrets as pysecrets
import sys

import click
from rich.table import Table
from sqlalchemy import select

from plugin.cli.context import AppContext, handle_errors, json_option, pass_app, workspace_option
from plugin.db.engine import make_engine
from plugin.db.migrate import current_revision, downgrade, downgrade_plan, head_revision, upgrade
from plugin.db.models import Workspace
from plugin.errors import ValidationFailed
from plugin.services.hook_secrets import HOOK_SOURCES, set_hook_secret
from plugin.services.status import workspace_status
from plugin.services.workspaces import ensure_workspace, issue_token


@click.command()
@workspace_option
@json_option
@pass_app
@handle_errors
def init(app: AppContext, workspace: str | None, as_json: bool) -> None:
    """Create the database, the default workspace and an admin API token (shown once)."""
    with app.session() as session:
        slug = workspace or app.settings.default_workspace
        ws, created = ensure_workspace(session, slug, "Default workspace" if slug == "default" else slug)
        token = issue_token(session, ws, "admin", name="created by flywheel init")
        session.commit()
    result = {
        "database": app.settings.redacted_database_url(),
        "workspace": ws.slug,
        "workspace_created": created,
        "admin_token": token.token,
        "admin_token_id": token.id,
    }
    if as_json:
        app.emit_json(result)
        return
    app.out.print(f"Database ready: {result['database']}")
    app.out.print(f"Workspace: {ws.slug}" + (" (created)" if created else " (already there)"))
    app.out.print(f"Admin API token (shown once, keep it safe): [bold]{token.token}[/bold]")


@click.group()
def db() -> None:
    """Database schema migrations."""


@db.command("upgrade")
@json_option
@pass_app
@handle_errors
def db_upgrade(app: AppContext, as_json: bool) -> None:
    """Apply every pending migration."""
    engine = make_engine(app.settings)
    before = current_revision(engine)
    upgrade(engine)
    after = current_revision(engine)
    if as_json:
        app.emit_json({"from": before, "to": after})
    else:
        app.out.print(f"Schema at {after}" + ("" if before == after else f" (was {before or 'empty'})"))


@db.command("downgrade", context_settings={"ignore_unknown_options": True})  # REVISION may be -N
@click.argument("revision")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_app
@handle_errors
def db_downgrade(app: AppContext, revision: str, yes: bool, as_json: bool) -> None:
    """Revert migrations down to REVISION (a revision id, -N for N steps, or base for none).

    Tables and columns the reverted migrations added are dropped with their data: back the database
    up first. Run the older Flywheel afterwards (on SQLite this one would upgrade it again)."""
    engine = make_engine(app.settings)
    before = current_revision(engine)
    try:
        target, undone = downgrade_plan(engine, revision)
    except ValueError as exc:
        raise ValidationFailed(
            str(exc),
            hint="see `flywheel db current`; REVISION is an older revision id, -N or base",
        ) from None
    if undone and not yes:
        steps = "\n".join(f"  {rev}  {doc.splitlines()[0] if doc else ''}" for rev, doc in undone)
        click.confirm(
            f"Revert these migrations of {app.settings.redacted_database_url()}?\n{steps}\n"
            "What they added is dropped with its data (have a backup)",
            abort=True,
            err=True,
        )
    if undone:
        downgrade(engine, target or "base")
    after = current_revision(engine)
    if as_json:
        app.emit_json({"from": before, "to": after, "reverted": [rev for rev, _ in undone]})
    else:
        was = "" if before == after else f" (was {before})"
        app.out.print(f"Schema at {after or 'empty (base)'}{was}")


@db.command("current")
@json_option
@pass_app
@handle_errors
def db_current(app: AppContext, as_json: bool) -> None:
    """Show the schema revision of the database and of this Flywheel."""
    engine = make_engine(app.settings)
    data = {"database": current_revision(engine), "code": head_revision(engine)}
    if as_json:
        app.emit_json(data)
    else:
        app.out.print(f"database: {data['database'] or 'empty'}   this Flywheel: {data['code']}")


@click.command()
@workspace_option
@json_option
@pass_app
@handle_errors
def status(app: AppContext, workspace: str | None, as_json: bool) -> None:
    """Counts of members, identities, organizations and activities (by source)."""
    with app.session() as session:
        if workspace:
            spaces = [app.workspace(session, workspace)]
        else:
            spaces = list(session.scalars(select(Workspace).order_by(Workspace.id)))
    reports = [workspace_status(app.engine, ws) for ws in spaces]
    if as_json:
        app.emit_json(
            {"database": app.settings.redacted_database_url(), "workspaces": [r.as_dict() for r in reports]}
        )
        return
    app.out.print(f"Database: {app.settings.redacted_database_url()}")
    if not reports:
        app.out.print("No workspace yet: run `flywheel init` or `flywheel demo`.")
    for report in reports:
        table = Table(title=f"workspace {report.workspace}", show_header=False)
        for label, value in (
            ("members", report.members),
            ("identities", report.identities),
            ("organizations", report.organizations),
            ("activities", report.activities),
            ("merges in force", report.merges),
            ("open merge suggestions", report.open_suggestions),
        ):
            table.add_row(label, f"{value:,}")
        for source, count in report.activities_by_source.items():
            table.add_row(f"  activities from {source}", f"{count:,}")
        app.out.print(table)


@click.group()
def hooks() -> None:
    """Inbound webhook receivers (GitHub, Discourse, Slack, generic)."""


@hooks.command("secret")
@click.argument("source")
@click.option(
    "--value-stdin",
    is_flag=True,
    help="Read the platform's secret from standard input instead of generating one.",
)
@workspace_option
@json_option
@pass_app
@handle_errors
def hooks_secret(
    app: AppContext, source: str, value_stdin: bool, workspace: str | None, as_json: bool
) -> None:
    """Set the signing secret of SOURCE (github, discourse, slack or generic:NAME); shown once.

    Slack issues its own signing secret: pass it with --value-stdin. For the others a strong one is
    generated unless you pass yours."""
    if value_stdin:
        value = sys.stdin.readline().strip()
    elif source == "slack":
        raise click.UsageError("Slack issues the signing secret: pipe it in with --value-stdin")
    elif source.startswith("generic:"):
        import base64

        value = "whsec_" + base64.b64encode(pysecrets.token_bytes(24)).decode()
    else:
        value = pysecrets.token_urlsafe(32)
    with app.session() as session:
        ws = app.workspace(session, workspace)
        set_hook_secret(session, app.settings, ws.id, source, value)
        session.commit()
    path = (
        "/hooks/generic/" + source.split(":", 1)[1] if source.startswith("generic:") else f"/hooks/{source}"
    )
    data = {
        "source": source,
        "workspace": ws.slug,
        "url_path": f"{path}?workspace={ws.slug}",
        "secret": None if value_stdin else value,
    }
    if as_json:
        app.emit_json(data)
        return
    app.out.print(f"Receiver: POST {data['url_path']}  (sources: {', '.join(HOOK_SOURCES)}, generic:NAME)")
    if not value_stdin:
        app.out.print(
            f"Secret for {source} (shown once; paste it into the platform's webhook settings): {value}"
        )
    else:
        app.out.print(f"Secret for {source} saved; running web processes use it within 5 seconds.")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", type=int, default=None, help="gunicorn workers (default FLYWHEEL_WEB_WORKERS, 2).")
@click.option("--dev", is_flag=True, help="Flask's development server with reloading, for development only.")
@pass_app
@handle_errors
def serve(app: AppContext, host: str, port: int, workers: int | None, dev: bool) -> None:
    """Serve the API, the dashboard, the CRM card and the webhook receivers (gunicorn; --dev: Flask)."""
    from plugin.web.app import create_app
    from plugin.web.server import run_gunicorn

    app.engine  # noqa: B018 (validates settings and migrates the embedded default before forking)
    if dev:
        create_app(app.settings).run(host=host, port=port, debug=True)
        return
    workers = workers or app.settings.web_workers
    app.err.print(f"Flywheel listening on http://{host}:{port} ({workers} workers)")
    run_gunicorn(app.settings, host, port, workers)
