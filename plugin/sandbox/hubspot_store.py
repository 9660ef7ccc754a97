"""The HubSpot sandbox's state: records, properties, associations and lists, behind one lock.

It knows HubSpot's rules (unknown properties are refused, contacts are unique by email, notes and
tasks need ``hs_timestamp``) but nothing of HTTP: it raises :class:`HubSpotError` with the body
HubSpot would send, and :mod:`plugin.sandbox.hubspot` puts that on the wire. Tests and demos seed
it directly, e.g. ``store.create("deals", {...}, associations=[("contacts", id)])``.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

JSON = dict[str, Any]

OBJECT_TYPES = ("contacts", "companies", "deals", "notes", "tasks")
# Object type ids as the lists API names them ("0-1" for contacts).
# https://developers.hubspot.com/docs/api-reference/latest/crm/lists/guide
OBJECT_TYPE_IDS = {"contacts": "0-1", "companies": "0-2", "deals": "0-3", "notes": "0-46", "tasks": "0-27"}
_SINGULAR = {"contacts": "contact", "companies": "company", "deals": "deal", "notes": "note", "tasks": "task"}
_ALIASES = {**{v: k for k, v in OBJECT_TYPE_IDS.items()}, **{v: k for k, v in _SINGULAR.items()}}

# HUBSPOT_DEFINED association type ids: (from, to) and the id of the reverse direction. 279
# (contact to company) is in the associations overview, 202 (note to contact) in the notes guide, 3/4
# (deal<->contact) in common use; the rest follow the v4 associations guide's table.
# https://developers.hubspot.com/docs/api-reference/latest/crm/associations/overview
ASSOCIATION_TYPES: dict[int, tuple[str, str, int]] = {
    279: ("contacts", "companies", 280),
    280: ("companies", "contacts", 279),
    1: ("contacts", "companies", 2),  # primary company
    2: ("companies", "contacts", 1),
    3: ("deals", "contacts", 4),
    4: ("contacts", "deals", 3),
    341: ("deals", "companies", 342),
    342: ("companies", "deals", 341),
    5: ("deals", "companies", 6),  # primary company
    6: ("companies", "deals", 5),
    202: ("notes", "contacts", 201),
    201: ("contacts", "notes", 202),
    190: ("notes", "companies", 189),
    189: ("companies", "notes", 190),
    214: ("notes", "deals", 213),
    213: ("deals", "notes", 214),
    204: ("tasks", "contacts", 203),
    203: ("contacts", "tasks", 204),
    192: ("tasks", "companies", 191),
    191: ("companies", "tasks", 192),
    216: ("tasks", "deals", 215),
    215: ("deals", "tasks", 216),
}
_PRIMARY = {1, 2, 5, 6}
DEFAULT_ASSOCIATION = {
    (f, t): type_id for type_id, (f, t, _) in ASSOCIATION_TYPES.items() if type_id not in _PRIMARY
}

SEARCH_LIMIT = 200  # results per search page (the search guide's maximum)
BATCH_LIMIT = 100  # "Object API batch endpoints are limited to 100 inputs per request."
# Associations v4 batch create takes up to 2,000 pairs (docs.workato.com/en/connectors/hubspot/
# actions/associate-records-batch.html, on HubSpot's endpoint; batch read is capped at 1,000:
# developers.hubspot.com/changelog/bug-fix-batch-read-limit-for-hubspot-associations-api).
ASSOCIATION_BATCH_LIMIT = 2_000
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PROPERTY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class HubSpotError(Exception):
    """An answer HubSpot gives as an error: its status and the JSON body (less ``correlationId``)."""

    def __init__(self, status: int, category: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: JSON = {"status": "error", "message": message, "category": category, **extra}


@dataclass(frozen=True)
class Problem:
    """One property value HubSpot would refuse (``code`` as in its ``error`` field)."""

    name: str
    code: str
    message: str


def property_message(problems: Sequence[Problem], portal_id: int) -> str:
    """HubSpot's ``Property values were not valid: [...]`` text, the list embedded as JSON."""
    items = [
        {
            "isValid": False,
            "message": p.message,
            "error": p.code,
            "name": p.name,
            "localizedErrorMessage": p.message,
            "portalId": portal_id,
        }
        for p in problems
    ]
    return "Property values were not valid: " + json.dumps(items, separators=(",", ":"))


def validation_error(problems: Sequence[Problem], portal_id: int) -> HubSpotError:
    """The 400 for invalid property values, shaped as the objects guide's example.
    https://developers.hubspot.com/docs/api-reference/latest/crm/understanding-the-crm"""
    errors = [{"message": p.message, "code": p.code, "context": {"propertyName": [p.name]}} for p in problems]
    return HubSpotError(400, "VALIDATION_ERROR", property_message(problems, portal_id), errors=errors)


def batch_limit_error(count: int, limit: int = BATCH_LIMIT) -> HubSpotError:
    """The 400 for a batch over its limit of inputs (the wording is the sandbox's own)."""
    message = f"Batch input size {count} exceeds the limit of {limit} inputs per request"
    return HubSpotError(400, "VALIDATION_ERROR", message)


def utc_iso(moment: datetime) -> str:
    """HubSpot's timestamp form: UTC, milliseconds, ``Z``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def object_type(name: str) -> str:
    """``contacts``, ``contact`` or ``0-1`` to ``contacts``; HubSpot's 400 for anything else."""
    key = name.lower()
    key = _ALIASES.get(key, key)
    if key not in OBJECT_TYPES:
        raise HubSpotError(400, "VALIDATION_ERROR", f"Unable to infer object type from: {name}")
    return key


def _prop(
    name: str,
    label: str,
    group: str,
    kind: str = "string",
    field_type: str = "text",
    *,
    options: Sequence[str] = (),
    read_only: bool = False,
    unique: bool = False,
    hubspot_defined: bool = True,
    description: str = "",
    external_options: bool = False,
) -> JSON:
    """A property definition in the properties API's shape."""
    return {
        "name": name,
        "label": label,
        "type": kind,
        "fieldType": field_type,
        "description": description,
        "groupName": group,
        "options": [
            {"label": o, "value": o, "displayOrder": i, "hidden": False} for i, o in enumerate(options)
        ],
        "displayOrder": -1,
        "calculated": False,
        "externalOptions": external_options,
        "hasUniqueValue": unique,
        "hidden": False,
        "hubspotDefined": hubspot_defined,
        "modificationMetadata": {
            "archivable": not hubspot_defined,
            "readOnlyDefinition": hubspot_defined,
            "readOnlyValue": read_only,
        },
        "formField": False,
        "archived": False,
    }


_GROUPS = {t: f"{_SINGULAR[t]}information" for t in OBJECT_TYPES}
_SYSTEM = {  # read-only properties HubSpot keeps itself: (created, last modified)
    "contacts": ("createdate", "lastmodifieddate"),
    "companies": ("createdate", "hs_lastmodifieddate"),
    "deals": ("createdate", "hs_lastmodifieddate"),
    "notes": ("hs_createdate", "hs_lastmodifieddate"),
    "tasks": ("hs_createdate", "hs_lastmodifieddate"),
}
# Writable default properties, as name[:type:fieldType] (string:text when left out).
_WRITABLE = {
    "contacts": "email firstname lastname company jobtitle lifecyclestage:enumeration:radio "
    "hubspot_owner_id:enumeration:select phone:string:phonenumber",
    "companies": "name domain industry:enumeration:select numberofemployees:number:number",
    "deals": "dealname dealstage:enumeration:radio amount:number:number closedate:datetime:date "
    "pipeline:enumeration:select",
    "notes": "hs_timestamp:datetime:date hs_note_body:string:html",
    "tasks": "hs_timestamp:datetime:date hs_task_subject hs_task_body:string:html "
    "hs_task_status:enumeration:select",
}
_OPTIONS = {  # enumerations the sandbox checks values against (space-separated)
    "lifecyclestage": "subscriber lead marketingqualifiedlead salesqualifiedlead opportunity customer "
    "evangelist other",
    "hs_task_status": "NOT_STARTED IN_PROGRESS WAITING COMPLETED DEFERRED",
}
_EXTERNAL = {"dealstage", "pipeline", "hubspot_owner_id"}  # options live elsewhere (pipelines, owners)
# Properties a read returns when the caller names none (HubSpot's defaults are about these).
_DEFAULT_READ = {
    "contacts": "createdate email firstname hs_object_id lastmodifieddate lastname",
    "companies": "createdate domain hs_lastmodifieddate hs_object_id name",
    "deals": "amount closedate createdate dealname dealstage hs_lastmodifieddate hs_object_id pipeline",
    "notes": "hs_createdate hs_lastmodifieddate hs_object_id",
    "tasks": "hs_createdate hs_lastmodifieddate hs_object_id",
}
_REQUIRED = {"notes": ("hs_timestamp",), "tasks": ("hs_timestamp",)}


def _default_properties(kind: str) -> dict[str, JSON]:
    group = _GROUPS[kind]
    out = {"hs_object_id": _prop("hs_object_id", "Record ID", group, "number", "number", read_only=True)}
    for name in _SYSTEM[kind]:
        out[name] = _prop(name, name, group, "datetime", "date", read_only=True)
    for spec in _WRITABLE[kind].split():
        name, _, types = spec.partition(":")
        type_, _, field_type = (types or "string:text").partition(":")
        options = _OPTIONS.get(name, "").split()
        out[name] = _prop(
            name, name, group, type_, field_type, options=options, external_options=name in _EXTERNAL
        )
    return out


def _text(value: Any) -> str:
    """Property values as HubSpot stores and returns them: strings."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class Record:
    id: str
    properties: dict[str, str]
    created_at: datetime
    updated_at: datetime
    archived: bool = False


@dataclass
class ManualList:
    list_id: str
    name: str
    object_type: str
    processing_type: str
    created_at: datetime
    updated_at: datetime
    members: dict[str, datetime] = field(default_factory=dict)


class HubSpotStore:
    """A HubSpot account in memory. Every public method takes the lock, so the HTTP server's
    threads and a test seeding data can use it at once."""

    def __init__(self, *, portal_id: int = 24_000_001, clock: Callable[[], datetime] | None = None) -> None:
        self.portal_id = portal_id
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self._next_id = 1001
        self._records: dict[str, dict[str, Record]] = {t: {} for t in OBJECT_TYPES}
        self._properties: dict[str, dict[str, JSON]] = {t: _default_properties(t) for t in OBJECT_TYPES}
        self._groups: dict[str, dict[str, JSON]] = {
            t: {g: {"name": g, "label": g, "displayOrder": -1, "archived": False}} for t, g in _GROUPS.items()
        }
        self._links: dict[tuple[str, str], dict[tuple[str, str], set[int]]] = {}
        self._lists: dict[str, ManualList] = {}
        self._emails: dict[str, str] = {}  # contacts by lowercased email: upserts stay O(1) at scale
        self.blocklist: set[str] = set()  # emails a GDPR delete found no contact for

    # -- records -------------------------------------------------------------------------------

    def _new_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def problems(self, kind: str, properties: Mapping[str, Any], *, creating: bool) -> list[Problem]:
        """What HubSpot would refuse in these values (empty when all is well)."""
        with self._lock:
            defs = self._properties[kind]
            out = []
            for name, raw in properties.items():
                value = _text(raw)
                spec = defs.get(name)
                if spec is None:
                    out.append(Problem(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'))
                elif spec["modificationMetadata"]["readOnlyValue"]:
                    out.append(Problem(name, "READ_ONLY_VALUE", f'Property "{name}" is a read only property'))
                elif name == "email" and kind == "contacts" and value and not _EMAIL.match(value):
                    out.append(Problem(name, "INVALID_EMAIL", f"Email address {value} is invalid"))
                elif spec["options"] and not spec["externalOptions"] and value:
                    allowed = [o["value"] for o in spec["options"]]
                    bad = [v for v in value.split(";") if v not in allowed]
                    if bad:
                        message = f"{bad[0]} was not one of the allowed options: [{', '.join(allowed)}]"
                        out.append(Problem(name, "INVALID_OPTION", message))
            if creating:
                for name in _REQUIRED.get(kind, ()):
                    if not _text(properties.get(name)):
                        out.append(Problem(name, "REQUIRED_PROPERTY", f'Property "{name}" is required'))
            return out

    def _find(self, kind: str, prop: str, value: str) -> Record | None:
        if prop == "hs_object_id":
            return self._records[kind].get(value)
        wanted = value.strip().lower()
        if not wanted:
            return None
        if kind == "contacts" and prop == "email":
            hit = self._records[kind].get(self._emails.get(wanted, ""))
            if (
                hit is not None
                and not hit.archived
                and hit.properties.get("email", "").strip().lower() == wanted
            ):
                return hit
            return None
        for record in self._records[kind].values():
            if not record.archived and record.properties.get(prop, "").strip().lower() == wanted:
                return record
        return None

    def _conflict(self, kind: str, properties: Mapping[str, str], own_id: str | None) -> HubSpotError | None:
        """HubSpot's 409 when a write would give two contacts one email (case-insensitively)."""
        email = properties.get("email", "") if kind == "contacts" else ""
        other = self._find(kind, "email", email) if email else None
        if other is not None and other.id != own_id:
            return HubSpotError(409, "CONFLICT", f"Contact already exists. Existing ID: {other.id}")
        return None

    def _insert(self, kind: str, properties: Mapping[str, Any]) -> Record:
        now = self._clock()
        record = Record(self._new_id(), {}, now, now)
        record.properties = {k: _text(v) for k, v in properties.items()}
        created, modified = _SYSTEM[kind]
        record.properties.update({"hs_object_id": record.id, created: utc_iso(now), modified: utc_iso(now)})
        self._records[kind][record.id] = record
        self._index(kind, record)
        return record

    def _index(self, kind: str, record: Record) -> None:
        email = record.properties.get("email", "").strip().lower() if kind == "contacts" else ""
        if email:
            self._emails[email] = record.id

    def _write(self, kind: str, record: Record, properties: Mapping[str, Any]) -> None:
        record.updated_at = self._clock()
        record.properties.update({k: _text(v) for k, v in properties.items()})
        record.properties[_SYSTEM[kind][1]] = utc_iso(record.updated_at)
        self._index(kind, record)

    def create(
        self,
        kind: str,
        properties: Mapping[str, Any],
        associations: Iterable[tuple[str, str] | tuple[str, str, int]] = (),
    ) -> JSON:
        """Create one record (HubSpot's 400/409 on bad values or a taken email) and associate it
        with ``(object type, id)`` or ``(object type, id, type id)`` pairs. Returns it as a read would."""
        kind = object_type(kind)
        with self._lock:
            problems = self.problems(kind, properties, creating=True)
            if problems:
                raise validation_error(problems, self.portal_id)
            conflict = self._conflict(kind, {k: _text(v) for k, v in properties.items()}, None)
            if conflict:
                raise conflict
            links = [self._link_target(kind, link) for link in associations]
            record = self._insert(kind, properties)
            for to_kind, to_id, type_id in links:
                self._associate(kind, record.id, to_kind, to_id, type_id)
            return self.render(kind, record, [*_DEFAULT_READ[kind].split(), *properties])

    def update(self, kind: str, record_id: str, properties: Mapping[str, Any]) -> JSON:
        kind = object_type(kind)
        with self._lock:
            record = self._records[kind].get(record_id)
            if record is None or record.archived:
                raise HubSpotError(404, "OBJECT_NOT_FOUND", "resource not found")
            problems = self.problems(kind, properties, creating=False)
            if problems:
                raise validation_error(problems, self.portal_id)
            conflict = self._conflict(kind, {k: _text(v) for k, v in properties.items()}, record.id)
            if conflict:
                raise conflict
            self._write(kind, record, properties)
            return self.render(kind, record, [*_DEFAULT_READ[kind].split(), *properties])

    def purge(self, kind: str, object_id: str, *, id_property: str | None = None) -> bool:
        """A GDPR delete (``POST /crm/v3/objects/contacts/gdpr-delete``): the record goes for good,
        with its associations and list memberships. By ``idProperty`` email, an unknown address is
        blocklisted instead (HubSpot's reference); by id, an unknown one is HubSpot's 404. Returns
        whether a record was deleted."""
        kind = object_type(kind)
        with self._lock:
            record = self._find(kind, id_property or "hs_object_id", object_id)
            if record is None or record.archived:
                if id_property == "email":
                    self.blocklist.add(object_id.strip().lower())
                    return False
                raise HubSpotError(404, "OBJECT_NOT_FOUND", "resource not found")
            del self._records[kind][record.id]
            email = record.properties.get("email", "").strip().lower()
            if self._emails.get(email) == record.id:
                del self._emails[email]
            for target in self._links.pop((kind, record.id), {}):
                self._links.get(target, {}).pop((kind, record.id), None)
            for found in self._lists.values():
                found.members.pop(record.id, None)
            return True

    def get(self, kind: str, record_id: str, *, id_property: str | None = None) -> JSON | None:
        """One record as a read without ``properties=`` returns it (every stored value), or None."""
        kind = object_type(kind)
        with self._lock:
            record = self._find(kind, id_property or "hs_object_id", record_id)
            return None if record is None else self.render(kind, record, list(record.properties))

    def find(self, kind: str, prop: str, value: str) -> JSON | None:
        """The record whose ``prop`` equals ``value`` case-insensitively (e.g. a company by domain)."""
        return self.get(kind, value, id_property=prop)

    def all(self, kind: str) -> list[JSON]:
        kind = object_type(kind)
        with self._lock:
            return [self.render(kind, r, list(r.properties)) for r in self._ordered(kind)]

    def _ordered(self, kind: str) -> list[Record]:
        return sorted((r for r in self._records[kind].values() if not r.archived), key=lambda r: int(r.id))

    def render(
        self, kind: str, record: Record, names: Iterable[str] | None = None, associations: Sequence[str] = ()
    ) -> JSON:
        """A record in the objects API's shape: HubSpot's default properties when ``names`` is None,
        else the named ones (None when unset, unknown names left out) and the record's id and dates;
        ``associations`` for the requested types that have any."""
        with self._lock:
            created, modified = _SYSTEM[kind]
            base = _DEFAULT_READ[kind].split() if names is None else ["hs_object_id", created, modified]
            wanted = dict.fromkeys([*base, *(names or ())])
            props = {n: record.properties.get(n) for n in wanted if n in self._properties[kind]}
            out: JSON = {
                "id": record.id,
                "properties": props,
                "createdAt": utc_iso(record.created_at),
                "updatedAt": utc_iso(record.updated_at),
                "archived": record.archived,
            }
            linked: JSON = {}
            for to_kind in dict.fromkeys(object_type(a) for a in associations):
                pairs = self._linked(kind, record.id, to_kind)
                if pairs:
                    label = f"{_SINGULAR[kind]}_to_{_SINGULAR[to_kind]}"
                    linked[to_kind] = {"results": [{"id": to_id, "type": label} for to_id, _ in pairs]}
            if linked:
                out["associations"] = linked
            return out

    def page(
        self,
        kind: str,
        *,
        limit: int,
        after: str | None,
        names: Sequence[str] | None,
        associations: Sequence[str],
    ) -> tuple[list[JSON], str | None]:
        """One page of a list call, oldest first; the cursor is the next record's id."""
        kind = object_type(kind)
        with self._lock:
            start = int(after) if after and after.isdigit() else 0
            rows = [r for r in self._ordered(kind) if int(r.id) >= start]
            batch, rest = rows[:limit], rows[limit:]
            rendered = [self.render(kind, r, names or None, associations) for r in batch]
            return rendered, (rest[0].id if rest else None)

    def read_batch(
        self, kind: str, ids: Sequence[str], *, id_property: str | None, names: Sequence[str]
    ) -> tuple[list[JSON], list[str]]:
        """The records found for ``ids`` and the ids that found none."""
        kind = object_type(kind)
        with self._lock:
            found, missing = [], []
            for wanted in ids:
                record = self._find(kind, id_property or "hs_object_id", wanted)
                if record is None:
                    missing.append(wanted)
                else:
                    found.append(self.render(kind, record, names or None))
            return found, missing

    def upsert(
        self, kind: str, value: str, id_property: str, properties: Mapping[str, Any]
    ) -> tuple[JSON, bool]:
        """Create or update the record whose ``id_property`` is ``value``; (record, created).
        Raises HubSpotError for values HubSpot would refuse, leaving the store unchanged."""
        kind = object_type(kind)
        with self._lock:
            record = self._find(kind, id_property, value)
            if record is None and id_property == "hs_object_id":
                raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Could not find {kind} with id {value}")
            merged = dict(properties)
            if record is None:
                merged.setdefault(id_property, value)
            problems = self.problems(kind, merged, creating=record is None)
            if problems:
                raise validation_error(problems, self.portal_id)
            own = record.id if record else None
            conflict = self._conflict(kind, {k: _text(v) for k, v in merged.items()}, own)
            if conflict:
                raise conflict
            names = [*_DEFAULT_READ[kind].split(), *merged]
            if record is None:
                return self.render(kind, self._insert(kind, merged), names), True
            self._write(kind, record, merged)
            return self.render(kind, record, names), False

    def read(
        self,
        kind: str,
        value: str,
        *,
        id_property: str | None = None,
        names: Sequence[str] = (),
        associations: Sequence[str] = (),
    ) -> JSON | None:
        """A single-record read: by id or ``id_property``; None when nothing matches."""
        kind = object_type(kind)
        with self._lock:
            record = self._find(kind, id_property or "hs_object_id", value)
            return None if record is None else self.render(kind, record, names or None, associations)

    def _batch(
        self,
        inputs: Sequence[Mapping[str, Any]],
        check: Callable[[Mapping[str, Any]], list[Problem]],
        write: Callable[[Mapping[str, Any]], JSON],
    ) -> tuple[list[JSON], list[JSON]]:
        """HubSpot's batch rules: every input is checked before anything is written; an input that
        carries ``objectWriteTraceId`` fails alone (named in its error's ``context``, answered 207),
        one without it fails the whole request. (results, errors)
        https://developers.hubspot.com/docs/api-reference/error-handling (multi-status errors)"""
        if len(inputs) > BATCH_LIMIT:
            raise batch_limit_error(len(inputs))
        with self._lock:
            checked = [(item, check(item)) for item in inputs]
            for item, problems in checked:
                if problems and not item.get("objectWriteTraceId"):
                    raise validation_error(problems, self.portal_id)
            results, errors = [], []
            for item, problems in checked:
                trace = item.get("objectWriteTraceId")
                context = {"objectWriteTraceId": [str(trace)]}
                if problems:
                    message = property_message(problems, self.portal_id)
                    errors.append(
                        {
                            "status": "error",
                            "category": "VALIDATION_ERROR",
                            "message": message,
                            "context": context,
                        }
                    )
                    continue
                try:
                    result = write(item)
                except HubSpotError as exc:
                    if not trace:
                        raise
                    errors.append(
                        {
                            "status": "error",
                            "category": exc.body["category"],
                            "message": exc.body["message"],
                            "context": context,
                        }
                    )
                    continue
                if trace:
                    result["objectWriteTraceId"] = str(trace)
                results.append(result)
            return results, errors

    def upsert_batch(self, kind: str, inputs: Sequence[Mapping[str, Any]]) -> tuple[list[JSON], list[JSON]]:
        """``batch/upsert``: inputs of ``{id, idProperty, properties, objectWriteTraceId}``; each
        result carries ``new``. (results, errors) as :meth:`_batch` says."""
        kind = object_type(kind)
        unique = self.unique_properties(kind)

        def key(item: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
            id_property = str(item.get("idProperty") or "hs_object_id")
            if id_property not in unique:
                raise HubSpotError(
                    400, "VALIDATION_ERROR", f"{id_property} is not a unique property of {kind}"
                )
            if not item.get("id"):
                raise HubSpotError(400, "VALIDATION_ERROR", "Every upsert input needs an id")
            return str(item["id"]), id_property, dict(item.get("properties") or {})

        def check(item: Mapping[str, Any]) -> list[Problem]:
            value, id_property, props = key(item)
            creating = self._find(kind, id_property, value) is None
            merged = {id_property: value, **props} if creating and id_property != "hs_object_id" else props
            return self.problems(kind, merged, creating=creating)

        def write(item: Mapping[str, Any]) -> JSON:
            record, created = self.upsert(kind, *key(item))
            return {**record, "new": created}

        return self._batch(inputs, check, write)

    def create_batch(self, kind: str, inputs: Sequence[Mapping[str, Any]]) -> tuple[list[JSON], list[JSON]]:
        """``batch/create``: inputs of ``{properties, associations, objectWriteTraceId}``."""
        kind = object_type(kind)

        def check(item: Mapping[str, Any]) -> list[Problem]:
            return self.problems(kind, item.get("properties") or {}, creating=True)

        return self._batch(
            inputs,
            check,
            lambda item: self.create(kind, item.get("properties") or {}, self.links(kind, item)),
        )

    def update_batch(self, kind: str, inputs: Sequence[Mapping[str, Any]]) -> tuple[list[JSON], list[JSON]]:
        """``batch/update``: inputs of ``{id, properties, objectWriteTraceId}`` by record id."""
        kind = object_type(kind)

        def check(item: Mapping[str, Any]) -> list[Problem]:
            return self.problems(kind, item.get("properties") or {}, creating=False)

        return self._batch(
            inputs,
            check,
            lambda item: self.update(kind, str(item.get("id", "")), item.get("properties") or {}),
        )

    def search(self, kind: str, body: Mapping[str, Any]) -> JSON:
        """``POST /crm/v3/objects/{type}/search``: ``filterGroups`` OR-ed, their ``filters`` AND-ed;
        operators EQ, NEQ, IN (``values``), HAS_PROPERTY and NOT_HAS_PROPERTY, compared without case;
        ``limit`` at most 200, ``after`` an offset.
        https://developers.hubspot.com/docs/api-reference/legacy/crm/search-the-crm.md"""
        kind = object_type(kind)
        groups = body.get("filterGroups") or []
        limit = min(int(body.get("limit") or 10), SEARCH_LIMIT)
        start = int(body.get("after") or 0)
        names = list(body.get("properties") or []) or _DEFAULT_READ[kind].split()

        def value_of(record: Record, name: str) -> str:
            return record.properties.get(name, "").strip().lower()

        def passes(record: Record, f: Mapping[str, Any]) -> bool:
            name, op = str(f.get("propertyName", "")), str(f.get("operator", "EQ"))
            have = value_of(record, name)
            if op == "EQ":
                return have == str(f.get("value", "")).strip().lower()
            if op == "NEQ":
                return have != str(f.get("value", "")).strip().lower()
            if op == "IN":
                return have in {str(v).strip().lower() for v in f.get("values") or []}
            if op == "HAS_PROPERTY":
                return bool(have)
            if op == "NOT_HAS_PROPERTY":
                return not have
            raise HubSpotError(400, "VALIDATION_ERROR", f"the sandbox does not support operator {op}")

        with self._lock:
            found = [
                r
                for r in self._ordered(kind)
                if not groups or any(all(passes(r, f) for f in g.get("filters") or []) for g in groups)
            ]
            page = found[start : start + limit]
            out: JSON = {"total": len(found), "results": [self.render(kind, r, names) for r in page]}
            if start + limit < len(found):
                out["paging"] = {"next": {"after": str(start + limit)}}
            return out

    def unique_properties(self, kind: str) -> set[str]:
        """Names an upsert may use as ``idProperty``: the record id, contacts' email and any
        property defined with ``hasUniqueValue``."""
        kind = object_type(kind)
        with self._lock:
            unique = {n for n, p in self._properties[kind].items() if p["hasUniqueValue"]}
            return unique | {"hs_object_id"} | ({"email"} if kind == "contacts" else set())

    # -- associations --------------------------------------------------------------------------

    def _link_target(self, kind: str, link: tuple[str, str] | tuple[str, str, int]) -> tuple[str, str, int]:
        to_kind, to_id = object_type(link[0]), str(link[1])
        type_id = link[2] if len(link) == 3 else None
        return to_kind, to_id, self._check_link(kind, to_kind, to_id, type_id)

    def _check_link(self, kind: str, to_kind: str, to_id: str, type_id: int | None) -> int:
        """The association type to use (the pair's default when None); HubSpot's 400 when it does
        not join these object types or the target does not exist."""
        chosen = DEFAULT_ASSOCIATION.get((kind, to_kind)) if type_id is None else type_id
        spec = ASSOCIATION_TYPES.get(chosen) if chosen is not None else None
        if chosen is None or spec is None or spec[:2] != (kind, to_kind):
            message = f"{type_id} is not a valid association type between {kind} and {to_kind}"
            raise HubSpotError(400, "VALIDATION_ERROR", message)
        if to_id not in self._records[to_kind]:
            raise HubSpotError(400, "VALIDATION_ERROR", f"No {to_kind} with id {to_id}")
        return chosen

    def links(self, kind: str, item: Mapping[str, Any]) -> list[tuple[str, str, int]]:
        """The ``associations`` of a create input (``[{to: {id}, types: [{associationTypeId}]}]``)
        as ``(object type, id, type id)``: the type id alone says which object type ``to`` is."""
        return [
            (
                self.target_of(kind, int(t["associationTypeId"])),
                str(a["to"]["id"]),
                int(t["associationTypeId"]),
            )
            for a in item.get("associations") or []
            for t in a.get("types") or []
        ]

    def target_of(self, kind: str, type_id: int) -> str:
        """The object type an association type id from ``kind`` points at (HubSpot's create-with-
        associations names only the type id and the target id)."""
        spec = ASSOCIATION_TYPES.get(type_id)
        if spec is None or spec[0] != kind:
            raise HubSpotError(
                400, "VALIDATION_ERROR", f"{type_id} is not a valid association type from {kind}"
            )
        return spec[1]

    def _associate(self, kind: str, record_id: str, to_kind: str, to_id: str, type_id: int) -> None:
        self._links.setdefault((kind, record_id), {}).setdefault((to_kind, to_id), set()).add(type_id)
        reverse = ASSOCIATION_TYPES[type_id][2]
        self._links.setdefault((to_kind, to_id), {}).setdefault((kind, record_id), set()).add(reverse)

    def associate(
        self, kind: str, record_id: str, to_kind: str, to_id: str, type_id: int | None = None
    ) -> int:
        """Associate two existing records (both directions); the type id used."""
        kind, to_kind = object_type(kind), object_type(to_kind)
        with self._lock:
            if record_id not in self._records[kind]:
                raise HubSpotError(400, "VALIDATION_ERROR", f"No {kind} with id {record_id}")
            chosen = self._check_link(kind, to_kind, to_id, type_id)
            self._associate(kind, record_id, to_kind, to_id, chosen)
            return chosen

    def _linked(self, kind: str, record_id: str, to_kind: str) -> list[tuple[str, list[int]]]:
        targets = self._links.get((kind, record_id), {})
        return sorted(
            ((tid, sorted(types)) for (tk, tid), types in targets.items() if tk == to_kind),
            key=lambda p: int(p[0]),
        )

    def associations(self, kind: str, record_id: str, to_kind: str) -> list[tuple[str, list[int]]]:
        """``(target id, type ids)`` of a record's associations to one object type."""
        kind, to_kind = object_type(kind), object_type(to_kind)
        with self._lock:
            return self._linked(kind, record_id, to_kind)

    # -- properties and groups -----------------------------------------------------------------

    def properties(self, kind: str) -> list[JSON]:
        kind = object_type(kind)
        with self._lock:
            return [dict(p) for p in self._properties[kind].values()]

    def property(self, kind: str, name: str) -> JSON | None:
        kind = object_type(kind)
        with self._lock:
            found = self._properties[kind].get(name)
            return dict(found) if found else None

    def groups(self, kind: str) -> list[JSON]:
        kind = object_type(kind)
        with self._lock:
            return [dict(g) for g in self._groups[kind].values()]

    def create_group(self, kind: str, body: Mapping[str, Any]) -> JSON:
        kind = object_type(kind)
        name, label = body.get("name"), body.get("label")
        if not isinstance(name, str) or not name or not isinstance(label, str) or not label:
            raise HubSpotError(400, "VALIDATION_ERROR", "A property group needs a name and a label")
        with self._lock:
            if name in self._groups[kind]:
                raise HubSpotError(
                    409, "OBJECT_ALREADY_EXISTS", f"A property group named '{name}' already exists."
                )
            group = {
                "name": name,
                "label": label,
                "displayOrder": int(body.get("displayOrder", -1)),
                "archived": False,
            }
            self._groups[kind][name] = group
            return dict(group)

    def create_property(self, kind: str, body: Mapping[str, Any]) -> JSON:
        kind = object_type(kind)
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
        if missing:
            raise HubSpotError(400, "VALIDATION_ERROR", f"Missing required fields: {', '.join(missing)}")
        name = str(body["name"])
        if not _PROPERTY_NAME.match(name):
            raise HubSpotError(400, "VALIDATION_ERROR", f"Property name '{name}' is not valid")
        with self._lock:
            if name in self._properties[kind]:
                raise HubSpotError(409, "OBJECT_ALREADY_EXISTS", f"A property named '{name}' already exists.")
            if body["groupName"] not in self._groups[kind]:
                raise HubSpotError(
                    400, "VALIDATION_ERROR", f"Property group {body['groupName']} does not exist"
                )
            prop = _prop(
                name,
                str(body["label"]),
                str(body["groupName"]),
                str(body["type"]),
                str(body["fieldType"]),
                options=[str(o.get("value")) for o in body.get("options") or []],
                unique=bool(body.get("hasUniqueValue")),
                hubspot_defined=False,
                description=str(body.get("description") or ""),
            )
            now = utc_iso(self._clock())
            prop.update({"createdAt": now, "updatedAt": now})
            self._properties[kind][name] = prop
            return dict(prop)

    # -- lists ---------------------------------------------------------------------------------

    def create_list(self, name: str, object_type_id: str, processing_type: str) -> JSON:
        """A MANUAL or SNAPSHOT list (DYNAMIC lists need filters, which the sandbox does not run)."""
        kind = object_type(object_type_id)
        if processing_type not in ("MANUAL", "SNAPSHOT"):
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"The sandbox keeps MANUAL and SNAPSHOT lists only, not {processing_type}",
            )
        if not name:
            raise HubSpotError(400, "VALIDATION_ERROR", "A list needs a name")
        with self._lock:
            now = self._clock()
            made = ManualList(self._new_id(), name, kind, processing_type, now, now)
            self._lists[made.list_id] = made
            return self._render_list(made)

    def _render_list(self, found: ManualList) -> JSON:
        return {
            "listId": found.list_id,
            "listVersion": 1,
            "name": found.name,
            "objectTypeId": OBJECT_TYPE_IDS[found.object_type],
            "processingType": found.processing_type,
            "processingStatus": "COMPLETE",
            "size": len(found.members),
            "createdAt": utc_iso(found.created_at),
            "updatedAt": utc_iso(found.updated_at),
            "filtersUpdatedAt": utc_iso(found.created_at),
        }

    def get_list(self, list_id: str) -> JSON:
        with self._lock:
            return self._render_list(self._list(list_id))

    def list_by_name(self, name: str, object_type_id: str) -> JSON:
        """``GET /crm/v3/lists/object-type-id/{objectTypeId}/name/{listName}`` (404 when none)."""
        kind = object_type(object_type_id)
        with self._lock:
            for found in self._lists.values():
                if found.name.lower() == name.lower() and found.object_type == kind:
                    return self._render_list(found)
        raise HubSpotError(404, "OBJECT_NOT_FOUND", f"List {name} does not exist")

    def _list(self, list_id: str) -> ManualList:
        found = self._lists.get(list_id)
        if found is None:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", f"List {list_id} does not exist")
        return found

    def add_members(self, list_id: str, record_ids: Iterable[Any]) -> JSON:
        """Records that do not exist, or are members already, are left out of ``recordsIdsAdded``."""
        with self._lock:
            found = self._list(list_id)
            added, missing = [], []
            for raw in record_ids:
                rid = str(raw)
                if rid not in self._records[found.object_type]:
                    missing.append(rid)
                elif rid not in found.members:
                    found.members[rid] = self._clock()
                    added.append(rid)
            found.updated_at = self._clock()
            return {"recordIdsMissing": missing, "recordIdsRemoved": [], "recordsIdsAdded": added}

    def members(self, list_id: str) -> list[JSON]:
        with self._lock:
            found = self._list(list_id)
            return [
                {"recordId": rid, "membershipTimestamp": utc_iso(at)} for rid, at in found.members.items()
            ]

    # -- snapshots -----------------------------------------------------------------------------

    def snapshot(self) -> JSON:
        """Everything, as JSON-ready data (for a demo that keeps its sandbox in a file)."""
        with self._lock:
            return {
                "portalId": self.portal_id,
                "nextId": self._next_id,
                "records": {
                    k: [
                        [r.id, r.properties, utc_iso(r.created_at), utc_iso(r.updated_at), r.archived]
                        for r in rows.values()
                    ]
                    for k, rows in self._records.items()
                },
                "properties": self._properties,
                "groups": self._groups,
                "links": [
                    [a, b, c, d, sorted(t)]
                    for (a, b), targets in self._links.items()
                    for (c, d), t in targets.items()
                ],
                "lists": [
                    [
                        m.list_id,
                        m.name,
                        m.object_type,
                        m.processing_type,
                        utc_iso(m.created_at),
                        utc_iso(m.updated_at),
                        {k: utc_iso(v) for k, v in m.members.items()},
                    ]
                    for m in self._lists.values()
                ],
            }

    def restore(self, data: Mapping[str, Any]) -> None:
        def when(text: str) -> datetime:
            return datetime.fromisoformat(text.replace("Z", "+00:00"))

        with self._lock:
            self.portal_id = int(data["portalId"])
            self._next_id = int(data["nextId"])
            self._records = {t: {} for t in OBJECT_TYPES}
            for kind, rows in data["records"].items():
                for rid, props, created, updated, archived in rows:
                    self._records[kind][rid] = Record(
                        rid, dict(props), when(created), when(updated), archived
                    )
            self._emails = {}
            for record in self._records["contacts"].values():
                self._index("contacts", record)
            self._properties = {k: dict(v) for k, v in data["properties"].items()}
            self._groups = {k: dict(v) for k, v in data["groups"].items()}
            self._links = {}
            for a, b, c, d, types in data["links"]:
                self._links.setdefault((a, b), {})[(c, d)] = set(types)
            self._lists = {}
            for lid, name, kind, processing, created, updated, members in data["lists"]:
                made = ManualList(lid, name, kind, processing, when(created), when(updated))
                made.members = {k: when(v) for k, v in members.items()}
                self._lists[lid] = made

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.snapshot(), indent=1, sort_keys=True), encoding="utf-8")

    def load(self, path: Path) -> None:
        self.restore(json.loads(path.read_text(encoding="utf-8")))
