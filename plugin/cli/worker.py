"""``flywheel worker``, ``flywheel beat`` and ``flywheel schedule``: the background jobs."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from plugin.cli.context import (
    AppContext,
    handle_errors,
    json_option,
    pass_app,
    stop_on_signals,
    workspace_option,
)
from plugin.db.base import utcnow
from plugin.errors import ConfigError, TransientError, ValidationFailed
from plugin.jobs import schedule, supervise
from plugin.jobs.catalog import JOBS
from plugin.jobs.runner import Loop, Ran
from plugin.logs import redact

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_every(text: str) -> int:
    """``90``, ``90s``, ``15m``, ``1h``, ``1d`` as seconds."""
    match = re.fullmatch(r"\s*(\d{1,9})\s*([smhd]?)\s*", text)
    if not match:
        raise ValidationFailed(f"{text!r} is not an interval", hint="e.g. 30s, 15m, 2h or 1d")
    return int(match[1]) * UNITS[match[2] or "s"]


@click.command()
@click.option("--once", is_flag=True, help="In-process only: run the jobs due now, then stop.")
@click.option(
    "--concurrency", type=click.IntRange(1, 64), default=None, help="Jobs run at once (default 4; Celery: 2)."
)
@click.option(
    "--beat", "with_beat", is_flag=True, help="Celery only: also run the beat (the tick) in this worker."
)
@click.option(
    "--in-process", is_flag=True, help="Run the jobs in this process even with FLYWHEEL_BROKER_URL set."
)
@json_option
@pass_app
@handle_errors
def worker(
    app: AppContext, once: bool, concurrency: int | None, with_beat: bool, in_process: bool, as_json: bool
) -> None:
    """Run the background jobs (scoring, CRM sync and pull, webhook delivery, panel reminders,
    reward holds): in this process on the embedded default, as a Celery worker when
    FLYWHEEL_BROKER_URL is set. Stop with Ctrl-C or SIGTERM: running jobs finish first."""
    settings = app.settings
    app.engine  # noqa: B018 (checks the database and its schema before anything starts)
    if settings.broker_url and not in_process:
        if once:
            raise ValidationFailed("--once runs jobs in this process", hint="add --in-process")
        from plugin.jobs.celery_app import QUEUE, configure

        argv = [
            "worker",
            "--loglevel=INFO",
            "-Q",
            QUEUE,
            f"--concurrency={concurrency or 2}",
            "--without-gossip",
        ]
        if with_beat:
            argv += ["--beat", f"--schedule={_beat_file(app)}"]
        if not supervise.is_child():  # this process watches; a child runs Celery, restarted if it dies
            app.err.print(
                f"Flywheel worker on {redact(settings.broker_url)} (Celery, {concurrency or 2} processes)"
            )
            child = ["worker", f"--concurrency={concurrency or 2}", *(["--beat"] if with_beat else [])]
            raise SystemExit(supervise.supervise(child, "the Celery worker"))
        configure(settings).worker_main(argv)
        return
    stop = stop_on_signals()
    loop = Loop(app.engine, settings, threads=concurrency or 4)
    if once:
        with app.progress("running due jobs") as update:
            ran = loop.run(stop, once=True)
            update(len(ran), len(ran))
        _report(app, ran, as_json)
        return
    app.err.print(f"Flywheel worker in this process (every {settings.tick_s:g} s; Ctrl-C stops it)")

    def show(r: Ran) -> None:
        if as_json:
            app.emit_json(r.as_dict())
        else:
            app.err.print(_line(r), markup=False, highlight=False)

    loop.run(stop, report=show)


def _line(r: Ran) -> str:
    scope = f"workspace {r.workspace_id}" if r.workspace_id else "install"
    told = r.error or ", ".join(f"{k} {v}" for k, v in r.summary.items()) or "-"
    return f"{r.job} ({scope}): {r.status} in {r.seconds:.2f} s: {told}"


def _report(app: AppContext, ran: list[Ran], as_json: bool) -> None:
    if as_json:
        app.emit_json({"ran": [r.as_dict() for r in ran]})
        return
    if not ran:
        app.out.print("no job was due")
    for r in ran:
        app.out.print(_line(r), markup=False, highlight=False)
    if any(r.status == "failed" for r in ran):
        raise SystemExit(1)


def _beat_file(app: AppContext) -> Path:
    return app.settings.secret_key_file.parent / "flywheel-beat-schedule"


@click.command()
@pass_app
@handle_errors
def beat(app: AppContext) -> None:
    """The Celery beat: sends one tick every FLYWHEEL_TICK_SECONDS (run exactly one). What is due
    is decided by the schedule in the database (`flywheel schedule`), so a restart loses nothing."""
    settings = app.settings
    if not settings.broker_url:
        raise ConfigError(
            "the beat needs a broker (FLYWHEEL_BROKER_URL)",
            hint="set FLYWHEEL_BROKER_URL=redis://127.0.0.1:6379/0, or run `flywheel worker` alone",
        )
    app.engine  # noqa: B018
    from plugin.jobs.celery_app import configure

    if not supervise.is_child():
        app.err.print(f"Flywheel beat: a tick every {settings.tick_s:g} s to {redact(settings.broker_url)}")
        raise SystemExit(supervise.supervise(["beat"], "the Celery beat"))
    configure(settings).start(["beat", "--loglevel=INFO", f"--schedule={_beat_file(app)}"])


@click.group("schedule")
def schedule_() -> None:
    """When each background job runs, per workspace; what it did last."""


@schedule_.command("list")
@workspace_option
@json_option
@pass_app
@handle_errors
def list_(app: AppContext, workspace: str | None, as_json: bool) -> None:
    """Every job with its interval, next run and last result."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
        rows = schedule.listing(session.connection(), ws.id)
        session.commit()
    if as_json:
        app.emit_json({"workspace": ws.slug, "jobs": rows})
        return
    table = Table("job", "for", "every", "on", "next run (UTC)", "last", "runs", "what")
    for r in rows:
        last = r["last_status"] or "-"
        if r["running"]:
            last = "running"
        elif r["last_error"]:
            last = f"failed: {r['last_error'][:60]}"
        table.add_row(
            r["job"], r["scope"], _every(r["every_s"]), "yes" if r["enabled"] else "no",
            r["next_run_at"][:19], escape(last), str(r["runs"]), r["what"] or "",
        )  # fmt: skip
    app.out.print(table)


def _every(seconds: int) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@schedule_.command("set")
@click.argument("job", type=click.Choice(sorted(JOBS)))
@click.option("--every", "every", default=None, help="Interval: 30s, 15m, 2h, 1d.")
@click.option("--enable/--disable", "enabled", default=None, help="Switch the job on or off.")
@workspace_option
@json_option
@pass_app
@handle_errors
def set_(
    app: AppContext, job: str, every: str | None, enabled: bool | None, workspace: str | None, as_json: bool
) -> None:
    """Change a job's interval or switch it on or off (jobs for the whole install: webhooks,
    webhook_prune, apply to every workspace)."""
    if every is None and enabled is None:
        raise ValidationFailed("nothing to change", hint="give --every 15m, --enable or --disable")
    with app.session() as session:
        ws = app.workspace(session, workspace)
        schedule.configure(
            session.connection(), ws.id, job, every_s=parse_every(every) if every else None, enabled=enabled
        )
        session.commit()
        row = schedule.job_state(session.connection(), ws.id, job, ensure_rows=False)
    if as_json:
        app.emit_json(row)
        return
    state = "on" if row["enabled"] else "off"
    app.out.print(f"{job}: every {_every(row['every_s'])}, {state}; next run {row['next_run_at'][:19]} UTC")


@schedule_.command("run")
@click.argument("job", type=click.Choice(sorted(JOBS)))
@click.option("--wait", is_flag=True, help="Wait until a worker has run it and show what it did.")
@click.option(
    "--timeout", type=click.IntRange(1, 86_400), default=600, show_default=True, help="Seconds to wait."
)
@workspace_option
@json_option
@pass_app
@handle_errors
def run_(app: AppContext, job: str, wait: bool, timeout: int, workspace: str | None, as_json: bool) -> None:
    """Make a job due now: the next tick of a running worker starts it."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
        job_id = schedule.run_soon(session.connection(), ws.id, job)
        session.commit()
        asked = utcnow()
    if not wait:
        if as_json:
            app.emit_json({"job": job, "id": job_id, "due": "now"})
            return
        app.out.print(
            f"{job} is due now; a running `flywheel worker` starts it within {app.settings.tick_s:g} s"
        )
        return
    with app.progress(f"waiting for a worker to run {job}") as update:
        row = _finished_after(app, ws.id, job, asked, timeout, update)
    if as_json:
        app.emit_json(row)
    else:
        told = (
            row["last_error"] or ", ".join(f"{k} {v}" for k, v in (row["last_summary"] or {}).items()) or "-"
        )
        app.out.print(f"{job}: {row['last_status']}: {told}", markup=False, highlight=False)
    if row["last_status"] == "failed":
        raise SystemExit(1)


def _finished_after(
    app: AppContext,
    workspace_id: int,
    job: str,
    asked: datetime,
    timeout: int,
    update: Callable[[int, int], None],
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        with app.engine.connect() as conn:
            row = schedule.job_state(conn, workspace_id, job, ensure_rows=False)  # run_soon made it
        done = row["last_finished_at"] and datetime.fromisoformat(row["last_finished_at"]) >= asked
        if done and not row["running"]:
            return row
        if time.monotonic() > deadline:
            raise TransientError(
                f"no worker ran {job} within {timeout} s",
                hint="start one with `flywheel worker` (and, with a broker, `flywheel beat`), or run "
                "`flywheel worker --once --in-process` here",
            )
        update(0, 0)
        time.sleep(min(1.0, app.settings.tick_s))
