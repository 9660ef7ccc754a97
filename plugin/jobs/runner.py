"""Running scheduled jobs: one claimed job at a time (``run_job``, used by Celery tasks and the
in-process loop alike), the tick that finds due jobs, and the in-process loop of the embedded
default."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from plugin.db.base import utcnow
from plugin.errors import Busy, FlywheelError
from plugin.jobs import schedule
from plugin.jobs.catalog import JOBS, JobContext, Skipped
from plugin.services.leases import heartbeat, holder_name
from plugin.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Ran:
    id: int
    job: str
    workspace_id: int | None
    status: str  # ok | skipped | busy | failed | lost (another worker took the job over)
    seconds: float
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "job": self.job, "workspace_id": self.workspace_id, "status": self.status,
            "seconds": round(self.seconds, 3), "summary": self.summary, "error": self.error,
        }  # fmt: skip


def _explain(exc: BaseException) -> str:
    if isinstance(exc, FlywheelError):
        return str(exc)  # the message and what to do; never ``detail``, which may quote a server
    if isinstance(exc, SQLAlchemyError):  # its text can hold statements and parameters
        return f"database error: {type(exc).__name__}; the job runs again after its retry wait"
    return f"internal error: {type(exc).__name__}; see the worker's log"


def run_job(
    engine: Engine,
    settings: Settings,
    job_id: int,
    *,
    holder: str | None = None,
    stop: threading.Event | None = None,
) -> Ran | None:
    """Run one scheduled job if it is due and nobody runs it; None otherwise (nothing done)."""
    holder = holder or holder_name()
    with engine.begin() as conn:
        claimed = schedule.claim(conn, job_id, holder, settings.job_lease_s)
    if claimed is None:
        return None
    spec = JOBS.get(claimed.job)
    started = time.perf_counter()
    done = threading.Event()
    lease_s = settings.job_lease_s
    beat = threading.Thread(
        target=heartbeat,
        args=(engine, lambda conn: schedule.renew(conn, job_id, holder, lease_s), lease_s / 3, done),
        daemon=True,
    )
    beat.start()
    status, summary, error = "failed", {}, None
    try:
        if spec is None:
            raise Skipped(f"no job named {claimed.job!r} in this version")
        ctx = JobContext(engine, settings, claimed.workspace_id, utcnow(), stop or threading.Event())
        summary = spec.run(ctx)
        status = "ok"
    except Skipped as exc:
        status, summary = "skipped", {"reason": str(exc)}
    except Busy as exc:  # e.g. crm_pull while crm_sync holds the connection: soon again, no failure
        status, summary = "busy", {"reason": exc.user_message}
    except Exception as exc:  # a job's failure is recorded and retried; it never stops the worker
        if not isinstance(exc, FlywheelError):
            log.exception("job %s (%s) failed", claimed.job, job_id)
        error = _explain(exc)
    finally:
        done.set()
        beat.join()
    with engine.begin() as conn:
        kept = schedule.finish(conn, claimed, holder, status, summary=summary, error=error)
    ran = Ran(claimed.id, claimed.job, claimed.workspace_id, status if kept else "lost",
              time.perf_counter() - started, summary, error)  # fmt: skip
    log.info("job %s (%s, workspace %s): %s in %.2f s", ran.job, ran.id, ran.workspace_id, ran.status,
             ran.seconds)  # fmt: skip
    return ran


def tick(engine: Engine, settings: Settings) -> list[int]:
    """Add rows for new workspaces and jobs, then mark and return the due jobs' ids."""
    with engine.begin() as conn:
        schedule.ensure(conn)
        return schedule.dispatch(conn, settings.job_requeue_s)


class Loop:
    """The embedded default's worker: ticks, and runs due jobs on a few threads of this process."""

    def __init__(self, engine: Engine, settings: Settings, *, threads: int = 4) -> None:
        self.engine = engine
        self.settings = settings
        self.threads = max(1, threads)
        self.running: dict[int, Future[Ran | None]] = {}

    def _step(self, pool: ThreadPoolExecutor, stop: threading.Event) -> list[Future[Ran | None]]:
        """One tick: start every due job not already running here."""
        self.running = {i: f for i, f in self.running.items() if not f.done()}
        try:
            due = tick(self.engine, self.settings)
        except SQLAlchemyError:
            log.warning("worker: the database is unreachable; trying again at the next tick")
            return []
        started = []
        for job_id in due:
            if job_id not in self.running:
                self.running[job_id] = pool.submit(run_job, self.engine, self.settings, job_id, stop=stop)
                started.append(self.running[job_id])
        return started

    def run(
        self, stop: threading.Event, *, once: bool = False, report: Callable[[Ran], None] | None = None
    ) -> list[Ran]:
        """Tick every ``tick_s`` until ``stop``; with ``once``: run what is due now, wait, return it."""
        with ThreadPoolExecutor(self.threads, thread_name_prefix="job") as pool:
            while True:
                started = self._step(pool, stop)
                if report:
                    for future in started:
                        future.add_done_callback(lambda f: _report(f, report))
                if once:
                    return [r for r in (f.result() for f in started) if r is not None]
                if stop.wait(self.settings.tick_s):
                    return []


def _report(future: Future[Ran | None], report: Callable[[Ran], None]) -> None:
    if future.exception() is None and (result := future.result()) is not None:
        report(result)
