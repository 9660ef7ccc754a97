"""The jobs as Celery tasks on real worker processes and a real beat, over this machine's Redis,
against the test database: every job runs from the beat's ticks, and a repeated message runs a job
once."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, select

from plugin.db.models import ScheduledJob
from plugin.jobs.catalog import JOBS
from plugin.services.program_rules import load_rules
from plugin.services.rewards import grant, ledger
from plugin.settings import Settings
from tests.plugin.celery_procs import BROKER, celery, wait_for
from tests.plugin.test_rewards import member_id  # noqa: F401 (a fixture)


def _runs(engine: Engine) -> dict[str, tuple[int, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(select(ScheduledJob.job, ScheduledJob.runs, ScheduledJob.last_status))
        return {r.job: (r.runs, r.last_status) for r in rows}


def test_the_beat_and_celery_workers_run_every_job_and_do_its_work(
    engine: Engine,
    settings: Settings,
    workspace_id: int,
    member_id: int,  # noqa: F811
    tmp_path: Path,
) -> None:
    with engine.begin() as conn:
        long_ago = datetime.now(UTC) - timedelta(days=60)
        held = grant(
            conn,
            workspace_id,
            member_id,
            "referral_converted",
            key="r-9",
            rules=load_rules(),
            by="t",
            now=long_ago,
        )
    with celery(settings, tmp_path) as procs:
        procs.worker()
        procs.beat()
        wait_for(lambda: all(runs for runs, _ in _runs(engine).values()) and len(_runs(engine)) == len(JOBS),
                 90, procs, "every job should have run once")  # fmt: skip
        statuses = {job: status for job, (_, status) in _runs(engine).items()}
        assert statuses["crm_sync"] == "skipped" and statuses["score"] == "ok", statuses
        with engine.connect() as conn:
            assert {r["id"]: r["status"] for r in ledger(conn, workspace_id)}[held.grant_id] == "approved"
        # The webhooks job (every 5 s) runs again from later ticks, on whichever worker is free.
        first = _runs(engine)["webhooks"][0]
        wait_for(lambda: _runs(engine)["webhooks"][0] > first, 30, procs, "the webhooks job should run again")
        assert "flywheel.run_job" in procs.output() and "Celery" in procs.output()


def test_a_job_message_delivered_twice_runs_once(
    engine: Engine, settings: Settings, workspace_id: int, tmp_path: Path
) -> None:
    from plugin.jobs.celery_app import configure, run_job_task
    from plugin.jobs.runner import tick

    slow = dataclasses.replace(settings, broker_url=BROKER)
    with celery(settings, tmp_path) as procs:
        configure(slow)
        due = tick(engine, slow)
        for job_id in due + due:  # every message twice, as a broker may redeliver
            run_job_task.apply_async((job_id,))
        procs.worker()
        wait_for(lambda: all(runs for runs, _ in _runs(engine).values()), 60, procs, "every job should run")
        wait_for(
            lambda: len(procs.handled("flywheel.run_job")) >= 2 * len(due), 30, procs, "all messages handled"
        )
        assert {runs for runs, _ in _runs(engine).values()} == {1}, _runs(engine)  # once each
        assert sum("not due or taken" in line for line in procs.handled("flywheel.run_job")) == len(due)
