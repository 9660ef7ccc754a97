"""`flywheel crm sync`: members' scores and reasons onto their CRM contacts, changed ones only.

Each member's mapped fields are hashed; a member whose hash equals the one last sent with success
costs no call. Changed members go in batches of the adapter's cap, and each batch's outcomes are
stored in their own transaction, so a run killed midway is finished by the next (upserts are by
email: nothing is created twice). A failed record keeps its last good state, is counted with its
reason and is sent again next run. A lease keeps two syncs of one CRM from overlapping.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, select, update

from connectors.crm.base import CrmCompany, CrmNote, CrmRecord, Outcome, PropertySpec, SchemaReport
from connectors.errors import CrmError
from plugin.db.base import table_of, utcnow
from plugin.db.models import CrmConnection, CrmLink
from plugin.db.sql import dialect_insert, upsert_rows
from plugin.services.crm_companies import sync_companies
from plugin.services.crm_connections import (
    acquire_lease,
    adapter_for,
    crm_error,
    finish_run,
    lease_length,
    load_connection,
    release_lease,
    renew_lease,
    start_run,
)
from plugin.services.crm_fields import FieldMap, fields_hash, member_records
from plugin.services.crm_signals import pending_notes
from plugin.services.gdpr import handle_erasures, pending_erasures
from plugin.services.leases import holder_name
from plugin.settings import Settings

Progress = Callable[[int, int], None]
MAX_FAILURES_SHOWN = 20
NOTE_BATCH = 100  # notes per call, so the watermark moves after each


class Adapter(Protocol):
    batch_size: int
    calls: Counter[str]

    def ensure_schema(self, specs: Sequence[PropertySpec]) -> SchemaReport: ...

    def upsert_contacts(self, records: Sequence[CrmRecord]) -> list[Outcome]: ...

    def create_notes(self, notes: Sequence[CrmNote]) -> list[Outcome]: ...

    def find_companies(self, domains: Sequence[str]) -> dict[str, str]: ...

    def write_companies(self, companies: Sequence[CrmCompany]) -> list[Outcome]: ...

    def associate_contacts(self, pairs: Sequence[tuple[str, str]]) -> None: ...


@dataclass
class SyncReport:
    run_id: int
    kind: str
    dry_run: bool
    counts: Counter[str] = field(default_factory=Counter)  # created, updated, unchanged, failed
    calls: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    schema: SchemaReport | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)  # member id and reason, first few
    changes: list[dict[str, Any]] = field(default_factory=list)  # dry run: what would change
    phases: dict[str, float] = field(default_factory=dict)  # seconds: contacts, companies, notes

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "crm": self.kind,
            "dry_run": self.dry_run,
            "counts": {
                k: self.counts.get(k, 0)
                for k in ("created", "updated", "unchanged", "failed", "shared_email")
            }
            | {k: v for k, v in self.counts.items() if k.startswith("erasures_") and v},
            "calls": self.calls,
            "seconds": round(self.seconds, 2),
            "phases": {k: round(v, 2) for k, v in self.phases.items()},
            "schema": None
            if self.schema is None
            else {"created": self.schema.created, "present": len(self.schema.present)},
            "failures": self.failures,
            "changes": self.changes,
        }


def _links(conn: Connection, connection_id: int) -> dict[int, tuple[str | None, dict[str, Any] | None]]:
    t = CrmLink.__table__.c
    rows = conn.execute(select(t.member_id, t.fields_hash, t.fields).where(t.connection_id == connection_id))
    return {r[0]: (r[1], r[2]) for r in rows}


def _store(
    conn: Connection, connection_id: int, batch: Sequence[CrmRecord], outcomes: Sequence[Outcome]
) -> None:
    """One batch's outcomes: successes replace the link's state; failures only note why, keeping
    the last good state (so the member is sent again next run)."""
    by_key = {r.key: r for r in batch}
    now = utcnow()
    good, bad = [], []
    for o in outcomes:
        record = by_key[o.key]
        if o.status == "failed":
            bad.append(
                {"connection_id": connection_id, "member_id": int(o.key), "failure": (o.reason or "")[:500]}
            )
        else:
            good.append(
                {
                    "connection_id": connection_id,
                    "member_id": int(o.key),
                    "crm_object": "contact",
                    "crm_id": o.crm_id,
                    "fields_hash": fields_hash(record.email, record.properties),
                    "fields": {"email": record.email, **record.properties},
                    "synced_at": now,
                    "failure": None,
                    "failures": 0,
                }
            )
    table = table_of(CrmLink)
    upsert_rows(conn, table, good, ("connection_id", "member_id"))
    if bad:
        stmt = dialect_insert(conn)(table).values(crm_object="contact", failures=1)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["connection_id", "member_id"],
                set_={"failure": stmt.excluded.failure, "failures": table.c.failures + 1},
            ),
            bad,
        )


def _note_signals(
    engine: Engine, workspace_id: int, row: CrmConnection, crm: Adapter, report: SyncReport, holder: str
) -> None:
    """New score events (hot leads, high churn risks, new champions) as notes on their contacts, in
    event order, 100 a call; the watermark moves after each call, so a run stopped midway notes the
    rest next time and nothing twice (read fresh: another sync may have moved it since)."""
    with engine.connect() as conn:
        after = int(
            conn.execute(select(CrmConnection.events_noted).where(CrmConnection.id == row.id)).scalar_one()
        )
        pending = pending_notes(conn, workspace_id, row.id, after)
    for start in range(0, len(pending.notes), NOTE_BATCH):
        part = pending.notes[start : start + NOTE_BATCH]
        for o in crm.create_notes(part):
            report.counts["notes_created" if o.status == "created" else "notes_failed"] += 1
        _advance(engine, row.id, holder, int(part[-1].key))
    if pending.no_contact:
        report.counts["notes_no_contact"] += pending.no_contact
    _advance(engine, row.id, holder, pending.last_event)


def _advance(engine: Engine, connection_id: int, holder: str, upto: int) -> None:
    with engine.begin() as conn:
        renew_lease(conn, connection_id, holder)
        conn.execute(
            update(CrmConnection)
            .where(CrmConnection.id == connection_id, CrmConnection.events_noted < upto)
            .values(events_noted=upto)
        )


def _one_per_email(records: Iterable[CrmRecord]) -> tuple[list[CrmRecord], int]:
    """The CRM matches contacts by email: of members sharing one (not merged, e.g. an unverified
    email on two platforms; see `flywheel members suggestions`), only the first by id is sent, so
    they do not overwrite each other's scores on one contact. Returns the records and how many
    were held back."""
    seen: set[str] = set()
    out = []
    held = 0
    for r in records:
        if r.email in seen:
            held += 1
            continue
        seen.add(r.email)
        out.append(r)
    return out, held


def _diff(record: CrmRecord, before: dict[str, Any] | None) -> dict[str, Any]:
    old = before or {}
    fields = {k: {"from": old.get(k), "to": v} for k, v in record.properties.items() if old.get(k) != v}
    gone = {k: {"from": v, "to": None} for k, v in old.items() if k != "email" and k not in record.properties}
    return {
        "member_id": int(record.key),
        "email": record.email,
        "new": before is None,
        "fields": fields | gone,
    }


def sync_crm(
    engine: Engine,
    settings: Settings,
    workspace_id: int,
    *,
    kind: str | None = None,
    dry_run: bool = False,
    adapter: Adapter | None = None,
    progress: Progress | None = None,
) -> SyncReport:
    """Send every changed member to the workspace's CRM (or, with ``dry_run``, say what would
    change, field by field, without a call)."""
    row = load_connection(engine, workspace_id, kind)
    with lease_length(settings.crm_lease_s), adapter_for(settings, row, adapter) as crm:
        return _leased(engine, workspace_id, row, crm, dry_run, progress)


def _leased(
    engine: Engine,
    workspace_id: int,
    row: CrmConnection,
    crm: Adapter,
    dry_run: bool,
    progress: Progress | None,
) -> SyncReport:
    if dry_run:
        return _run(engine, workspace_id, row, crm, None, progress)
    holder = holder_name()
    acquire_lease(engine, row.id, holder)
    try:
        return _run(engine, workspace_id, row, crm, holder, progress)
    finally:
        release_lease(engine, row.id, holder)


def _run(
    engine: Engine,
    workspace_id: int,
    row: CrmConnection,
    crm: Adapter,
    holder: str | None,
    progress: Progress | None,
) -> SyncReport:
    started = time.perf_counter()
    dry_run = holder is None
    mapping = FieldMap.from_settings(row.settings)
    run_id = start_run(engine, row.id, "push", dry_run=dry_run)
    report = SyncReport(run_id, row.kind, dry_run)
    status, error = "failed", None
    try:
        if holder is not None:  # erased members' CRM records first; a CRM failure there stops nothing
            lease = holder
            renew = lambda conn: renew_lease(conn, row.id, lease)  # noqa: E731
            handle_erasures(engine, workspace_id, row.id, crm, report.counts, renew)
        if not dry_run:
            report.schema = crm.ensure_schema(mapping.specs())
        with engine.connect() as conn:
            links = _links(conn, row.id)
            records, shared = _one_per_email(member_records(conn, workspace_id, mapping))
        report.counts["shared_email"] = shared
        todo = [
            r for r in records if fields_hash(r.email, r.properties) != links.get(int(r.key), (None, None))[0]
        ]
        report.counts["unchanged"] = len(records) - len(todo)
        if holder is None:
            report.changes = [_diff(r, links.get(int(r.key), (None, None))[1]) for r in todo]
            report.counts["would_change"] = len(todo)
            with engine.connect() as conn:
                report.counts["notes_pending"] = len(
                    pending_notes(conn, workspace_id, row.id, row.events_noted).notes
                )
                report.counts["erasures_pending"] = pending_erasures(conn, workspace_id, row.id)
            status = "done"
            return report
        # Above the adapter's bulk threshold (Salesforce: Bulk API 2.0) everything goes as one job;
        # its outcomes are stored in chunks all the same.
        phase = time.perf_counter()
        bulk = getattr(crm, "bulk_threshold", None)
        step = len(todo) if bulk and len(todo) > bulk else crm.batch_size
        done = 0
        for start in range(0, len(todo), max(step, 1)):
            batch = todo[start : start + step]
            outcomes = crm.upsert_bulk(batch) if step > crm.batch_size else crm.upsert_contacts(batch)  # type: ignore[attr-defined]
            for part in range(0, len(batch), 1_000):
                with engine.begin() as conn:
                    _store(conn, row.id, batch[part : part + 1_000], outcomes[part : part + 1_000])
                    renew_lease(conn, row.id, holder)
            for o in outcomes:
                report.counts[o.status] += 1
                if o.status == "failed" and len(report.failures) < MAX_FAILURES_SHOWN:
                    report.failures.append({"member_id": int(o.key), "reason": o.reason})
            done += len(batch)
            if progress:
                progress(done, len(todo))
        report.phases["contacts"] = time.perf_counter() - phase
        if getattr(crm, "companies", True):  # Salesforce: Accounts are left to the org's own rules
            phase = time.perf_counter()
            report.counts.update(sync_companies(engine, workspace_id, row.id, crm))
            report.phases["companies"] = time.perf_counter() - phase
        phase = time.perf_counter()
        _note_signals(engine, workspace_id, row, crm, report, holder)
        report.phases["notes"] = time.perf_counter() - phase
        status = "done"
        return report
    except CrmError as exc:
        error = str(exc)[:500]
        raise crm_error(exc, row.kind) from exc
    finally:
        report.calls = dict(crm.calls)
        report.seconds = time.perf_counter() - started
        with engine.begin() as conn:
            finish_run(conn, run_id, status, dict(report.counts), report.calls, error)
            if status == "done" and not dry_run:
                conn.execute(
                    update(CrmConnection).where(CrmConnection.id == row.id).values(checked_at=utcnow())
                )
