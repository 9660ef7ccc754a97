"""The delivery worker under faults: 10,000 messages to a receiver that fails a fifth of requests
at random and lets some time out, while the worker process is killed with SIGKILL several times
and restarted. Every message must arrive at least once, every repeat with the same id and bytes,
none lost, none left stuck."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from plugin.db.models import WebhookDelivery
from plugin.services.webhook_endpoints import add_endpoint
from plugin.services.webhook_outbox import Event, emit
from plugin.settings import Settings
from tests.fakes.webhook_receiver import Receiver
from webhooks.events import MemberRef, referral_invitation

MESSAGES = 10_000
KILLS = 4
# Twelve quick attempts: a message failing all of them at a 22% failure rate is a 1-in-80-million
# event per message, so a loss here is a bug, not bad luck.
SCHEDULE = "0,0.05,0.1,0.2,0.3,0.3,0.3,0.3,0.3,0.3,0.3,0.3"
TIMEOUT_S = 0.5


def _worker(settings: Settings, secret_file: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "FLYWHEEL_DATABASE_URL": settings.database_url,
        "FLYWHEEL_SECRET_KEY": settings.secret_key or "",
        "FLYWHEEL_SECRET_KEY_FILE": secret_file,
        "FLYWHEEL_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "FLYWHEEL_WEBHOOK_ALLOW_HTTP": "1",
        "FLYWHEEL_WEBHOOK_SCHEDULE": SCHEDULE,
        "FLYWHEEL_WEBHOOK_TIMEOUT": str(TIMEOUT_S),
    }
    return subprocess.Popen(
        [sys.executable, "-c", "from plugin.cli import main; main()", "webhooks", "deliver", "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.fixture
def faulty() -> Iterator[Receiver]:
    with Receiver(fail_rate=0.2, timeout_rate=0.02, hang_s=1.5, seed=11) as receiver:
        yield receiver


def _by_status(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status))
        return {r[0]: r[1] for r in rows}


@pytest.mark.slow
def test_sigkilled_workers_lose_nothing_and_repeats_keep_their_id(
    engine: Engine, settings: Settings, workspace_id: int, faulty: Receiver, tmp_path: object
) -> None:
    development = Settings(**{**settings.__dict__, "webhook_allowed_networks": "127.0.0.0/8"})
    development = Settings(**{**development.__dict__, "webhook_allow_http": True})
    with Session(engine) as session:
        created = add_endpoint(session, development, workspace_id, faulty.url, events="referral.invitation")
        session.commit()
    faulty.trust(created.secret)
    now = datetime.now(UTC)
    sent: list[str] = []
    for start in range(0, MESSAGES, 2_000):
        events = [
            Event(
                "referral.invitation",
                referral_invitation(
                    workspace="default",
                    occurred_at=now,
                    member=MemberRef(i + 1, f"Member {i + 1}", "de"),
                    code=f"REF{i:06d}",
                    referral_url=f"https://flywheel.example.com/r/REF{i:06d}",
                    campaign="winter",
                ),
            )
            for i in range(start, start + 2_000)
        ]
        with engine.begin() as conn:
            sent += emit(conn, workspace_id, events)
    assert len(sent) == MESSAGES

    rng = random.Random(5)
    secret_file = str(tmp_path) + "/secret"
    kills = 0
    while kills < KILLS:
        worker = _worker(settings, secret_file)
        time.sleep(rng.uniform(1.0, 2.5))
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        kills += 1
    assert _by_status(engine).get("delivered", 0) < MESSAGES, "the kills came too late to test anything"

    worker = _worker(settings, secret_file)
    deadline = time.monotonic() + 240
    try:
        while _by_status(engine).get("delivered", 0) < MESSAGES and time.monotonic() < deadline:
            assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else ""
            time.sleep(0.5)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)

    statuses = _by_status(engine)
    assert statuses == {"delivered": MESSAGES}, statuses  # none lost, none failed, none stuck
    seen = faulty.seen
    assert seen.bad_signatures == 0
    assert set(seen.accepted) == set(sent)  # every message accepted at least once
    assert seen.stats()["ids_with_differing_bodies"] == 0  # a repeat is the same message
    assert set(seen.bodies) == set(sent)  # and nothing arrived that was not sent
    assert seen.answers[500] > MESSAGES * 0.15 and seen.timed_out > 0  # the faults did happen
    print(f"requests {seen.requests:,} for {MESSAGES:,} messages; {seen.stats()}")
