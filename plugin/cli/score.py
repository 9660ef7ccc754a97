"""``flywheel score`` and ``flywheel scores``: compute, rank, explain and export scores."""

from __future__ import annotations

import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from plugin.cli.context import AppContext, handle_errors, json_option, pass_app, workspace_option
from plugin.errors import ValidationFailed
from plugin.services.score_config import load_scoring_config
from plugin.services.score_read import export_rows, top_scores
from plugin.services.score_run import ScoreReport, run_scoring
from scoring.pipeline import KINDS

KIND_CHOICE = click.Choice(KINDS)
config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="TOML file overriding the scoring defaults (or FLYWHEEL_SCORING_CONFIG).",
)
TITLES = {"advocate": "Top advocates", "lead": "Hottest leads", "churn": "Highest churn risks"}


def parse_as_of(value: str | None) -> datetime | None:
    """A date (the end of that day, UTC) or an ISO time with a zone."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, 23, 59, 59, 999999, tzinfo=UTC)
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(
            f"--as-of {value!r} is not a date",
            fields={"as_of": "YYYY-MM-DD or ISO 8601 with zone"},
            hint="for example --as-of 2026-06-30",
        ) from None
    if when.tzinfo is None:
        raise ValidationFailed(
            f"--as-of {value!r} has no time zone", hint="add one, e.g. 2026-06-30T12:00:00+00:00"
        )
    return when.astimezone(UTC)


def print_top(app: AppContext, top: dict[str, list[dict[str, Any]]]) -> None:
    for kind, rows in top.items():
        table = Table(title=TITLES[kind], title_justify="left")
        for col in (
            "member",
            "email",
            "score",
            "level" if kind == "advocate" else "grade" if kind == "lead" else "band",
            "why",
        ):
            table.add_column(col, overflow="fold")
        for r in rows:
            score = f"{r['score']:.0%}" if kind == "churn" else f"{r['score']:.1f}"
            label = r["label"] + (" HOT" if r.get("hot") else "")
            why = "\n".join(r["reasons"])
            table.add_row(
                escape(r["name"] or str(r["member_id"])), escape(r["email"] or ""), score, label, escape(why)
            )
        app.out.print(table)


@click.command()
@click.option("--kind", "kinds", type=KIND_CHOICE, multiple=True, help="Only this score (repeatable).")
@click.option("--as-of", "as_of", default=None, help="Score the world as it stood then (backtest).")
@click.option("--full", is_flag=True, help="Rescore everyone and refit the activity model.")
@config_option
@click.option("--top", default=5, show_default=True, help="How many of each list to show.")
@click.option("--show-config", is_flag=True, help="Print the default settings (TOML) and exit.")
@workspace_option
@json_option
@pass_app
@handle_errors
def score(
    app: AppContext,
    kinds: tuple[str, ...],
    as_of: str | None,
    full: bool,
    config_path: Path | None,
    top: int,
    show_config: bool,
    workspace: str | None,
    as_json: bool,
) -> None:
    """Score members: advocates, leads and churn risk, each with its reasons.

    Incremental by default (members with new activity since the last run) while the last full
    pass is younger than runs.full_every_hours (24 h), then a full pass that brings time decay up
    to date for everyone; --full rescores everyone now; --as-of scores the world at a past date
    without changing stored scores."""
    if show_config:
        from importlib import resources

        sys.stdout.write(resources.files("scoring").joinpath("defaults.toml").read_text("utf-8"))
        return
    when = parse_as_of(as_of)
    cfg = load_scoring_config(config_path or app.settings.scoring_config)
    with app.session() as session:
        ws = app.workspace(session, workspace)
    started = time.perf_counter()
    with app.progress("scoring") as update:
        steps = iter(range(1, 10))
        report = run_scoring(
            app.engine,
            ws.id,
            cfg,
            kinds=kinds or KINDS,
            as_of=when,
            full=full,
            progress=lambda msg: update(next(steps, 9), 5),
            public_url=app.settings.public_url,
        )
    seconds = time.perf_counter() - started
    ranked = top_scores(app.engine, ws.id, report, top)
    if as_json:
        app.emit_json(report.as_dict() | {"workspace": ws.slug, "seconds": round(seconds, 2), "top": ranked})
        return
    print_report(app, report, seconds)
    print_top(app, ranked)


def print_report(app: AppContext, report: ScoreReport, seconds: float) -> None:
    app.out.print(
        f"[bold]{report.mode} scoring[/bold] as of {report.as_of:%Y-%m-%d %H:%M} UTC: "
        f"{report.members_scored:,} members in {seconds:.1f} s "
        f"(model {report.model_version}, weights {report.weights_hash})",
        highlight=False,
    )
    if report.why:
        app.out.print(f"  ({escape(report.why)})", highlight=False)
    for kind, counts in report.labels.items():
        parts = ", ".join(f"{label} {n:,}" for label, n in sorted(counts.items()))
        app.out.print(f"  {kind}: {report.scored.get(kind, 0):,} scored ({parts})", highlight=False)
    if report.events:
        app.out.print("  events: " + ", ".join(f"{k} {v:,}" for k, v in sorted(report.events.items())))
    if report.webhooks_queued:
        app.out.print(
            f"  webhooks queued: {report.webhooks_queued:,} (`flywheel webhooks deliver` sends them)"
        )


@click.group()
def scores() -> None:
    """Stored scores: export them."""


@scores.command("export")
@click.option("--kind", type=KIND_CHOICE, required=True)
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None, help="File (default: stdout).")
@workspace_option
@json_option
@pass_app
@handle_errors
def export(
    app: AppContext, kind: str, fmt: str, output: Path | None, workspace: str | None, as_json: bool
) -> None:
    """Export stored scores: member id, email, score, level/grade/band and reasons."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
    stream = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
    try:
        count = export_rows(app.engine, ws.id, kind, fmt, stream)
    finally:
        if output:
            stream.close()
    if as_json:
        app.emit_json({"kind": kind, "format": fmt, "rows": count, "output": str(output) if output else None})
    elif output:
        app.err.print(f"{count:,} {kind} scores written to {escape(str(output))}")
    if count == 0:
        app.err.print(f"no {kind} scores stored yet: run `flywheel score` first")


@click.command()
@click.option("--kind", type=click.Choice(["churn", "lead"]), required=True)
@click.option(
    "--labels",
    "labels_path",
    type=click.Path(path_type=Path),
    required=True,
    help="CSV: member_id, email or domain, and label (1/0).",
)
@click.option("--as-of", "as_of", default=None, help="Score as the world stood then (default: now).")
@click.option("--fit", is_flag=True, help="Learn weights from the labels and write a new config version.")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="Where --fit writes the config (default: flywheel-scoring-KIND-fit.toml).",
)
@config_option
@workspace_option
@json_option
@pass_app
@handle_errors
def evaluate(
    app: AppContext,
    kind: str,
    labels_path: Path,
    as_of: str | None,
    fit: bool,
    output: Path | None,
    config_path: Path | None,
    workspace: str | None,
    as_json: bool,
) -> None:
    """Check churn or lead scores against your own outcomes: AUC, top-decile lift, precision at k,
    Brier score; --fit learns new weights from them."""
    from plugin.db.base import utcnow
    from plugin.services.evaluate import run_evaluate

    cfg = load_scoring_config(config_path or app.settings.scoring_config)
    when = parse_as_of(as_of) or utcnow()
    with app.session() as session:
        ws = app.workspace(session, workspace)
    with app.progress("evaluating") as update:
        update(0, 1)
        report = run_evaluate(app.engine, ws.id, cfg, kind, labels_path, when, fit=fit, output=output)
        update(1, 1)
    if as_json:
        app.emit_json(report.as_dict())
        return
    table = Table(title=f"{kind} scores against {report.labelled:,} labels, as of {when:%Y-%m-%d}")
    for col in ("metric", "current weights") + (("fitted weights",) if report.fitted_evaluation else ()):
        table.add_column(col)
    now_e, fit_e = (
        report.evaluation.as_dict(),
        (report.fitted_evaluation.as_dict() if report.fitted_evaluation else {}),
    )
    for name in ("auc", "lift_top_decile", "precision_at_k", "brier"):
        cells = [name, _fmt(now_e.get(name))] + ([_fmt(fit_e.get(name))] if fit_e else [])
        table.add_row(*cells)
    app.out.print(table)
    app.out.print(f"  k = {report.evaluation.k:,}; {report.unmatched:,} label rows matched no scored member")
    if report.written_to:
        where = escape(report.written_to)
        app.out.print(
            f"  fitted weights written to {where}; use them with `flywheel score --full --config {where}`"
        )


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)
