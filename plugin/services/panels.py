"""Insight panels: who is eligible (criteria, consent, exclusions), the seeded stratified draw and
its manifest, answers to invitations (a decline or no response is replaced from the reserve of the
same stratum; a completion earns the rule's reward), status and export."""

from __future__ import annotations

import secrets
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, select, update

from plugin.db.base import table_of, utcnow
from plugin.db.models import (
    Activity,
    Consent,
    Member,
    MemberStats,
    Organization,
    Panel,
    PanelDraw,
    PanelMember,
    Score,
)
from plugin.db.sql import insert_rows
from plugin.errors import NotFound, ValidationFailed
from plugin.services.domains import email_domain
from plugin.services.panel_draw import draw
from plugin.services.panel_spec import quotas_of
from plugin.services.program_rules import Rule
from plugin.services.rewards import grant

ANSWERS = ("accepted", "declined", "no_response", "completed", "disqualified")
ON_PANEL = ("selected", "invited", "accepted")
#: The statuses each answer may follow.
FROM = {
    "accepted": ("selected", "invited"),
    "declined": ("selected", "invited", "accepted"),
    "no_response": ("invited",),
    "completed": ("selected", "invited", "accepted"),
    "disqualified": ("selected", "invited", "accepted"),
}
DAY_US = 86_400_000_000


def create(conn: Connection, workspace_id: int, spec: dict[str, Any]) -> int:
    return int(
        conn.execute(
            table_of(Panel)
            .insert()
            .values(
                workspace_id=workspace_id, name=spec["name"], spec=spec, status="draft", created_at=utcnow()
            )
            .returning(table_of(Panel).c.id)
        ).scalar_one()
    )


def get(conn: Connection, workspace_id: int, panel_id: int) -> Any:
    row = conn.execute(select(Panel).where(Panel.id == panel_id, Panel.workspace_id == workspace_id)).first()
    if row is None:
        raise NotFound(f"no panel {panel_id}", hint="`flywheel panels list` shows the ids")
    return row


def latest_consent(conn: Connection, workspace_id: int, purpose: str) -> dict[int, bool]:
    c = Consent
    out: dict[int, bool] = {}
    for member_id, granted in conn.execute(
        select(c.member_id, c.granted)
        .where(c.workspace_id == workspace_id, c.purpose == purpose)
        .order_by(c.recorded_at, c.id)
    ):
        out[member_id] = bool(granted)
    return out


def eligible(
    conn: Connection, workspace_id: int, panel_id: int, spec: dict[str, Any], now: datetime
) -> tuple[list[int], list[str], Counter[str]]:
    """Eligible members, their strata, and why the others were left out (first reason each)."""
    m = Member
    members = conn.execute(
        select(m.id, m.primary_email, m.locale, m.lifecycle_stage, m.created_at, m.organization_id).where(
            m.workspace_id == workspace_id, m.merged_into_id.is_(None)
        )
    ).all()
    s = Score
    advocate = {
        r[0]: (r[1], r[2])
        for r in conn.execute(
            select(s.subject_id, s.score, s.label).where(
                s.workspace_id == workspace_id, s.kind == "advocate", s.subject == "member"
            )
        )
    }
    st = MemberStats
    stats = {r[0]: (r[1], r[2]) for r in conn.execute(
        select(st.member_id, st.last_at, st.customer).where(st.workspace_id == workspace_id)
    )}  # fmt: skip
    o = Organization
    orgs = {r[0]: (r[1], r[2]) for r in conn.execute(
        select(o.id, o.size, o.industry).where(o.workspace_id == workspace_id)
    )}  # fmt: skip
    research = latest_consent(conn, workspace_id, "research")
    elig, excl = spec["eligibility"], spec["exclusions"]
    busy: set[int] = set()
    if excl.get("other_active_panels", True):
        p, pm = Panel, PanelMember
        busy = set(
            conn.execute(
                select(pm.member_id)
                .join(p, p.id == pm.panel_id)
                .where(
                    p.workspace_id == workspace_id,
                    p.id != panel_id,
                    p.status != "closed",
                    pm.status.in_(ON_PANEL),
                )
            ).scalars()
        )
    typed: set[int] | None = None
    if elig.get("activity_types"):
        a = Activity
        since = now - timedelta(days=elig.get("active_within_days", 3650))
        typed = set(
            conn.execute(
                select(a.member_id)
                .where(
                    a.workspace_id == workspace_id, a.type.in_(elig["activity_types"]), a.occurred_at >= since
                )
                .distinct()
            ).scalars()
        )
    own = {d.lower() for d in excl.get("own_domains", [])}
    rivals = {d.lower() for d in excl.get("competitor_domains", [])}
    now_us = int(now.timestamp() * 1_000_000)
    ids: list[int] = []
    strata: list[str] = []
    left_out: Counter[str] = Counter()
    for member_id, email, locale, stage, created, org_id in members:
        domain = email_domain(email) if email else ""
        score, label = advocate.get(member_id, (0.0, "observer"))
        last_at, customer_flag = stats.get(member_id, (None, False))
        size, industry = orgs.get(org_id, (None, None)) if org_id else (None, None)
        language = (locale or "").split("-")[0].split("_")[0].lower() or "unknown"
        customer = (stage or "").lower() == "customer" or bool(customer_flag)
        checks = [
            ("no research consent", not research.get(member_id, False)),
            ("works for the company itself", domain in own),
            ("works for a competitor", domain in rivals),
            ("on another active panel", member_id in busy),
            ("advocate level", "levels" in elig and label not in elig["levels"]),
            ("advocate score", "advocate_score" in elig
             and not elig["advocate_score"][0] <= score <= elig["advocate_score"][1]),
            ("not active recently", "active_within_days" in elig
             and (last_at is None or now_us - last_at > elig["active_within_days"] * DAY_US)),
            ("activity types", typed is not None and member_id not in typed),
            ("lifecycle stage", "lifecycle_stages" in elig and (stage or "") not in elig["lifecycle_stages"]),
            ("language", "languages" in elig and language not in elig["languages"]),
            ("tenure", "min_tenure_days" in elig
             and (created is None or created > now - timedelta(days=elig["min_tenure_days"]))),
            ("organization size", "organization_size" in elig
             and (size is None or not elig["organization_size"][0] <= size <= elig["organization_size"][1])),
            ("industry", "industries" in elig and (industry or "") not in elig["industries"]),
        ]  # fmt: skip
        reason = next((why for why, failed in checks if failed), None)
        if reason:
            left_out[reason] += 1
            continue
        ids.append(member_id)
        strata.append({"customer": "customer" if customer else "prospect", "level": label,
                       "language": language}[spec["stratify_by"]])  # fmt: skip
    return ids, strata, left_out


def run_draw(conn: Connection, workspace_id: int, panel_id: int, seed: int | None = None) -> dict[str, Any]:
    """Draw (or redraw, while nobody is invited yet) a panel; returns the manifest."""
    panel = get(conn, workspace_id, panel_id)
    pm = PanelMember
    started = conn.execute(
        select(pm.member_id)
        .where(pm.panel_id == panel_id, pm.status.not_in(("selected", "waiting")))
        .limit(1)
    ).first()
    if started is not None:
        raise ValidationFailed(f"panel {panel_id} has invitations out; it cannot be drawn again")
    spec = panel.spec
    seed = (
        seed
        if seed is not None
        else spec.get("seed")
        if spec.get("seed") is not None
        else secrets.randbelow(2**31)
    )
    now = utcnow()
    ids, strata, left_out = eligible(conn, workspace_id, panel_id, spec, now)
    result = draw(ids, strata, quotas_of(spec), spec["size"], spec["reserve"], seed)
    conn.execute(delete(pm).where(pm.panel_id == panel_id))
    rows = [
        {"panel_id": panel_id, "member_id": member, "stratum": name, "role": role, "rank": rank,
         "status": "selected" if role == "selected" else "waiting", "updated_at": now}
        for name in result.selected
        for role, chosen in (("selected", result.selected[name]), ("reserve", result.reserve[name]))
        for rank, member in enumerate(chosen, start=0 if role == "selected" else len(result.selected[name]))
    ]  # fmt: skip
    insert_rows(conn, table_of(PanelMember), rows)
    in_strata = Counter(strata)
    manifest = {
        "panel": panel_id,
        "name": spec["name"],
        "seed": seed,
        "drawn_at": now.isoformat(),
        "criteria": {
            k: spec[k] for k in ("size", "reserve", "stratify_by", "eligibility", "exclusions", "quotas")
        },
        "eligible": {name: result.eligible.get(name, 0) for name in spec["quotas"]},
        "eligible_outside_quotas": {k: v for k, v in in_strata.items() if k not in spec["quotas"]},
        "selected": {name: len(v) for name, v in result.selected.items()},
        "reserve": {name: len(v) for name, v in result.reserve.items()},
        "excluded": dict(left_out),
        "shortfall": result.shortfall,
        "unfilled": result.unfilled,
    }
    conn.execute(
        table_of(PanelDraw).insert().values(panel_id=panel_id, seed=seed, manifest=manifest, drawn_at=now)
    )
    conn.execute(update(Panel).where(Panel.id == panel_id).values(status="drawn"))
    return manifest


def respond(
    conn: Connection, workspace_id: int, panel_id: int, member_id: int, answer: str, *, rules: dict[str, Rule]
) -> dict[str, Any]:
    """Record a member's answer. A decline or no response pulls the next reserve member of the
    same stratum onto the panel; a completion grants the panel_completed reward once."""
    if answer not in ANSWERS:
        raise ValidationFailed(f"unknown answer {answer!r}", fields={"answer": ", ".join(ANSWERS)})
    get(conn, workspace_id, panel_id)
    pm = PanelMember
    row = conn.execute(select(pm).where(pm.panel_id == panel_id, pm.member_id == member_id)).first()
    if row is None or row.role != "selected":
        raise NotFound(f"member {member_id} is not on panel {panel_id}")
    now = utcnow()
    out: dict[str, Any] = {"member": member_id, "status": answer, "replacement": None}
    if row.status == answer:  # said twice (a double click, a retried request): nothing more happens
        out["repeat"] = True
        if answer == "completed":
            out["reward"] = _completion_reward(conn, workspace_id, panel_id, member_id, rules)
        return out
    moved = conn.execute(
        update(pm)
        .where(pm.panel_id == panel_id, pm.member_id == member_id, pm.status.in_(FROM[answer]))
        .values(status=answer, updated_at=now)
    ).rowcount
    if moved != 1:  # another answer came first: one change of state, one replacement, one reward
        raise ValidationFailed(
            f"member {member_id} is {row.status} on panel {panel_id}; they cannot be {answer}"
        )
    if answer in ("declined", "no_response"):
        nxt = conn.execute(
            select(pm.member_id)
            .where(
                pm.panel_id == panel_id,
                pm.stratum == row.stratum,
                pm.role == "reserve",
                pm.status == "waiting",
            )
            .order_by(pm.rank)
            .limit(1)
        ).scalar()
        if nxt is not None:
            conn.execute(
                update(pm)
                .where(pm.panel_id == panel_id, pm.member_id == nxt)
                .values(role="selected", status="selected", updated_at=now)
            )
        out["replacement"] = nxt
        out["note"] = None if nxt is not None else f"the reserve of stratum {row.stratum!r} is empty"
    if answer == "completed":
        out["reward"] = _completion_reward(conn, workspace_id, panel_id, member_id, rules)
    return out


def _completion_reward(
    conn: Connection, workspace_id: int, panel_id: int, member_id: int, rules: dict[str, Rule]
) -> int:
    """The panel_completed reward, once per member and panel (its key says which)."""
    key = f"panel-{panel_id}-{member_id}"
    return grant(conn, workspace_id, member_id, "panel_completed", key=key, rules=rules, by="panel").grant_id


def status(conn: Connection, workspace_id: int, panel_id: int) -> dict[str, Any]:
    panel = get(conn, workspace_id, panel_id)
    pm = PanelMember
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for stratum, role, state in conn.execute(
        select(pm.stratum, pm.role, pm.status).where(pm.panel_id == panel_id)
    ):
        counts[stratum][state if role == "selected" else "reserve"] += 1
    manifest = conn.execute(
        select(PanelDraw.manifest)
        .where(PanelDraw.panel_id == panel_id)
        .order_by(PanelDraw.id.desc())
        .limit(1)
    ).scalar()
    return {"id": panel_id, "name": panel.name, "status": panel.status,
            "strata": {k: dict(v) for k, v in sorted(counts.items())}, "manifest": manifest}  # fmt: skip


def members(conn: Connection, workspace_id: int, panel_id: int) -> list[dict[str, Any]]:
    get(conn, workspace_id, panel_id)
    pm, m = PanelMember, Member
    rows = conn.execute(
        select(
            pm.member_id, m.display_name, m.primary_email, m.locale, pm.stratum, pm.role, pm.rank, pm.status
        )
        .join(m, m.id == pm.member_id)
        .where(pm.panel_id == panel_id)
        .order_by(pm.stratum, pm.rank)
    )
    return [
        {"member_id": r[0], "name": r[1], "email": r[2], "locale": r[3], "stratum": r[4], "role": r[5],
         "rank": r[6], "status": r[7]}
        for r in rows
    ]  # fmt: skip
