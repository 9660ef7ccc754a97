"""Store canonical activity records: de-duplicated, identity-resolved, one transaction per batch.

Every path that brings activity in (files, webhook receivers, the demo, later pulls) goes through
:class:`Ingestor`, so they all share the same rules:

* an activity is unique per workspace, source and the source's own id: a record seen again, in the
  same batch or a later run, is counted as a duplicate and changes nothing;
* a bad record is counted and reported with its line and reason, and never stops the others;
* a batch is stored whole or not at all, so a crash leaves no half-stored record.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
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
            self._transaction(fresh)
        except IntegrityError:
            # A concurrent writer created the same person or organization first. This batch
            # rolled back whole; forget what the resolver cached from it and run it once more.
            self.resolver = self.resolver.fresh()
            self._transaction(fresh)
        self.resolver.commit_stats()
        self._refresh_planner_statistics()
        stats = self.resolver.stats
        self.report.members_created = stats.members_created
        self.report.identities_created = stats.identities_created
        self.report.auto_merges = stats.auto_merges
        self.report.organizations_created = stats.organizations_created

    def _transaction(self, fresh: ColumnBatch) -> None:
        # Every id a batch references is resolved or allocated inside the batch's own transaction.
        with bulk_transaction(self.engine) as conn:
            self._store(conn, fresh)

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

    def _store(self, conn: Connection, batch: ColumnBatch) -> None:
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
                batch.urls, batch.texts, batch.properties, batch.sentiments,
                strict=True,
            )
        )  # fmt: skip
        # In (member, time) order the scattered member index is written page by page instead of at
        # random (measured +15% on a million-row table); the table itself is append-only anyway.
        rows.sort(key=BY_MEMBER_TIME)
        result = conn.exec_driver_sql(activity_insert_sql(conn.dialect.name), rows)
        stored = result.rowcount if result.rowcount is not None and result.rowcount >= 0 else count
        # Rows already stored (by an earlier run or a concurrent writer) are duplicates.
        self.report.duplicates += count - stored
        self.report.stored += stored
        self.report.by_source.update(batch.sources)
        self.report.by_type.update(batch.types)
