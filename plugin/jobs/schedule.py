"""The job schedule in SQL: which jobs are due, who runs one now (a lease), and what it did last.

A tick (``dispatch``) picks the due rows and marks them queued for a while, so that a slow queue
does not get the same job twice from every tick; a worker then takes the row's lease (``claim``),
renews it while it works, and writes the next run time when it is done (``finish``). Every step is
one conditional UPDATE, so any number of ticks and workers can run at once on PostgreSQL or SQLite.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, or_, select, update

from plugin.db.base import utcnow
from plugin.db.models import ScheduledJob, Workspace
from plugin.db.sql import dialect_insert
from plugin.errors import NotFound, ValidationFailed
from plugin.jobs.catalog import JOBS

GLOBAL = "global"
#: The first retry of a failed job comes after this long, doubling, at most its own interval.
RETRY_S = 30


def scope_of(workspace_id: int | None) -> str:
    return GLOBAL if workspace_id is None else f"workspace:{workspace_id}"


def ensure(conn: Connection, now: datetime | None = None) -> int:
    """Give every workspace (and the install) a row for each job it lacks, due at once; returns how
    many were added. New workspaces and jobs added by an upgrade are picked up by the next tick."""
    when = now or utcnow()
    have = {(r.scope, r.job) for r in conn.execute(select(ScheduledJob.scope, ScheduledJob.job))}
    workspaces = list(conn.execute(select(Workspace.id)).scalars())
    rows = []
    for spec in JOBS.values():
        for ws in workspaces if spec.scope == "workspace" else [None]:
            if (scope_of(ws), spec.name) not in have:
                rows.append(
                    {"scope": scope_of(ws), "workspace_id": ws, "job": spec.name, "every_s": spec.every_s,
                     "enabled": True, "next_run_at": when, "failures": 0, "runs": 0, "updated_at": when}
                )  # fmt: skip
    if rows:
        insert = dialect_insert(conn)(ScheduledJob).on_conflict_do_nothing(index_elements=["scope", "job"])
        conn.execute(insert, rows)
    return len(rows)


def _free(now: datetime) -> Any:
    t = ScheduledJob
    return or_(t.lease_until.is_(None), t.lease_until < now)


def dispatch(conn: Connection, requeue_s: float, now: datetime | None = None, limit: int = 500) -> list[int]:
    """The ids of due jobs nobody runs and no tick sent in the last ``requeue_s``, marked as sent."""
    when = now or utcnow()
    t = ScheduledJob
    due = (
        select(t.id)
        .where(t.enabled.is_(True), t.next_run_at <= when, _free(when))
        .where(or_(t.queued_until.is_(None), t.queued_until < when))
        .order_by(t.next_run_at, t.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    marked = conn.execute(
        update(t)
        .where(t.id.in_(due.scalar_subquery()))
        .values(queued_until=when + timedelta(seconds=requeue_s))
        .returning(t.id)
    )
    return sorted(marked.scalars())


@dataclass(frozen=True)
class Claimed:
    id: int
    job: str
    workspace_id: int | None
    every_s: int
    failures: int


def claim(
    conn: Connection, job_id: int, holder: str, lease_s: float, now: datetime | None = None
) -> Claimed | None:
    """Take the job's lease if it is due and free; None when another worker has it or it ran already
    (a repeated broker message, a tick and a `schedule run` at once)."""
    when = now or utcnow()
    t = ScheduledJob
    row = conn.execute(
        update(t)
        .where(t.id == job_id, t.enabled.is_(True), t.next_run_at <= when, _free(when))
        .values(
            lease_holder=holder, lease_until=when + timedelta(seconds=lease_s), queued_until=None,
            last_started_at=when, last_status="running", updated_at=when,
        )
        .returning(t.id, t.job, t.workspace_id, t.every_s, t.failures)
    ).first()  # fmt: skip
    return None if row is None else Claimed(row.id, row.job, row.workspace_id, row.every_s, row.failures)


def renew(conn: Connection, job_id: int, holder: str, lease_s: float) -> bool:
    t = ScheduledJob
    when = utcnow()
    done = conn.execute(
        update(t)
        .where(t.id == job_id, t.lease_holder == holder)
        .values(lease_until=when + timedelta(seconds=lease_s))
    )
    return done.rowcount == 1


def finish(
    conn: Connection,
    claimed: Claimed,
    holder: str,
    status: str,
    *,
    summary: dict[str, Any] | None = None,
    error: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Record the run and when the job is next due; False if the lease was lost meanwhile (another
    worker took the job over after this one stalled), in which case nothing is written."""
    when = now or utcnow()
    t = ScheduledJob
    failed = status == "failed"
    if failed:
        wait = min(claimed.every_s, RETRY_S * 2 ** min(claimed.failures, 16))
    else:
        wait = min(claimed.every_s, RETRY_S) if status == "busy" else claimed.every_s
    done = conn.execute(
        update(t)
        .where(t.id == claimed.id, t.lease_holder == holder)
        .values(
            lease_holder=None, lease_until=None, next_run_at=when + timedelta(seconds=wait),
            failures=t.failures + 1 if failed else (t.failures if status == "busy" else 0),
            runs=t.runs + 1, last_finished_at=when,
            last_status=status, last_error=error, last_summary=summary, updated_at=when,
        )
    )  # fmt: skip
    return done.rowcount == 1


def _row(conn: Connection, workspace_id: int | None, job: str, *, ensure_rows: bool = True) -> Any:
    spec = JOBS.get(job)
    if spec is None:
        raise ValidationFailed(f"no job named {job!r}", hint=f"jobs: {', '.join(sorted(JOBS))}")
    if ensure_rows:
        ensure(conn)
    scope = scope_of(workspace_id if spec.scope == "workspace" else None)
    t = ScheduledJob
    found = conn.execute(select(*t.__table__.c).where(t.scope == scope, t.job == job)).first()
    if found is None:
        raise NotFound(f"job {job!r} has no schedule for this workspace", hint="run `flywheel schedule list`")
    return found


def configure(
    conn: Connection, workspace_id: int, job: str, *, every_s: int | None = None, enabled: bool | None = None
) -> None:
    """Change a job's interval or switch it on or off (for the workspace, or the install for global
    jobs); a new interval applies from the job's next run."""
    row = _row(conn, workspace_id, job)
    values: dict[str, Any] = {"updated_at": utcnow()}
    if every_s is not None:
        if not 1 <= every_s <= 366 * 86_400:
            raise ValidationFailed("the interval must be from 1 second to 366 days", hint="e.g. --every 15m")
        values["every_s"] = every_s
        values["next_run_at"] = min(row.next_run_at, utcnow() + timedelta(seconds=every_s))
    if enabled is not None:
        values["enabled"] = enabled
    conn.execute(update(ScheduledJob).where(ScheduledJob.id == row.id).values(**values))


def run_soon(conn: Connection, workspace_id: int, job: str) -> int:
    """Make a job due now (the next tick sends it); returns its id."""
    row = _row(conn, workspace_id, job)
    when = utcnow()
    conn.execute(
        update(ScheduledJob)
        .where(ScheduledJob.id == row.id)
        .values(next_run_at=when, queued_until=None, updated_at=when)
    )
    job_id: int = row.id
    return job_id


def listing(conn: Connection, workspace_id: int) -> list[dict[str, Any]]:
    """The workspace's jobs and the install's global jobs, with their last run."""
    ensure(conn)
    t = ScheduledJob
    rows = conn.execute(
        select(*t.__table__.c)
        .where(or_(t.workspace_id == workspace_id, t.scope == GLOBAL))
        .order_by(t.scope, t.job)
    )
    return [_describe(r) for r in rows]


def job_state(conn: Connection, workspace_id: int, job: str, *, ensure_rows: bool = True) -> dict[str, Any]:
    """One job as :func:`listing` shows it (``ensure_rows=False`` when polling a row known to exist)."""
    return _describe(_row(conn, workspace_id, job, ensure_rows=ensure_rows))


def _describe(r: Any) -> dict[str, Any]:
    return {
        "id": r.id, "job": r.job, "scope": "install" if r.scope == GLOBAL else "workspace",
        "every_s": r.every_s, "enabled": r.enabled, "next_run_at": r.next_run_at.isoformat(),
        "running": bool(r.lease_until and r.lease_until > utcnow()), "runs": r.runs,
        "failures": r.failures, "last_status": r.last_status,
        "last_finished_at": r.last_finished_at.isoformat() if r.last_finished_at else None,
        "last_error": r.last_error, "last_summary": r.last_summary,
        "what": JOBS[r.job].what if r.job in JOBS else None,
    }  # fmt: skip
