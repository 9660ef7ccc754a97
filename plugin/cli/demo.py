"""``flywheel demo``: the main job on a generated community."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from plugin.cli.context import AppContext, handle_errors, json_option, pass_app
from plugin.cli.score import print_report, print_top
from plugin.demo.community import DemoConfig
from plugin.services.demo import DEMO_WORKSPACE, STAGES, run_demo
from plugin.services.demo import Progress as StageProgress
from plugin.services.status import WorkspaceStatus, workspace_status
from plugin.services.workspaces import ensure_workspace


@contextmanager
def stage_bars(app: AppContext) -> Iterator[StageProgress]:
    with Progress(
        TextColumn("[bold]{task.description:<14}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=app.err,
        transient=False,
    ) as bars:
        tasks: dict[str, TaskID] = {name: bars.add_task(name, total=None, start=False) for name, _ in STAGES}
        current: list[str] = []

        def update(stage: str, done: int, total: int) -> None:
            if not current or current[-1] != stage:
                if current:
                    bars.update(tasks[current[-1]], total=1, completed=1)
                bars.start_task(tasks[stage])
                current.append(stage)
            if total:
                bars.update(tasks[stage], completed=done, total=total)

        yield update
        if current:
            bars.update(tasks[current[-1]], total=1, completed=1)


def print_summary(app: AppContext, status: WorkspaceStatus, facts: dict[str, object], seconds: float) -> None:
    table = Table(title=f"Flywheel demo community (workspace '{status.workspace}')", show_header=False)
    for label, value in (
        ("members", status.members),
        ("identities", status.identities),
        ("automatic merges (same verified email)", status.merges),
        ("open merge suggestions", status.open_suggestions),
        ("organizations", status.organizations),
        ("activities", status.activities),
    ):
        table.add_row(label, f"{value:,}")
    app.out.print(table)
    by_source = Table(title="activities by source")
    by_source.add_column("source")
    by_source.add_column("activities", justify="right")
    by_source.add_column("identities", justify="right")
    for source, count in status.activities_by_source.items():
        by_source.add_row(source, f"{count:,}", f"{status.identities_by_source.get(source, 0):,}")
    app.out.print(by_source)
    by_type = Table(title="activities by type")
    by_type.add_column("type")
    by_type.add_column("activities", justify="right")
    for kind, count in status.activities_by_type.items():
        by_type.add_row(kind, f"{count:,}")
    app.out.print(by_type)
    app.out.print(
        f"Done in {seconds:.1f} s. Next: `flywheel members suggestions -w {status.workspace}` to review "
        f"merge suggestions, `flywheel members show EMAIL -w {status.workspace}` to meet someone."
    )


DASHBOARD = f"flywheel dashboard --workspace {DEMO_WORKSPACE}"


@click.command()
@click.option("--seed", default=7, show_default=True, help="The same seed builds the same community.")
@click.option("--members", "n_members", default=5000, show_default=True)
@click.option("--activities", "n_activities", default=200_000, show_default=True)
@json_option
@pass_app
@handle_errors
def demo(app: AppContext, seed: int, n_members: int, n_activities: int, as_json: bool) -> None:
    """Generate a realistic international community and run the whole pipeline on it.

    Everything goes into the workspace 'demo', never into your own data; running it again stores
    nothing twice."""
    started = time.perf_counter()
    config = DemoConfig(seed=seed, members=n_members, activities=n_activities)
    with app.session() as session:
        ws, _ = ensure_workspace(session, DEMO_WORKSPACE, "Demo community")
        session.commit()
    with stage_bars(app) as update:
        run = run_demo(app.engine, ws.id, config, update, app.settings)
    status = workspace_status(app.engine, ws)
    seconds = time.perf_counter() - started
    assert run.ingest is not None
    if as_json:
        app.emit_json(
            {
                "workspace": ws.slug,
                "seed": seed,
                "seconds": round(seconds, 2),
                "timings": run.timings,
                "ingest": run.ingest.as_dict(),
                "facts": run.facts,
                "status": status.as_dict(),
                "scores": run.scores.as_dict() if run.scores else None,
                "top": run.top,
                "crm": run.crm,
                "programs": run.programs,
                "dashboard": DASHBOARD,
            }
        )
        return
    print_summary(app, status, run.facts, seconds)
    if run.scores:
        print_report(app, run.scores, run.timings.get("scores", 0.0))
        print_top(app, run.top)
    if run.crm:
        print_crm(app, run.crm)
    if run.programs:
        print_programs(app, run.programs)
    app.out.print(f"\n[bold]See it all in the dashboard:[/bold] {DASHBOARD}", highlight=False)


def print_programs(app: AppContext, programs: dict[str, Any]) -> None:
    ref = programs["referrals"]
    skipped = ", ".join(f"{n:,} {why}" for why, n in ref["skipped"].items() if n) or "none"
    app.out.print(
        f"[bold]Referrals[/bold] (campaign {ref['campaign']}): {ref['invited']:,} champions invited "
        f"with a personal link; skipped: {skipped}"
    )
    for r in ref["captured"]:
        why = f" ({r['reason']})" if r["reason"] else ""
        app.out.print(f"  {escape(r['prospect'])}: {r['status']}{escape(why)}")
    panel = programs["panel"]
    strata = ", ".join(
        f"{name} {panel['selected'].get(name, 0)} of {panel['eligible'][name]:,} eligible"
        for name in panel["eligible"]
    )
    app.out.print(f"[bold]Panel[/bold] {escape(panel['name'])} (seed {panel['seed']}): {strata}")
    if panel["shortfall"]:
        app.out.print(f"  quotas not met: {panel['shortfall']}")
    pid = panel["panel"]
    app.out.print(f"  next: `flywheel panels export {pid} -w demo`, `flywheel panels invite {pid} -w demo`")


def print_crm(app: AppContext, crm: dict[str, Any]) -> None:
    counts = crm["sync"]["counts"]
    app.out.print(
        f"[bold]CRM[/bold] (HubSpot sandbox, test mode): {crm['contacts_in_crm']:,} contacts hold their "
        f"scores; this sync created {counts['created']:,}, updated {counts['updated']:,}, left "
        f"{counts['unchanged']:,} unchanged in {sum(crm['sync']['calls'].values()):,} API calls",
        highlight=False,
    )
    for c in crm["sample"]:
        name = " ".join(x for x in (c.get("firstname"), c.get("lastname")) if x)
        app.out.print(
            f"  {escape(name)} <{escape(c['email'] or '')}>: advocate {c['flywheel_advocate_score']} "
            f"({c['flywheel_advocate_level']}), lead {c.get('flywheel_lead_grade') or '-'}, "
            f"churn {c.get('flywheel_churn_band') or '-'}",
            highlight=False,
        )
    app.out.print("  connect your real HubSpot: `flywheel crm connect hubspot -w demo --token ...`")
