"""``flywheel ingest``: files of activity into the store."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from plugin.cli.context import AppContext, handle_errors, json_option, pass_app, workspace_option
from plugin.errors import ValidationFailed
from plugin.services.ingest import IngestReport
from plugin.services.ingest_files import ingest_paths
from plugin.services.readers import FORMATS

SHOWN_PROBLEMS = 20


def print_report(app: AppContext, report: IngestReport) -> None:
    table = Table(title="ingest summary", show_header=False)
    for label, value in (
        ("read", report.read),
        ("stored", report.stored),
        ("duplicates (already stored)", report.duplicates),
        ("skipped (no activity)", report.skipped),
        ("invalid", report.invalid),
        ("members created", report.members_created),
        ("identities created", report.identities_created),
        ("automatic merges (verified email)", report.auto_merges),
        ("organizations created", report.organizations_created),
        ("merge suggestions opened", report.suggestions),
    ):
        table.add_row(label, f"{value:,}")
    app.out.print(table)
    if report.reasons:
        reasons = Table(title="skipped and invalid, by reason")
        reasons.add_column("reason")
        reasons.add_column("count", justify="right")
        for reason, count in report.reasons.most_common(15):
            reasons.add_row(escape(reason), f"{count:,}")
        app.out.print(reasons)
    for problem in report.problems[:SHOWN_PROBLEMS]:
        where = f"{problem.file or ''}:{problem.line}" if problem.line else (problem.file or "")
        app.err.print(f"{where}: {problem.field}: {problem.reason}", markup=False, highlight=False)
    if len(report.problems) > SHOWN_PROBLEMS:
        app.err.print(f"... and {report.invalid + report.skipped - SHOWN_PROBLEMS:,} more (see --json)")


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="File format; by default from the extension (.jsonl, .csv).",
)
@click.option(
    "--strict", is_flag=True, help="Exit non-zero when any item is invalid (good items are still stored)."
)
@workspace_option
@json_option
@pass_app
@handle_errors
def ingest(
    app: AppContext,
    paths: tuple[Path, ...],
    fmt: str | None,
    strict: bool,
    workspace: str | None,
    as_json: bool,
) -> None:
    """Ingest activity files or folders: canonical JSONL or CSV, or GitHub, Discourse or Slack payloads.

    Re-ingesting stores nothing twice; bad items are reported with their line and never stop the rest."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
    with app.progress("ingesting", in_bytes=True) as update:
        report = ingest_paths(app.engine, ws.id, list(paths), fmt, progress=update)
    if as_json:
        app.emit_json({"workspace": ws.slug, **report.as_dict()})
    else:
        print_report(app, report)
    if strict and report.invalid:
        if not as_json:
            app.err.print(
                f"--strict: {report.invalid:,} invalid item(s); fix them and ingest again "
                "(what was valid is stored, and re-ingesting will not duplicate it)"
            )
        raise SystemExit(ValidationFailed.exit_code)
