"""What the CRM's deals tell scoring, where `crm pull` brought them: renewal dates for churn
risk (instead of the estimate from purchase activities) and open deals for lead intent.

* An open deal named as a renewal ("Acme renewal 2027") gives its close date; a past one is a
  renewal that slipped (overdue). One dated before the latest won deal is a leftover the CRM never
  closed, and is ignored.
* Otherwise the account renews a term (:data:`RENEWAL_DAYS`, a year) after its latest contract:
  the latest won deal or the latest purchase activity, whichever is later. Won deals that close
  after the run's date are not counted.
* Backtests see won deals only: which deals were open on a past date is not known (their creation
  dates are not read), and today's open deals would leak what happened since.

Other open deals (new business, upsells) are not taken for renewals: deal types are not read from
the CRM yet. Every open deal counts as intent for the leads it involves (a prospect in the sales
pipeline is one a rep wants to see), unless its close date passed more than :data:`STALE_DAYS` ago.

A deal applies to every member it involves and to their organizations, and to the organizations its
CRM companies are linked to.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray
from sqlalchemy import Connection, select

from plugin.db.base import to_micros
from plugin.db.models import CrmCompanyLink, CrmConnection, CrmDeal
from plugin.db.sql import in_chunks, raw_rows
from plugin.services.crm_deals import closed_on
from scoring.features import DAY_US

Ints = NDArray[np.int64]
RENEWAL_DAYS = 365  # a contract (a won deal, or a purchase without a CRM) renews a year later
RENEWAL_WORDS = ("renew",)  # an open deal whose name holds one of these is the renewal
RENEWAL_NAME = re.compile("|".join(map(re.escape, RENEWAL_WORDS)), re.IGNORECASE)
STALE_DAYS = 90  # an open deal this long past its close date is abandoned: no intent
MERGE_HOPS = 16  # merged members are followed this many times (a chain of merges)


@dataclass(frozen=True)
class DealSignals:
    """By member row of the loaded inputs, from their account's deals (or, without an organization,
    their own): the close time of an open renewal deal and the time a term after the latest won
    deal (epoch microseconds; -1: the CRM says nothing), and how many open deals there are."""

    renewal: Ints
    won_due: Ints
    open_deals: Ints


Key = tuple[str, int]


def _ids(values: Any) -> list[int]:
    """The integer ids of a JSON list; anything else in it (a CRM's odd value) is skipped."""
    out = []
    for v in values or []:
        try:
            out.append(int(v))
        except (TypeError, ValueError):
            continue
    return out


def _live_members(conn: Connection, workspace_id: int, ids: set[int]) -> dict[int, tuple[int, int | None]]:
    """For each member id, the member it is now (following merges) and that member's organization."""
    sql = "SELECT id, merged_into_id, organization_id FROM members WHERE workspace_id = ? AND id IN "
    rows: dict[int, tuple[int | None, int | None]] = {}
    wanted = set(ids)
    for _ in range(MERGE_HOPS):
        for part, marks in in_chunks(sorted(wanted - rows.keys())):
            for got in raw_rows(conn, f"{sql}({marks})", (workspace_id, *part)):
                rows.update((r[0], (r[1], r[2])) for r in got)
        wanted = {m for m, _ in rows.values() if m is not None} - rows.keys()
        if not wanted:
            break
    out: dict[int, tuple[int, int | None]] = {}
    for start in ids:
        member = start
        for _ in range(MERGE_HOPS):
            nxt = rows.get(member, (None, None))[0]
            if nxt is None or nxt == member:  # live, or an erased member's shell (merged into itself)
                break
            member = nxt
        out[start] = (member, rows.get(member, (None, None))[1])
    return out


@dataclass(frozen=True)
class _Deal:
    """What scoring reads of one deal: one that counts (won by the run's date, or open)."""

    won: bool
    at: int | None  # its close date, epoch microseconds
    renewal: bool
    member_ids: list[Any]
    company_ids: list[Any]
    connection_id: int


@lru_cache(maxsize=4096)
def _micros(close_date: str | None) -> int | None:
    closed = closed_on(close_date)
    return None if closed is None else to_micros(closed)


def _json_list(value: Any) -> list[Any]:
    """A JSON list column as the driver gives it: text on SQLite, decoded on PostgreSQL."""
    if isinstance(value, str | bytes):
        value = orjson.loads(value)
    return value if isinstance(value, list) else []


def _deals_that_count(conn: Connection, workspace_id: int, now: int, live: bool) -> list[_Deal]:
    """The workspace's deals won by ``now``, and with ``live`` its open ones; lost deals and wins
    after ``now`` say nothing. Plain rows from the driver: a CRM can hold 100,000 deals."""
    sql = (
        "SELECT d.name, d.won, d.closed, d.close_date, d.member_ids, d.company_ids, d.connection_id "
        "FROM crm_deals d JOIN crm_connections c ON c.id = d.connection_id WHERE c.workspace_id = ?"
    )
    out = []
    for rows in raw_rows(conn, sql, (workspace_id,)):
        for name, won, closed, close_date, members, companies, connection in rows:
            at = _micros(close_date)
            if won:
                if at is None or at > now:
                    continue
            elif closed or not live:
                continue
            renewal = not won and bool(name) and RENEWAL_NAME.search(name) is not None
            out.append(_Deal(bool(won), at, renewal, _json_list(members), _json_list(companies), connection))
    return out


def deal_signals(
    conn: Connection,
    workspace_id: int,
    member_ids: Ints,
    org_ids: Ints,
    org_row: Ints,
    now: int,
    *,
    live: bool = True,
) -> DealSignals | None:
    """What the CRM's deals say of these members (``org_row``: each one's row in ``org_ids``, -1
    for none) as of ``now``; None when the workspace has no deals that count (the common case
    without a CRM: nothing more is read). ``live``: the run scores the present, so open deals count
    (not in a backtest)."""
    deals = _deals_that_count(conn, workspace_id, now, live)
    if not deals:
        return None
    members = _live_members(conn, workspace_id, {m for d in deals for m in _ids(d.member_ids)})
    company_org = _company_orgs(conn, workspace_id)
    renewal_at: dict[Key, int] = {}  # the earliest open renewal deal's close
    won_at: dict[Key, int] = {}  # the latest won deal's close, up to ``now``
    open_deals: Counter[Key] = Counter()
    stale = now - STALE_DAYS * DAY_US
    for deal in deals:
        keys, at = _keys(deal, members, company_org), deal.at
        if deal.won and at is not None:
            for key in keys:
                won_at[key] = max(won_at.get(key, at), at)
            continue
        if at is None or at >= stale:
            open_deals.update(keys)
        if at is not None and deal.renewal:
            for key in keys:
                renewal_at[key] = min(renewal_at.get(key, at), at)
    # An open renewal older than the latest win is a leftover the CRM never closed.
    renewal = {k: at for k, at in renewal_at.items() if at >= won_at.get(k, -1)}
    won_due = {k: at + RENEWAL_DAYS * DAY_US for k, at in won_at.items()}
    opened = {k: int(n) for k, n in open_deals.items()}

    def per_member(values: dict[Key, int], missing: int) -> Ints:
        """The account's value, or the member's own where they have no organization."""
        by_org = np.append(_column(values, "o", org_ids, missing), missing)
        return np.where(org_row >= 0, by_org[org_row], _column(values, "m", member_ids, missing))

    return DealSignals(per_member(renewal, -1), per_member(won_due, -1), per_member(opened, 0))


def _column(values: dict[Key, int], kind: str, ids: Ints, missing: int) -> Ints:
    """``values`` of this kind of key, looked up for each id (``missing`` where none): one sort
    and one search, not a dictionary lookup per member."""
    mine = {k: v for (of, k), v in values.items() if of == kind}
    if not mine or ids.size == 0:
        return np.full(ids.size, missing, dtype=np.int64)
    keys = np.fromiter(mine.keys(), np.int64, len(mine))
    got = np.fromiter(mine.values(), np.int64, len(mine))
    order = np.argsort(keys)
    keys, got = keys[order], got[order]
    pos = np.minimum(np.searchsorted(keys, ids), keys.size - 1)
    return np.where(keys[pos] == ids, got[pos], missing).astype(np.int64)


def _keys(
    deal: Any, members: dict[int, tuple[int, int | None]], company_org: dict[tuple[int, str], int]
) -> set[Key]:
    """Who a deal applies to: its members (as they are now, after merges), their organizations,
    and the organizations of its companies."""
    keys: set[Key] = set()
    for m in _ids(deal.member_ids):
        member, org = members.get(m, (m, None))
        keys.add(("m", member))
        if org is not None:
            keys.add(("o", org))
    for company in deal.company_ids or []:
        org = company_org.get((deal.connection_id, str(company)))
        if org is not None:
            keys.add(("o", org))
    return keys


def members_of_changed_deals(conn: Connection, workspace_id: int, since: datetime) -> set[int]:
    """Current members whose deal signals may have moved: those a deal found new or different by a
    `crm pull` since ``since`` involves, with everyone at their organizations (a renewal date and
    open deals are an account's)."""
    d, c = CrmDeal, CrmConnection
    deals = list(
        conn.execute(
            select(d.member_ids, d.company_ids, d.connection_id)
            .join(c, c.id == d.connection_id)
            .where(c.workspace_id == workspace_id, d.changed_at >= since)
        )
    )
    if not deals:
        return set()
    members = _live_members(conn, workspace_id, {m for deal in deals for m in _ids(deal.member_ids)})
    company_org = _company_orgs(conn, workspace_id)
    keys = set().union(*(_keys(deal, members, company_org) for deal in deals))
    out = {k for kind, k in keys if kind == "m"}
    orgs = sorted(k for kind, k in keys if kind == "o")
    sql = "SELECT id FROM members WHERE workspace_id = ? AND merged_into_id IS NULL AND organization_id IN "
    for part, marks in in_chunks(orgs):
        for rows in raw_rows(conn, f"{sql}({marks})", (workspace_id, *part)):
            out.update(r[0] for r in rows)
    return out


def _company_orgs(conn: Connection, workspace_id: int) -> dict[tuple[int, str], int]:
    """(connection, CRM company id): the organization it is linked to."""
    link, c = CrmCompanyLink, CrmConnection
    return {
        (r.connection_id, r.crm_id): r.organization_id
        for r in conn.execute(
            select(link.connection_id, link.crm_id, link.organization_id)
            .join(c, c.id == link.connection_id)
            .where(c.workspace_id == workspace_id, link.crm_id.is_not(None))
        )
    }
