"""Inbound hooks under load (issue 8), CI-sized: the code of ``bench/load_bench.py`` offering 1,000
signed GitHub deliveries a second for 10 s through ``flywheel serve`` (gunicorn) into PostgreSQL, with
1% of them retried concurrently. Whatever rate the host sustains, every request is answered, with no
error, and every event is stored exactly once. The speed itself (1,000/s, p99 under 200 ms) is a
benchmark's bound, never a timed test: ``python -m bench.load_bench`` prints it and fails when it is
not met, and BENCHMARKS.md records it.

PostgreSQL only (FLYWHEEL_TEST_DATABASE_URL): SQLite takes one writer at a time and is not the
production database for a receiver under load. Rate and length can be lowered on a slow runner with
FLYWHEEL_LOAD_TEST_RATE and FLYWHEEL_LOAD_TEST_SECONDS.
"""

from __future__ import annotations

import os
import threading

import orjson
import pytest
from sqlalchemy import Engine, func, select

from bench.load_bench import build_deliveries, run
from connectors.sources.github import parse_github
from plugin.db.models import Activity, InboundDelivery
from plugin.services.ingest import Delivery, DeliveryWriter, store_deliveries

URL = os.environ.get("FLYWHEEL_TEST_DATABASE_URL", "").strip()
RATE = float(os.environ.get("FLYWHEEL_LOAD_TEST_RATE", "1000"))
SECONDS = float(os.environ.get("FLYWHEEL_LOAD_TEST_SECONDS", "10"))


def _deliveries(count: int) -> list[Delivery]:
    out = []
    for d in build_deliveries(count, "a-long-enough-test-secret-0123456789", users=3):
        records = parse_github(d.event, orjson.loads(d.body), d.delivery_id)
        out.append(Delivery("github", d.delivery_id, d.event, records))
    return out


def _counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        activities = conn.execute(select(func.count()).select_from(Activity)).scalar_one()
        deliveries = conn.execute(select(func.count()).select_from(InboundDelivery)).scalar_one()
    return int(activities), int(deliveries)


def test_a_delivery_repeated_in_one_group_and_later_is_stored_once(engine: Engine, workspace_id: int) -> None:
    (first,) = _deliveries(1)
    again = Delivery(first.source, first.delivery_id, first.event, first.records)
    store_deliveries(engine, workspace_id, [first, again])
    assert (first.already_received, first.stored) == (False, 1)
    assert (again.already_received, again.stored) == (True, 0)
    later = Delivery(first.source, first.delivery_id, first.event, first.records)
    store_deliveries(engine, workspace_id, [later])
    assert later.already_received and later.stored == 0
    assert _counts(engine) == (1, 1)


def test_concurrent_retries_through_the_group_writer_store_each_event_once(
    engine: Engine, workspace_id: int
) -> None:
    writer = DeliveryWriter(engine)
    originals = _deliveries(40)
    copies = [Delivery(d.source, d.delivery_id, d.event, d.records) for d in originals]
    everything = originals + copies
    barrier = threading.Barrier(8)

    def send(part: list[Delivery]) -> None:
        barrier.wait()
        for delivery in part:
            writer.store(workspace_id, delivery)

    threads = [threading.Thread(target=send, args=(everything[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert _counts(engine) == (40, 40)
    assert sum(d.stored for d in everything) == 40
    assert sum(d.already_received for d in everything) == 40


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.skipif(
    not URL.startswith(("postgres://", "postgresql")),
    reason="the hook load test runs against PostgreSQL only: set FLYWHEEL_TEST_DATABASE_URL",
)
def test_inbound_hooks_under_overload_answer_every_request_and_store_every_event_once() -> None:
    report = run(rate=RATE, seconds=SECONDS, workers=3, database=URL)
    result = report["result"]
    counts = report["counts"]
    events = report["events"]
    assert counts["activities"] == counts["distinct_activities"] == events
    assert counts["inbound_deliveries"] == events
    assert dict(result.errors) == {}
    assert result.ok == result.scheduled  # every request answered 2xx, the retries included
    assert result.statuses["stored"] == events
    assert result.statuses["duplicate"] == result.scheduled - events
    print(
        f"hook load: {result.achieved_rate:.0f}/s of {RATE:.0f}/s offered, p99 {result.percentile(99):.0f} ms"
    )
