"""Prometheus metrics: counters kept by each web process, and gauges read from the database when
``/metrics`` is scraped.

In-process: HTTP requests by blueprint group and status class with a latency histogram, and
inbound hook events by source and outcome (plugin.web.ops records them). Under gunicorn several
worker processes serve requests; with ``PROMETHEUS_MULTIPROC_DIR`` set (``flywheel serve`` sets a
fresh one for its workers) each process writes its counts to files there and a scrape, answered by
any worker, sums them all.

From the database, at scrape time, with cheap queries only (index ranges and primary-key seeks,
never a count over activities): the webhook outbox's queue, its attempts of the last hour, the last
scoring run of each workspace, and CRM sync runs of the last day. Another part of Flywheel adds its
own gauges with :func:`register_collector` (e.g. background jobs from their ``scheduled_jobs``
table), without this module knowing its tables.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.orm import InstrumentedAttribute

from plugin.db.models import (
    CrmConnection,
    CrmSyncRun,
    ScheduledJob,
    ScoreRun,
    WebhookAttempt,
    WebhookDelivery,
    Workspace,
)

__all__ = [
    "CONTENT_TYPE_LATEST",
    "MULTIPROC_ENV",
    "ExtraCollector",
    "child_exit",
    "count_hook_event",
    "exposition",
    "multiprocess_dir",
    "observe_request",
    "register_collector",
]

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Queue counts stop at this many rows (an index range of at most this length is read per scrape).
QUEUE_COUNT_CAP = 100_000
ATTEMPTS_WINDOW = timedelta(hours=1)
CRM_WINDOW = timedelta(days=1)

#: A collector of extra gauges: given a connection and the time, the metric families to expose.
ExtraCollector = Callable[[Connection, datetime], Iterable[Metric]]


# -- in-process counters ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Instruments:
    registry: CollectorRegistry
    http_requests: Counter
    http_seconds: Histogram
    hook_events: Counter


_lock = threading.Lock()
_instruments: _Instruments | None = None


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def _build() -> _Instruments:
    if multiprocess_dir():
        # The value class is chosen when prometheus_client is imported; a parent process that
        # imported it before setting the directory (gunicorn's master) must not decide for us.
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry()
    made = _Instruments(
        registry=registry,
        http_requests=Counter(
            "flywheel_http_requests",
            "HTTP requests answered, by blueprint group and status class (2xx, 4xx, ...)",
            ["group", "status_class"],
            registry=registry,
        ),
        http_seconds=Histogram(
            "flywheel_http_request_duration_seconds",
            "Time to answer an HTTP request, by blueprint group",
            ["group"],
            registry=registry,
        ),
        hook_events=Counter(
            "flywheel_hook_events",
            "Inbound webhook requests, by source and outcome (stored, duplicate, ignored, "
            "unauthorized, invalid, too_large, rate_limited, unknown_source, error, ...)",
            ["source", "outcome"],
            registry=registry,
        ),
    )
    if not multiprocess_dir():
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    return made


def _get() -> _Instruments:
    global _instruments
    if _instruments is None:
        with _lock:
            if _instruments is None:
                _instruments = _build()
    return _instruments


def observe_request(group: str, status: int, seconds: float) -> None:
    metrics = _get()
    metrics.http_requests.labels(group, f"{status // 100}xx").inc()
    metrics.http_seconds.labels(group).observe(max(0.0, seconds))


def count_hook_event(source: str, outcome: str) -> None:
    _get().hook_events.labels(source, outcome).inc()


def child_exit(_server: Any, worker: Any) -> None:
    """gunicorn's ``child_exit`` hook: a dead worker's live gauges are dropped (its counts stay)."""
    if multiprocess_dir():
        mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


# -- gauges from the database --------------------------------------------------------------------


_extra: dict[str, ExtraCollector] = {}


def register_collector(fn: ExtraCollector, name: str | None = None) -> ExtraCollector:
    """Add gauges computed at each scrape: ``fn(connection, now)`` returns metric families (e.g.
    ``GaugeMetricFamily``). Keep it to cheap, indexed queries; a failing collector is logged and
    reported as ``flywheel_metrics_collector_up{collector=NAME} 0`` without spoiling the scrape.
    Registering the same name again replaces it. Usable as a decorator."""
    _extra[name or fn.__name__] = fn
    return fn


def _first_id_since(
    conn: Connection, id_col: InstrumentedAttribute[int], at_col: InstrumentedAttribute[Any], since: datetime
) -> int | None:
    """The lowest id whose row is at or after ``since``, for append-mostly tables whose ids grow
    with their time column but which have no index on it: a binary search of primary-key seeks.
    None when no row is that recent."""
    lo, hi = conn.execute(select(func.min(id_col), func.max(id_col))).one()
    if hi is None:
        return None
    last = conn.execute(select(at_col).where(id_col == hi)).scalar_one()
    if last < since:
        return None
    lo, hi = int(lo), int(hi)
    while lo < hi:
        mid = (lo + hi) // 2
        at = conn.execute(select(at_col).where(id_col >= mid).order_by(id_col).limit(1)).scalar_one()
        if at >= since:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _capped_count(conn: Connection, query: Any) -> int:
    return int(
        conn.execute(select(func.count()).select_from(query.limit(QUEUE_COUNT_CAP).subquery())).scalar_one()
    )


def _webhook_queue(conn: Connection, now: datetime) -> Iterable[Metric]:
    d = WebhookDelivery
    pending = select(d.next_attempt_at).where(d.status == "pending")
    due = pending.where(d.next_attempt_at <= now)
    oldest = conn.execute(
        select(func.min(d.next_attempt_at)).where(d.status == "pending", d.next_attempt_at <= now)
    ).scalar_one()
    yield GaugeMetricFamily(
        "flywheel_webhook_deliveries_pending",
        f"Outgoing webhook deliveries waiting to be sent, due or not (counted up to {QUEUE_COUNT_CAP})",
        value=_capped_count(conn, pending),
    )
    yield GaugeMetricFamily(
        "flywheel_webhook_deliveries_due",
        f"Outgoing webhook deliveries due now and not claimed by a worker (counted up to {QUEUE_COUNT_CAP})",
        value=_capped_count(conn, due),
    )
    yield GaugeMetricFamily(
        "flywheel_webhook_oldest_due_age_seconds",
        "How long the longest-waiting due delivery has been due (0: none is due)",
        value=max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0,
    )


def attempt_outcome(status: int | None) -> str:
    if status is None:
        return "no_response"
    if 200 <= status < 300:
        return "success"
    if 400 <= status < 500:
        return "http_4xx"
    if 500 <= status < 600:
        return "http_5xx"
    return "http_other"


ATTEMPT_OUTCOMES = ("success", "http_4xx", "http_5xx", "http_other", "no_response")


def _webhook_attempts(conn: Connection, now: datetime) -> Iterable[Metric]:
    a = WebhookAttempt
    since = now - ATTEMPTS_WINDOW
    tally: Tally[str] = Tally()
    first = _first_id_since(conn, a.id, a.attempted_at, since)
    if first is not None:
        rows = conn.execute(
            select(a.status, func.count()).where(a.id >= first, a.attempted_at >= since).group_by(a.status)
        )
        for status, n in rows:
            tally[attempt_outcome(status)] += int(n)
    family = GaugeMetricFamily(
        "flywheel_webhook_attempts_last_hour",
        "Outgoing webhook attempts in the last hour, by outcome",
        labels=["outcome"],
    )
    for outcome in ATTEMPT_OUTCOMES:
        family.add_metric([outcome], tally[outcome])
    yield family


def _score_runs(conn: Connection, now: datetime) -> Iterable[Metric]:
    r = ScoreRun
    latest = (
        select(func.max(r.id).label("id"))
        .where(r.finished_at.is_not(None), r.mode != "as_of")  # backtests are not the live scores
        .group_by(r.workspace_id)
        .subquery()
    )
    rows = conn.execute(
        select(Workspace.slug, r.started_at, r.finished_at, r.members_scored)
        .join(latest, latest.c.id == r.id)
        .join(Workspace, Workspace.id == r.workspace_id)
        .order_by(Workspace.slug)
    ).all()
    duration = GaugeMetricFamily(
        "flywheel_score_last_run_duration_seconds",
        "How long the last finished scoring run of each workspace took",
        labels=["workspace"],
    )
    age = GaugeMetricFamily(
        "flywheel_score_last_run_age_seconds",
        "Time since the last scoring run of each workspace finished",
        labels=["workspace"],
    )
    members = GaugeMetricFamily(
        "flywheel_score_last_run_members",
        "Members scored by the last finished scoring run of each workspace",
        labels=["workspace"],
    )
    for slug, started, finished, scored in rows:
        if finished is None:  # not selected; for the type checker
            continue
        duration.add_metric([slug], max(0.0, (finished - started).total_seconds()))
        age.add_metric([slug], max(0.0, (now - finished).total_seconds()))
        members.add_metric([slug], scored or 0)
    yield from (duration, age, members)


def _crm_runs(conn: Connection, now: datetime) -> Iterable[Metric]:
    r = CrmSyncRun
    since = now - CRM_WINDOW
    runs: Tally[tuple[str, str, str]] = Tally()
    calls: Tally[tuple[str, str]] = Tally()
    records: Tally[tuple[str, str]] = Tally()
    first = _first_id_since(conn, r.id, r.started_at, since)
    if first is not None:
        rows = conn.execute(
            select(CrmConnection.kind, r.direction, r.status, r.counts, r.calls)
            .join(CrmConnection, CrmConnection.id == r.connection_id)
            .where(r.id >= first, r.started_at >= since)
        )
        for kind, direction, status, counts, made in rows:
            runs[(kind, direction, status)] += 1
            for operation, n in (made or {}).items():
                if isinstance(n, int | float):
                    calls[(kind, str(operation))] += int(n)
            for outcome, n in (counts or {}).items():
                if isinstance(n, int | float):
                    records[(kind, str(outcome))] += int(n)
    yield _family(
        "flywheel_crm_sync_runs_last_day",
        "CRM sync and pull runs started in the last 24 hours, by CRM, direction and status "
        "(running, done, failed)",
        ["crm", "direction", "status"],
        runs,
    )
    yield _family(
        "flywheel_crm_api_calls_last_day",
        "CRM API calls made by the runs of the last 24 hours, by CRM and operation",
        ["crm", "operation"],
        calls,
    )
    yield _family(
        "flywheel_crm_records_last_day",
        "Records handled by the CRM runs of the last 24 hours, by CRM and outcome (created, "
        "updated, unchanged, failed, ...)",
        ["crm", "outcome"],
        records,
    )


def _family(name: str, doc: str, labels: list[str], counts: Tally[Any]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for key in sorted(counts):
        family.add_metric(list(key), counts[key])
    return family


def _jobs(conn: Connection, now: datetime) -> Iterable[Metric]:
    """The background job schedule (a few rows per workspace: read whole)."""
    t = ScheduledJob
    rows = conn.execute(
        select(t.job, t.next_run_at, t.lease_until, t.failures, t.enabled, t.last_finished_at)
    ).all()
    due = [
        r for r in rows if r.enabled and r.next_run_at <= now and not (r.lease_until and r.lease_until > now)
    ]
    yield GaugeMetricFamily(
        "flywheel_jobs_due", "Scheduled jobs due now that no worker runs yet", value=len(due)
    )
    yield GaugeMetricFamily(
        "flywheel_job_oldest_due_age_seconds",
        "How long the longest-waiting due job has been due (grows when no worker or beat is running)",
        value=max((now - r.next_run_at).total_seconds() for r in due) if due else 0.0,
    )
    yield _family("flywheel_jobs_running", "Jobs running now (under a live lease), by job", ["job"],
                  Tally((r.job,) for r in rows if r.lease_until and r.lease_until > now))  # fmt: skip
    yield _family("flywheel_jobs_failing", "Jobs whose last run failed (retried), by job", ["job"],
                  Tally((r.job,) for r in rows if r.failures))  # fmt: skip
    finished = [r.last_finished_at for r in rows if r.last_finished_at]
    yield GaugeMetricFamily(
        "flywheel_job_last_finished_age_seconds",
        "Time since any job last finished (a stalled worker shows here)",
        value=(now - max(finished)).total_seconds() if finished else 0.0,
    )


_BUILTIN: dict[str, ExtraCollector] = {
    "jobs": _jobs,
    "webhook_queue": _webhook_queue,
    "webhook_attempts": _webhook_attempts,
    "score_runs": _score_runs,
    "crm_runs": _crm_runs,
}


class DatabaseCollector(Collector):
    """The gauges read from the database, computed anew at each scrape."""

    def __init__(self, engine: Engine, now: datetime) -> None:
        self.engine = engine
        self.now = now

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "flywheel_metrics_collector_up",
            "1 when the collector's gauges were read from the database at this scrape, else 0",
            labels=["collector"],
        )
        for name, fn in [*_BUILTIN.items(), *_extra.items()]:
            try:
                with self.engine.connect() as conn:
                    families = list(fn(conn, self.now))
            except Exception as exc:  # a scrape still answers with everything else
                log.warning("metrics collector %s failed: %s", name, exc)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from families
        yield up


class _Forward(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()


def exposition(engine: Engine, now: datetime) -> bytes:
    """The Prometheus text exposition of every metric: this process's (or, in multiprocess mode,
    every worker's) counters and the database gauges as of ``now``."""
    registry = CollectorRegistry()
    directory = multiprocess_dir()
    if directory:
        _get()  # so this process's families exist even before it served a request
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Forward(_get().registry))
    registry.register(DatabaseCollector(engine, now))
    return generate_latest(registry)
