"""The overview: community health in four charts (active members per week, new champions, leads
turned hot, churn risk by band), a few key numbers, and the latest score crossings."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, case, distinct, func, select

from plugin.db.models import Activity, Member, Organization, Score, ScoreEvent
from plugin.web.context import engine, now
from plugin.web.dashboard.blueprints import pages_bp
from plugin.web.dashboard.charts import Chart, bar_chart
from plugin.web.dashboard.common import page, require, user
from plugin.web.dashboard.reads import people

WEEKS = 12
BANDS = ("low", "medium", "high")
EVENTS = {
    "became_champion": "became a champion",
    "lead_turned_hot": "lead turned hot",
    "churn_risk_high": "churn risk turned high",
}


def week_edges(end: datetime, weeks: int = WEEKS) -> list[datetime]:
    """``weeks + 1`` edges; week i is (edges[i], edges[i + 1]], the last one ending at ``end``."""
    return [end - timedelta(days=7 * (weeks - i)) for i in range(weeks + 1)]


def _bucket(column: Any, edges: list[datetime]) -> Any:
    return case(*[(column > edges[i], i) for i in reversed(range(len(edges) - 1))], else_=-1)


def per_week(
    conn: Connection, column: Any, counted: Any, where: list[Any], edges: list[datetime]
) -> list[int]:
    """Per week: how many distinct ``counted`` values have ``column`` in the week."""
    inner = (
        select(_bucket(column, edges).label("week"), counted.label("counted"))
        .where(*where, column > edges[0], column <= edges[-1])
        .subquery()
    )
    counts: dict[int, int] = dict(
        conn.execute(select(inner.c.week, func.count(distinct(inner.c.counted))).group_by(inner.c.week)).all()
    )
    return [int(counts.get(i, 0)) for i in range(len(edges) - 1)]


def _weekly_chart(chart_id: str, title: str, y_label: str, values: list[int], edges: list[datetime]) -> Chart:
    points = [
        (f"week ending {edges[i + 1]:%Y-%m-%d}", f"{edges[i + 1]:%d %b}", v) for i, v in enumerate(values)
    ]
    return bar_chart(chart_id, title, "Week ending", y_label, points)


def health(conn: Connection, workspace_id: int, end: datetime) -> dict[str, Any]:
    edges = week_edges(end)
    a, e, s = Activity, ScoreEvent, Score
    active = per_week(conn, a.occurred_at, a.member_id, [a.workspace_id == workspace_id], edges)

    def crossings(event: str) -> list[int]:
        where = [e.workspace_id == workspace_id, e.event == event]
        return per_week(conn, e.as_of, e.subject_id, where, edges)

    bands = {
        subject: dict(
            conn.execute(
                select(s.label, func.count())
                .where(s.workspace_id == workspace_id, s.kind == "churn", s.subject == subject)
                .group_by(s.label)
            ).all()
        )
        for subject in ("member", "organization")
    }
    member_bands = [(b, b, int(bands["member"].get(b, 0))) for b in BANDS]
    return {
        "charts": [
            _weekly_chart("active", "Active members per week", "Members", active, edges),
            _weekly_chart(
                "champions", "New champions per week", "Champions", crossings("became_champion"), edges
            ),
            _weekly_chart("hot", "Leads turned hot per week", "Leads", crossings("lead_turned_hot"), edges),
            bar_chart(
                "churn",
                "Customers by churn risk band",
                "Band",
                "Customers",
                member_bands,
                [f"bar band-{b}" for b in BANDS],
            ),
        ],
        "figures": _figures(conn, workspace_id, active[-1]),
        "accounts_by_band": [(b, int(bands["organization"].get(b, 0))) for b in BANDS],
    }


def _figures(conn: Connection, workspace_id: int, active_last_week: int) -> list[tuple[str, str]]:
    s = Score

    def count(*where: Any) -> int:
        return int(conn.execute(select(func.count()).select_from(s).where(s.workspace_id == workspace_id,
                                                                        *where)).scalar_one())  # fmt: skip

    members = conn.execute(
        select(func.count()).where(Member.workspace_id == workspace_id, Member.merged_into_id.is_(None))
    ).scalar_one()
    return [
        ("Members", f"{members:,}"),
        ("Active in the last 7 days", f"{active_last_week:,}"),
        ("Champions", f"{count(s.kind == 'advocate', s.label == 'champion', s.subject == 'member'):,}"),
        ("Hot leads", f"{count(s.kind == 'lead', s.hot, s.subject == 'member'):,}"),
        ("Accounts at high churn risk",
         f"{count(s.kind == 'churn', s.label == 'high', s.subject == 'organization'):,}"),
    ]  # fmt: skip


def latest_crossings(conn: Connection, workspace_id: int, limit: int = 15) -> list[dict[str, Any]]:
    e = ScoreEvent
    rows = conn.execute(
        select(e.id, e.kind, e.subject, e.subject_id, e.event, e.before, e.after, e.score, e.as_of)
        .where(e.workspace_id == workspace_id)
        .order_by(e.id.desc())
        .limit(limit)
    ).all()
    names = people(conn, [r.subject_id for r in rows if r.subject == "member"])
    org_ids = [r.subject_id for r in rows if r.subject == "organization"]
    o = Organization
    orgs = dict(conn.execute(select(o.id, o.name).where(o.id.in_(org_ids))).all()) if org_ids else {}
    out = []
    for r in rows:
        person = names.get(r.subject_id) if r.subject == "member" else None
        out.append(
            {
                "what": EVENTS.get(r.event, r.event.replace("_", " ")),
                "kind": r.kind,
                "member": person,
                "org": orgs.get(r.subject_id) if r.subject == "organization" else None,
                "subject_id": r.subject_id,
                "before": r.before,
                "after": r.after,
                "score": r.score,
                "as_of": r.as_of,
            }
        )
    return out


@pages_bp.get("/")
@require("members:read")
def overview() -> Any:
    ws = user().workspace_id
    with engine().connect() as conn:
        data = health(conn, ws, now())
        crossings = latest_crossings(conn, ws)
    return page("overview.html", **data, crossings=crossings)
