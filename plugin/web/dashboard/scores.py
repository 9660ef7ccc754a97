"""Advocates (a leaderboard with levels and reasons; invite the ticked ones to refer), leads (hot
leads with the activities that made them hot and their CRM records) and churn (accounts at risk
with reasons and their people)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from sqlalchemy import select

from plugin.db.ids import parse_id
from plugin.db.models import Activity, Member
from plugin.db.sql import in_values
from plugin.errors import FlywheelError
from plugin.services.member_search import MemberQuery, search
from plugin.services.panel_spec import LEVELS
from plugin.services.program_rules import load_programs
from plugin.services.referrals import invite_members
from plugin.web.context import engine, now, settings
from plugin.web.dashboard.blueprints import pages_bp
from plugin.web.dashboard.common import page, require, user
from plugin.web.dashboard.reads import crm_records, organizations, people, ranked, scores_of

PAGE = 50
AT_RISK = ("high", "medium")


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _int(value: str | None, default: int = 0) -> int:
    found = parse_id(value)
    return default if found is None else found


@pages_bp.get("/advocates")
@require("scores:read")
def advocates() -> Any:
    ws = user().workspace_id
    level = request.args.get("level") or None
    level = level if level in LEVELS else None
    q = (request.args.get("q") or "").strip()[:200] or None
    after_score, after_id = _float(request.args.get("after_score")), _int(request.args.get("after_id"))
    after = [after_score, after_id] if after_score is not None and after_id else None
    start = _int(request.args.get("start"))
    with engine().connect() as conn:
        rows = search(conn, ws, MemberQuery(sort="advocate", level=level, q=q), PAGE, after)
        more = len(rows) > PAGE
        rows = rows[:PAGE]
        reasons = scores_of(conn, ws, "advocate", "member", [r["id"] for r in rows])
    for rank, row in enumerate(rows, start=start + 1):
        row["rank"] = rank
        row["advocate"] = reasons.get(row["id"], {"score": None, "label": None, "reasons": []})
    following = None
    if more and rows:
        following = url_for(".advocates", level=level, q=q, after_score=repr(rows[-1]["rank_score"]),
                            after_id=rows[-1]["id"], start=start + len(rows))  # fmt: skip
    return page("advocates.html", rows=rows, levels=LEVELS, level=level, q=q or "", following=following,
                first=url_for(".advocates", level=level, q=q) if after else None,
                public_url=settings().public_url)  # fmt: skip


@pages_bp.post("/advocates/invite")
@require("referrals:write")
def invite_advocates() -> Any:
    ids = [i for i in (parse_id(v) for v in request.form.getlist("member")) if i is not None]
    campaign = request.form.get("campaign", "")
    try:
        with engine().begin() as conn:
            done = invite_members(conn, user().workspace_id, ids, campaign=campaign,
                                   policy=load_programs(settings().programs_config),
                                   public_url=settings().public_url, now=now())  # fmt: skip
    except FlywheelError as exc:
        flash(f"Nobody was invited: {exc.user_message}." + (f" {exc.hint}." if exc.hint else ""), "error")
        return redirect(url_for(".advocates"))
    skipped = "; ".join(f"{n} {why}" for why, n in done.skipped.items() if n)
    flash(f"Invited {len(done.invited)} advocate(s) to campaign “{campaign.strip()}”."
          + (f" Skipped: {skipped}." if skipped else ""), "success")  # fmt: skip
    return redirect(url_for(".advocates"))


def _triggers(conn: Any, ids: list[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    a = Activity
    rows = conn.execute(
        select(a.id, a.type, a.title, a.text, a.url, a.occurred_at, a.source).where(
            in_values(conn, a.id, ids)
        )
    )
    return {
        int(r.id): {"type": r.type.replace("_", " "), "title": r.title or (r.text or "")[:200] or None,
                    "url": r.url if (r.url or "").startswith(("https://", "http://")) else None,
                    "when": r.occurred_at, "source": r.source}
        for r in rows
    }  # fmt: skip


@pages_bp.get("/leads")
@require("scores:read")
def leads() -> Any:
    ws = user().workspace_id
    everyone = request.args.get("all") == "1"
    with engine().connect() as conn:
        rows = ranked(conn, ws, "lead", "member", hot_only=not everyone, limit=100)
        ids = [r["id"] for r in rows]
        who = people(conn, ids)
        records = crm_records(conn, ws, ids)
        activity = _triggers(conn, sorted({t for r in rows for t in r["triggers"]}))
    for row in rows:
        row["member"] = who.get(row["id"])
        row["crm"] = records.get(row["id"], [])
        row["signals"] = [activity[t] for t in row["triggers"] if t in activity]
    return page("leads.html", rows=rows, everyone=everyone)


@pages_bp.get("/churn")
@require("scores:read")
def churn() -> Any:
    ws = user().workspace_id
    everyone = request.args.get("all") == "1"
    bands = () if everyone else AT_RISK
    with engine().connect() as conn:
        accounts = ranked(conn, ws, "churn", "organization", labels=bands, limit=100)
        orgs = organizations(conn, [a["id"] for a in accounts])
        m = Member
        staff = conn.execute(
            select(m.id, m.organization_id).where(
                m.workspace_id == ws, m.merged_into_id.is_(None),
                in_values(conn, m.organization_id, [a["id"] for a in accounts] or [0]),
            )
        ).all()  # fmt: skip
        member_ids = [int(r.id) for r in staff]
        loose = ranked(conn, ws, "churn", "member", labels=bands, limit=200)
        who = people(conn, member_ids + [r["id"] for r in loose])
        member_churn = scores_of(conn, ws, "churn", "member", member_ids)
    by_org: dict[int, list[dict[str, Any]]] = {}
    for r in staff:
        person = who.get(int(r.id))
        if person:
            by_org.setdefault(int(r.organization_id), []).append(
                {**person, "churn": member_churn.get(int(r.id))}
            )
    for account in accounts:
        account["org"] = orgs.get(account["id"], {"name": f"organization {account['id']}", "domain": None})
        account["people"] = sorted(
            by_org.get(account["id"], []), key=lambda p: -(p["churn"]["score"] if p["churn"] else -1)
        )
    shown = {a["id"] for a in accounts}
    customers = [
        {**r, "member": who[r["id"]]} for r in loose if r["id"] in who and who[r["id"]]["org_id"] not in shown
    ]
    return page("churn.html", accounts=accounts, customers=customers, everyone=everyone)
