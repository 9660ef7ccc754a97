"""Signals as CRM notes: when a lead turns hot, a churn risk turns high or a member becomes a
champion, the people who own the contact see it on the record, with the reasons and, for a hot
lead, the posts that raised the hand. Each score event is noted once (the connection remembers
the last one); an event whose member has no CRM contact (no email, or its sync failed) is counted
and passed over rather than holding back every later signal."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection

from connectors.crm.base import CrmNote
from plugin.db.models.score import REASON_COLUMNS, reasons_of
from plugin.db.sql import in_chunks, raw_rows
from plugin.services.score_read import words

TITLES = {
    "lead_turned_hot": "Lead turned hot",
    "churn_risk_high": "Churn risk is high",
    "became_champion": "Became a community champion",
}
MAX_NOTES = 5_000  # a first sync after months of events notes the latest, not every one
SNIPPET = 160


@dataclass(frozen=True)
class Pending:
    notes: list[CrmNote]
    last_event: int  # the highest event id read: the next sync starts after it
    no_contact: int  # events passed over: their member has no contact in the CRM


def pending_notes(conn: Connection, workspace_id: int, connection_id: int, after: int) -> Pending:
    """Notes for the member events after event id ``after``: the newest per member and event."""
    cols = ", ".join(f"s.{c}" for c in REASON_COLUMNS)
    sql = (
        "SELECT e.id, e.subject_id, e.event, e.after, e.score, e.occurred_at, l.crm_id, s.triggers, "  # noqa: S608
        f"{cols} FROM score_events e "
        "LEFT JOIN crm_links l ON l.connection_id = ? AND l.member_id = e.subject_id "
        "LEFT JOIN scores s ON s.workspace_id = e.workspace_id AND s.kind = e.kind "
        "AND s.subject = 'member' AND s.subject_id = e.subject_id "
        "WHERE e.workspace_id = ? AND e.id > ? AND e.subject = 'member' ORDER BY e.id"
    )
    latest: dict[tuple[int, str], tuple[Any, ...]] = {}
    last = after
    no_contact = 0
    for rows in raw_rows(conn, sql, (connection_id, workspace_id, after)):
        for r in rows:
            last = r[0]
            if r[6] is None:
                no_contact += 1
                continue
            latest[(r[1], r[2])] = r
    chosen = sorted(latest.values(), key=lambda r: r[0])[-MAX_NOTES:]
    titles = _trigger_titles(conn, [t for r in chosen for t in _ids(r[7])])
    notes = [
        CrmNote(
            key=str(r[0]),
            contact_id=str(r[6]),
            timestamp=_when(r[5]),
            body=_body(r, titles),
        )
        for r in chosen
    ]
    return Pending(notes, last, no_contact)


def _ids(triggers: Any) -> list[int]:
    if isinstance(triggers, str | bytes):
        triggers = orjson.loads(triggers)
    return [int(t) for t in triggers or []]


def _when(value: Any) -> datetime:
    """A stored time as UTC-aware (SQLite hands back text, PostgreSQL a datetime)."""
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _trigger_titles(conn: Connection, ids: Sequence[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for part, marks in in_chunks(ids):
        sql = f"SELECT id, title, text FROM activities WHERE id IN ({marks})"  # noqa: S608
        for rows in raw_rows(conn, sql, part):
            for aid, title, text in rows:
                words_ = (title or text or "").strip()
                out[aid] = words_[:SNIPPET] + ("..." if len(words_) > SNIPPET else "")
    return out


def _body(r: tuple[Any, ...], titles: dict[int, str]) -> str:
    event, label, score = r[2], r[3], r[4]
    title = TITLES.get(event, event.replace("_", " "))
    shown = f"{score:.0%}" if event == "churn_risk_high" else f"{score:.1f}"
    lines = [f"<p><strong>Flywheel: {html.escape(title)}</strong> ({html.escape(str(label))}, {shown})</p>"]
    reasons = words(reasons_of(r[8 : 8 + len(REASON_COLUMNS)]))
    if reasons:
        lines.append("<ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in reasons) + "</ul>")
    asked = [titles[t] for t in _ids(r[7]) if titles.get(t)]
    if asked:
        lines.append("<p>Asked:</p><ul>" + "".join(f"<li>{html.escape(a)}</li>" for a in asked) + "</ul>")
    return "".join(lines)
