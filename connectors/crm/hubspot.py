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

from collections.abc import Sequence
from typing import Any

from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    PublicGdprDeleteInput,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectInput,
)
from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate

from connectors.crm.base import CrmRecord, Outcome, PropertySpec, SchemaReport
from connectors.crm.hubspot_objects import ObjectsMixin
from connectors.crm.hubspot_reads import ReadsMixin
from connectors.crm.hubspot_wire import HUBSPOT_BATCH, classify, reasons_by_trace
from connectors.errors import CrmRejected

__all__ = ["HUBSPOT_BATCH", "HubSpotAdapter", "classify"]

GROUP = "flywheel"
_TYPES = {  # PropertySpec.kind -> (type, fieldType) of HubSpot's property model
    "string": ("string", "text"),
    "text": ("string", "textarea"),
    "number": ("number", "number"),
    "datetime": ("datetime", "date"),
}


class HubSpotAdapter(ReadsMixin, ObjectsMixin):
    """One HubSpot account: the flywheel properties, contacts by email, companies, notes, reads."""

    batch_size = HUBSPOT_BATCH

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

    def delete_contact(self, crm_id: str) -> bool:
        """Permanently delete a contact and its associated content, GDPR-compliant
        (``POST /crm/v3/objects/contacts/gdpr-delete`` with ``{"objectId"}``: 204, no body).
        False when HubSpot has no such contact (404): it is gone already."""
        basic = self._client.crm.contacts.basic_api
        body = PublicGdprDeleteInput(object_id=crm_id)
        try:
            self._call(
                "contacts.gdpr_delete",
                lambda: basic.purge_with_http_info(body, _request_timeout=self._timeout),
            )
        except CrmRejected as exc:
            if _status(exc) == 404:
                return False
            raise
        return True

    def anonymize_contact(self, crm_id: str, fields: Sequence[str]) -> bool:
        """Blank the contact's email, names and every property Flywheel wrote (``fields``), keeping
        the record (``PATCH /crm/v3/objects/contacts/{id}``; an empty string clears a property).
        False when HubSpot has no such contact (404)."""
        basic = self._client.crm.contacts.basic_api
        names = dict.fromkeys([*fields, "email", "firstname", "lastname"])
        body = SimplePublicObjectInput(properties=dict.fromkeys(names, ""))
        try:
            self._call(
                "contacts.update",
                lambda: basic.update_with_http_info(crm_id, body, _request_timeout=self._timeout),
            )
        except CrmRejected as exc:
            if _status(exc) == 404:
                return False
            raise
        return True

    def upsert_contacts(self, records: Sequence[CrmRecord]) -> list[Outcome]:
        """Create or update contacts by email, at most :data:`HUBSPOT_BATCH` a call; one outcome per
        record. A batch HubSpot refuses as a whole is split until the refusal is one record's."""
        out: list[Outcome] = []
        for start in range(0, len(records), HUBSPOT_BATCH):
            out += self._upsert_batch(records[start : start + HUBSPOT_BATCH])
        return out

    def _upsert_batch(self, records: Sequence[CrmRecord]) -> list[Outcome]:
        if not records:
            return []
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
            # One record alone first: refused the same way, the cause is the mapping or the schema
            # (every record would be), so the batch fails whole with it, not after 2N calls.
            probe = self._upsert_batch(records[:1])
            if probe[0].status == "failed" and probe[0].reason == str(exc):
                return probe + [Outcome(r.key, "failed", reason=str(exc)) for r in records[1:]]
            rest = records[1:]
            half = len(rest) // 2
            return probe + self._upsert_batch(rest[:half]) + self._upsert_batch(rest[half:])
        return _outcomes(records, data)


def _status(exc: BaseException) -> int | None:
    """The HTTP status behind a CRM error (the client's ApiException it was raised from)."""
    return getattr(exc.__cause__, "status", None)


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
    reasons = reasons_by_trace(getattr(data, "errors", None) or [])
    out = []
    for r in records:
        got = by_trace.get(r.key) or by_email.get(r.email.lower())
        if got is None:
            reason = reasons.get(r.key) or reasons.get("") or "HubSpot returned no result for it"
            out.append(Outcome(r.key, "failed", reason=reason))
        else:
            out.append(Outcome(r.key, "created" if got.new else "updated", crm_id=str(got.id)))
    return out
