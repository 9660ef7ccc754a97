"""The Celery side of the jobs: one app, two tasks, one beat entry.

Beat sends ``flywheel.tick`` every ``FLYWHEEL_TICK_SECONDS``; a worker running it marks the due jobs
in SQL and sends one ``flywheel.run_job`` per job; any worker runs that under the job's lease. No
countdown or ETA ever goes to the broker (a Redis broker re-delivers long countdowns after its
visibility timeout): when a job runs next is a column, so a lost, repeated or late message costs a
tick, never a run. ``celery -A plugin.jobs.celery_app worker`` works as well as ``flywheel worker``.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from celery import Celery
from celery.signals import worker_process_init
from sqlalchemy import Engine

from plugin.db.engine import make_engine
from plugin.settings import Settings, load_settings

app = Celery("flywheel")
QUEUE = "flywheel"
_state: dict[str, Any] = {}
_lock = threading.Lock()


def configure(settings: Settings) -> Celery:
    """Point the app at the settings' broker; every option here follows from running jobs that are
    idempotent and leased in SQL."""
    app.conf.update(
        broker_url=settings.broker_url,
        broker_connection_retry_on_startup=True,
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        # A message is acknowledged when its task ends, and given back if the worker dies under it:
        # with the SQL lease a second delivery is harmless, a lost one would only cost a tick.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Long jobs (a full rescore, a large CRM sync) must not be re-delivered while they run.
        broker_transport_options={"visibility_timeout": 6 * 3600},
        # A tick that waited behind long jobs is stale by then: dropped, the next one is on its way.
        beat_schedule={
            "flywheel-tick": {
                "task": "flywheel.tick",
                "schedule": settings.tick_s,
                "options": {"expires": max(4 * settings.tick_s, 2.0)},
            }
        },
        timezone="UTC",
        enable_utc=True,
        worker_hijack_root_logger=False,
        # Our log handler writes to stderr itself; redirected stdio would loop it back into logging.
        worker_redirect_stdouts=False,
    )
    with _lock:
        _state.clear()
        _state["settings"] = settings
    return app


def _settings() -> Settings:
    with _lock:
        if "settings" not in _state:
            _state["settings"] = load_settings()
        return _state["settings"]  # type: ignore[no-any-return]


def _engine() -> Engine:
    with _lock:
        if "engine" not in _state or _state.get("pid") != os.getpid():
            _state["engine"] = make_engine(_state.get("settings") or load_settings())
            _state["pid"] = os.getpid()
        return _state["engine"]  # type: ignore[no-any-return]


@worker_process_init.connect
def _fresh_after_fork(**_: Any) -> None:
    """A prefork child must not share its parent's database connections."""
    with _lock:
        _state.pop("engine", None)


@app.task(name="flywheel.tick")
def tick_task() -> int:
    from plugin.jobs.runner import tick

    due = tick(_engine(), _settings())
    for job_id in due:
        run_job_task.apply_async((job_id,), queue=QUEUE)
    return len(due)


@app.task(name="flywheel.run_job")
def run_job_task(job_id: int) -> str:
    from plugin.jobs.runner import run_job

    ran = run_job(_engine(), _settings(), job_id)
    return "not due or taken" if ran is None else ran.status


if os.environ.get("FLYWHEEL_BROKER_URL"):  # `celery -A plugin.jobs.celery_app ...`
    configure(load_settings())
