"""Store canonical activity records: de-duplicated, identity-resolved, one transaction per batch.

Every path that brings activity in (files, webhook receivers, the demo, later pulls) goes through
:class:`Ingestor`, so they all share the same rules:

* an activity is unique per workspace, source and the source's own id: a record seen again, in the
  same batch or a later run, is counted as a duplicate and changes nothing;
* a bad record is counted and reported with its line and reason, and never stops the others;
* a batch is stored whole or not at all, so a crash leaves no half-stored record.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from connectors.records import ActivityRecord
from plugin.db.base import to_micros, utcnow
from plugin.db.engine import bulk_transaction
from plugin.services.columns import ColumnBatch
from plugin.services.identity import IdentityResolver

BATCH_SIZE = 50_000
ANALYZE_AFTER_ROWS = 2_000  # PostgreSQL: first statistics refresh once a run has stored this many
MAX_REPORTED_PROBLEMS = 1_000  # problems kept with their line; the rest are counted by reason


@dataclass(frozen=True)
class Problem:
    line: int | None
    field: str
    reason: str
    file: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "field": self.field, "reason": self.reason}


@dataclass
class IngestReport:
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    skipped: int = 0  # well-formed input that carries no activity (a ping, a label change)
    invalid: int = 0
    problems: list[Problem] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    by_source: Counter[str] = field(default_factory=Counter)
    by_type: Counter[str] = field(default_factory=Counter)
    members_created: int = 0
    identities_created: int = 0
    auto_merges: int = 0
    organizations_created: int = 0
    suggestions: int = 0  # merge suggestions newly opened after this run

    def note(
        self, line: int | None, field_name: str, reason: str, *, invalid: bool, file: str | None = None
    ) -> None:
        if invalid:
            self.invalid += 1
        else:
            self.skipped += 1
        # Invalid items are counted by field: their reasons quote the bad value, and a file of a
        # million distinct bad values must not make a million keys. Each reason is in `problems`.
        self.reasons[f"invalid {field_name}" if invalid else reason] += 1
        if len(self.problems) < MAX_REPORTED_PROBLEMS:
            self.problems.append(Problem(line, field_name, reason, file))

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
            "invalid": self.invalid,
            "members_created": self.members_created,
            "identities_created": self.identities_created,
            "auto_merges": self.auto_merges,
            "organizations_created": self.organizations_created,
            "suggestions": self.suggestions,
            "by_source": dict(self.by_source),
            "by_type": dict(self.by_type),
            "reasons": dict(self.reasons),
            "problems": [p.as_dict() for p in self.problems],
            "problems_truncated": max(0, self.invalid + self.skipped - len(self.problems)),
        }


BY_MEMBER_TIME = itemgetter(6, 4)  # (member_id, occurred_at) in an activity row
BY_KEY = itemgetter(1, 2)  # (source, source_activity_id)
RETURNING_CHUNK = 1_000  # rows per multi-row INSERT ... RETURNING (15 parameters each)
ACTIVITY_COLUMNS = (
    "workspace_id",
    "source",
    "source_activity_id",
    "type",
    "occurred_at",
    "ingested_at",
    "member_id",
    "identity_id",
    "channel",
    "title",
    "url",
    "text",
    "properties",
    "sentiment",
    "value",
)


def activity_insert_sql(dialect: str) -> str:
    """INSERT ... ON CONFLICT DO NOTHING for activities in the driver's own parameter style.

    The bulk path hands tuples straight to the driver's ``executemany``: SQLAlchemy's per-row
    parameter processing costs more than the insert itself at tens of thousands of rows a second.
    """
    columns = ", ".join(ACTIVITY_COLUMNS)
    if dialect == "postgresql":
        marks = ", ".join("%s::jsonb" if c == "properties" else "%s" for c in ACTIVITY_COLUMNS)
    else:
        marks = ", ".join("?" for _ in ACTIVITY_COLUMNS)
    return (
        f"INSERT INTO activities ({columns}) VALUES ({marks}) "  # noqa: S608 (constant column names)
        "ON CONFLICT (workspace_id, source, source_activity_id) DO NOTHING"
    )


def activity_insert_returning_sql(dialect: str, rows: int) -> str:
    """Like :func:`activity_insert_sql` for ``rows`` rows in one statement, returning the (source,
    id) of each row stored (a row already there returns nothing)."""
    if dialect == "postgresql":
        marks = ", ".join("%s::jsonb" if c == "properties" else "%s" for c in ACTIVITY_COLUMNS)
    else:
        marks = ", ".join("?" for _ in ACTIVITY_COLUMNS)
    values = ", ".join([f"({marks})"] * rows)
    return (
        f"INSERT INTO activities ({', '.join(ACTIVITY_COLUMNS)}) VALUES {values} "  # noqa: S608 (constants)
        "ON CONFLICT (workspace_id, source, source_activity_id) DO NOTHING "
        "RETURNING source, source_activity_id"
    )


class Ingestor:
    """Feed records with :meth:`add` (or whole column batches with :meth:`add_columns`); call
    :meth:`finish` once at the end (or use ``with``)."""

    def __init__(self, engine: Engine, workspace_id: int, *, batch_size: int = BATCH_SIZE) -> None:
        self.engine = engine
        self.workspace_id = workspace_id
        self.batch_size = batch_size
        self.report = IngestReport()
        self.resolver = IdentityResolver(workspace_id)
        self._batch = ColumnBatch()
        self._rows_at_last_analyze = 0

    def __enter__(self) -> Ingestor:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.finish()

    def add(self, record: ActivityRecord) -> None:
        self.report.read += 1
        self._batch.append(record)
        if len(self._batch) >= self.batch_size:
            self.flush()

    def add_columns(self, batch: ColumnBatch) -> None:
        """Store a batch prepared elsewhere (e.g. by a parsing process) as it is."""
        self.flush()
        self.report.read += len(batch)
        self._write(batch)

    def add_many(self, records: Iterable[ActivityRecord]) -> None:
        for record in records:
            self.add(record)

    def reject(self, line: int | None, field_name: str, reason: str, file: str | None = None) -> None:
        """Count a malformed input item (it is never stored)."""
        self.report.read += 1
        self.report.note(line, field_name, reason, invalid=True, file=file)

    def skip(self, line: int | None, reason: str, file: str | None = None) -> None:
        """Count a well-formed input item that carries no activity."""
        self.report.read += 1
        self.report.note(line, "payload", reason, invalid=False, file=file)

    def flush(self) -> None:
        batch, self._batch = self._batch, ColumnBatch()
        if batch:
            self._write(batch)

    def _write(self, batch: ColumnBatch) -> None:
        if not batch:
            return
        # Records repeated inside the batch keep their first; the store's unique key (INSERT ... ON
        # CONFLICT DO NOTHING) catches those stored before, even by a concurrent writer.
        fresh, repeats = batch.without_repeats()
        self.report.duplicates += repeats
        try:
            stored = self._transaction(fresh)
        except IntegrityError:
            # A concurrent writer created the same person or organization first. This batch
            # rolled back whole; forget what the resolver cached from it and run it once more.
            self.resolver = self.resolver.fresh()
            stored = self._transaction(fresh)
        count = len(fresh)
        # Rows already stored (by an earlier run or a concurrent writer) are duplicates.
        self.report.duplicates += count - stored
        self.report.stored += stored
        self.report.by_source.update(fresh.sources)
        self.report.by_type.update(fresh.types)
        self.resolver.commit_stats()
        self._refresh_planner_statistics()
        stats = self.resolver.stats
        self.report.members_created = stats.members_created
        self.report.identities_created = stats.identities_created
        self.report.auto_merges = stats.auto_merges
        self.report.organizations_created = stats.organizations_created

    def _transaction(self, fresh: ColumnBatch) -> int:
        """Activities stored. Every id a batch references is resolved or allocated inside the
        batch's own transaction."""
        with bulk_transaction(self.engine) as conn:
            stored = self._store(conn, fresh)
        assert isinstance(stored, int)
        return stored

    def _refresh_planner_statistics(self) -> None:
        """On PostgreSQL, ANALYZE the tables this run grows each time it has doubled them.

        A bulk load into fresh tables otherwise runs on "empty table" plans (autovacuum analyses only
        once a minute), which turns every identity and duplicate lookup into a scan.
        """
        if self.engine.dialect.name != "postgresql":
            return
        grown = self.report.stored + self.resolver.stats.identities_created
        if grown < max(2 * self._rows_at_last_analyze, ANALYZE_AFTER_ROWS):
            return
        with self.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE activities, identities, members, organizations")
        self._rows_at_last_analyze = grown

    def finish(self) -> IngestReport:
        self.flush()
        return self.report

    def _store(
        self, conn: Connection, batch: ColumnBatch, returning: bool = False
    ) -> int | set[tuple[str, str]]:
        """Activities stored; with ``returning``, which ones, as (source, id) pairs."""
        owners = self.resolver.resolve(conn, batch.members)
        person_identity = [identity_id for identity_id, _ in owners]
        person_member = [member_id for _, member_id in owners]
        identity_ids = [person_identity[i] for i in batch.person]
        member_ids = [person_member[i] for i in batch.person]
        count = len(batch)
        rows = list(
            zip(
                repeat(self.workspace_id, count), batch.sources, batch.ids, batch.types, batch.occurred,
                repeat(to_micros(utcnow()), count), member_ids, identity_ids, batch.channels, batch.titles,
                batch.urls, batch.texts, batch.properties, batch.sentiments, batch.values,
                strict=True,
            )
        )  # fmt: skip
        # In (member, time) order the scattered member index is written page by page instead of at
        # random (measured +15% on a million-row table); the table itself is append-only anyway.
        if returning:
            # Few rows (webhook deliveries): in key order, so two transactions holding some of the
            # same activities lock them in the same order.
            rows.sort(key=BY_KEY)
            stored: set[tuple[str, str]] = set()
            for start in range(0, count, RETURNING_CHUNK):
                part = rows[start : start + RETURNING_CHUNK]
                sql = activity_insert_returning_sql(conn.dialect.name, len(part))
                flat = tuple(value for row in part for value in row)
                stored.update((src, sid) for src, sid in conn.exec_driver_sql(sql, flat))
            return stored
        rows.sort(key=BY_MEMBER_TIME)
        result = conn.exec_driver_sql(activity_insert_sql(conn.dialect.name), rows)
        return result.rowcount if result.rowcount is not None and result.rowcount >= 0 else count


# -- webhook deliveries -----------------------------------------------------------------------------


@dataclass
class Delivery:
    """One inbound webhook delivery: its records, and once stored, what became of them.

    ``delivery_id`` is the platform's id of the delivery (None when it sends none): a delivery
    recorded before stores nothing and is marked ``already_received``.
    """

    source: str
    delivery_id: str | None
    event: str | None
    records: Sequence[ActivityRecord]
    stored: int = 0
    duplicates: int = 0
    already_received: bool = False

    @property
    def key(self) -> tuple[str, str] | None:
        return (self.source, self.delivery_id[:255]) if self.delivery_id else None


#: Transaction attempts of :func:`store_deliveries` when a concurrent writer collided with it.
DELIVERY_ATTEMPTS = 3
DEADLOCK = "40P01"  # PostgreSQL's SQLSTATE for a detected deadlock (the loser is rolled back)


def store_deliveries(engine: Engine, workspace_id: int, deliveries: Sequence[Delivery]) -> None:
    """Store webhook deliveries of one workspace, each exactly once, in one transaction.

    Each delivery id is claimed first (INSERT ... ON CONFLICT DO NOTHING on its unique key; a
    concurrent transaction claiming the same id waits for this one to end): a delivery already
    recorded, or repeated within ``deliveries``, stores nothing. The records of the others are stored
    as :class:`Ingestor` stores a batch (an activity already stored is a duplicate), and each claimed
    delivery row gets its count. Claim and activities commit together or not at all, so a delivery
    that failed to store is not recorded and its retry stores it.

    A collision with a concurrent writer (the same new person; on PostgreSQL a deadlock between two
    such batches) rolls the transaction back whole and runs it again.
    """
    from sqlalchemy.exc import DBAPIError

    for attempt in range(DELIVERY_ATTEMPTS):
        ingestor = Ingestor(engine, workspace_id)
        try:
            with bulk_transaction(engine) as conn:
                outcome = _store_deliveries(conn, ingestor, deliveries)
        except DBAPIError as exc:
            collided = isinstance(exc, IntegrityError) or getattr(exc.orig, "sqlstate", None) == DEADLOCK
            if not collided or attempt == DELIVERY_ATTEMPTS - 1:
                raise
            continue
        for delivery, (received, stored) in zip(deliveries, outcome, strict=True):
            delivery.already_received = received
            delivery.stored = stored
            delivery.duplicates = len(delivery.records) - stored
        return


def _store_deliveries(
    conn: Connection, ingestor: Ingestor, deliveries: Sequence[Delivery]
) -> list[tuple[bool, int]]:
    """(already received, activities stored) for each delivery, inside the caller's transaction."""
    from sqlalchemy import bindparam, update

    from plugin.db.models import InboundDelivery
    from plugin.db.sql import dialect_insert

    workspace_id = ingestor.workspace_id
    keys = {d.key for d in deliveries if d.key is not None}
    claimed: set[tuple[str, str]] = set()
    if keys:
        now = utcnow()
        by_key = {d.key: d for d in reversed(deliveries) if d.key is not None}  # the first of each
        rows = [
            {
                "workspace_id": workspace_id,
                "source": key[0],
                "delivery_id": key[1],
                "event": by_key[key].event,
                # What storing it will usually count: corrected below in the rare other case, so
                # the common delivery costs no UPDATE.
                "activities_stored": len(by_key[key].records),
                "received_at": now,
            }
            for key in sorted(keys)  # one lock order for every transaction
        ]
        claimed = {
            (src, delivery_id)
            for src, delivery_id in conn.execute(
                dialect_insert(conn)(InboundDelivery)
                .values(rows)
                .on_conflict_do_nothing(index_elements=["workspace_id", "source", "delivery_id"])
                .returning(InboundDelivery.source, InboundDelivery.delivery_id)
            )
        }
    outcome: list[tuple[bool, int]] = []
    storing: list[Delivery | None] = []
    batch = ColumnBatch()
    first_of: set[tuple[str, str]] = set()
    for delivery in deliveries:
        key = delivery.key
        if key is not None and (key not in claimed or key in first_of):
            storing.append(None)  # recorded before, or a second copy in this very batch
            continue
        if key is not None:
            first_of.add(key)
        storing.append(delivery)
        batch.extend(delivery.records)
    stored_keys: set[tuple[str, str]] = set()
    if batch:
        fresh, _ = batch.without_repeats()
        result = ingestor._store(conn, fresh, returning=True)
        assert isinstance(result, set)
        stored_keys = result
    counts: list[tuple[tuple[str, str], int]] = []
    for delivery, kept in zip(deliveries, storing, strict=True):
        if kept is None:
            outcome.append((True, 0))
            continue
        stored = 0
        for record in delivery.records:
            pair = (record.source, record.id)
            if pair in stored_keys:
                stored_keys.discard(pair)  # credited once, to the first delivery that carried it
                stored += 1
        outcome.append((False, stored))
        if delivery.key is not None and stored != len(delivery.records):
            counts.append((delivery.key, stored))
    if counts:
        conn.execute(
            update(InboundDelivery)
            .where(
                InboundDelivery.workspace_id == workspace_id,
                InboundDelivery.source == bindparam("_source"),
                InboundDelivery.delivery_id == bindparam("_delivery"),
            )
            .values(activities_stored=bindparam("_stored")),
            [{"_source": k[0], "_delivery": k[1], "_stored": n} for k, n in counts],
        )
    return outcome


class _Waiting:
    """One request's delivery in the queue. ``done`` is a lock taken at birth: the request waits by
    taking it again, the writer wakes it by releasing it (a bare lock, not an Event with its
    Condition: measured at 5% of a busy worker's time to build)."""

    __slots__ = ("delivery", "done", "error", "lead", "workspace_id")

    def __init__(self, workspace_id: int, delivery: Delivery) -> None:
        self.workspace_id = workspace_id
        self.delivery = delivery
        self.done = threading.Lock()
        self.done.acquire()
        self.lead = False
        self.error: BaseException | None = None


class DeliveryWriter:
    """Group commit for the webhook receivers of one process: :meth:`store` returns once the
    delivery is committed (or raises what storing it raised).

    A request arriving while no transaction is being written writes its own delivery at once. Those
    arriving meanwhile wait, and the first of them then writes all that waited, in one transaction
    per workspace (:func:`store_deliveries`). Under load (the last group held more than one), the
    writer first lingers ``linger_s`` so that the group grows: measured at 1,000 deliveries a second
    on two cores, 3 ms made groups of about nine and raised the rate a tenth. When quiet, nothing
    waits. There is no background thread: the request threads take turns.
    """

    def __init__(self, engine: Engine, max_batch: int = 200, linger_s: float = 0.003) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.linger_s = linger_s
        self._last = 0  # the size of the group written last: above one, deliveries are queueing
        self._lock = threading.Lock()
        self._waiting: list[_Waiting] = []
        self._busy = False

    def store(self, workspace_id: int, delivery: Delivery) -> None:
        me = _Waiting(workspace_id, delivery)
        with self._lock:
            self._waiting.append(me)
            lead = not self._busy
            self._busy = True
        if not lead:
            me.done.acquire()
            lead = me.lead  # woken to write the next group (it heads it), or with its result
        if lead:
            self._write_next()
        if me.error is not None:
            raise me.error

    def _write_next(self) -> None:
        with self._lock:
            busy = self._last > 1 and len(self._waiting) < self.max_batch
        if busy:  # under load, a moment's wait lets the group grow: fewer, larger transactions
            time.sleep(self.linger_s)
        with self._lock:
            group = self._waiting[: self.max_batch]
            del self._waiting[: self.max_batch]
            self._last = len(group)
        try:
            by_workspace: dict[int, list[_Waiting]] = {}
            for waiting in group:
                by_workspace.setdefault(waiting.workspace_id, []).append(waiting)
            for workspace_id, items in by_workspace.items():
                try:
                    store_deliveries(self.engine, workspace_id, [w.delivery for w in items])
                except Exception as exc:
                    for waiting in items:
                        waiting.error = exc
        finally:
            with self._lock:
                if self._waiting:
                    following = self._waiting[0]
                    following.lead = True
                    following.done.release()
                else:
                    self._busy = False
            for waiting in group:
                if not waiting.lead:  # a lead's lock was released to wake it; released once only
                    waiting.done.release()
