"""Listing activities of a workspace, newest recorded first, filtered by member, type, source and
time, one keyset page (by id) at a time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from plugin.db.models import Activity, Member
from plugin.errors import NotFound, ValidationFailed


@dataclass(frozen=True)
class ActivityQuery:
    member_id: int | None = None
    type: str | None = None
    source: str | None = None
    since: datetime | None = None  # occurred at or after
    until: datetime | None = None  # occurred before


def _member_id(conn: Connection, workspace_id: int, member_id: int) -> int:
    """The member whose activities to list: a merged member's activities moved to the member it
    was merged into, so that one's. 404 when the member is not in this workspace."""
    seen: set[int] = set()
    current = member_id
    while current not in seen:
        seen.add(current)
        into = conn.execute(
            select(Member.merged_into_id).where(Member.workspace_id == workspace_id, Member.id == current)
        ).first()
        if into is None:
            raise NotFound(f"no member {member_id} in this workspace")
        if into.merged_into_id is None:
            return current
        current = into.merged_into_id
    return current


def search(
    conn: Connection, workspace_id: int, query: ActivityQuery, limit: int, after: Sequence[Any] | None
) -> list[dict[str, Any]]:
    """Up to ``limit + 1`` activities with ids below the keyset ``after`` ([id]), highest id first."""
    if query.since is not None and query.until is not None and query.until <= query.since:
        raise ValidationFailed("the time window is empty", fields={"until": "must be later than since"})
    a = Activity
    stmt = select(a.id, a.member_id, a.source, a.type, a.channel, a.occurred_at, a.title, a.url).where(
        a.workspace_id == workspace_id
    )
    if query.member_id is not None:
        stmt = stmt.where(a.member_id == _member_id(conn, workspace_id, query.member_id))
    if query.type is not None:
        stmt = stmt.where(a.type == query.type)
    if query.source is not None:
        stmt = stmt.where(a.source == query.source)
    if query.since is not None:
        stmt = stmt.where(a.occurred_at >= query.since)
    if query.until is not None:
        stmt = stmt.where(a.occurred_at < query.until)
    if after is not None:
        stmt = stmt.where(a.id < int(after[0]))
    return [dict(r._mapping) for r in conn.execute(stmt.order_by(a.id.desc()).limit(limit + 1))]
