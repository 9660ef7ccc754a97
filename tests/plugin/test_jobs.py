"""Background jobs on the embedded default: the schedule in SQL, leases, retries, per-workspace
intervals, and the jobs themselves doing their work when a worker runs them."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from plugin.cli import cli
from plugin.db.models import PanelMember, RewardGrant, ScheduledJob
from plugin.errors import TransientError
from plugin.jobs import catalog, schedule
from plugin.jobs.catalog import JOBS, JobContext
from plugin.jobs.runner import Loop, run_job, tick
from plugin.services import panel_invites, panels
from plugin.services.program_rules import Programs, load_rules
from plugin.services.rewards import grant, ledger
from plugin.services.workspaces import ensure_workspace
from plugin.settings import ConfigError, Settings, load_settings
from tests.plugin.test_panel_invites import URL, _drawn
from tests.plugin.test_panels import _spec
from tests.plugin.test_rewards import member_id  # noqa: F401 (fixture)


def _row(engine: Engine, job: str, workspace_id: int | None = None) -> ScheduledJob:
    scope = schedule.scope_of(workspace_id if JOBS[job].scope == "workspace" else None)
    with Session(engine) as session:
        return session.scalars(
            select(ScheduledJob).where(ScheduledJob.scope == scope, ScheduledJob.job == job)
        ).one()


def _only(
    monkeypatch: pytest.MonkeyPatch, name: str, run: catalog.Callable[[JobContext], dict[str, object]]
) -> None:
    """Replace one job's work, keeping its name and schedule."""
    monkeypatch.setitem(JOBS, name, dataclasses.replace(JOBS[name], run=run))


def test_worker_once_runs_every_due_job_and_schedules_each_again_after_its_interval(
    engine: Engine, workspace_id: int, runner: CliRunner
) -> None:
    started = datetime.now(UTC)
    result = runner.invoke(cli, ["worker", "--once", "--json"])
    assert result.exit_code == 0, result.output
    ran = {r["job"]: r for r in json.loads(result.stdout)["ran"]}
    assert set(ran) == set(JOBS)  # the workspace's jobs and the install's, all due on first start
    assert (
        ran["crm_sync"]["status"] == "skipped" and "no CRM connected" in ran["crm_sync"]["summary"]["reason"]
    )
    assert ran["score"]["status"] == ran["reward_holds"]["status"] == "ok"
    for name, spec in JOBS.items():
        row = _row(engine, name, workspace_id)
        assert row.runs == 1 and row.lease_holder is None
        assert (
            timedelta(0)
            <= row.next_run_at - started - timedelta(seconds=spec.every_s)
            < timedelta(seconds=30)
        )
    again = runner.invoke(cli, ["worker", "--once", "--json"])
    assert json.loads(again.stdout)["ran"] == []  # nothing is due twice


def test_a_job_claimed_by_two_workers_at_once_runs_once(
    engine: Engine, settings: Settings, workspace_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    gate = threading.Event()

    def slow(ctx: JobContext) -> dict[str, object]:
        calls.append(1)
        gate.wait(5)
        return {}

    _only(monkeypatch, "reward_holds", slow)
    due = tick(engine, settings)
    job_id = _row(engine, "reward_holds", workspace_id).id
    assert job_id in due
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(run_job(engine, settings, job_id))) for _ in range(2)
    ]
    for t in threads:
        t.start()
    time.sleep(0.5)
    gate.set()
    for t in threads:
        t.join()
    assert len(calls) == 1 and sorted(map(str, results)).count("None") == 1
    assert tick(engine, settings).count(job_id) == 0  # and it is not due again now


def test_a_dead_workers_job_is_sent_again_once_its_lease_and_queue_time_are_over(
    engine: Engine, settings: Settings, workspace_id: int
) -> None:
    tick(engine, settings)
    job_id = _row(engine, "reward_holds", workspace_id).id
    with engine.begin() as conn:
        assert schedule.claim(conn, job_id, "dead-worker", lease_s=60) is not None  # then it died
    assert run_job(engine, settings, job_id) is None  # its lease holds: nobody else runs it
    assert job_id not in tick(engine, settings)
    past = datetime.now(UTC) - timedelta(seconds=1)
    with engine.begin() as conn:
        conn.execute(
            update(ScheduledJob).where(ScheduledJob.id == job_id).values(lease_until=past, queued_until=past)
        )
    assert job_id in tick(engine, settings)
    ran = run_job(engine, settings, job_id)
    assert ran is not None and ran.status == "ok"
    # The dead worker, should it wake up, cannot write over the run that replaced it.
    with engine.begin() as conn:
        claimed = schedule.Claimed(job_id, "reward_holds", workspace_id, 3600, 0)
        assert schedule.finish(conn, claimed, "dead-worker", "failed", error="late") is False
    assert _row(engine, "reward_holds", workspace_id).last_status == "ok"


def test_a_failing_job_says_why_and_is_retried_sooner_each_time_up_to_its_interval(
    engine: Engine, settings: Settings, workspace_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(ctx: JobContext) -> dict[str, object]:
        raise TransientError("the CRM answered 503", hint="it is retried by itself")

    _only(monkeypatch, "crm_pull", down)
    tick(engine, settings)
    job_id = _row(engine, "crm_pull", workspace_id).id
    waits = []
    for _ in range(3):
        with engine.begin() as conn:
            conn.execute(
                update(ScheduledJob).where(ScheduledJob.id == job_id).values(next_run_at=datetime.now(UTC))
            )
        before = datetime.now(UTC)
        ran = run_job(engine, settings, job_id)
        assert ran is not None and ran.status == "failed"
        row = _row(engine, "crm_pull", workspace_id)
        waits.append(round((row.next_run_at - before).total_seconds() / 10) * 10)
        assert row.last_error == "the CRM answered 503 (it is retried by itself)"
    assert waits == [30, 60, 120] and row.failures == 3

    def broken(ctx: JobContext) -> dict[str, object]:
        raise KeyError("token=pat-na1-secret")  # an unexpected error's text may hold anything

    _only(monkeypatch, "crm_pull", broken)
    with engine.begin() as conn:
        conn.execute(
            update(ScheduledJob).where(ScheduledJob.id == job_id).values(next_run_at=datetime.now(UTC))
        )
    run_job(engine, settings, job_id)
    row = _row(engine, "crm_pull", workspace_id)
    assert row.last_error == "internal error: KeyError; see the worker's log" and "pat-" not in row.last_error
    _only(monkeypatch, "crm_pull", lambda ctx: {"deals": 0})
    with engine.begin() as conn:
        conn.execute(
            update(ScheduledJob).where(ScheduledJob.id == job_id).values(next_run_at=datetime.now(UTC))
        )
    run_job(engine, settings, job_id)
    row = _row(engine, "crm_pull", workspace_id)
    assert row.failures == 0 and row.last_status == "ok" and row.last_error is None


def test_intervals_and_switches_are_per_workspace(
    engine: Engine, settings: Settings, workspace_id: int, runner: CliRunner
) -> None:
    with Session(engine) as session:
        other, _ = ensure_workspace(session, "emea", "EMEA")
        session.commit()
        other_id = other.id
    set_ = runner.invoke(cli, ["schedule", "set", "score", "--every", "10m", "--json"])
    assert set_.exit_code == 0, set_.output
    assert json.loads(set_.stdout)["every_s"] == 600
    off = runner.invoke(cli, ["schedule", "set", "score", "--disable", "--workspace", "emea"])
    assert off.exit_code == 0, off.output
    due = tick(engine, settings)
    assert _row(engine, "score", workspace_id).id in due
    assert _row(engine, "score", other_id).id not in due  # switched off there only
    assert _row(engine, "crm_sync", other_id).id in due
    listed = json.loads(runner.invoke(cli, ["schedule", "list", "--workspace", "emea", "--json"]).stdout)
    assert {j["job"]: j["enabled"] for j in listed["jobs"]}["score"] is False
    assert {j["scope"] for j in listed["jobs"]} == {"workspace", "install"}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["schedule", "set", "score"], "give --every 15m, --enable or --disable"),
        (["schedule", "set", "score", "--every", "often"], "e.g. 30s, 15m, 2h or 1d"),
        (["schedule", "set", "score", "--every", "0s"], "from 1 second to 366 days"),
        (["beat"], "FLYWHEEL_BROKER_URL"),
    ],
)
def test_schedule_and_beat_mistakes_say_what_to_do(runner: CliRunner, args: list[str], says: str) -> None:
    result = runner.invoke(cli, args)
    assert result.exit_code != 0 and says in result.output, result.output


def test_a_broker_url_of_another_kind_is_refused_at_start() -> None:
    with pytest.raises(ConfigError, match="redis:// or amqp://"):
        load_settings({"FLYWHEEL_BROKER_URL": "http://127.0.0.1:6379"})
    with pytest.raises(ConfigError, match="FLYWHEEL_JOB_LEASE_SECONDS"):
        load_settings({"FLYWHEEL_JOB_LEASE_SECONDS": "soon"})


def test_schedule_run_makes_a_job_due_and_the_worker_loop_runs_it(
    engine: Engine, settings: Settings, workspace_id: int, runner: CliRunner
) -> None:
    quick = dataclasses.replace(settings, tick_s=0.05)
    Loop(engine, quick).run(threading.Event(), once=True)  # everything ran once: nothing is due
    assert runner.invoke(cli, ["schedule", "run", "reward_holds"]).exit_code == 0
    stop = threading.Event()
    seen: list[str] = []
    loop = threading.Thread(
        target=Loop(engine, quick).run, args=(stop,), kwargs={"report": lambda r: seen.append(r.job)}
    )
    loop.start()
    deadline = time.monotonic() + 10
    while "reward_holds" not in seen and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    loop.join(10)
    assert "reward_holds" in seen and not loop.is_alive()


def test_the_reward_holds_job_approves_what_waited_long_enough(
    engine: Engine,
    settings: Settings,
    workspace_id: int,
    member_id: int,  # noqa: F811
) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=60)
    with engine.begin() as conn:
        rules = load_rules()
        due = grant(
            conn, workspace_id, member_id, "referral_converted", key="r-1", rules=rules, by="t", now=long_ago
        )
        fresh = grant(
            conn, workspace_id, member_id, "referral_converted", key="r-2", rules=load_rules(), by="t"
        )
    tick(engine, settings)
    ran = run_job(engine, settings, _row(engine, "reward_holds", workspace_id).id)
    assert ran is not None and ran.summary == {"approved": 1}
    with engine.connect() as conn:
        status = {r["id"]: r["status"] for r in ledger(conn, workspace_id)}
    assert status[due.grant_id] == "approved" and status[fresh.grant_id] == "pending"
    with Session(engine) as session:
        assert session.get(RewardGrant, due.grant_id) is not None
    assert Decimal(0) <= Decimal(1)


def test_the_panel_job_reminds_only_invitees_halfway_to_their_deadline(
    engine: Engine, settings: Settings, workspace_id: int
) -> None:
    live = dataclasses.replace(
        settings, public_url=URL, webhook_allow_http=True, webhook_allowed_networks="127.0.0.0/8"
    )
    early = _drawn(engine, live, workspace_id)
    with engine.begin() as conn:
        late = panels.create(conn, workspace_id, _spec())
        panels.run_draw(conn, workspace_id, late, seed=4)
        panel_invites.invite(
            conn, live, workspace_id, early, policy=Programs(), now=datetime.now(UTC) - timedelta(days=4)
        )
        panel_invites.invite(conn, live, workspace_id, late, policy=Programs())
    tick(engine, live)
    ran = run_job(engine, live, _row(engine, "panel_reminders", workspace_id).id)
    assert ran is not None and ran.status == "ok", ran
    with engine.connect() as conn:
        reminders = dict(
            conn.execute(
                select(PanelMember.panel_id, PanelMember.reminders).where(PanelMember.status == "invited")
            ).all()
        )
    assert reminders[early] == 1 and reminders[late] == 0  # four days of seven: reminded; today's: not yet
    assert ran.summary["reminded"] > 0 and ran.summary["panels"] == 2


def test_a_crm_job_that_finds_the_connection_busy_comes_back_soon_without_counting_a_failure(
    engine: Engine, settings: Settings, workspace_id: int
) -> None:
    from plugin.services.crm_connections import acquire_lease, save_connection

    row = save_connection(engine, settings, workspace_id, "hubspot", {"token": "t"}, "http://127.0.0.1:9")
    acquire_lease(engine, row.id, "a-crm-sync-elsewhere")
    tick(engine, settings)
    before = datetime.now(UTC)
    ran = run_job(engine, settings, _row(engine, "crm_pull", workspace_id).id)
    assert (
        ran is not None
        and ran.status == "busy"
        and "another sync of this CRM is running" in ran.summary["reason"]
    )
    job = _row(engine, "crm_pull", workspace_id)
    assert job.failures == 0 and timedelta(seconds=25) < job.next_run_at - before < timedelta(seconds=40)


def test_delivery_sweeps_leave_no_thread_behind(
    engine: Engine, settings: Settings, workspace_id: int
) -> None:
    tick(engine, settings)
    job_id = _row(engine, "webhooks").id
    before = threading.active_count()
    for _ in range(5):
        with engine.begin() as conn:
            conn.execute(
                update(ScheduledJob).where(ScheduledJob.id == job_id).values(next_run_at=datetime.now(UTC))
            )
        ran = run_job(engine, settings, job_id)
        assert ran is not None and ran.status == "ok"
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert threading.active_count() <= before


def test_metrics_show_due_and_failing_jobs(
    engine: Engine, settings: Settings, workspace_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from plugin.web.app import create_app

    def scrape() -> dict[str, float]:
        text = create_app(settings, engine).test_client().get("/metrics").get_data(as_text=True)
        return {
            s.name + "".join(f"/{v}" for v in s.labels.values()): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name.startswith("flywheel_job")
        }

    with engine.begin() as conn:
        schedule.ensure(conn)
    assert scrape()["flywheel_jobs_due"] == len(JOBS)  # nothing has run: every job is due
    _only(monkeypatch, "crm_pull", lambda ctx: (_ for _ in ()).throw(TransientError("down")))
    Loop(engine, settings).run(threading.Event(), once=True)
    seen = scrape()
    assert seen["flywheel_jobs_due"] == 0 and seen["flywheel_jobs_failing/crm_pull"] == 1
