"""Deals (opportunities) read back from the workspace's CRMs by `crm pull`: who is in one, and when
it closed or is to close. Referrals convert on won deals; scoring dates renewals from them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, select

from plugin.db.models import CrmConnection, CrmDeal


def workspace_deals(conn: Connection, workspace_id: int) -> list[Any]:
    """Every stored deal of the workspace's CRM connections."""
    d, c = CrmDeal, CrmConnection
    return list(
        conn.execute(
            select(
                d.crm_id,
                d.won,
                d.closed,
                d.close_date,
                d.amount,
                d.member_ids,
                d.company_ids,
                d.connection_id,
            )
            .join(c, c.id == d.connection_id)
            .where(c.workspace_id == workspace_id)
        )
    )


def closed_on(close_date: str | None) -> datetime | None:
    """A deal's close date (HubSpot gives a time, Salesforce a date) as midnight UTC of that day;
    None when it has none or it is not a date."""
    text = (close_date or "")[:10]
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
