"""Finding members: filter by score, level, band, grade, segment, organization and activity, ranked
by a score or listed by id, one keyset page at a time. Always within one workspace; merged-away
members are never listed (their survivor is)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, exists, func, or_, select

from plugin.db.models import Activity, Member, MemberStats, Organization, Score
from plugin.errors import ValidationFailed
from plugin.services.crm_pull import CUSTOMER_STAGES

KINDS = ("advocate", "lead", "churn")
SORTS = ("id", *KINDS)


@dataclass(frozen=True)
class MemberQuery:
    sort: str = "id"
    q: str | None = None
    min_score: float | None = None
    max_score: float | None = None
    level: str | None = None  # advocate level
    grade: str | None = None  # lead grade, e.g. A1
    band: str | None = None  # churn band
    hot: bool | None = None
    segment: str | None = None  # customer | prospect
    organization_id: int | None = None
    activity_type: str | None = None
    active_since: datetime | None = None


def like_escaped(text: str) -> str:
    """``text`` inside a LIKE pattern, its own ``%``, ``_`` and ``\\`` taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _label(workspace_id: int, kind: str, label: str) -> Any:
    return exists().where(
        Score.workspace_id == workspace_id,
        Score.kind == kind,
        Score.subject == "member",
        Score.subject_id == Member.id,
        Score.label == label,
    )


def _customer(workspace_id: int) -> Any:
    flagged = exists().where(
        MemberStats.workspace_id == workspace_id, MemberStats.member_id == Member.id, MemberStats.customer
    )
    return or_(func.lower(Member.lifecycle_stage).in_(sorted(CUSTOMER_STAGES)), flagged)


def _check(query: MemberQuery) -> None:
    problems: dict[str, str] = {}
    if query.sort not in SORTS:
        problems["sort"] = f"one of {', '.join(SORTS)}"
    if (query.min_score is not None or query.max_score is not None) and query.sort == "id":
        problems["min_score"] = "score bounds need sort=advocate, lead or churn (the score they bound)"
    if query.segment not in (None, "customer", "prospect"):
        problems["segment"] = "customer or prospect"
    if problems:
        raise ValidationFailed("the member filter is not valid", fields=problems)


def search(
    conn: Connection, workspace_id: int, query: MemberQuery, limit: int, after: list[Any] | None
) -> list[dict[str, Any]]:
    """Up to ``limit + 1`` members after the keyset ``after`` ([id] or [score, id])."""
    _check(query)
    m = Member
    columns: list[Any] = [
        m.id,
        m.display_name,
        m.primary_email,
        m.lifecycle_stage,
        m.title,
        m.organization_id,
    ]
    stmt = select(*columns).where(m.workspace_id == workspace_id, m.merged_into_id.is_(None))
    if query.sort != "id":
        ranked = Score.__table__.alias("ranked")
        stmt = stmt.join(
            ranked,
            and_(
                ranked.c.workspace_id == workspace_id,
                ranked.c.kind == query.sort,
                ranked.c.subject == "member",
                ranked.c.subject_id == m.id,
            ),
        ).add_columns(ranked.c.score.label("rank_score"))
        if query.min_score is not None:
            stmt = stmt.where(ranked.c.score >= query.min_score)
        if query.max_score is not None:
            stmt = stmt.where(ranked.c.score <= query.max_score)
        if after is not None:
            score, last_id = float(after[0]), int(after[1])
            stmt = stmt.where(or_(ranked.c.score < score, and_(ranked.c.score == score, m.id > last_id)))
        stmt = stmt.order_by(ranked.c.score.desc(), m.id)
    else:
        if after is not None:
            stmt = stmt.where(m.id > int(after[0]))
        stmt = stmt.order_by(m.id)
    if query.q:
        needle = f"%{like_escaped(query.q.lower())}%"
        name, email = func.lower(m.display_name), func.lower(m.primary_email)
        stmt = stmt.where(or_(name.like(needle, escape="\\"), email.like(needle, escape="\\")))
    for kind, label in (("advocate", query.level), ("lead", query.grade), ("churn", query.band)):
        if label:
            stmt = stmt.where(_label(workspace_id, kind, label))
    if query.hot is not None:
        hot = exists().where(
            Score.workspace_id == workspace_id,
            Score.kind == "lead",
            Score.subject == "member",
            Score.subject_id == m.id,
            Score.hot,
        )
        stmt = stmt.where(hot if query.hot else ~hot)
    if query.segment:
        customer = _customer(workspace_id)
        stmt = stmt.where(customer if query.segment == "customer" else ~customer)
    if query.organization_id is not None:
        stmt = stmt.where(m.organization_id == query.organization_id)
    if query.activity_type or query.active_since:
        act = exists().where(Activity.workspace_id == workspace_id, Activity.member_id == m.id)
        if query.activity_type:
            act = act.where(Activity.type == query.activity_type)
        if query.active_since:
            act = act.where(Activity.occurred_at >= query.active_since)
        stmt = stmt.where(act)
    rows = [dict(r._mapping) for r in conn.execute(stmt.limit(limit + 1))]
    _attach(conn, workspace_id, rows)
    return rows


def _attach(conn: Connection, workspace_id: int, rows: list[dict[str, Any]]) -> None:
    """Each member's scores by kind and organization, in two queries for the page."""
    ids = [r["id"] for r in rows]
    scores: dict[int, dict[str, Any]] = {i: {} for i in ids}
    for s in conn.execute(
        select(Score.subject_id, Score.kind, Score.score, Score.label, Score.hot).where(
            Score.workspace_id == workspace_id, Score.subject == "member", Score.subject_id.in_(ids)
        )
    ):
        scores[s.subject_id][s.kind] = {"score": round(s.score, 4), "label": s.label, "hot": bool(s.hot)}
    org_ids = {r["organization_id"] for r in rows if r["organization_id"]}
    orgs = {
        o.id: {"id": o.id, "name": o.name, "domain": o.domain}
        for o in conn.execute(
            select(Organization.id, Organization.name, Organization.domain).where(
                Organization.id.in_(org_ids)
            )
        )
    }
    for row in rows:
        row["scores"] = scores[row["id"]]
        row["organization"] = orgs.get(row.pop("organization_id"))


def sort_key(sort: str) -> Any:
    """The keyset of a listed member (for the next page's cursor)."""
    if sort == "id":
        return lambda row: [row["id"]]
    return lambda row: [row["rank_score"], row["id"]]  # the exact score, not the rounded one shown
