"""Members: a search, and a member's profile (identities, timeline, scores with their reasons,
consent as the role may see it, programs, CRM records)."""

from __future__ import annotations

from typing import Any

from flask import g, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.db.ids import parse_id
from plugin.db.models import Activity, Panel, PanelMember, Referral, ReferralInvite
from plugin.services.member_search import SORTS, MemberQuery, search
from plugin.services.members import find_member, member_profile
from plugin.services.rewards import balances, ledger
from plugin.web.context import engine
from plugin.web.dashboard.blueprints import pages_bp
from plugin.web.dashboard.common import may, page, require, user
from plugin.web.dashboard.reads import crm_records

PAGE = 50
TIMELINE = 25
KIND_NAMES = {"advocate": "Advocate", "lead": "Lead", "churn": "Churn risk"}


@pages_bp.get("/members")
@require("members:read")
def members() -> Any:
    q = (request.args.get("q") or "").strip()[:200] or None
    sort = request.args.get("sort", "id")
    sort = sort if sort in SORTS else "id"
    after: list[Any] | None = None
    try:
        after_id = parse_id(request.args.get("after_id"))
        if after_id is not None:
            after = [after_id] if sort == "id" else [float(request.args["after_score"]), after_id]
    except (KeyError, ValueError):
        after = None
    with engine().connect() as conn:
        rows = search(conn, user().workspace_id, MemberQuery(sort=sort, q=q), PAGE, after)
    following = None
    if len(rows) > PAGE:
        rows = rows[:PAGE]
        last = rows[-1]
        following = url_for(".members", q=q, sort=sort, after_id=last["id"],
                            after_score=repr(last["rank_score"]) if sort != "id" else None)  # fmt: skip
    return page("members.html", rows=rows, q=q or "", sort=sort, sorts=SORTS, following=following)


def visible_consents(consents: dict[str, Any]) -> dict[str, Any]:
    """Sales see no consent; researchers see research consent, marketers marketing; admins all."""
    return {
        purpose: state
        for purpose, state in consents.items()
        if may("consent:write") or (purpose in ("research", "marketing") and may(f"consent:{purpose}"))
    }


def _programs(session: Session, workspace_id: int, member_id: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    conn = session.connection()
    if may("referrals:read"):
        i, r = ReferralInvite, Referral
        out["invites"] = [
            dict(x._mapping)
            for x in conn.execute(
                select(i.campaign, i.created_at)
                .where(i.workspace_id == workspace_id, i.member_id == member_id)
                .order_by(i.id.desc())
            )
        ]  # fmt: skip
        out["referrals"] = [
            dict(x._mapping)
            for x in conn.execute(
                select(r.id, r.prospect_name, r.prospect_company, r.status, r.held_reason, r.created_at)
                .where(r.workspace_id == workspace_id, r.member_id == member_id)
                .order_by(r.id.desc())
                .limit(50)
            )
        ]
    if may("rewards:read"):
        out["rewards"] = ledger(conn, workspace_id, member_id=member_id, limit=50)
        out["balances"] = balances(conn, workspace_id, member_id=member_id)
    if may("panels:read"):
        p, pm = Panel, PanelMember
        out["panels"] = [
            dict(x._mapping)
            for x in conn.execute(
                select(p.id, p.name, p.status.label("panel_status"), pm.stratum, pm.role, pm.status)
                .join(pm, pm.panel_id == p.id)
                .where(p.workspace_id == workspace_id, pm.member_id == member_id)
                .order_by(p.id.desc())
            )
        ]
    return out


@pages_bp.get("/members/<int:member_id>")
@require("members:read")
def member(member_id: int) -> Any:
    g.dashboard_section = "dashboard.members"
    ws = user().workspace_id
    with Session(engine()) as session:
        found = find_member(session, ws, str(member_id))
        profile = member_profile(session, found)
        a = Activity
        timeline = [
            dict(r._mapping)
            for r in session.execute(
                select(a.id, a.source, a.type, a.occurred_at, a.title, a.text, a.url, a.channel)
                .where(a.workspace_id == ws, a.member_id == found.id)
                .order_by(a.occurred_at.desc(), a.id.desc())
                .limit(TIMELINE)
            )
        ]
        programs = _programs(session, ws, found.id)
        records = crm_records(session.connection(), ws, [found.id]).get(found.id, [])
    for item in timeline:
        item["safe_url"] = item["url"] if (item["url"] or "").startswith(("https://", "http://")) else None
    profile["consents"] = visible_consents(profile["consents"])
    return page("member.html", m=profile, timeline=timeline, programs=programs, crm=records,
                kinds=KIND_NAMES, merged_from=member_id if found.id != member_id else None)  # fmt: skip
