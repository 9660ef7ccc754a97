"""HubSpot objects beside contacts: companies (found by domain or created), contact-to-company
associations, and notes on contacts for signals."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hubspot.crm.associations.v4 import (
    BatchInputPublicDefaultAssociationMultiPost,
    PublicDefaultAssociationMultiPost,
)
from hubspot.crm.associations.v4 import PublicObjectId as AssociationEnd
from hubspot.crm.companies import (
    BatchInputSimplePublicObjectBatchInput,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
)
from hubspot.crm.companies import (
    BatchInputSimplePublicObjectBatchInputForCreate as CompaniesCreateBatch,
)
from hubspot.crm.companies import (
    SimplePublicObjectBatchInputForCreate as CompanyCreate,
)
from hubspot.crm.lists import ListCreateRequest
from hubspot.crm.objects.notes import (
    AssociationSpec,
    BatchInputSimplePublicObjectBatchInputForCreate,
    PublicAssociationsForObject,
    PublicObjectId,
    SimplePublicObjectBatchInputForCreate,
)

from connectors.crm.base import CrmCompany, CrmNote, Outcome
from connectors.crm.hubspot_wire import HUBSPOT_BATCH, HubSpotCore, reasons_by_trace
from connectors.errors import CrmRejected

NOTE_TO_CONTACT = 202  # HubSpot-defined association type: note to contact (notes guide)
# Pairs per associations v4 batch create: HubSpot takes up to 2,000; half that keeps a request small
# (v4 batch read is capped at 1,000: HubSpot's changelog, February 2025).
ASSOCIATION_BATCH = 1_000
LIST_BATCH = (
    1_000  # record ids per memberships/add call (the reference states no cap; this keeps requests small)
)


class ObjectsMixin(HubSpotCore):
    def find_companies(self, domains: Sequence[str]) -> dict[str, str]:
        """Company ids by domain (lowercased) for those HubSpot already holds: a search with an IN
        filter, 100 domains a call (the search endpoint pages at most 200 results)."""
        api = self._client.crm.companies.search_api
        found: dict[str, str] = {}
        for start in range(0, len(domains), HUBSPOT_BATCH):
            part = list(domains[start : start + HUBSPOT_BATCH])
            after: str | None = None
            while True:
                request = PublicObjectSearchRequest(
                    filter_groups=[
                        FilterGroup(filters=[Filter(property_name="domain", operator="IN", values=part)])
                    ],
                    properties=["domain"],
                    limit=200,
                    after=after,
                )
                page, _ = self._call(
                    "companies.search",
                    lambda request=request: api.do_search_with_http_info(
                        request, _request_timeout=self._timeout
                    ),  # type: ignore[misc]
                )
                for r in page.results or []:
                    domain = str((r.properties or {}).get("domain") or "").lower()
                    if domain and domain not in found:  # HubSpot may hold duplicates: the oldest wins
                        found[domain] = str(r.id)
                nxt = page.paging.next if page.paging is not None else None
                if nxt is None or not nxt.after:
                    break
                after = str(nxt.after)
        return found

    def write_companies(self, companies: Sequence[CrmCompany]) -> list[Outcome]:
        """Create the companies without a ``crm_id``, update the others; 100 a call."""
        api = self._client.crm.companies.batch_api
        out: list[Outcome] = []
        new = [c for c in companies if not c.crm_id]
        known = [c for c in companies if c.crm_id]
        for start in range(0, len(new), HUBSPOT_BATCH):
            part = new[start : start + HUBSPOT_BATCH]
            create = CompaniesCreateBatch(
                inputs=[
                    CompanyCreate(object_write_trace_id=c.key, properties=c.properties, associations=[])
                    for c in part
                ]
            )
            out += self._company_outcomes(
                part,
                "created",
                lambda body=create: api.create_with_http_info(body, _request_timeout=self._timeout),  # type: ignore[misc]
            )
        for start in range(0, len(known), HUBSPOT_BATCH):
            part = known[start : start + HUBSPOT_BATCH]
            update = BatchInputSimplePublicObjectBatchInput(
                inputs=[
                    SimplePublicObjectBatchInput(
                        id=c.crm_id, object_write_trace_id=c.key, properties=c.properties
                    )
                    for c in part
                ]
            )
            out += self._company_outcomes(
                part,
                "updated",
                lambda body=update: api.update_with_http_info(body, _request_timeout=self._timeout),  # type: ignore[misc]
            )
        return out

    def _company_outcomes(
        self, part: Sequence[CrmCompany], status: str, call: Callable[[], Any]
    ) -> list[Outcome]:
        try:
            data, _ = self._call(f"companies.batch_{'create' if status == 'created' else 'update'}", call)
        except CrmRejected as exc:
            return [Outcome(c.key, "failed", reason=str(exc)) for c in part]
        made = {str(r.object_write_trace_id): r for r in data.results or [] if r.object_write_trace_id}
        reasons = reasons_by_trace(getattr(data, "errors", None) or [])
        out = []
        for c in part:
            got = made.get(c.key)
            if got is None:
                out.append(
                    Outcome(c.key, "failed", reason=reasons.get(c.key) or reasons.get("") or "no result")
                )
            else:
                out.append(
                    Outcome(c.key, "created" if status == "created" else "updated", crm_id=str(got.id))
                )
        return out

    def associate_contacts(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Contact-to-company associations (HubSpot's default type), 1,000 pairs a call (v4 batch)."""
        api = self._client.crm.associations.v4.batch_api
        for start in range(0, len(pairs), ASSOCIATION_BATCH):
            body = BatchInputPublicDefaultAssociationMultiPost(
                inputs=[
                    PublicDefaultAssociationMultiPost(_from=AssociationEnd(id=a), to=AssociationEnd(id=b))
                    for a, b in pairs[start : start + ASSOCIATION_BATCH]
                ]
            )
            self._call(
                "associations.batch",
                lambda body=body: api.create_default_with_http_info(  # type: ignore[misc]
                    "contacts", "companies", body, _request_timeout=self._timeout
                ),
            )

    def add_to_list(self, name: str, contact_ids: Sequence[str]) -> tuple[str, int]:
        """Put contacts on a static (MANUAL) list, made when no list has that name; returns the
        list id and how many were added (members already on it are not added twice)."""
        lists = self._client.crm.lists
        try:
            found, _ = self._call(
                "lists.by_name",
                lambda: lists.lists_api.get_by_name_with_http_info(
                    name, "0-1", _request_timeout=self._timeout
                ),
            )
            list_id = str(found.list.list_id)
        except CrmRejected:  # 404: no such list yet
            made, _ = self._call(
                "lists.create",
                lambda: lists.lists_api.create_with_http_info(
                    ListCreateRequest(name=name, object_type_id="0-1", processing_type="MANUAL"),
                    _request_timeout=self._timeout,
                ),
            )
            list_id = str(made.list.list_id)
        added = 0
        for start in range(0, len(contact_ids), LIST_BATCH):
            part = list(contact_ids[start : start + LIST_BATCH])
            got, _ = self._call(
                "lists.add",
                lambda part=part: lists.memberships_api.add_with_http_info(  # type: ignore[misc]
                    list_id, part, _request_timeout=self._timeout
                ),
            )
            added += len(got.records_ids_added or [])
        return list_id, added

    def create_notes(self, notes: Sequence[CrmNote]) -> list[Outcome]:
        """Notes on contacts (``hs_timestamp`` set, associated by type 202), 100 a call; one outcome
        per note, matched back by the trace id each input carries."""
        api = self._client.crm.objects.notes.batch_api
        out: list[Outcome] = []
        for start in range(0, len(notes), HUBSPOT_BATCH):
            part = notes[start : start + HUBSPOT_BATCH]
            body = BatchInputSimplePublicObjectBatchInputForCreate(inputs=[_note_input(n) for n in part])
            try:
                data, _ = self._call(
                    "notes.batch_create",
                    lambda body=body: api.create_with_http_info(body, _request_timeout=self._timeout),  # type: ignore[misc]
                )
            except CrmRejected as exc:
                out += [Outcome(n.key, "failed", reason=str(exc)) for n in part]
                continue
            made = {str(r.object_write_trace_id): r for r in data.results or [] if r.object_write_trace_id}
            reasons = reasons_by_trace(getattr(data, "errors", None) or [])
            for n in part:
                got = made.get(n.key)
                if got is None:
                    why = reasons.get(n.key) or reasons.get("") or "HubSpot returned no result for it"
                    out.append(Outcome(n.key, "failed", reason=why))
                else:
                    out.append(Outcome(n.key, "created", crm_id=str(got.id)))
        return out


def _note_input(note: CrmNote) -> Any:
    return SimplePublicObjectBatchInputForCreate(
        object_write_trace_id=note.key,
        properties={"hs_timestamp": note.timestamp.isoformat(), "hs_note_body": note.body},
        associations=[
            PublicAssociationsForObject(
                to=PublicObjectId(id=note.contact_id),
                types=[
                    AssociationSpec(
                        association_category="HUBSPOT_DEFINED", association_type_id=NOTE_TO_CONTACT
                    )
                ],
            )
        ],
    )
