"""One scoring run that stores scores per workspace at a time: a second one (a CLI run beside the
scheduled one) is told who runs and until when, stores nothing and announces nothing twice; a dead
run's lease runs out; a run that lost its lease while reading writes nothing."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, select, update

from plugin.cli import cli
from plugin.db.models import Lease, ScoreEvent, ScoreRun
from plugin.errors import Busy, TransientError
from plugin.jobs.runner import run_job, tick
from plugin.services import leases
from plugin.services.leases import SCORE_LEASE_S, score_lease_name
from plugin.settings import Settings
from tests.plugin.test_jobs import _row
from tests.plugin.test_score import score, stored


def runs(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(ScoreRun)).scalar_one())


def events(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(ScoreEvent)).scalar_one())


def lease_row(engine: Engine, workspace_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(Lease).where(Lease.name == score_lease_name(workspace_id))).first()


def test_a_second_run_while_one_is_scoring_is_told_who_runs_and_stores_nothing(
    engine: Engine, workspace_id: int, people: dict[str, int]
) -> None:
    """The first run is held inside its reading (its progress callback); a second run meanwhile
    refuses with the holder and its lease time, and the first then stores its run normally."""
    reading = threading.Event()
    go_on = threading.Event()
    first: dict[str, Any] = {}

    def progress(msg: str) -> None:
        if msg == "reading activities":
            reading.set()
            go_on.wait(30)

    def run_first() -> None:
        first["report"] = score(engine, workspace_id, progress=progress)

    thread = threading.Thread(target=run_first)
    thread.start()
    try:
        assert reading.wait(30)
        with pytest.raises(Busy) as busy:
            score(engine, workspace_id)
        assert "a scoring run of this workspace is in progress" in busy.value.user_message
        assert "lease until" in busy.value.user_message and "try again" in (busy.value.hint or "")
        assert runs(engine) == 0  # the refused run stored nothing
    finally:
        go_on.set()
        thread.join(60)
    report = first["report"]
    assert report.run_id is not None and runs(engine) == 1 and sum(report.events.values()) > 0
    assert lease_row(engine, workspace_id).holder is None  # released at the end
    again = score(engine, workspace_id, full=True)  # free again: the next run goes ahead
    assert again.run_id is not None and sum(again.events.values()) == 0 and runs(engine) == 2


def test_a_backtest_takes_no_lease_and_runs_beside_a_scoring_run(
    engine: Engine, workspace_id: int, people: dict[str, int]
) -> None:
    leases.acquire(engine, score_lease_name(workspace_id), "another-process", SCORE_LEASE_S, "a scoring run")
    report = score(engine, workspace_id, as_of=datetime(2026, 1, 1, tzinfo=UTC))
    assert report.mode == "as_of" and report.members_scored > 0 and runs(engine) == 0


def test_a_dead_runs_lease_runs_out_and_the_next_run_takes_it(
    engine: Engine, workspace_id: int, people: dict[str, int]
) -> None:
    name = score_lease_name(workspace_id)
    leases.acquire(
        engine, name, "a-process-that-died", 60, "a scoring run", now=datetime.now(UTC) - timedelta(minutes=5)
    )
    report = score(engine, workspace_id)
    assert report.run_id is not None and stored(engine, "advocate")
    assert lease_row(engine, workspace_id).holder is None


def test_a_run_that_lost_its_lease_while_reading_writes_nothing(
    engine: Engine, workspace_id: int, people: dict[str, int]
) -> None:
    """Paused past its lease (a stopped machine), the run finds another holder at its write: it
    stops with an error saying so, and neither its scores nor its events are stored."""
    name = score_lease_name(workspace_id)

    def progress(msg: str) -> None:
        if msg.startswith("scoring "):  # after the read, before the write: another run took over
            with engine.begin() as conn:
                conn.execute(update(Lease).where(Lease.name == name).values(holder="the-other-run"))

    with pytest.raises(TransientError) as lost:
        score(engine, workspace_id, progress=progress)
    assert "lost its lease" in lost.value.user_message and "nothing was written" in lost.value.user_message
    assert runs(engine) == 0 and events(engine) == 0 and not stored(engine, "advocate")
    assert lease_row(engine, workspace_id).holder == "the-other-run"  # not released from under the other


def test_the_cli_says_a_run_is_in_progress_and_exits_for_a_retry(
    runner: CliRunner, engine: Engine, workspace_id: int, people: dict[str, int]
) -> None:
    leases.acquire(
        engine, score_lease_name(workspace_id), "worker-7", SCORE_LEASE_S, "a scoring run of this workspace"
    )
    got = runner.invoke(cli, ["score", "--json"])
    assert got.exit_code == TransientError.exit_code, got.output
    assert "a scoring run of this workspace is in progress (worker-7" in got.output
    assert "try again" in got.output
    assert runs(engine) == 0


def test_the_scheduled_score_job_finds_a_cli_run_busy_and_comes_back_soon(
    engine: Engine, settings: Settings, workspace_id: int, people: dict[str, int]
) -> None:
    leases.acquire(
        engine, score_lease_name(workspace_id), "a-cli-run", SCORE_LEASE_S, "a scoring run of this workspace"
    )
    tick(engine, settings)
    before = datetime.now(UTC)
    ran = run_job(engine, settings, _row(engine, "score", workspace_id).id)
    assert ran is not None and ran.status == "busy" and "in progress (a-cli-run" in ran.summary["reason"]
    job = _row(engine, "score", workspace_id)
    assert job.failures == 0
    assert job.next_run_at.replace(tzinfo=UTC) <= before + timedelta(seconds=61)  # soon, not in 15 min


def test_a_run_asked_for_while_another_writes_its_results_is_told_busy_soon(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The holder confirms its lease inside the transaction that writes its results, which locks
    the lease (a row lock on PostgreSQL, the write lock on SQLite). A second run does not wait for
    that write to end, nor fail with a database error: it is told Busy after a short wait."""
    monkeypatch.setattr(leases, "LOCK_WAIT_S", 1)
    name = "score:workspace:999"
    leases.acquire(engine, name, "first", SCORE_LEASE_S, "a scoring run of this workspace")
    out: dict[str, Any] = {}

    def second() -> None:
        started = time.perf_counter()
        try:
            leases.acquire(engine, name, "second", SCORE_LEASE_S, "a scoring run of this workspace")
            out["got"] = "the lease"
        except Busy as exc:
            out["got"] = exc.user_message
        out["seconds"] = time.perf_counter() - started

    with engine.begin() as conn:
        leases.Held(name, "first", SCORE_LEASE_S).confirm(conn)
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(30)  # the first is still writing meanwhile
    assert "another one is writing its results right now" in out["got"] and out["seconds"] < 5, out
    with engine.connect() as conn:  # the wait was cut for that attempt only
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
