"""Production mode under faults: Celery workers killed with SIGKILL in the middle of a CRM sync and
of webhook delivery, and the broker and PostgreSQL restarted in the middle of a run. Nothing is
lost, no CRM record is made twice, every webhook message arrives at least once (a repeat with the
same id and bytes)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, func, select

from plugin.db.models import CrmLink, ScheduledJob, WebhookDelivery
from plugin.jobs import schedule
from plugin.jobs.catalog import JOBS
from plugin.services.crm_connections import save_connection
from plugin.services.webhook_endpoints import add_endpoint
from plugin.services.webhook_outbox import Event, emit
from plugin.settings import Settings
from tests.fakes.hubspot import HubSpotFake
from tests.fakes.webhook_receiver import Receiver
from tests.plugin.celery_procs import BROKER, Procs, celery, wait_for
from tests.plugin.test_crm_hubspot import UPSERT, members
from webhooks.events import MemberRef, referral_invitation

pytestmark = pytest.mark.slow
WEBHOOK_ENV = {
    "FLYWHEEL_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    "FLYWHEEL_WEBHOOK_ALLOW_HTTP": "1",
    "FLYWHEEL_WEBHOOK_SCHEDULE": "0,0.05,0.1,0.2,0.3,0.3,0.3,0.3,0.3,0.3,0.3,0.3",
    "FLYWHEEL_WEBHOOK_TIMEOUT": "0.5",
}


def _only(engine: Engine, workspace_id: int, job: str, every_s: int = 1) -> None:
    """Switch every job off but one, which runs every ``every_s``."""
    with engine.begin() as conn:
        schedule.ensure(conn)
        for name in JOBS:
            schedule.configure(conn, workspace_id, name, enabled=name == job)
        schedule.configure(conn, workspace_id, job, every_s=every_s)


def _job(engine: Engine, job: str) -> ScheduledJob:
    with engine.connect() as conn:
        return conn.execute(select(*ScheduledJob.__table__.c).where(ScheduledJob.job == job)).one()  # type: ignore[return-value]


def test_a_crm_sync_whose_worker_is_killed_is_finished_by_another_without_a_duplicate(
    engine: Engine, settings: Settings, workspace_id: int, hubspot_fake: HubSpotFake, tmp_path: Path
) -> None:
    n = 1_500
    members(engine, workspace_id, n)
    connection = save_connection(
        engine, settings, workspace_id, "hubspot", {"token": hubspot_fake.token}, hubspot_fake.base_url
    )
    hubspot_fake.slow(*UPSERT, seconds=0.4, nth=1, times=100_000)  # 15 batches: about 6 s in all
    _only(engine, workspace_id, "crm_sync", every_s=3600)
    # The CRM lease runs out before the job's, so the next worker's run finds the CRM free.
    with celery(settings, tmp_path, FLYWHEEL_CRM_LEASE_SECONDS="2", FLYWHEEL_JOB_LEASE_SECONDS="4") as procs:
        started = time.monotonic()
        first = procs.worker()
        procs.beat()
        wait_for(
            lambda: len(hubspot_fake.store.all("contacts")) >= 300, 60, procs, "the sync should be under way"
        )
        Procs.kill(first)
        in_crm = len(hubspot_fake.store.all("contacts"))
        assert in_crm < n, "the kill came too late to test anything"
        procs.worker()
        wait_for(
            lambda: _job(engine, "crm_sync").last_status == "ok", 90, procs, "the sync should be finished"
        )
    contacts = hubspot_fake.store.all("contacts")
    emails = [c["properties"]["email"] for c in contacts]
    assert len(contacts) == n and len(set(emails)) == n  # each member once: none lost, none twice
    with engine.connect() as conn:
        links = (
            conn.execute(select(CrmLink.crm_id).where(CrmLink.connection_id == connection.id)).scalars().all()
        )
    assert sorted(links) == sorted(c["id"] for c in contacts)  # every member linked to its own record
    row = _job(engine, "crm_sync")
    assert row.runs == 1 and row.lease_holder is None  # the killed run never finished; the next did
    took = time.monotonic() - started
    print(
        f"crm kill: {n:,} members, SIGKILL with {in_crm:,} in the CRM, finished in {took:.1f} s, no duplicate"
    )


def _messages(
    engine: Engine, workspace_id: int, receiver: Receiver, settings: Settings, count: int
) -> list[str]:
    import dataclasses

    from sqlalchemy.orm import Session

    development = dataclasses.replace(
        settings, webhook_allowed_networks="127.0.0.0/8", webhook_allow_http=True
    )
    with Session(engine) as session:
        created = add_endpoint(session, development, workspace_id, receiver.url, events="referral.invitation")
        session.commit()
    receiver.trust(created.secret)
    now = datetime.now(UTC)
    events = [
        Event("referral.invitation", referral_invitation(
            workspace="default", occurred_at=now, member=MemberRef(i + 1, f"Member {i + 1}", "de"),
            code=f"REF{i:06d}", referral_url=f"https://flywheel.example.com/r/REF{i:06d}", campaign="winter"))
        for i in range(count)
    ]  # fmt: skip
    with engine.begin() as conn:
        return emit(conn, workspace_id, events)


def _delivered(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status))
        return {r[0]: r[1] for r in rows}


def _all_arrived(engine: Engine, receiver: Receiver, sent: list[str]) -> None:
    assert _delivered(engine) == {"delivered": len(sent)}  # none lost, none failed, none stuck
    seen = receiver.seen
    assert seen.bad_signatures == 0 and set(seen.accepted) == set(sent) == set(seen.bodies)
    assert seen.stats()["ids_with_differing_bodies"] == 0  # a repeat is the same message


@pytest.fixture
def faulty() -> Iterator[Receiver]:
    with Receiver(fail_rate=0.2, timeout_rate=0.02, hang_s=1.5, seed=12) as receiver:
        yield receiver


def test_webhook_delivery_on_killed_celery_workers_loses_nothing(
    engine: Engine, settings: Settings, workspace_id: int, faulty: Receiver, tmp_path: Path
) -> None:
    sent = _messages(engine, workspace_id, faulty, settings, 4_000)
    _only(engine, workspace_id, "webhooks")
    with celery(settings, tmp_path, **WEBHOOK_ENV) as procs:
        started = time.monotonic()
        procs.beat()
        for _ in range(2):
            worker = procs.worker()
            wait_for(lambda: faulty.seen.requests > 0, 60, procs, "delivery should have started")
            time.sleep(1.0)
            Procs.kill(worker)
        assert _delivered(engine).get("delivered", 0) < len(sent), "the kills came too late to test anything"
        procs.worker()
        wait_for(
            lambda: _delivered(engine).get("delivered", 0) == len(sent), 180, procs, "all should be delivered"
        )
    _all_arrived(engine, faulty, sent)
    took = time.monotonic() - started
    print(
        f"webhook kills: {len(sent):,} messages, 2 SIGKILLs, all delivered in {took:.1f} s; "
        f"{faulty.seen.stats()}"
    )


def _restart_redis() -> None:
    client = redis.Redis.from_url(BROKER)
    with contextlib.suppress(redis.ConnectionError):  # it closes the connection as it goes
        client.shutdown(nosave=True)
    time.sleep(0.5)
    subprocess.run(
        ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379",
         "--save", "", "--appendonly", "no"],
        check=True, capture_output=True,
    )  # fmt: skip
    for _ in range(50):
        try:
            redis.Redis.from_url(BROKER).ping()
            return
        except redis.ConnectionError:
            time.sleep(0.1)
    raise AssertionError("redis-server did not come back")


def _restart_postgres() -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        capture_output=True,
    )


def _can_restart(settings: Settings) -> str | None:
    if not BROKER.startswith("redis://127.0.0.1:6379"):
        return "the broker is not this machine's Redis"
    if not shutil.which("redis-server"):
        return "redis-server is not installed here"
    if settings.is_sqlite:
        return "the PostgreSQL restart needs the PostgreSQL run (FLYWHEEL_TEST_DATABASE_URL)"
    if not (shutil.which("pg_ctlcluster") and os.path.isdir("/etc/postgresql") and os.geteuid() == 0):
        return "restarting PostgreSQL needs pg_ctlcluster and root"
    return None


def test_restarting_the_broker_and_postgresql_mid_run_loses_nothing(
    engine: Engine, settings: Settings, workspace_id: int, faulty: Receiver, tmp_path: Path
) -> None:
    why = _can_restart(settings)
    if why:
        pytest.skip(why)
    sent = _messages(engine, workspace_id, faulty, settings, 4_000)
    _only(engine, workspace_id, "webhooks")
    with celery(settings, tmp_path, **WEBHOOK_ENV) as procs:
        started = time.monotonic()
        procs.beat()
        procs.worker()
        wait_for(lambda: faulty.seen.requests > 200, 60, procs, "delivery should have started")
        _restart_redis()  # the queue is gone with it: no persistence
        time.sleep(1.0)
        _restart_postgres()  # every connection of every process is cut
        assert _delivered(engine).get("delivered", 0) < len(sent), (
            "the restarts came too late to test anything"
        )
        wait_for(
            lambda: _delivered(engine).get("delivered", 0) == len(sent), 180, procs, "all should be delivered"
        )
    _all_arrived(engine, faulty, sent)
    took = time.monotonic() - started
    print(
        f"restarts: {len(sent):,} messages, Redis and PostgreSQL restarted, all delivered in {took:.1f} s; "
        f"{faulty.seen.stats()}"
    )
