"""What the CRM's deals tell scoring, where `crm pull` brought them: renewal dates for churn
risk (instead of the estimate from purchase activities) and open deals for lead intent.

* An open deal named as a renewal ("Acme renewal 2027") gives its close date; a past one is a
  renewal that slipped (overdue).
* Otherwise a won deal renews a term after it closed (:data:`RENEWAL_DAYS`, a year); won deals
  that close after the run's date are not counted (a backtest sees what was won by then).

Other open deals (new business, upsells) are not taken for renewals: deal types are not read from
the CRM yet. Every open deal counts as intent for the leads it involves: a prospect in the sales
pipeline is one a rep wants to see.

A deal applies to every member it involves and to their organizations, and to the organizations its
CRM companies are linked to.
"""

from __future__ import annotations

from collections import Counter
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
class DealSignals:
    """By member row and by organization row of the loaded inputs: renewal due times (epoch
    microseconds; -1: the CRM dates none) and how many open deals involve them."""

    member_due: Ints
    org_due: Ints
    member_open: Ints
    org_open: Ints


def _is_renewal(deal: Any) -> bool:
    name = (deal.name or "").lower()
    return any(word in name for word in RENEWAL_WORDS)


def deal_signals(
    conn: Connection, workspace_id: int, member_ids: Ints, org_ids: Ints, now: int
) -> DealSignals | None:
    """What the CRM's deals say of these members and organizations; None when the workspace has
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
    open_deals: Counter[tuple[str, int]] = Counter()
    for deal in deals:
        if not deal.closed:
            open_deals.update(_keys(deal, live, company_org))
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

    members = [("m", int(m)) for m in member_ids.tolist()]
    orgs = [("o", int(o)) for o in org_ids.tolist()]
    return DealSignals(
        member_due=np.array([due(k) for k in members], dtype=np.int64),
        org_due=np.array([due(k) for k in orgs], dtype=np.int64),
        member_open=np.array([open_deals[k] for k in members], dtype=np.int64),
        org_open=np.array([open_deals[k] for k in orgs], dtype=np.int64),
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
