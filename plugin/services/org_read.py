"""Reading organizations: listed with their people, customers and account churn risk, one keyset
page at a time, and one organization with its churn reasons and its people, most active first.
Always within one workspace; merged-away members are never counted or listed (their survivor is)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, case, func, literal, or_, select
from sqlalchemy.sql.elements import ColumnElement

from plugin.db.models import Activity, Member, MemberStats, Organization, Score, ScoreRun
from plugin.db.models.score import REASON_COLUMNS, reasons_of
from plugin.errors import NotFound, ValidationFailed
from plugin.services.crm_pull import CUSTOMER_STAGES
from plugin.services.member_search import like_escaped
from plugin.services.score_read import words

SORTS = ("id", "churn")
#: How many of an organization's people its detail lists (the most active);
#: ``GET /members?organization_id=`` lists them all.
PEOPLE = 100
UNSCORED = -1.0  # the rank of an organization without a churn score: after every scored one


@dataclass(frozen=True)
class OrgQuery:
    sort: str = "id"
    q: str | None = None  # part of the name or domain
    has_customers: bool | None = None


def _live(workspace_id: int) -> ColumnElement[bool]:
    return and_(Member.workspace_id == workspace_id, Member.merged_into_id.is_(None))


def _is_customer(workspace_id: int) -> ColumnElement[bool]:
    """The member (of the enclosing query) is a customer: by lifecycle stage or by a purchase."""
    flagged = (
        select(literal(1))
        .where(
            MemberStats.workspace_id == workspace_id,
            MemberStats.member_id == Member.id,
            MemberStats.customer,
        )
        .exists()
    )
    return or_(func.lower(Member.lifecycle_stage).in_(sorted(CUSTOMER_STAGES)), flagged)


def _churn_columns(workspace_id: int) -> tuple[Any, ColumnElement[bool]]:
    churn = Score.__table__.alias("churn")
    on = and_(
        churn.c.workspace_id == workspace_id,
        churn.c.kind == "churn",
        churn.c.subject == "organization",
        churn.c.subject_id == Organization.id,
    )
    return churn, on


def search(
    conn: Connection, workspace_id: int, query: OrgQuery, limit: int, after: Sequence[Any] | None
) -> list[dict[str, Any]]:
    """Up to ``limit + 1`` organizations after the keyset ``after`` ([id] or [churn rank, id])."""
    if query.sort not in SORTS:
        raise ValidationFailed("the organization filter is not valid", fields={"sort": "id or churn"})
    o = Organization
    churn, on = _churn_columns(workspace_id)
    rank = func.coalesce(churn.c.score, UNSCORED)
    stmt = (
        select(o.id, o.name, o.domain, o.size, o.industry, churn.c.score, churn.c.label, rank.label("rank"))
        .outerjoin(churn, on)
        .where(o.workspace_id == workspace_id)
    )
    if query.q:
        needle = f"%{like_escaped(query.q.lower())}%"
        name, domain = func.lower(o.name), func.lower(o.domain)
        stmt = stmt.where(or_(name.like(needle, escape="\\"), domain.like(needle, escape="\\")))
    if query.has_customers is not None:
        customers = (
            select(literal(1))
            .where(_live(workspace_id), Member.organization_id == o.id, _is_customer(workspace_id))
            .exists()
        )
        stmt = stmt.where(customers if query.has_customers else ~customers)
    if query.sort == "churn":
        if after is not None:
            score, last_id = float(after[0]), int(after[1])
            stmt = stmt.where(or_(rank < score, and_(rank == score, o.id > last_id)))
        stmt = stmt.order_by(rank.desc(), o.id)
    else:
        if after is not None:
            stmt = stmt.where(o.id > int(after[0]))
        stmt = stmt.order_by(o.id)
    rows = []
    for r in conn.execute(stmt.limit(limit + 1)):
        row = {
            "id": r.id,
            "name": r.name,
            "domain": r.domain,
            "size": r.size,
            "industry": r.industry,
            "churn": None if r.score is None else {"score": round(r.score, 4), "band": r.label},
            "rank": r.rank,
        }
        rows.append(row)
    counts = _counts(conn, workspace_id, [r["id"] for r in rows])
    for row in rows:
        row["member_count"], row["customer_count"] = counts.get(row["id"], (0, 0))
    return rows


def sort_key(sort: str) -> Callable[[dict[str, Any]], list[Any]]:
    """The keyset of a listed organization (for the next page's cursor)."""
    if sort == "churn":
        return lambda row: [float(row["rank"]), row["id"]]
    return lambda row: [row["id"]]


def _counts(conn: Connection, workspace_id: int, org_ids: list[int]) -> dict[int, tuple[int, int]]:
    """(people, customers) of each organization."""
    if not org_ids:
        return {}
    customer = case((_is_customer(workspace_id), 1), else_=0)
    stmt = (
        select(Member.organization_id, func.count(), func.sum(customer))
        .where(_live(workspace_id), Member.organization_id.in_(org_ids))
        .group_by(Member.organization_id)
    )
    return {org: (int(n), int(c or 0)) for org, n, c in conn.execute(stmt)}


def organization_detail(conn: Connection, workspace_id: int, org_id: int) -> dict[str, Any]:
    """An organization with its churn score (reasons in words) and its most active people."""
    o = Organization
    org = conn.execute(
        select(o.id, o.name, o.domain, o.size, o.industry).where(
            o.workspace_id == workspace_id, o.id == org_id
        )
    ).first()
    if org is None:
        raise NotFound(f"no organization {org_id} in this workspace")
    members, customers = _counts(conn, workspace_id, [org.id]).get(org.id, (0, 0))
    return {
        "id": org.id,
        "name": org.name,
        "domain": org.domain,
        "size": org.size,
        "industry": org.industry,
        "member_count": members,
        "customer_count": customers,
        "churn": _org_churn(conn, workspace_id, org.id),
        "people": _people(conn, workspace_id, org.id),
    }


def _org_churn(conn: Connection, workspace_id: int, org_id: int) -> dict[str, Any] | None:
    s = Score.__table__.c
    row = conn.execute(
        select(s.score, s.label, ScoreRun.as_of, ScoreRun.model_version, *(s[c] for c in REASON_COLUMNS))
        .join(ScoreRun, ScoreRun.id == s.run_id)
        .where(
            s.workspace_id == workspace_id,
            s.kind == "churn",
            s.subject == "organization",
            s.subject_id == org_id,
        )
    ).first()
    if row is None:
        return None
    return {
        "score": round(row.score, 4),
        "band": row.label,
        "reasons": words(reasons_of(row[4:])),
        "as_of": row.as_of,
        "model_version": row.model_version,
    }


def _people(conn: Connection, workspace_id: int, org_id: int) -> list[dict[str, Any]]:
    """The organization's people, most active first, each with their scores by kind."""
    m, a = Member, Activity
    activities = func.count(a.id)
    stmt = (
        select(
            m.id,
            m.display_name,
            m.primary_email,
            m.title,
            m.lifecycle_stage,
            case((_is_customer(workspace_id), True), else_=False).label("customer"),
            activities.label("activities"),
            func.max(a.occurred_at).label("last_active_at"),
        )
        .outerjoin(a, and_(a.member_id == m.id, a.workspace_id == workspace_id))
        .where(_live(workspace_id), m.organization_id == org_id)
        .group_by(m.id, m.display_name, m.primary_email, m.title, m.lifecycle_stage)
        .order_by(activities.desc(), m.id)
        .limit(PEOPLE)
    )
    people = [dict(r._mapping) for r in conn.execute(stmt)]
    scores = member_scores(conn, workspace_id, [p["id"] for p in people])
    for person in people:
        person["customer"] = bool(person["customer"])
        person["scores"] = scores[person["id"]]
    return people


def member_scores(conn: Connection, workspace_id: int, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Each member's scores by kind: score, label and hot."""
    out: dict[int, dict[str, Any]] = {i: {} for i in ids}
    if not ids:
        return out
    for s in conn.execute(
        select(Score.subject_id, Score.kind, Score.score, Score.label, Score.hot).where(
            Score.workspace_id == workspace_id, Score.subject == "member", Score.subject_id.in_(ids)
        )
    ):
        out[s.subject_id][s.kind] = {"score": round(s.score, 4), "label": s.label, "hot": bool(s.hot)}
    return out
