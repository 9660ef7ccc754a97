"""Renewal dates from the CRM, for churn risk: where `crm pull` brought deals, they date an
account's renewal instead of the estimate from purchase activities.

* An open deal named as a renewal ("Acme renewal 2027") gives its close date; a past one is a
  renewal that slipped (overdue).
* Otherwise a won deal renews a term after it closed (:data:`RENEWAL_DAYS`, a year); won deals
  that close after the run's date are not counted (a backtest sees what was won by then).

A deal dates the renewal of every member it involves and of their organizations, and of the
organizations its CRM companies are linked to. Deal types are not read from the CRM yet, so other
open deals (new business, upsells) are left out rather than taken for renewals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, select

from plugin.db.base import to_micros
from plugin.db.models import CrmCompanyLink, CrmConnection
from plugin.db.sql import in_chunks, raw_rows
from plugin.services.crm_deals import closed_on, workspace_deals
from scoring.features import DAY_US

Ints = NDArray[np.int64]
RENEWAL_DAYS = 365  # a contract (a won deal, or a purchase without a CRM) renews a year later
RENEWAL_WORDS = ("renew",)  # an open deal whose name holds one of these is the renewal


@dataclass(frozen=True)
class CrmRenewals:
    """Renewal due times (epoch microseconds; -1: the CRM dates none), by member row and by
    organization row of the loaded inputs."""

    member: Ints
    org: Ints


def _is_renewal(deal: Any) -> bool:
    name = (deal.name or "").lower()
    return any(word in name for word in RENEWAL_WORDS)


def crm_renewals(
    conn: Connection, workspace_id: int, member_ids: Ints, org_ids: Ints, now: int
) -> CrmRenewals | None:
    """The CRM's renewal dates for these members and organizations; None when the workspace has
    no deals (the common case without a CRM: nothing more is read)."""
    deals = workspace_deals(conn, workspace_id)
    if not deals:
        return None
    involved = sorted({int(m) for d in deals for m in (d.member_ids or [])})
    live: dict[int, tuple[int, int | None]] = {}  # member id: (current member, organization)
    sql = "SELECT id, merged_into_id, organization_id FROM members WHERE workspace_id = ? AND id IN "
    for part, marks in in_chunks(involved):
        for rows in raw_rows(conn, f"{sql}({marks})", (workspace_id, *part)):
            live.update((r[0], (r[1] or r[0], r[2])) for r in rows)
    link, c = CrmCompanyLink, CrmConnection
    company_org = {
        (r.connection_id, r.crm_id): r.organization_id
        for r in conn.execute(
            select(link.connection_id, link.crm_id, link.organization_id)
            .join(c, c.id == link.connection_id)
            .where(c.workspace_id == workspace_id, link.crm_id.is_not(None))
        )
    }
    renewal_at: dict[tuple[str, int], int] = {}  # earliest open renewal deal's close
    won_at: dict[tuple[str, int], int] = {}  # latest won deal's close, up to ``now``
    for deal in deals:
        closed = closed_on(deal)
        if closed is None:
            continue
        at = to_micros(closed)
        if deal.won:
            if at > now:
                continue
            target, pick = won_at, max
        elif not deal.closed and _is_renewal(deal):
            target, pick = renewal_at, min
        else:
            continue
        for key in _keys(deal, live, company_org):
            target[key] = pick(target.get(key, at), at)

    def due(key: tuple[str, int]) -> int:
        if key in renewal_at:
            return renewal_at[key]
        if key in won_at:
            return won_at[key] + RENEWAL_DAYS * DAY_US
        return -1

    return CrmRenewals(
        member=np.array([due(("m", int(m))) for m in member_ids.tolist()], dtype=np.int64),
        org=np.array([due(("o", int(o))) for o in org_ids.tolist()], dtype=np.int64),
    )


def _keys(
    deal: Any, live: dict[int, tuple[int, int | None]], company_org: dict[tuple[int, str], int]
) -> set[tuple[str, int]]:
    """Who a deal's renewal date applies to: its members (as they are now, after merges), their
    organizations, and the organizations of its companies."""
    keys: set[tuple[str, int]] = set()
    for m in deal.member_ids or []:
        member, org = live.get(int(m), (int(m), None))
        keys.add(("m", member))
        if org is not None:
            keys.add(("o", org))
    for company in deal.company_ids or []:
        org = company_org.get((deal.connection_id, str(company)))
        if org is not None:
            keys.add(("o", org))
    return keys
