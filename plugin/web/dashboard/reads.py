"""Reads the pages share: scores with their reasons in words, people's and organizations' names,
and each member's CRM records with a link to open them in the CRM where one can be built."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, select

from plugin.db.models import CrmConnection, CrmLink, Member, Organization, Score
from plugin.db.models.score import REASON_COLUMNS, reasons_of
from plugin.db.sql import in_values
from plugin.services.score_read import words

CRM_NAMES = {"hubspot": "HubSpot", "salesforce": "Salesforce"}


def _reason_cols() -> list[Any]:
    return [Score.__table__.c[name] for name in REASON_COLUMNS]


def score_row(row: Any, offset: int) -> dict[str, Any]:
    """A selected score (score, label, hot, triggers, then the reason columns from ``offset``)."""
    return {
        "score": row.score,
        "label": row.label,
        "hot": bool(row.hot),
        "triggers": [int(t) for t in (row.triggers or [])],
        "reasons": words(reasons_of(row[offset : offset + len(REASON_COLUMNS)])),
    }


def scores_of(
    conn: Connection, workspace_id: int, kind: str, subject: str, ids: Sequence[int]
) -> dict[int, dict[str, Any]]:
    """The ``kind`` scores of these members (or organizations), with their reasons in words."""
    if not ids:
        return {}
    s = Score
    rows = conn.execute(
        select(s.subject_id, s.score, s.label, s.hot, s.triggers, *_reason_cols()).where(
            s.workspace_id == workspace_id, s.kind == kind, s.subject == subject,
            in_values(conn, s.subject_id, list(ids)),
        )
    )  # fmt: skip
    return {int(r.subject_id): score_row(r, 5) for r in rows}


def ranked(
    conn: Connection, workspace_id: int, kind: str, subject: str, *, hot_only: bool = False,
    labels: Sequence[str] = (), limit: int = 100,
) -> list[dict[str, Any]]:  # fmt: skip
    """The highest ``kind`` scores of one subject type, with their reasons in words."""
    s = Score
    query = select(s.subject_id, s.score, s.label, s.hot, s.triggers, *_reason_cols()).where(
        s.workspace_id == workspace_id, s.kind == kind, s.subject == subject
    )
    if hot_only:
        query = query.where(s.hot)
    if labels:
        query = query.where(s.label.in_(list(labels)))
    rows = conn.execute(query.order_by(s.score.desc(), s.subject_id).limit(limit))
    return [{"id": int(r.subject_id), **score_row(r, 5)} for r in rows]


def people(conn: Connection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Members by id: name, email, title, lifecycle stage and organization (id and name)."""
    if not ids:
        return {}
    m, o = Member, Organization
    rows = conn.execute(
        select(m.id, m.display_name, m.primary_email, m.title, m.lifecycle_stage, m.locale,
               m.organization_id, o.name.label("org_name"))
        .outerjoin(o, o.id == m.organization_id)
        .where(in_values(conn, m.id, list(ids)))
    )  # fmt: skip
    return {
        int(r.id): {
            "id": int(r.id), "name": r.display_name, "email": r.primary_email, "title": r.title,
            "stage": r.lifecycle_stage, "locale": r.locale, "org_id": r.organization_id, "org": r.org_name,
        }
        for r in rows
    }  # fmt: skip


def organizations(conn: Connection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    o = Organization
    rows = conn.execute(
        select(o.id, o.name, o.domain, o.size, o.industry).where(in_values(conn, o.id, list(ids)))
    )
    return {int(r.id): dict(r._mapping) for r in rows}


def record_url(kind: str, base_url: str | None, crm_object: str, crm_id: str) -> str | None:
    """Where a person opens the record in the CRM: Salesforce's Lightning page on the connection's
    instance. A HubSpot record's page needs the account (portal) id, which is not stored, so
    HubSpot records show their id only."""
    if kind == "salesforce" and base_url and base_url.startswith("https://"):
        sobject = "Lead" if crm_object.lower() == "lead" else "Contact"
        return f"{base_url.rstrip('/')}/lightning/r/{sobject}/{quote(crm_id, safe='')}/view"
    return None


def crm_records(conn: Connection, workspace_id: int, ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """Each member's records in the workspace's CRMs (a member not yet synced has none)."""
    out: dict[int, list[dict[str, Any]]] = {}
    if not ids:
        return out
    link, c = CrmLink, CrmConnection
    rows = conn.execute(
        select(link.member_id, link.crm_object, link.crm_id, link.synced_at, link.failure, link.crm_stage,
               c.kind, c.base_url)
        .join(c, c.id == link.connection_id)
        .where(c.workspace_id == workspace_id, in_values(conn, link.member_id, list(ids)))
        .order_by(c.kind)
    )  # fmt: skip
    for r in rows:
        out.setdefault(int(r.member_id), []).append(
            {
                "crm": CRM_NAMES.get(r.kind, r.kind),
                "object": r.crm_object,
                "crm_id": r.crm_id,
                "url": record_url(r.kind, r.base_url, r.crm_object, r.crm_id) if r.crm_id else None,
                "synced_at": r.synced_at,
                "failure": r.failure,
                "stage": r.crm_stage,
            }
        )
    return out
