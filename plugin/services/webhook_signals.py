"""Score crossings as webhooks: a member who becomes a champion (``advocate.promoted``), a lead
that turns hot (``lead.signal``), a churn risk that turns high (``churn.risk_raised``).

Called inside the scoring run's transaction, so the crossings and their messages commit together.
The member's email goes out only when their consent for the event's purpose is in force; CRM ids
and reasons always do, so a receiver can act without it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, select

from plugin.db.models import (
    Activity,
    Consent,
    CrmConnection,
    CrmLink,
    Member,
    Organization,
    Score,
    ScoreEvent,
    Workspace,
)
from plugin.db.models.score import REASON_COLUMNS, reasons_of
from plugin.db.sql import in_values
from plugin.services.webhook_outbox import Event, emit, subscribers
from webhooks.events import (
    EMAIL_CONSENT,
    EventError,
    MemberRef,
    advocate_promoted,
    churn_risk_raised,
    lead_signal,
)

log = logging.getLogger(__name__)
EVENT_TYPES = {
    "became_champion": "advocate.promoted",
    "lead_turned_hot": "lead.signal",
    "churn_risk_high": "churn.risk_raised",
}
CHUNK = 2_000


def _chunks(values: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(values), CHUNK):
        yield list(values[start : start + CHUNK])


def emit_run_events(
    conn: Connection, workspace_id: int, run_id: int, *, public_url: str | None = None
) -> int:
    """Messages for the crossings scoring run ``run_id`` stored; returns how many were written."""
    wanted = {
        t for _, _, types in subscribers(conn, workspace_id) for t in (types or EVENT_TYPES.values())
    } & set(EVENT_TYPES.values())
    if not wanted:
        return 0
    e, s = ScoreEvent, Score
    reason_cols = [getattr(s, c) for c in REASON_COLUMNS]
    rows = conn.execute(
        select(
            e.subject,
            e.subject_id,
            e.event,
            e.before,
            e.after,
            e.score,
            e.occurred_at,
            s.triggers,
            *reason_cols,
        )
        .outerjoin(
            s,
            (s.workspace_id == e.workspace_id)
            & (s.kind == e.kind)
            & (s.subject == e.subject)
            & (s.subject_id == e.subject_id),
        )
        .where(e.workspace_id == workspace_id, e.run_id == run_id)
        .order_by(e.id)
    ).all()
    rows = [r for r in rows if EVENT_TYPES.get(r.event) in wanted]
    if not rows:
        return 0
    slug = conn.execute(select(Workspace.slug).where(Workspace.id == workspace_id)).scalar_one()
    member_ids = sorted({r.subject_id for r in rows if r.subject == "member"})
    org_ids = sorted({r.subject_id for r in rows if r.subject == "organization"})
    people = member_refs(conn, member_ids)
    orgs = _organizations(conn, org_ids)
    trigger_ids = sorted({t for r in rows if r.event == "lead_turned_hot" for t in _ids(r.triggers)})
    triggers = _activities(conn, trigger_ids)
    events: list[Event] = []
    for r in rows:
        event_type = EVENT_TYPES[r.event]
        try:
            events.append(
                Event(event_type, _payload(r, event_type, slug, people, orgs, triggers, public_url))
            )
        except EventError as exc:  # one odd record must not hold back the run or the others
            log.warning("score event for %s %s not sent: %s", r.subject, r.subject_id, exc)
    return len(emit(conn, workspace_id, events))


def _payload(
    r: Any,
    event_type: str,
    slug: str,
    people: dict[int, dict[str, Any]],
    orgs: dict[int, dict[str, Any]],
    triggers: dict[int, dict[str, Any]],
    public_url: str | None,
) -> dict[str, Any]:
    from plugin.services.score_read import words  # here: score_read imports score_run, which imports us

    when = r.occurred_at
    reasons = words(reasons_of(r[8 : 8 + len(REASON_COLUMNS)]))
    person = people.get(r.subject_id) if r.subject == "member" else None
    member = None
    crm: dict[str, str] = {}
    links: dict[str, str] = {}
    if person is not None:
        purpose = EMAIL_CONSENT.get(event_type)
        email = person["email"] if purpose and purpose in person["consents"] else None
        member = MemberRef(r.subject_id, person["name"], person["locale"], email)
        crm = person["crm"]
        if public_url:
            links["member"] = f"{public_url}/members/{r.subject_id}"
    common: dict[str, Any] = {
        "workspace": slug,
        "occurred_at": when,
        "reasons": reasons,
        "crm": crm,
        "links": links,
    }
    if event_type == "advocate.promoted":
        assert member is not None
        return advocate_promoted(
            member=member, score=r.score, level=r.after, previous_level=r.before, **common
        )
    if event_type == "lead.signal":
        assert member is not None
        asked = [triggers[t] for t in _ids(r.triggers) if t in triggers]
        return lead_signal(member=member, score=r.score, grade=r.after, hot=True, triggers=asked, **common)
    org = orgs.get(r.subject_id) if r.subject == "organization" else None
    if org is not None:
        common["crm"] = org.pop("crm")
        if public_url:
            common["links"] = {"organization": f"{public_url}/organizations/{r.subject_id}"}
    return churn_risk_raised(
        member=member, organization=org, score=r.score, band=r.after, previous_band=r.before, **common
    )


def _ids(triggers: Any) -> list[int]:
    if isinstance(triggers, str | bytes):
        triggers = orjson.loads(triggers)
    return [int(t) for t in triggers or []]


def member_refs(conn: Connection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Per member id: name, locale, email, the consent purposes in force, and CRM ids."""
    out: dict[int, dict[str, Any]] = {}
    m, c, link, crm = Member, Consent, CrmLink, CrmConnection
    for chunk in _chunks(ids):
        for r in conn.execute(
            select(m.id, m.display_name, m.locale, m.primary_email).where(in_values(conn, m.id, chunk))
        ):
            out[r.id] = {
                "name": r.display_name,
                "locale": r.locale,
                "email": r.primary_email,
                "consents": set(),
            }
        latest: dict[tuple[int, str], bool] = {}
        for consent in conn.execute(
            select(c.member_id, c.purpose, c.granted)
            .where(in_values(conn, c.member_id, chunk))
            .order_by(c.recorded_at, c.id)
        ):
            latest[(consent.member_id, consent.purpose)] = bool(consent.granted)
        for (member_id, purpose), granted in latest.items():
            if granted and member_id in out:
                out[member_id]["consents"].add(purpose)
        for linked in conn.execute(
            select(link.member_id, crm.kind, link.crm_id)
            .join(crm, crm.id == link.connection_id)
            .where(in_values(conn, link.member_id, chunk), link.crm_id.is_not(None))
        ):
            if linked.member_id in out:
                out[linked.member_id].setdefault("crm", {})[linked.kind] = str(linked.crm_id)
    for person in out.values():
        person.setdefault("crm", {})
    return out


def _organizations(conn: Connection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    o = Organization
    out: dict[int, dict[str, Any]] = {}
    for chunk in _chunks(ids):
        for r in conn.execute(
            select(o.id, o.name, o.domain, o.hubspot_company_id, o.salesforce_account_id).where(
                in_values(conn, o.id, chunk)
            )
        ):
            crm = {
                k: v
                for k, v in (("hubspot", r.hubspot_company_id), ("salesforce", r.salesforce_account_id))
                if v
            }
            out[r.id] = {"id": r.id, "name": r.name, "domain": r.domain, "crm": crm}
    return out


def _activities(conn: Connection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    a = Activity
    out: dict[int, dict[str, Any]] = {}
    for chunk in _chunks(ids):
        for r in conn.execute(
            select(a.id, a.type, a.title, a.url, a.occurred_at).where(in_values(conn, a.id, chunk))
        ):
            when: datetime = r.occurred_at
            out[r.id] = {
                "activity_id": r.id,
                "type": r.type,
                "title": (r.title or "")[:200] or None,
                "url": r.url if r.url and r.url.startswith(("https://", "http://")) else None,
                "occurred_at": when,
            }
    return out
