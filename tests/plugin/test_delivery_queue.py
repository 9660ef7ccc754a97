"""DeliveryQueue, the asynchronous receiver's writer thread, on the test database: deliveries
submitted from many threads are committed in groups, each exactly once, each waiting caller is told
once, a failure reaches only the callers whose deliveries it spoiled, and close() writes what is
queued before it returns."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from connectors.records import parse_record
from plugin.db.models import Activity, InboundDelivery
from plugin.services.delivery_queue import DeliveryQueue
from plugin.services.ingest import Delivery, Ingestor, store_deliveries
from plugin.services.workspaces import ensure_workspace

WAIT_S = 20.0
#: What the writer thread calls to store a group (patched to watch or break it).
QUEUE_STORE = "plugin.services.delivery_queue.store_deliveries"


def delivery(n: int, delivery_id: str | None = None) -> Delivery:
    """A generic delivery of one activity of its own (a registration by person ``n``)."""
    record = parse_record(
        {
            "id": f"reg-{n}",
            "type": "event_registered",
            "occurred_at": "2026-11-20T09:00:00Z",
            "member": {"email": f"person{n}@acme.io", "name": f"Person {n}"},
        },
        default_source="events",
    )
    return Delivery("generic:events", delivery_id or f"msg-{n}", "generic", [record])


def counts(engine: Engine, workspace_id: int) -> tuple[int, int]:
    """(activities, inbound delivery rows) of a workspace."""
    with engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            int(
                conn.execute(
                    select(func.count()).select_from(m).where(m.workspace_id == workspace_id)
                ).scalar_one()
            )
            for m in (Activity, InboundDelivery)
        )


class Told:
    """The ``notify`` callback: every (token, error) the writer hands back, and each call's batch."""

    def __init__(self) -> None:
        self.results: list[tuple[Any, BaseException | None]] = []
        self.calls: list[list[Any]] = []
        self._changed = threading.Condition()

    def __call__(self, results: Sequence[tuple[Any, BaseException | None]]) -> None:
        with self._changed:
            self.results.extend(results)
            self.calls.append([token for token, _ in results])
            self._changed.notify_all()

    def wait_for(self, n: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.results) >= n, WAIT_S), self.results

    def errors(self) -> dict[Any, BaseException | None]:
        return dict(self.results)


class Gate:
    """Wraps ``store_deliveries``: records each call's (workspace, size) and holds the first call
    until released, so that what is submitted meanwhile queues up behind it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[int, int]] = []
        self.entered = threading.Event()
        self.released = threading.Event()
        self.fail_workspace: int | None = None
        self.real = store_deliveries
        monkeypatch.setattr(QUEUE_STORE, self)

    def __call__(self, engine: Engine, workspace_id: int, deliveries: Sequence[Delivery]) -> None:
        self.calls.append((workspace_id, len(deliveries)))
        self.entered.set()
        assert self.released.wait(WAIT_S)
        if workspace_id == self.fail_workspace:
            raise RuntimeError(f"workspace {workspace_id} refuses the write")
        self.real(engine, workspace_id, deliveries)

    def sizes(self) -> list[int]:
        return [size for _, size in self.calls]


@pytest.fixture
def told() -> Told:
    return Told()


@pytest.fixture
def make_queue(engine: Engine, told: Told) -> Iterator[Any]:
    made: list[DeliveryQueue] = []

    def make(**options: Any) -> DeliveryQueue:
        queue = DeliveryQueue(engine, told, **options)
        made.append(queue)
        return queue

    yield make
    for queue in made:  # stopped before the tables are emptied
        queue.close()


def test_deliveries_from_several_threads_are_written_in_groups_each_once(
    make_queue: Any, told: Told, engine: Engine, workspace_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate(monkeypatch)
    queue = make_queue()
    threads, each = 6, 10
    deliveries = {f"t{t}-{i}": delivery(t * each + i) for t in range(threads) for i in range(each)}
    start = threading.Barrier(threads)

    def sender(t: int) -> None:
        start.wait()
        for i in range(each):
            token = f"t{t}-{i}"
            queue.submit(workspace_id, deliveries[token], token)

    senders = [threading.Thread(target=sender, args=(t,)) for t in range(threads)]
    for s in senders:
        s.start()
    for s in senders:
        s.join(WAIT_S)
    assert gate.entered.wait(WAIT_S)
    gate.released.set()  # the writer was busy with the first group while all the others queued
    told.wait_for(len(deliveries))

    assert Counter(token for token, _ in told.results) == Counter(deliveries.keys())  # each told exactly once
    assert all(error is None for _, error in told.results)
    assert sum(gate.sizes()) == len(deliveries) and max(gate.sizes()) > 1
    assert len(gate.calls) < len(deliveries)  # fewer transactions than deliveries
    assert all(d.stored == 1 and not d.already_received for d in deliveries.values())
    assert counts(engine, workspace_id) == (len(deliveries), len(deliveries))


def test_a_group_is_at_most_max_batch(
    make_queue: Any, told: Told, engine: Engine, workspace_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate(monkeypatch)
    queue = make_queue(max_batch=4)
    queue.submit(workspace_id, delivery(0), 0)
    assert gate.entered.wait(WAIT_S)
    for n in range(1, 11):
        queue.submit(workspace_id, delivery(n), n)
    gate.released.set()
    told.wait_for(11)
    assert gate.sizes()[0] == 1 and max(gate.sizes()) == 4 and sum(gate.sizes()) == 11
    assert counts(engine, workspace_id) == (11, 11)


def test_copies_of_one_delivery_in_a_group_store_it_once(
    make_queue: Any, told: Told, engine: Engine, workspace_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate(monkeypatch)
    queue = make_queue()
    queue.submit(workspace_id, delivery(0), "first")
    assert gate.entered.wait(WAIT_S)
    copies = [delivery(1, "same-id"), delivery(1, "same-id")]
    queue.submit(workspace_id, copies[0], "copy-a")
    queue.submit(workspace_id, copies[1], "copy-b")
    gate.released.set()
    told.wait_for(3)
    assert gate.sizes() == [1, 2]  # both copies in one transaction
    assert told.errors() == {"first": None, "copy-a": None, "copy-b": None}
    assert [(c.already_received, c.stored) for c in copies] == [(False, 1), (True, 0)]
    assert counts(engine, workspace_id) == (2, 2)


def test_an_error_in_one_workspace_reaches_only_that_workspace_s_callers(
    make_queue: Any, told: Told, engine: Engine, workspace_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Session(engine) as session:
        other = ensure_workspace(session, "other", "Other")[0]
        session.commit()
        broken = other.id
    gate = Gate(monkeypatch)
    gate.fail_workspace = broken
    queue = make_queue()
    queue.submit(workspace_id, delivery(0), "ok-0")
    assert gate.entered.wait(WAIT_S)
    for n in range(1, 4):  # interleaved: both workspaces in the next group
        queue.submit(workspace_id, delivery(n), f"ok-{n}")
        queue.submit(broken, delivery(10 + n), f"bad-{n}")
    gate.released.set()
    told.wait_for(7)

    errors = told.errors()
    assert [errors[f"ok-{n}"] for n in range(4)] == [None] * 4
    failures = [errors[f"bad-{n}"] for n in range(1, 4)]
    assert all(
        isinstance(e, RuntimeError) and str(e) == f"workspace {broken} refuses the write" for e in failures
    )
    assert sorted(told.calls[1]) == sorted(
        [f"ok-{n}" for n in range(1, 4)] + [f"bad-{n}" for n in range(1, 4)]
    )
    assert counts(engine, workspace_id) == (4, 4)
    assert counts(engine, broken) == (0, 0)

    gate.fail_workspace = None  # the writer thread goes on: the retry is stored
    queue.submit(broken, delivery(11), "retry")
    told.wait_for(8)
    assert told.errors()["retry"] is None
    assert counts(engine, broken) == (1, 1)


def test_a_failure_inside_one_workspace_s_transaction_rolls_back_its_claims_only(
    make_queue: Any, told: Told, engine: Engine, workspace_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failing after the delivery ids were claimed, within the transaction: nothing of that
    workspace's group remains (so the platforms' retries store it), the other workspace's stands."""
    with Session(engine) as session:
        broken = ensure_workspace(session, "other", "Other")[0].id
        session.commit()
    real = Ingestor._store

    def store(self: Ingestor, *args: Any, **kwargs: Any) -> Any:
        if self.workspace_id == broken:
            raise RuntimeError("the disk is full")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Ingestor, "_store", store)
    gate = Gate(monkeypatch)
    queue = make_queue()
    queue.submit(workspace_id, delivery(0), "ok-0")
    assert gate.entered.wait(WAIT_S)
    queue.submit(broken, delivery(1), "bad-1")
    queue.submit(workspace_id, delivery(2), "ok-2")
    queue.submit(broken, delivery(3), "bad-3")
    gate.released.set()
    told.wait_for(4)
    errors = told.errors()
    assert errors["ok-0"] is None and errors["ok-2"] is None
    assert str(errors["bad-1"]) == str(errors["bad-3"]) == "the disk is full"
    assert counts(engine, workspace_id) == (2, 2)
    assert counts(engine, broken) == (0, 0)


def test_close_writes_what_is_queued_before_it_returns(
    make_queue: Any, told: Told, engine: Engine, workspace_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate(monkeypatch)
    queue = make_queue()
    queue.submit(workspace_id, delivery(0), 0)
    assert gate.entered.wait(WAIT_S)
    for n in range(1, 6):
        queue.submit(workspace_id, delivery(n), n)
    opener = threading.Timer(0.2, gate.released.set)  # the writer is still busy when close() is called
    opener.start()
    started = time.monotonic()
    queue.close()
    assert time.monotonic() - started >= 0.15  # it waited for the writer
    assert told.errors() == dict.fromkeys(range(6))  # every queued delivery written and told
    assert counts(engine, workspace_id) == (6, 6)
    assert queue._thread is not None and not queue._thread.is_alive()
    opener.join()


def test_close_of_an_unused_queue_starts_nothing(make_queue: Any, told: Told) -> None:
    queue = make_queue()
    queue.close()
    assert queue._thread is None and told.results == []


def test_a_notify_that_fails_does_not_stop_the_writer(
    engine: Engine, workspace_id: int, caplog: pytest.LogCaptureFixture
) -> None:
    handed: list[Any] = []

    def notify(results: Sequence[tuple[Any, BaseException | None]]) -> None:
        if not handed:
            handed.append("refused")
            raise RuntimeError("Event loop is closed")
        handed.extend(token for token, _ in results)

    queue = DeliveryQueue(engine, notify)
    try:
        queue.submit(workspace_id, delivery(1), "lost")
        deadline = time.monotonic() + WAIT_S
        while not handed and time.monotonic() < deadline:
            time.sleep(0.01)
        queue.submit(workspace_id, delivery(2), "kept")
    finally:
        queue.close()
    assert handed == ["refused", "kept"]
    assert counts(engine, workspace_id) == (2, 2)  # the first was written; only its answer was lost
    assert "could not be handed back" in caplog.text
