"""Organizations as CRM companies, and each synced contact associated with its company.

A company HubSpot already holds (a search by domain) is reused, never duplicated; the others are
created. The name, domain and size last sent are hashed per organization, like contacts, so an
unchanged organization costs no call. Then contacts whose company changed are associated with it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, bindparam, select, update

from connectors.crm.base import CrmCompany, Outcome
from plugin.db.base import table_of, utcnow
from plugin.db.models import CrmCompanyLink, CrmLink
from plugin.db.sql import raw_rows, upsert_rows
from plugin.services.crm_fields import fields_hash


class CompanyWriter(Protocol):
    def find_companies(self, domains: Sequence[str]) -> dict[str, str]: ...

    def write_companies(self, companies: Sequence[CrmCompany]) -> list[Outcome]: ...

    def associate_contacts(self, pairs: Sequence[tuple[str, str]]) -> None: ...


ORGS = (
    "SELECT o.id, o.name, o.domain, o.size FROM organizations o WHERE o.workspace_id = ? "
    "AND o.domain IS NOT NULL AND EXISTS (SELECT 1 FROM members m WHERE m.organization_id = o.id "
    "AND m.merged_into_id IS NULL AND m.primary_email IS NOT NULL) ORDER BY o.id"
)
CONTACTS = (
    "SELECT l.member_id, l.crm_id, l.company_crm_id, c.crm_id FROM crm_links l "
    "JOIN members m ON m.id = l.member_id "
    "JOIN crm_company_links c ON c.connection_id = l.connection_id AND c.organization_id = m.organization_id "
    "WHERE l.connection_id = ? AND l.crm_id IS NOT NULL AND c.crm_id IS NOT NULL"
)


def _companies(conn: Connection, workspace_id: int) -> list[CrmCompany]:
    out = []
    for rows in raw_rows(conn, ORGS, (workspace_id,)):
        for oid, name, domain, size in rows:
            props = {"name": name or domain, "domain": str(domain).lower()}
            if size is not None:
                props["numberofemployees"] = str(int(size))
            out.append(CrmCompany(str(oid), str(domain).lower(), props))
    return out


def sync_companies(engine: Engine, workspace_id: int, connection_id: int, crm: CompanyWriter) -> Counter[str]:
    counts: Counter[str] = Counter()
    with engine.connect() as conn:
        companies = _companies(conn, workspace_id)
        t = CrmCompanyLink.__table__.c
        links = {
            str(r[0]): (r[1], r[2])
            for r in conn.execute(
                select(t.organization_id, t.crm_id, t.fields_hash).where(t.connection_id == connection_id)
            )
        }
    unknown = [c.domain for c in companies if not (links.get(c.key) or (None, None))[0]]
    found = crm.find_companies(unknown) if unknown else {}
    counts["companies_found"] = len(found)
    todo = []
    for c in companies:
        crm_id, old_hash = links.get(c.key) or (None, None)
        crm_id = crm_id or found.get(c.domain)
        if fields_hash(c.domain, c.properties) != old_hash or crm_id is None:
            todo.append(CrmCompany(c.key, c.domain, c.properties, crm_id))
    counts["companies_unchanged"] = len(companies) - len(todo)
    outcomes = crm.write_companies(todo) if todo else []
    by_key = {c.key: c for c in todo}
    rows = []
    for o in outcomes:
        c = by_key[o.key]
        counts[f"companies_{o.status}"] += 1
        good = o.status != "failed"
        rows.append(
            {
                "connection_id": connection_id,
                "organization_id": int(o.key),
                "crm_id": o.crm_id or c.crm_id,
                "fields_hash": fields_hash(c.domain, c.properties) if good else None,
                "failure": None if good else (o.reason or "")[:500],
                "synced_at": utcnow(),
            }
        )
    if rows:
        with engine.begin() as conn:
            upsert_rows(conn, table_of(CrmCompanyLink), rows, ("connection_id", "organization_id"))
    counts["contacts_associated"] = _associate(engine, connection_id, crm)
    return counts


def _associate(engine: Engine, connection_id: int, crm: CompanyWriter) -> int:
    """Associate each linked contact with its organization's company where that changed."""
    with engine.connect() as conn:
        pairs: list[tuple[Any, ...]] = [
            r for rows in raw_rows(conn, CONTACTS, (connection_id,)) for r in rows if r[2] != r[3]
        ]
    if not pairs:
        return 0
    crm.associate_contacts([(str(r[1]), str(r[3])) for r in pairs])
    with engine.begin() as conn:
        conn.execute(
            update(CrmLink)
            .where(CrmLink.connection_id == connection_id, CrmLink.member_id == bindparam("m"))
            .values(company_crm_id=bindparam("company")),
            [{"m": r[0], "company": str(r[3])} for r in pairs],
        )
    return len(pairs)
