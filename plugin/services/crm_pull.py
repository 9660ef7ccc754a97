"""`flywheel crm pull`: what the CRM knows, read back: contacts' lifecycle stage and owner, and
deals with the members they involve. A won deal makes its members customers in Flywheel, so the
next scoring pass scores their churn risk instead of treating them as leads.

The CRM is the source of truth for lifecycle: a stage read back replaces the member's. Members
are found by their CRM link, else by email (and linked then, so a later sync updates that contact).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, select, update

from connectors.crm.base import CrmContact, CrmDeal
from connectors.errors import CrmError
from plugin.db.base import table_of, utcnow
from plugin.db.models import CrmConnection, CrmLink, Member
from plugin.db.models import CrmDeal as CrmDealRow
from plugin.db.sql import raw_rows, upsert_rows
from plugin.services.crm_connections import (
    acquire_lease,
    adapter_for,
    crm_error,
    finish_run,
    lease_length,
    load_connection,
    release_lease,
    start_run,
)
from plugin.services.leases import holder_name
from plugin.settings import Settings

CUSTOMER = "customer"
CUSTOMER_STAGES = {"customer", "evangelist"}  # stages that already count as customers
STAGE_MAX = 40  # members.lifecycle_stage holds 40 characters (a Salesforce picklist value may be longer)


class Reader(Protocol):
    calls: Counter[str]

    def read_contacts(self) -> Iterator[CrmContact]: ...

    def read_deals(self) -> Iterator[CrmDeal]: ...


@dataclass
class PullReport:
    run_id: int
    kind: str
    counts: Counter[str] = field(default_factory=Counter)
    calls: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "crm": self.kind,
            "counts": dict(self.counts),
            "calls": self.calls,
            "seconds": round(self.seconds, 2),
        }


def _members(conn: Connection, workspace_id: int) -> tuple[dict[str, int], dict[int, str | None]]:
    """Current members by lowercased email, and each one's lifecycle stage."""
    by_email: dict[str, int] = {}
    stage: dict[int, str | None] = {}
    sql = (
        "SELECT id, primary_email, lifecycle_stage FROM members "
        "WHERE workspace_id = ? AND merged_into_id IS NULL"
    )
    for rows in raw_rows(conn, sql, (workspace_id,)):
        for mid, email, st in rows:
            stage[mid] = st
            if email:
                by_email.setdefault(str(email).lower(), mid)
    return by_email, stage


def pull_crm(
    engine: Engine,
    settings: Settings,
    workspace_id: int,
    *,
    kind: str | None = None,
    adapter: Reader | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PullReport:
    row = load_connection(engine, workspace_id, kind)
    with lease_length(settings.crm_lease_s), adapter_for(settings, row, adapter) as crm:
        return _pull(engine, workspace_id, row, crm, progress)


def _pull(
    engine: Engine,
    workspace_id: int,
    row: CrmConnection,
    crm: Reader,
    progress: Callable[[int, int], None] | None,
) -> PullReport:
    started = time.perf_counter()
    holder = holder_name()
    acquire_lease(engine, row.id, holder)
    run_id = start_run(engine, row.id, "pull")
    report = PullReport(run_id, row.kind)
    status, error = "failed", None
    try:
        with engine.connect() as conn:
            by_email, stage = _members(conn, workspace_id)
            t = CrmLink.__table__.c
            linked = {
                r[0]: r[1]
                for r in conn.execute(select(t.crm_id, t.member_id).where(t.connection_id == row.id))
                if r[0]
            }
        member_of: dict[str, int] = {}  # CRM contact id -> member
        links: list[dict[str, Any]] = []
        new_stage: dict[int, str] = {}
        for contact in crm.read_contacts():
            report.counts["contacts"] += 1
            mid = linked.get(contact.crm_id) or (
                by_email.get(contact.email.lower()) if contact.email else None
            )
            if mid is None or mid not in stage:
                continue
            member_of[contact.crm_id] = mid
            links.append(
                {
                    "connection_id": row.id,
                    "member_id": mid,
                    "crm_object": "contact",
                    "crm_id": contact.crm_id,
                    "crm_stage": (contact.lifecycle_stage or "")[:64] or None,
                    "owner_id": contact.owner_id,
                    "failures": 0,
                }
            )
            crm_stage = (contact.lifecycle_stage or "")[:STAGE_MAX] or None  # members.lifecycle_stage
            if crm_stage and crm_stage != stage[mid]:
                new_stage[mid] = crm_stage
            if progress:
                progress(report.counts["contacts"], 0)
        deals: list[dict[str, Any]] = []
        for deal in crm.read_deals():
            report.counts["deals"] += 1
            members = sorted({member_of[c] for c in deal.contact_ids if c in member_of})
            deals.append(
                {
                    "connection_id": row.id,
                    "crm_id": deal.crm_id,
                    "name": deal.name,
                    "stage": deal.stage,
                    "won": deal.won,
                    "closed": deal.closed,
                    "amount": deal.amount,
                    "close_date": deal.close_date,
                    "member_ids": members,
                    "company_ids": list(deal.company_ids),
                    "read_at": utcnow(),
                }
            )
            if deal.won:
                report.counts["won_deals"] += 1
                for mid in members:
                    if new_stage.get(mid, stage[mid]) not in CUSTOMER_STAGES:
                        new_stage[mid] = CUSTOMER
                        report.counts["made_customers"] += 1
        with engine.begin() as conn:
            report.counts["deals_changed"] = _mark_changes(conn, row.id, deals)
            _save(conn, links, deals, new_stage)
        report.counts["linked"] = len(links)
        report.counts["stages_changed"] = len(new_stage)
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
        release_lease(engine, row.id, holder)


#: What a deal is, for scoring: a pull that finds any of these different marks it changed.
DEAL_CONTENT = ("name", "stage", "won", "closed", "amount", "close_date", "member_ids", "company_ids")


def _mark_changes(conn: Connection, connection_id: int, deals: Sequence[dict[str, Any]]) -> int:
    """Set each deal's ``changed_at``: now if it is new or its content differs from what is stored,
    else as stored. Returns how many changed."""
    d = CrmDealRow.__table__.c
    stored = {
        r.crm_id: r
        for r in conn.execute(
            select(d.crm_id, d.changed_at, *(d[name] for name in DEAL_CONTENT)).where(
                d.connection_id == connection_id
            )
        )
    }
    now, changed = utcnow(), 0
    for deal in deals:
        old = stored.get(deal["crm_id"])
        same = old is not None and all(getattr(old, k) == deal[k] for k in DEAL_CONTENT)
        deal["changed_at"] = old.changed_at if same and old is not None else now
        changed += not same
    return changed


def _save(
    conn: Connection, links: Sequence[dict[str, Any]], deals: Sequence[dict[str, Any]], stages: dict[int, str]
) -> None:
    upsert_rows(
        conn, table_of(CrmLink), links, ("connection_id", "member_id"), ("crm_id", "crm_stage", "owner_id")
    )
    upsert_rows(conn, table_of(CrmDealRow), deals, ("connection_id", "crm_id"))
    now = utcnow()
    by_stage: dict[str, list[int]] = {}
    for mid, st in stages.items():
        by_stage.setdefault(st, []).append(mid)
    for st, ids in by_stage.items():
        for start in range(0, len(ids), 5_000):
            conn.execute(
                update(Member)
                .where(Member.id.in_(ids[start : start + 5_000]))
                .values(lifecycle_stage=st, updated_at=now)
            )
