"""One contact budget for every program: a member is asked at most ``max_contacts`` times in
``window_days`` and never twice within ``min_gap_days``, whichever program asks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select

from plugin.db.base import table_of
from plugin.db.models import Outreach
from plugin.db.sql import in_values, insert_rows
from plugin.services.program_rules import Programs

CHUNK = 5_000


def within_budget(
    conn: Connection,
    workspace_id: int,
    member_ids: Sequence[int],
    now: datetime,
    policy: Programs,
    *,
    follow_up: bool = False,
) -> set[int]:
    """The members of ``member_ids`` who may be asked now. A ``follow_up`` (a reminder of an ask
    still open) counts against the number of asks but not the gap: it belongs to that ask."""
    o = Outreach
    since = now - timedelta(days=policy.window_days)
    out: set[int] = set()
    for start in range(0, len(member_ids), CHUNK):
        chunk = list(member_ids[start : start + CHUNK])
        asked = {
            r[0]: (r[1], r[2])
            for r in conn.execute(
                select(o.member_id, func.count(), func.max(o.at))
                .where(o.workspace_id == workspace_id, in_values(conn, o.member_id, chunk), o.at > since)
                .group_by(o.member_id)
            )
        }
        for member_id in chunk:
            count, last = asked.get(member_id, (0, None))
            if count >= policy.max_contacts:
                continue
            if last is not None and not follow_up and now - last < timedelta(days=policy.min_gap_days):
                continue
            out.add(member_id)
    return out


def record(conn: Connection, workspace_id: int, member_ids: Sequence[int], kind: str, now: datetime) -> None:
    insert_rows(
        conn,
        table_of(Outreach),
        [{"workspace_id": workspace_id, "member_id": m, "kind": kind, "at": now} for m in member_ids],
    )
