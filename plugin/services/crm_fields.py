"""What Flywheel writes on a CRM contact: its own properties (scores, levels, reasons, last
activity) plus the member's name, as strings the CRM stores; and the hash that tells a changed
member from an unchanged one.

Defaults live in :data:`FIELDS`; a workspace can turn a field off or send it to another CRM field
with ``{"fields": {"flywheel_reasons": null, "firstname": "first_name__c"}}`` in the connection's
settings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection

from connectors.crm.base import CrmRecord, PropertySpec
from plugin.db.models.score import REASON_COLUMNS, reasons_of
from plugin.db.sql import raw_rows
from plugin.services.score_read import words

#: Flywheel's own contact properties (the CRM's ``flywheel`` group).
FIELDS: tuple[PropertySpec, ...] = (
    PropertySpec("flywheel_member_id", "Flywheel member id", "string", "Flywheel's id for this person"),
    PropertySpec(
        "flywheel_advocate_score", "Advocate score", "number", "0-100: engagement, helpfulness, advocacy"
    ),
    PropertySpec("flywheel_advocate_level", "Advocate level", "string", "champion, advocate, contributor..."),
    PropertySpec("flywheel_lead_score", "Lead score", "number", "0-100: fit times intent"),
    PropertySpec("flywheel_lead_grade", "Lead grade", "string", "fit letter A-C, intent digit 1-3"),
    PropertySpec(
        "flywheel_lead_hot", "Hot lead", "string", "true when a recent hand raise made the lead hot"
    ),
    PropertySpec("flywheel_churn_risk", "Churn risk", "number", "0-1, probability-like"),
    PropertySpec("flywheel_churn_band", "Churn risk band", "string", "low, medium or high"),
    PropertySpec("flywheel_last_activity", "Last community activity", "datetime", "in any community"),
    PropertySpec("flywheel_reasons", "Flywheel reasons", "text", "why the scores are what they are"),
    PropertySpec("flywheel_referred_by", "Referred by", "string", "the advocate who referred this person"),
    PropertySpec("flywheel_referral_code", "Referral code", "string", "the advocate's referral code"),
)
#: CRM standard fields Flywheel also fills, from the member's profile.
PROFILE_FIELDS = ("firstname", "lastname", "company")
MAX_TEXT = 1000  # characters of reasons text; CRM text fields have limits


@dataclass(frozen=True)
class FieldMap:
    """Flywheel field -> CRM field name (None: not sent)."""

    names: dict[str, str | None]

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> FieldMap:
        names: dict[str, str | None] = {f.name: f.name for f in FIELDS}
        names.update({f: f for f in PROFILE_FIELDS})
        override = (settings or {}).get("fields") or {}
        for key, value in override.items():
            if key in names:
                names[key] = None if value in (None, "") else str(value)
        return cls(names)

    def specs(self) -> list[PropertySpec]:
        """The custom properties to create, under their mapped names."""
        out = []
        for spec in FIELDS:
            name = self.names.get(spec.name)
            if name:
                out.append(PropertySpec(name, spec.label, spec.kind, spec.description))
        return out

    def apply(self, values: Mapping[str, str]) -> dict[str, str]:
        out = {}
        for key, value in values.items():
            name = self.names.get(key)
            if name:
                out[name] = value
        return out


# The first referral of each prospect that is not rejected (held ones wait for review).
REFERRED_SQL = (
    "SELECT r.prospect_email, a.display_name, a.primary_email, i.code FROM referrals r "
    "JOIN referral_invites i ON i.id = r.invite_id JOIN members a ON a.id = r.member_id "
    "WHERE r.workspace_id = ? AND r.status IN ('pending', 'converted') ORDER BY r.id"
)


def _referred(conn: Connection, workspace_id: int) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for rows in raw_rows(conn, REFERRED_SQL, (workspace_id,)):
        for email, name, advocate_email, code in rows:
            who = " ".join(p for p in (name, f"<{advocate_email}>" if advocate_email else None) if p)
            out.setdefault(
                email, {"flywheel_referred_by": who or "a community member", "flywheel_referral_code": code}
            )
    return out


def fields_hash(email: str, properties: Mapping[str, str]) -> str:
    return hashlib.sha256(orjson.dumps([email.lower(), properties], option=orjson.OPT_SORT_KEYS)).hexdigest()


def _number(value: Any, digits: int) -> str | None:
    return None if value is None else f"{float(value):.{digits}f}"


def _names(display: str | None) -> dict[str, str]:
    parts = (display or "").split()
    if not parts:
        return {}
    return (
        {"firstname": parts[0], "lastname": " ".join(parts[1:])}
        if len(parts) > 1
        else {"firstname": parts[0]}
    )


# Column names from constants; the workspace is a parameter.
SQL = (
    "SELECT m.id, m.primary_email, m.display_name, a.score, a.label, l.score, l.label, l.hot, "  # noqa: S608
    "c.score, c.label, st.last_at, o.name, "
    + ", ".join(f"a.{c}" for c in REASON_COLUMNS)
    + ", "
    + ", ".join(f"l.{c}" for c in REASON_COLUMNS)
    + ", "
    + ", ".join(f"c.{c}" for c in REASON_COLUMNS)
    + " FROM members m "
    "LEFT JOIN scores a ON a.workspace_id = m.workspace_id AND a.kind = 'advocate' "
    "AND a.subject = 'member' AND a.subject_id = m.id "
    "LEFT JOIN scores l ON l.workspace_id = m.workspace_id AND l.kind = 'lead' "
    "AND l.subject = 'member' AND l.subject_id = m.id "
    "LEFT JOIN scores c ON c.workspace_id = m.workspace_id AND c.kind = 'churn' "
    "AND c.subject = 'member' AND c.subject_id = m.id "
    "LEFT JOIN organizations o ON o.id = m.organization_id "
    "LEFT JOIN member_stats st ON st.workspace_id = m.workspace_id "
    "AND st.organization_id = coalesce(m.organization_id, 0) AND st.member_id = m.id "
    "WHERE m.workspace_id = ? AND m.merged_into_id IS NULL AND m.primary_email IS NOT NULL ORDER BY m.id"
)


def member_records(conn: Connection, workspace_id: int, mapping: FieldMap) -> Iterator[CrmRecord]:
    """Every current member with an email, as the CRM should hold them, in id order."""
    n = len(REASON_COLUMNS)
    referred = _referred(conn, workspace_id)
    for rows in raw_rows(conn, SQL, (workspace_id,)):
        for r in rows:
            adv, lead, churn = r[12 : 12 + n], r[12 + n : 12 + 2 * n], r[12 + 2 * n : 12 + 3 * n]
            reasons = [
                f"{label}: {'; '.join(words(reasons_of(cells)))}"
                for label, cells in (("Advocate", adv), ("Lead", lead), ("Churn", churn))
                if cells[0] is not None
            ]
            values: dict[str, str | None] = {
                "flywheel_member_id": str(r[0]),
                "flywheel_advocate_score": _number(r[3], 1),
                "flywheel_advocate_level": r[4],
                "flywheel_lead_score": _number(r[5], 1),
                "flywheel_lead_grade": r[6],
                "flywheel_lead_hot": None if r[7] is None else ("true" if r[7] else "false"),
                "flywheel_churn_risk": _number(r[8], 3),
                "flywheel_churn_band": r[9],
                "flywheel_last_activity": None if r[10] is None else str(int(r[10]) // 1000),  # epoch ms
                "flywheel_reasons": "\n".join(reasons)[:MAX_TEXT] if reasons else None,
                "company": r[11],
                **_names(r[2]),
                **referred.get(str(r[1]).strip().lower(), {}),
            }
            present = {k: v for k, v in values.items() if v is not None}
            yield CrmRecord(str(r[0]), str(r[1]).strip().lower(), mapping.apply(present))
