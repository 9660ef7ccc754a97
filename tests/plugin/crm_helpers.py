"""An in-process CRM for service tests: the adapter protocol, a dict behind it, failures on cue.
(The HTTP-level tests use the HubSpot fake in tests/fakes with the real client library.)"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from itertools import count

from connectors.crm.base import (
    CrmCompany,
    CrmContact,
    CrmDeal,
    CrmNote,
    CrmRecord,
    Outcome,
    PropertySpec,
    SchemaReport,
)


class Killed(Exception):
    """Stands for the process dying mid-run."""


class MemoryCrm:
    batch_size = 100

    def __init__(self) -> None:
        self.contacts: dict[str, dict[str, str]] = {}  # email -> properties (with "id")
        self.deals: list[CrmDeal] = []
        self.notes: list[CrmNote] = []
        self.companies: dict[str, dict[str, str]] = {}  # id -> properties
        self.company_of: dict[str, str] = {}  # contact id -> company id
        self.properties: set[str] = set()
        self.calls: Counter[str] = Counter()
        self.refuse: dict[str, str] = {}  # email -> reason
        self.die_after_batches: int | None = None
        self._ids = count(101)

    def ensure_schema(self, specs: Sequence[PropertySpec]) -> SchemaReport:
        self.calls["schema"] += 1
        report = SchemaReport()
        for spec in specs:
            (report.present if spec.name in self.properties else report.created).append(spec.name)
            self.properties.add(spec.name)
        return report

    def upsert_contacts(self, records: Sequence[CrmRecord]) -> list[Outcome]:
        assert len(records) <= self.batch_size
        if (
            self.die_after_batches is not None
            and self.calls["contacts.batch_upsert"] >= self.die_after_batches
        ):
            raise Killed
        self.calls["contacts.batch_upsert"] += 1
        out = []
        for r in records:
            if r.email in self.refuse:
                out.append(Outcome(r.key, "failed", reason=self.refuse[r.email]))
                continue
            known = r.email in self.contacts
            contact = self.contacts.setdefault(r.email, {"id": str(next(self._ids))})
            contact.update(r.properties)
            out.append(Outcome(r.key, "updated" if known else "created", crm_id=contact["id"]))
        return out

    def create_notes(self, notes: Sequence[CrmNote]) -> list[Outcome]:
        self.calls["notes.batch_create"] += 1
        self.notes += notes
        return [Outcome(n.key, "created", crm_id=f"n{n.key}") for n in notes]

    def find_companies(self, domains: Sequence[str]) -> dict[str, str]:
        self.calls["companies.search"] += 1
        wanted = set(domains)
        return {p["domain"]: cid for cid, p in self.companies.items() if p["domain"] in wanted}

    def write_companies(self, companies: Sequence[CrmCompany]) -> list[Outcome]:
        self.calls["companies.write"] += 1
        out = []
        for c in companies:
            cid = c.crm_id or f"c{next(self._ids)}"
            self.companies.setdefault(cid, {}).update(c.properties)
            out.append(Outcome(c.key, "updated" if c.crm_id else "created", crm_id=cid))
        return out

    def associate_contacts(self, pairs: Sequence[tuple[str, str]]) -> None:
        self.calls["associations.batch"] += 1
        self.company_of.update(pairs)

    def read_contacts(self) -> Iterator[CrmContact]:
        self.calls["contacts.list"] += 1
        for email, props in self.contacts.items():
            yield CrmContact(props["id"], email, props.get("lifecyclestage"), props.get("hubspot_owner_id"))

    def read_deals(self) -> Iterator[CrmDeal]:
        self.calls["deals.list"] += 1
        yield from self.deals
