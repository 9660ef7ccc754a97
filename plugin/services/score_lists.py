"""Stored scores as ranked lists, the scoring runs that made them, and the signals (crossings) they
raised, each one keyset page at a time, always within one workspace, with names to read them by."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, false, func, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from plugin.db.models import Member, Organization, Score, ScoreEvent, ScoreRun
from plugin.db.models.score import REASON_COLUMNS, SUBJECTS, reasons_of
from plugin.errors import ValidationFailed
from plugin.services.score_read import words

KINDS = ("advocate", "lead", "churn")
EVENTS = ("became_champion", "lead_turned_hot", "churn_risk_high")
#: The kinds scored for each subject: organizations have an account churn risk only.
SCORED = {"member": KINDS, "organization": ("churn",)}


@dataclass(frozen=True)
class ScoreQuery:
    kind: str
    subject: str = "member"
    label: str | None = None  # advocate level, lead grade or churn band
    hot: bool | None = None
    min_score: float | None = None


def cursor_types(kind: str) -> list[type]:
    """A ranked list's keyset: leads rank hot ones first ([hot, score, id]), others by score."""
    return [bool, float, int] if kind == "lead" else [float, int]


def rank_key(kind: str) -> Callable[[dict[str, Any]], list[Any]]:
    if kind == "lead":
        return lambda row: [row["hot"], row["rank_score"], row["subject_id"]]
    return lambda row: [row["rank_score"], row["subject_id"]]


def _after(kind: str, after: Sequence[Any], score: Any, hot: Any, subject_id: Any) -> ColumnElement[bool]:
    """Rows ranked after the keyset ``after`` (score descending, then id ascending; hot first for leads)."""
    last_score, last_id = float(after[-2]), int(after[-1])
    later = or_(score < last_score, and_(score == last_score, subject_id > last_id))
    if kind != "lead":
        return later
    if after[0]:
        return or_(hot == false(), and_(hot == true(), later))
    return and_(hot == false(), later)


def ranked(
    conn: Connection, workspace_id: int, query: ScoreQuery, limit: int, after: Sequence[Any] | None
) -> list[dict[str, Any]]:
    """Up to ``limit + 1`` scores of one kind and subject, highest first, with reasons in words."""
    if query.kind not in KINDS:
        raise ValidationFailed("unknown score", fields={"kind": f"one of {', '.join(KINDS)}"})
    if query.subject not in SUBJECTS:
        raise ValidationFailed("unknown subject", fields={"subject": "member or organization"})
    if query.kind not in SCORED[query.subject]:
        raise ValidationFailed(
            f"organizations have no {query.kind} score", fields={"subject": "organizations have churn only"}
        )
    s, r = Score.__table__.c, ScoreRun.__table__.c
    columns: list[Any] = [
        s.subject_id,
        s.score,
        s.label,
        s.hot,
        s.triggers,
        r.as_of,
        r.model_version,
        *(s[c] for c in REASON_COLUMNS),
    ]
    stmt = select(*columns).join(ScoreRun, ScoreRun.id == s.run_id)
    if query.subject == "member":
        m, o = Member, Organization
        stmt = (
            stmt.add_columns(m.display_name, m.primary_email, o.id.label("org_id"), o.name.label("org_name"))
            .add_columns(o.domain.label("org_domain"))
            .join(m, and_(m.id == s.subject_id, m.workspace_id == workspace_id, m.merged_into_id.is_(None)))
            .outerjoin(o, and_(o.id == m.organization_id, o.workspace_id == workspace_id))
        )
    else:
        o = Organization
        stmt = stmt.add_columns(o.name, o.domain).join(
            o, and_(o.id == s.subject_id, o.workspace_id == workspace_id)
        )
    stmt = stmt.where(s.workspace_id == workspace_id, s.kind == query.kind, s.subject == query.subject)
    if query.label is not None:
        stmt = stmt.where(s.label == query.label)
    if query.hot is not None:
        stmt = stmt.where(s.hot == (true() if query.hot else false()))
    if query.min_score is not None:
        stmt = stmt.where(s.score >= query.min_score)
    if after is not None:
        stmt = stmt.where(_after(query.kind, after, s.score, s.hot, s.subject_id))
    order = [s.hot.desc()] if query.kind == "lead" else []
    stmt = stmt.order_by(*order, s.score.desc(), s.subject_id).limit(limit + 1)
    out = []
    for row in conn.execute(stmt):
        item = {
            "subject": query.subject,
            "subject_id": row.subject_id,
            "kind": query.kind,
            "score": round(row.score, 4),
            "rank_score": row.score,
            "label": row.label,
            "hot": bool(row.hot),
            "reasons": words(reasons_of([row._mapping[c] for c in REASON_COLUMNS])),
            "triggers": list(row.triggers or []),
            "as_of": row.as_of,
            "model_version": row.model_version,
        }
        if query.subject == "member":
            item |= {
                "name": row.display_name,
                "email": row.primary_email,
                "domain": None,
                "organization": None
                if row.org_id is None
                else {"id": row.org_id, "name": row.org_name, "domain": row.org_domain},
            }
        else:
            item |= {"name": row.name, "email": None, "domain": row.domain, "organization": None}
        out.append(item)
    return out


def runs(
    conn: Connection, workspace_id: int, limit: int, after: Sequence[Any] | None
) -> list[dict[str, Any]]:
    """Up to ``limit + 1`` scoring runs, newest first, with how many of each signal they raised."""
    r = ScoreRun
    stmt = select(
        r.id,
        r.kinds,
        r.mode,
        r.as_of,
        r.started_at,
        r.finished_at,
        r.members_scored,
        r.model_version,
        r.weights_hash,
    ).where(r.workspace_id == workspace_id)
    if after is not None:
        stmt = stmt.where(r.id < int(after[0]))
    rows = [dict(row._mapping) for row in conn.execute(stmt.order_by(r.id.desc()).limit(limit + 1))]
    signals: dict[int, dict[str, int]] = {row["id"]: {} for row in rows}
    if rows:
        e = ScoreEvent
        for run_id, event, n in conn.execute(
            select(e.run_id, e.event, func.count())
            .where(e.workspace_id == workspace_id, e.run_id.in_(list(signals)))
            .group_by(e.run_id, e.event)
        ):
            signals[run_id][event] = int(n)
    for row in rows:
        row["kinds"] = [k for k in row["kinds"].split(",") if k]
        row["signals"] = signals[row["id"]]
    return rows


@dataclass(frozen=True)
class SignalQuery:
    event: str | None = None
    kind: str | None = None
    subject: str | None = None
    since: datetime | None = None


def signals(
    conn: Connection, workspace_id: int, query: SignalQuery, limit: int, after: Sequence[Any] | None
) -> list[dict[str, Any]]:
    """Up to ``limit + 1`` crossings (a member became a champion, a lead turned hot, a churn risk
    turned high), newest first, each with the name of the member or organization it is about."""
    e, m, o = ScoreEvent, Member, Organization
    stmt = (
        select(
            e.id,
            e.event,
            e.kind,
            e.subject,
            e.subject_id,
            e.before,
            e.after,
            e.score,
            e.occurred_at,
            e.as_of,
            e.run_id,
            m.display_name,
            m.primary_email,
            o.name.label("org_name"),
            o.domain,
        )
        .outerjoin(m, and_(e.subject == "member", m.id == e.subject_id, m.workspace_id == workspace_id))
        .outerjoin(o, and_(e.subject == "organization", o.id == e.subject_id, o.workspace_id == workspace_id))
        .where(e.workspace_id == workspace_id)
    )
    if query.event is not None:
        stmt = stmt.where(e.event == query.event)
    if query.kind is not None:
        stmt = stmt.where(e.kind == query.kind)
    if query.subject is not None:
        stmt = stmt.where(e.subject == query.subject)
    if query.since is not None:
        stmt = stmt.where(e.occurred_at >= query.since)
    if after is not None:
        stmt = stmt.where(e.id < int(after[0]))
    out = []
    for row in conn.execute(stmt.order_by(e.id.desc()).limit(limit + 1)):
        member = row.subject == "member"
        out.append(
            {
                "id": row.id,
                "event": row.event,
                "kind": row.kind,
                "subject": row.subject,
                "subject_id": row.subject_id,
                "name": row.display_name if member else row.org_name,
                "email": row.primary_email if member else None,
                "domain": None if member else row.domain,
                "before": row.before,
                "after": row.after,
                "score": round(row.score, 4),
                "occurred_at": row.occurred_at,
                "as_of": row.as_of,
                "run_id": row.run_id,
            }
        )
    return out
