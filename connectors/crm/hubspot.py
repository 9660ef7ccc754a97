"""HubSpot, through hubspot-api-client: custom properties, contacts upserted by email in batches.

Shapes, from HubSpot's reference (developers.hubspot.com/docs/api-reference):
``POST /crm/v3/objects/contacts/batch/upsert`` takes ``inputs`` of ``{id, idProperty, properties}``
(at most 100), answers 200 with ``results`` (each with ``new``) or 207 with ``errors`` as well;
one invalid value (a malformed email) can also fail the whole batch with 400 VALIDATION_ERROR
(seen in the wild: github.com/Atlas-Authority/marketing-automation/issues/174), so a refused
batch is split in halves until the bad record stands alone. Every response carries
``X-HubSpot-RateLimit-*`` headers; the adapter keeps under the ten-second window they announce.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import urllib3
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    BatchInputPublicDefaultAssociationMultiPost,
    PublicDefaultAssociationMultiPost,
)
from hubspot.crm.associations.v4 import PublicObjectId as AssociationEnd
from hubspot.crm.associations.v4.exceptions import ApiException as AssociationsApiException
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
from hubspot.crm.companies.exceptions import ApiException as CompaniesApiException
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    SimplePublicObjectBatchInputUpsert,
)
from hubspot.crm.contacts.exceptions import ApiException as ContactsApiException
from hubspot.crm.deals.exceptions import ApiException as DealsApiException
from hubspot.crm.objects.notes import (
    AssociationSpec,
    BatchInputSimplePublicObjectBatchInputForCreate,
    PublicAssociationsForObject,
    PublicObjectId,
    SimplePublicObjectBatchInputForCreate,
)
from hubspot.crm.objects.notes.exceptions import ApiException as NotesApiException
from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate
from hubspot.crm.properties.exceptions import ApiException as PropertiesApiException

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
from connectors.crm.retry import Failure, Retrier, Window
from connectors.errors import CrmRejected

HUBSPOT_BATCH = 100  # inputs per batch call: HubSpot's cap
PAGE = 100  # records per page of a list read (HubSpot's maximum)
GROUP = "flywheel"
NOTE_TO_CONTACT = 202  # HubSpot-defined association type: note to contact (notes guide)
TIMEOUT_S = 15.0
API_ERRORS = (
    ContactsApiException,
    PropertiesApiException,
    DealsApiException,
    NotesApiException,
    CompaniesApiException,
    AssociationsApiException,
)
NETWORK_ERRORS = (urllib3.exceptions.HTTPError, OSError)
_TYPES = {  # PropertySpec.kind -> (type, fieldType) of HubSpot's property model
    "string": ("string", "text"),
    "text": ("string", "textarea"),
    "number": ("number", "number"),
    "datetime": ("datetime", "date"),
}


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    items = headers.items() if hasattr(headers, "items") else headers
    for key, value in items:
        if str(key).lower() == name.lower():
            return str(value)
    return None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _error_text(body: Any) -> tuple[str, str]:
    """(category, message) of HubSpot's error JSON, or empty strings when it is not JSON."""
    try:
        data = json.loads(body) if isinstance(body, str | bytes) else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return "", ""
    return str(data.get("category") or data.get("errorType") or ""), str(data.get("message") or "")


def classify(exc: BaseException) -> Failure | None:
    """HTTP status to action, as a table (the Airbyte way)."""
    if isinstance(exc, NETWORK_ERRORS):
        return Failure("transient", f"network: {type(exc).__name__}")
    status = getattr(exc, "status", None)
    if status is None:
        return None
    category, message = _error_text(getattr(exc, "body", None))
    text = f"HubSpot {status} {category}: {message}".strip().rstrip(":")
    if status == 429:
        policy = _error_policy(getattr(exc, "body", None))
        retry_after = _int(_header(getattr(exc, "headers", None), "Retry-After"))
        if policy == "DAILY":
            return Failure("daily", text, float(retry_after or 0))
        interval = _int(_header(getattr(exc, "headers", None), "X-HubSpot-RateLimit-Interval-Milliseconds"))
        wait = retry_after if retry_after is not None else (interval or 1000) / 1000
        return Failure("rate", text, float(wait))
    if status in (401, 403):
        return Failure("auth", text)
    if status >= 500 or status == 408:
        return Failure("transient", text)
    return Failure("rejected", text)


def _error_policy(body: Any) -> str:
    try:
        data = json.loads(body) if isinstance(body, str | bytes) else None
    except ValueError:
        return ""
    return str(data.get("policyName") or "") if isinstance(data, dict) else ""


class HubSpotAdapter:
    """One HubSpot account (a private-app or OAuth token). ``host`` points it elsewhere (the
    sandbox, a proxy); ``sleep`` and ``clock`` are injectable so tests need not wait."""

    batch_size = HUBSPOT_BATCH

    def __init__(
        self,
        token: str,
        *,
        host: str | None = None,
        timeout: float = TIMEOUT_S,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_attempts: int = 6,
    ) -> None:
        config: dict[str, Any] = {"access_token": token}
        if host:
            config["host"] = host.rstrip("/")
        self._client = HubSpot(**config)
        self._timeout = timeout
        self.window = Window(clock=clock)
        self.retrier = Retrier(
            self.window, classify, API_ERRORS + NETWORK_ERRORS, sleep=sleep, max_attempts=max_attempts
        )
        self.calls: Counter[str] = Counter()  # API calls made, by operation (retries included)

    def _call(self, name: str, call: Callable[[], tuple[Any, int, Any]]) -> tuple[Any, int]:
        def once() -> tuple[Any, int, Any]:
            self.calls[name] += 1
            try:
                got = call()
            except API_ERRORS as exc:
                self._learn(getattr(exc, "headers", None))
                raise
            self._learn(got[2])
            return got

        data, status, _ = self.retrier.run(once)
        return data, status

    def _learn(self, headers: Any) -> None:
        self.window.learn(
            _int(_header(headers, "X-HubSpot-RateLimit-Max")),
            (_int(_header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")) or 0) / 1000 or None,
            _int(_header(headers, "X-HubSpot-RateLimit-Remaining")),
            _int(_header(headers, "X-HubSpot-RateLimit-Daily-Remaining")),
        )

    def check(self) -> None:
        """One cheap authenticated call; raises CrmAuthError or CrmUnavailable, never returns False."""
        basic = self._client.crm.contacts.basic_api
        self._call("check", lambda: basic.get_page_with_http_info(limit=1, _request_timeout=self._timeout))

    def ensure_schema(self, specs: Sequence[PropertySpec]) -> SchemaReport:
        """The ``flywheel`` group and each property on contacts: created when missing, left alone
        (never changed) when present."""
        report = SchemaReport()
        groups = self._client.crm.properties.groups_api
        core = self._client.crm.properties.core_api
        have_groups, _ = self._call(
            "properties.groups",
            lambda: groups.get_all_with_http_info("contacts", _request_timeout=self._timeout),
        )
        if GROUP not in {g.name for g in have_groups.results}:
            body = PropertyGroupCreate(name=GROUP, label="Flywheel", display_order=-1)
            self._call(
                "properties.group_create",
                lambda: groups.create_with_http_info("contacts", body, _request_timeout=self._timeout),
            )
            report.group_created = True
        have, _ = self._call(
            "properties.list", lambda: core.get_all_with_http_info("contacts", _request_timeout=self._timeout)
        )
        existing = {p.name for p in have.results}
        for spec in specs:
            if spec.name in existing:
                report.present.append(spec.name)
                continue
            kind, field_type = _TYPES[spec.kind]
            prop = PropertyCreate(
                name=spec.name,
                label=spec.label,
                description=spec.description,
                type=kind,
                field_type=field_type,
                group_name=GROUP,
            )
            self._call(
                "properties.create",
                lambda prop=prop: core.create_with_http_info(
                    "contacts", prop, _request_timeout=self._timeout
                ),  # type: ignore[misc]
            )
            report.created.append(spec.name)
        return report

    def upsert_contacts(self, records: Sequence[CrmRecord]) -> list[Outcome]:
        """Create or update contacts by email, at most :data:`HUBSPOT_BATCH` a call; one outcome per
        record. A batch HubSpot refuses as a whole is split until the refusal is one record's."""
        out: list[Outcome] = []
        for start in range(0, len(records), HUBSPOT_BATCH):
            out += self._upsert_batch(records[start : start + HUBSPOT_BATCH])
        return out

    def _upsert_batch(self, records: Sequence[CrmRecord]) -> list[Outcome]:
        batch = self._client.crm.contacts.batch_api
        body = BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                SimplePublicObjectBatchInputUpsert(
                    id=r.email,
                    id_property="email",
                    object_write_trace_id=r.key,  # asks for 207 partial results, naming each input
                    properties={**r.properties, "email": r.email},
                )
                for r in records
            ]
        )
        try:
            data, _ = self._call(
                "contacts.batch_upsert",
                lambda: batch.upsert_with_http_info(body, _request_timeout=self._timeout),
            )
        except CrmRejected as exc:
            if len(records) == 1:
                return [Outcome(records[0].key, "failed", reason=str(exc))]
            half = len(records) // 2
            return self._upsert_batch(records[:half]) + self._upsert_batch(records[half:])
        return _outcomes(records, data)

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
        reasons = _reasons_by_trace(getattr(data, "errors", None) or [])
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
        """Contact-to-company associations (HubSpot's default type), 100 pairs a call (v4 batch)."""
        api = self._client.crm.associations.v4.batch_api
        for start in range(0, len(pairs), HUBSPOT_BATCH):
            body = BatchInputPublicDefaultAssociationMultiPost(
                inputs=[
                    PublicDefaultAssociationMultiPost(_from=AssociationEnd(id=a), to=AssociationEnd(id=b))
                    for a, b in pairs[start : start + HUBSPOT_BATCH]
                ]
            )
            self._call(
                "associations.batch",
                lambda body=body: api.create_default_with_http_info(  # type: ignore[misc]
                    "contacts", "companies", body, _request_timeout=self._timeout
                ),
            )

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
            reasons = _reasons_by_trace(getattr(data, "errors", None) or [])
            for n in part:
                got = made.get(n.key)
                if got is None:
                    why = reasons.get(n.key) or reasons.get("") or "HubSpot returned no result for it"
                    out.append(Outcome(n.key, "failed", reason=why))
                else:
                    out.append(Outcome(n.key, "created", crm_id=str(got.id)))
        return out

    def _pages(
        self, name: str, api: Any, properties: Sequence[str], associations: Sequence[str]
    ) -> Iterator[Any]:
        """Every record of one object type, a page of :data:`PAGE` at a time (``paging.next.after``)."""
        after: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "limit": PAGE,
                "properties": list(properties),
                "_request_timeout": self._timeout,
            }
            if associations:
                kwargs["associations"] = list(associations)
            if after:
                kwargs["after"] = after
            page, _ = self._call(name, lambda kwargs=kwargs: api.get_page_with_http_info(**kwargs))  # type: ignore[misc]
            yield from page.results or []
            nxt = page.paging.next if page.paging is not None else None
            if nxt is None or not nxt.after:
                return
            after = str(nxt.after)

    def read_contacts(self) -> Iterator[CrmContact]:
        api = self._client.crm.contacts.basic_api
        for r in self._pages(
            "contacts.list", api, ("email", "lifecyclestage", "hubspot_owner_id"), ("companies",)
        ):
            props = r.properties or {}
            yield CrmContact(
                str(r.id),
                props.get("email"),
                props.get("lifecyclestage") or None,
                props.get("hubspot_owner_id") or None,
                _associated(r, "companies"),
            )

    def read_deals(self) -> Iterator[CrmDeal]:
        """Deals with their stage and associations. Won: ``hs_is_closed_won`` where HubSpot sets it,
        else the default pipeline's ``closedwon`` stage."""
        api = self._client.crm.deals.basic_api
        names = ("dealname", "dealstage", "amount", "closedate", "hs_is_closed_won", "hs_is_closed")
        for r in self._pages("deals.list", api, names, ("contacts", "companies")):
            props = r.properties or {}
            stage = props.get("dealstage") or None
            won_flag = props.get("hs_is_closed_won")
            won = won_flag == "true" if won_flag is not None else stage == "closedwon"
            closed_flag = props.get("hs_is_closed")
            closed = (
                closed_flag == "true" if closed_flag is not None else stage in ("closedwon", "closedlost")
            )
            try:
                amount = float(props["amount"]) if props.get("amount") not in (None, "") else None
            except ValueError:
                amount = None
            yield CrmDeal(
                str(r.id),
                props.get("dealname"),
                stage,
                won,
                closed,
                amount,
                props.get("closedate") or None,
                _associated(r, "contacts"),
                _associated(r, "companies"),
            )


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


def _associated(record: Any, kind: str) -> tuple[str, ...]:
    found = (getattr(record, "associations", None) or {}).get(kind)
    return tuple(str(a.id) for a in (found.results or [])) if found is not None else ()


def _outcomes(records: Sequence[CrmRecord], data: Any) -> list[Outcome]:
    """One outcome per record: results and 207 errors name their input by the trace id we gave it
    (the record's key); by email as a fallback for results that do not echo it."""
    by_trace: dict[str, Any] = {}
    by_email: dict[str, Any] = {}
    for result in data.results or []:
        if result.object_write_trace_id:
            by_trace[str(result.object_write_trace_id)] = result
        email = (result.properties or {}).get("email")
        if email:
            by_email[str(email).lower()] = result
    reasons = _reasons_by_trace(getattr(data, "errors", None) or [])
    out = []
    for r in records:
        got = by_trace.get(r.key) or by_email.get(r.email.lower())
        if got is None:
            reason = reasons.get(r.key) or reasons.get("") or "HubSpot returned no result for it"
            out.append(Outcome(r.key, "failed", reason=reason))
        else:
            out.append(Outcome(r.key, "created" if got.new else "updated", crm_id=str(got.id)))
    return out


def _reasons_by_trace(errors: Sequence[Any]) -> Mapping[str, str]:
    """The 207 errors by the ``objectWriteTraceId`` their context names; "" for errors naming none."""
    out: dict[str, str] = {}
    for err in errors:
        text = f"{err.category or 'ERROR'}: {err.message or ''}".strip()
        context = err.context or {}
        traces = [str(v) for v in (context.get("objectWriteTraceId") or [])]
        for key in traces or [""]:
            out.setdefault(key, text)
    return out
