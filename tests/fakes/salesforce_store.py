"""State and rules of the Salesforce fake (tests/fakes/salesforce.py serves them over HTTPS).

It holds what an org holds for Flywheel's sync: the sObjects it writes (Contact, Lead, Account,
Opportunity, Task, Campaign, CampaignMember) with their standard fields and the custom fields a test
adds, the rules that refuse a write (unknown, read-only or missing required fields, a converted
Lead, a duplicate rule, a duplicate CampaignMember), a small SOQL subset with query-locator paging,
Bulk API 2.0 ingest jobs, and the credentials of the three login flows with the sessions they issue.

Every rule raises :class:`SalesforceError` with Salesforce's status, ``errorCode`` and message, so
the HTTP side only has to render it. Codes and wording taken from Salesforce's documentation or from
real answers quoted in public issues are cited where they are used. Not verified, the fake's own
reading: the 400 status of EXCEEDED_ID_LIMIT on a collection (the docs say only that a malformed
collection request is a 400), 200 rather than 204 for an upsert that updates (the docs show the 201
and say ``created`` exists from API 46.0), and the wording of MALFORMED_ID, MISSING_ARGUMENT,
DUPLICATE_EXTERNAL_ID, INVALID_CROSS_REFERENCE_KEY, ALL_OR_NONE_OPERATION_ROLLED_BACK, the Bulk
job-state errors and the ``sf__Error`` cell.
"""

from __future__ import annotations

import base64
import copy
import csv
import hashlib
import hmac
import io
import itertools
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

try:  # PyJWT comes with simple-salesforce; RS256 verification also needs cryptography
    import jwt as pyjwt
    from jwt.algorithms import has_crypto as _HAS_CRYPTO
except ImportError:  # pragma: no cover - the fake then only decodes assertions
    pyjwt = None  # type: ignore[assignment]
    _HAS_CRYPTO = False

Record = dict[str, Any]

API_VERSION = "59.0"  # simple-salesforce 1.12's DEFAULT_API_VERSION
COLLECTION_LIMIT = 200
QUERY_BATCH_MIN, QUERY_BATCH_MAX = 200, 2000
SESSION_SECONDS = 7200  # the default session timeout (two hours)

# Key prefixes: https://help.salesforce.com/s/articleView?id=000385203 (the reference table), with 00T,
# 00v and 701 as in github.com/walling/sfid's prefixes.json
KEY_PREFIXES = {
    "Account": "001",
    "Contact": "003",
    "Opportunity": "006",
    "Task": "00T",
    "Lead": "00Q",
    "Campaign": "701",
    "CampaignMember": "00v",
    "User": "005",
    "Organization": "00D",
}
_JOB_PREFIX, _LOCATOR_PREFIX = "750", "01g"
_ID_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"

LOGIN_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")


class SalesforceError(Exception):
    """A refusal as Salesforce words it. REST renders it as ``[{"message", "errorCode", "fields"}]``
    (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm); a
    collection result carries it as ``{"statusCode", "message", "fields"}``."""

    def __init__(self, status: int, code: str, message: str, fields: Iterable[str] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = list(fields) if fields is not None else None

    def body(self) -> list[Record]:
        item: Record = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            item["fields"] = self.fields
        return [item]

    def result_error(self) -> Record:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields or []}

    def bulk_error(self) -> str:
        """The ``sf__Error`` cell of a failed Bulk API 2.0 row ("CODE:message:fields --", the fake's
        rendering of the format seen in failedResults files)."""
        return f"{self.code}:{self.message}:{','.join(self.fields or [])} --"


class AuthFailure(Exception):
    """A refused login: OAuth's ``error``/``error_description`` pair."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


def to_18(id15: str) -> str:
    """The case-safe 18-character form: three checksum characters, one per five-character chunk,
    whose bits mark the upper-case letters of that chunk (salesforce.stackexchange.com/questions/1653;
    e.g. 00558000001N0Ke -> 00558000001N0KeAAK, as github.com/amureki/salesforce_id_converter shows)."""
    suffix = ""
    for start in (0, 5, 10):
        bits = sum(1 << i for i, ch in enumerate(id15[start : start + 5]) if "A" <= ch <= "Z")
        suffix += _ID_CHECKSUM[bits]
    return id15 + suffix


def _base62(number: int, width: int) -> str:
    out = ""
    while number:
        number, rest = divmod(number, 62)
        out = _ID_BASE62[rest] + out
    return out.rjust(width, "0")


def utc_iso(moment: datetime) -> str:
    """Salesforce's datetime form, e.g. ``2024-05-01T10:00:00.000+0000``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


# -- object and field metadata ------------------------------------------------------------------

_SOAP_TYPES = {"id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "date": "xsd:date"}
_SOAP_TYPES |= {"datetime": "xsd:dateTime", "double": "xsd:double", "currency": "xsd:double"}
_SOAP_TYPES |= {"percent": "xsd:double", "int": "xsd:int"}
_NUMERIC = {"double", "currency", "percent", "int"}


@dataclass
class FieldSpec:
    """One field as describe reports it (https://developer.salesforce.com/docs/atlas.en-us.api.meta/
    api/sforce_api_calls_describesobjects_describesobjectresult.htm, ``Field``)."""

    name: str
    type: str = "string"
    length: int = 0
    label: str = ""
    required: bool = False  # not nillable and not defaulted on create
    createable: bool = True
    updateable: bool = True
    external_id: bool = False
    id_lookup: bool = False
    unique: bool = False
    default: Any = None
    reference_to: tuple[str, ...] = ()

    @property
    def custom(self) -> bool:
        return self.name.endswith("__c")

    def describe(self) -> Record:
        nillable = not self.required and self.type not in ("id", "boolean")
        return {
            "name": self.name,
            "label": self.label or self.name.removesuffix("__c").replace("_", " "),
            "type": self.type,
            "soapType": _SOAP_TYPES.get(self.type, "xsd:string"),
            "length": self.length,
            "custom": self.custom,
            "externalId": self.external_id,
            "idLookup": self.id_lookup,
            "unique": self.unique,
            "createable": self.createable,
            "updateable": self.updateable,
            "nillable": nillable,
            "defaultedOnCreate": self.default is not None or self.type == "boolean" or self.name == "OwnerId",
            "filterable": self.type != "textarea",
            "calculated": False,
            "referenceTo": list(self.reference_to),
            "picklistValues": [],
        }


@dataclass
class ObjectSpec:
    name: str
    key_prefix: str
    fields: dict[str, FieldSpec] = field(default_factory=dict)  # keyed by lower-cased name

    def field(self, name: str) -> FieldSpec | None:
        return self.fields.get(name.lower())

    def add(self, spec: FieldSpec) -> None:
        self.fields[spec.name.lower()] = spec


def _ro(name: str, kind: str, **kw: Any) -> FieldSpec:
    return FieldSpec(name, kind, createable=False, updateable=False, **kw)


def _ref(name: str, *to: str, **kw: Any) -> FieldSpec:
    return FieldSpec(name, "reference", 18, reference_to=to, **kw)


def _text(name: str, length: int = 255, **kw: Any) -> FieldSpec:
    return FieldSpec(name, kw.pop("kind", "string"), length, **kw)


def _standard_objects() -> dict[str, ObjectSpec]:
    """A working subset of each object's standard fields (the Object Reference lists them all:
    https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/)."""
    system = [
        _ro("Id", "id", length=18, id_lookup=True),
        _ro("IsDeleted", "boolean"),
        _ro("CreatedDate", "datetime"),
        _ro("CreatedById", "reference", length=18, reference_to=("User",)),
        _ro("LastModifiedDate", "datetime"),
        _ro("LastModifiedById", "reference", length=18, reference_to=("User",)),
        _ro("SystemModstamp", "datetime"),
    ]
    owner = [_ref("OwnerId", "User")]
    person = [
        _text("FirstName", 40),
        _text("LastName", 80, required=True),
        _ro("Name", "string", length=121),
        _text("Email", 80, kind="email", id_lookup=True),
        _text("Phone", 40, kind="phone"),
        _text("Title", 128),
        _text("LeadSource", kind="picklist"),
        _text("Description", 32000, kind="textarea"),
    ]
    table: dict[str, list[FieldSpec]] = {
        "Account": [
            *owner,
            _text("Name", required=True, id_lookup=True),
            _text("Website", kind="url"),
            _text("Industry", kind="picklist"),
            _text("Phone", 40, kind="phone"),
            _text("BillingCity", 40),
            _text("BillingCountry", 80),
            _text("Description", 32000, kind="textarea"),
        ],
        "Contact": [
            *owner,
            *person,
            _ref("AccountId", "Account"),
            _text("MailingCity", 40),
            _text("MailingCountry", 80),
        ],
        "Lead": [
            *owner,
            *person,
            _text("Company", required=True),
            _text("Status", kind="picklist", default="Open - Not Contacted"),
            _text("City", 40),
            _text("Country", 80),
            _ro("IsConverted", "boolean"),
            _ro("ConvertedDate", "date"),
            _ro("ConvertedContactId", "reference", length=18, reference_to=("Contact",)),
            _ro("ConvertedAccountId", "reference", length=18, reference_to=("Account",)),
            _ro("ConvertedOpportunityId", "reference", length=18, reference_to=("Opportunity",)),
        ],
        "Opportunity": [
            *owner,
            _text("Name", 120, required=True),
            _text("StageName", kind="picklist", required=True),
            FieldSpec("CloseDate", "date", required=True),
            FieldSpec("Amount", "currency"),
            FieldSpec("Probability", "percent"),
            _ref("AccountId", "Account"),
            # The primary contact (API 46.0 and later): Opportunity in the SOAP/REST object reference.
            _ref("ContactId", "Contact"),
            # Derived from the stage (read-only): Closed Won is won and closed, Closed Lost closed.
            _ro("IsWon", "boolean"),
            _ro("IsClosed", "boolean"),
            _ref("CampaignId", "Campaign"),
            _text("LeadSource", kind="picklist"),
            _text("Description", 32000, kind="textarea"),
        ],
        "Task": [
            *owner,
            _text("Subject", kind="combobox"),
            _text("Status", kind="picklist", default="Not Started"),
            _text("Priority", kind="picklist", default="Normal"),
            _text("Type", kind="picklist"),
            _ref("WhoId", "Contact", "Lead"),
            _ref("WhatId", "Account", "Opportunity", "Campaign"),
            FieldSpec("ActivityDate", "date"),
            _text("Description", 32000, kind="textarea"),
        ],
        "Campaign": [
            *owner,
            _text("Name", 80, required=True),
            _text("Status", kind="picklist"),
            _text("Type", kind="picklist"),
            FieldSpec("IsActive", "boolean"),
            FieldSpec("StartDate", "date"),
            FieldSpec("EndDate", "date"),
            _text("Description", 32000, kind="textarea"),
        ],
        "CampaignMember": [
            _ref("CampaignId", "Campaign", required=True, updateable=False),
            _ref("ContactId", "Contact", updateable=False),
            _ref("LeadId", "Lead", updateable=False),
            _text("Status", 40, kind="picklist", default="Sent"),
            _ro("HasResponded", "boolean"),
        ],
    }
    out = {}
    for name, fields in table.items():
        spec = ObjectSpec(name, KEY_PREFIXES[name])
        for one in [*system, *fields]:
            spec.add(copy.copy(one))
        out[name] = spec
    return out


_DEFAULT_VALUES: dict[str, Record] = {
    "Lead": {"IsConverted": False},
    "Campaign": {"IsActive": False},
    "CampaignMember": {"HasResponded": False},
}


# -- SOQL -----------------------------------------------------------------------------------------

_SELECT = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>\w+)(?:\s+(?P<dir>ASC|DESC))?)?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<op>!=|<=|>=|=|<|>|\(|\)|,)|(?P<word>[\w.:+-]+))")


@dataclass(frozen=True)
class _Condition:
    field: str
    op: str  # "=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN", "LIKE"
    value: Any


@dataclass(frozen=True)
class Query:
    sobject: str
    fields: tuple[str, ...]
    conditions: tuple[_Condition, ...]
    order: tuple[str, bool] | None  # (field, descending)
    limit: int | None


def _malformed(soql: str, why: str) -> SalesforceError:
    return SalesforceError(400, "MALFORMED_QUERY", f"{why} in query: {soql.strip()}")


def _literal(token: re.Match[str], soql: str) -> Any:
    if token.group("str") is not None:
        return re.sub(r"\\(.)", r"\1", token.group("str")[1:-1])
    word = token.group("word")
    if word is None:
        raise _malformed(soql, f"unexpected token '{token.group(0).strip()}'")
    lowered = word.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    try:
        return float(word) if "." in word else int(word)
    except ValueError:
        return word  # a date or datetime literal, compared as text


def parse_soql(soql: str) -> Query:
    """``SELECT f, ... FROM Type [WHERE a = 'x' AND b IN ('y', 'z') ...] [ORDER BY f [ASC|DESC]]
    [LIMIT n]``: the subset Flywheel's sync uses. OR, sub-queries, relationship fields and
    aggregates are refused as MALFORMED_QUERY."""
    found = _SELECT.match(soql)
    if not found:
        raise _malformed(soql, "unexpected token")
    names = tuple(n.strip() for n in found.group("fields").split(","))
    if not all(re.fullmatch(r"\w+", n) for n in names):
        raise _malformed(soql, "the fake supports plain field names only")
    conditions: list[_Condition] = []
    where = found.group("where")
    if where:
        tokens = list(_TOKEN.finditer(where))
        if "".join(t.group(0) for t in tokens).strip() != where.strip():
            raise _malformed(soql, "unexpected token")
        conditions = _conditions(tokens, soql)
    order = None
    if found.group("order"):
        order = (found.group("order"), (found.group("dir") or "").upper() == "DESC")
    limit = int(found.group("limit")) if found.group("limit") else None
    return Query(found.group("object"), names, tuple(conditions), order, limit)


def _conditions(tokens: list[re.Match[str]], soql: str) -> list[_Condition]:
    out = []
    i = 0

    def word(at: int) -> str:
        return (tokens[at].group("word") or tokens[at].group("op") or "").upper() if at < len(tokens) else ""

    while i < len(tokens):
        name = tokens[i].group("word")
        if not name or not re.fullmatch(r"\w+", name):
            raise _malformed(soql, "expected a field name")
        i += 1
        op = word(i)
        if op == "NOT" and word(i + 1) == "IN":
            op, i = "NOT IN", i + 1
        if op in ("IN", "NOT IN"):
            if word(i + 1) != "(":
                raise _malformed(soql, "expected (")
            i += 2
            values = []
            while i < len(tokens) and word(i) != ")":
                values.append(_literal(tokens[i], soql))
                i += 1
                if word(i) == ",":
                    i += 1
            if word(i) != ")":
                raise _malformed(soql, "expected )")
            out.append(_Condition(name, op, values))
            i += 1
        elif op in ("=", "!=", "<", "<=", ">", ">=", "LIKE"):
            if i + 1 >= len(tokens):
                raise _malformed(soql, "expected a value")
            out.append(_Condition(name, op, _literal(tokens[i + 1], soql)))
            i += 2
        else:
            raise _malformed(soql, f"unexpected token '{op}'")
        if i < len(tokens):
            if word(i) == "OR":
                raise _malformed(soql, "the fake supports AND only")
            if word(i) != "AND":
                raise _malformed(soql, f"unexpected token '{word(i)}'")
            i += 1
    return out


def _fold(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _index_key(value: Any) -> Any:
    """What equal values share in an index (text folded as SOQL compares it)."""
    folded = _fold(value)
    return folded if isinstance(folded, str | int | float | bool) or folded is None else str(folded)


def _matches(value: Any, cond: _Condition) -> bool:
    """SOQL compares text case-insensitively."""
    left, right = _fold(value), cond.value
    if cond.op in ("IN", "NOT IN"):
        hit = left in [_fold(v) for v in right]
        return hit if cond.op == "IN" else not hit
    if cond.op == "LIKE":
        pattern = re.escape(str(right).lower()).replace("%", ".*").replace("_", ".")
        return left is not None and re.fullmatch(pattern, str(left)) is not None
    right = _fold(right)
    if cond.op == "=":
        return bool(left == right)
    if cond.op == "!=":
        return bool(left != right)
    if left is None or right is None:
        return False
    compare: dict[str, Callable[[Any, Any], bool]] = {
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    try:
        return compare[cond.op](left, right)
    except TypeError:
        return False


# -- Bulk API 2.0 jobs -------------------------------------------------------------------------

_DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
_LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
_OPERATIONS = ("insert", "update", "upsert", "delete")


@dataclass
class BulkJob:
    """An ingest job (https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/
    get_job_info.htm). ``polls_left``: GETs after UploadComplete before the job is JobComplete."""

    id: str
    object: str
    operation: str
    external_id_field: str | None
    column_delimiter: str
    line_ending: str
    api_version: str
    created: datetime
    created_by: str
    polls_left: int
    state: str = "Open"
    modified: datetime | None = None
    uploads: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    successes: list[list[str]] = field(default_factory=list)
    failures: list[list[str]] = field(default_factory=list)
    unprocessed: list[list[str]] = field(default_factory=list)
    error_message: str | None = None

    def info(self) -> Record:
        body: Record = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": self.created_by,
            "createdDate": utc_iso(self.created),
            "systemModstamp": utc_iso(self.modified or self.created),
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.api_version),
            "jobType": "V2Ingest",
            "contentUrl": f"services/data/v{self.api_version}/jobs/ingest/{self.id}/batches",
            "lineEnding": self.line_ending,
            "columnDelimiter": self.column_delimiter,
            "numberRecordsProcessed": len(self.successes) + len(self.failures),
            "numberRecordsFailed": len(self.failures),
            "retries": 0,
            "totalProcessingTime": 0,
            "apiActiveProcessingTime": 0,
            "apexProcessingTime": 0,
        }
        if self.external_id_field:
            body["externalIdFieldName"] = self.external_id_field
        if self.error_message:
            body["errorMessage"] = self.error_message
        return body


# -- the org's data ---------------------------------------------------------------------------


class SalesforceStore:
    """The org's records and metadata. Thread-safe: every public method holds one lock, so a
    collection write with ``allOrNone`` is applied or rolled back as a whole."""

    def __init__(
        self,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        query_batch_size: int = QUERY_BATCH_MAX,
        bulk_polls_to_complete: int = 2,
    ) -> None:
        self._now = now
        self._lock = threading.RLock()
        self._serial = itertools.count(1)
        self.objects = _standard_objects()
        self._records: dict[str, dict[str, Record]] = {name: {} for name in self.objects}
        # (sObject, field) -> folded value -> ids: equality lookups (upsert keys, unique fields,
        # duplicate rules) stay O(1) at 10,000 records; built on first use, kept on every write.
        self._indexes: dict[tuple[str, str], dict[Any, set[str]]] = {}
        self._duplicate_rules: dict[str, str] = {}  # sobject -> field matched (case-insensitively)
        self._cursors: dict[str, tuple[int, list[Record]]] = {}
        self._jobs: dict[str, BulkJob] = {}
        self.query_batch_size = query_batch_size
        self.bulk_polls_to_complete = bulk_polls_to_complete
        self.org_id = self.new_id("Organization")
        self.user_id = self.new_id("User")

    # -- ids and metadata ----------------------------------------------------------------------

    def new_id(self, sobject: str) -> str:
        prefix = KEY_PREFIXES.get(sobject, sobject if len(sobject) == 3 else "a00")
        return to_18(prefix + "Fw0" + _base62(next(self._serial), 9))

    def spec(self, sobject: str) -> ObjectSpec:
        """The object named (case-insensitively), or 404 NOT_FOUND as REST answers an unknown type."""
        for name, spec in self.objects.items():
            if name.lower() == sobject.lower():
                return spec
        raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")

    def canonical(self, sobject: str) -> str:
        try:
            return self.spec(sobject).name
        except SalesforceError:
            return sobject

    def add_field(
        self,
        sobject: str,
        name: str,
        *,
        type: str = "string",  # describe's own word for it
        external_id: bool = False,
        unique: bool = False,
        length: int | None = None,
        label: str | None = None,
    ) -> FieldSpec:
        """Create a custom field (``...__c``) as an admin would in Setup; an external id is also
        an idLookup field, as Salesforce makes it."""
        if not name.endswith("__c"):
            raise ValueError(f"custom field names end in __c, got {name!r}")
        default_length = 255 if type in ("string", "email", "phone", "url", "picklist") else 0
        spec = FieldSpec(
            name,
            type,
            default_length if length is None else length,
            label or "",
            external_id=external_id,
            id_lookup=external_id,
            unique=unique,
        )
        with self._lock:
            self.spec(sobject).add(spec)
        return spec

    def remove_field(self, sobject: str, name: str) -> None:
        with self._lock:
            spec = self.spec(sobject)
            spec.fields.pop(name.lower(), None)
            for record in self._records[spec.name].values():
                record.pop(name, None)

    def describe(self, sobject: str, version: str = API_VERSION) -> Record:
        """sObject Describe (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/
        dome_sobject_describe.htm): the object's flags and one entry per field."""
        with self._lock:
            spec = self.spec(sobject)
            base = f"/services/data/v{version}/sobjects/{spec.name}"
            return {
                "name": spec.name,
                "label": re.sub(r"(?<=[a-z])(?=[A-Z])", " ", spec.name),
                "keyPrefix": spec.key_prefix,
                "custom": False,
                "createable": True,
                "updateable": True,
                "deletable": True,
                "queryable": True,
                "fields": [f.describe() for f in spec.fields.values()],
                "urls": {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"},
            }

    def describe_global(self, version: str = API_VERSION) -> Record:
        with self._lock:
            return {
                "encoding": "UTF-8",
                "maxBatchSize": COLLECTION_LIMIT,
                "sobjects": [
                    {
                        "name": s.name,
                        "keyPrefix": s.key_prefix,
                        "custom": False,
                        "urls": {"sobject": f"/services/data/v{version}/sobjects/{s.name}"},
                    }
                    for s in self.objects.values()
                ],
            }

    # -- rules switched on by a test -----------------------------------------------------------

    def enable_duplicate_rule(self, sobject: str, field_name: str = "Email") -> None:
        """An active duplicate rule that blocks creating a record whose ``field_name`` matches an
        existing one (the standard Contact and Lead rules match on email among other things)."""
        with self._lock:
            self._duplicate_rules[self.spec(sobject).name] = field_name

    def disable_duplicate_rule(self, sobject: str) -> None:
        with self._lock:
            self._duplicate_rules.pop(self.spec(sobject).name, None)

    def convert_lead(self, lead_id: str, *, account_id: str | None = None) -> str:
        """Convert a Lead as the Lead Convert page does: a Contact (and an Account from the Lead's
        Company unless ``account_id`` is given) is created and the Lead becomes read-only, with
        ``IsConverted``, ``ConvertedContactId``, ``ConvertedAccountId`` and ``ConvertedDate`` set."""
        with self._lock:
            lead = self._stored("Lead", lead_id)
            if lead.get("IsConverted"):
                raise SalesforceError(400, "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
            if account_id is None:
                account_id = self._insert("Account", {"Name": lead.get("Company") or lead["LastName"]})
            # Standard fields only: custom fields cross over only through the org's lead field mapping
            person = {k: lead.get(k) for k in ("FirstName", "LastName", "Email", "Phone", "Title")}
            contact_id = self._insert("Contact", {**person, "AccountId": account_id})
            lead.update(
                IsConverted=True,
                ConvertedContactId=contact_id,
                ConvertedAccountId=account_id,
                ConvertedDate=self._now().date().isoformat(),
                Status="Closed - Converted",
            )
            self._touch(lead)
            return contact_id

    # -- reading -------------------------------------------------------------------------------

    def records(self, sobject: str) -> list[Record]:
        """Copies of every stored record of the type, in creation order (no ``attributes``)."""
        with self._lock:
            spec = self.spec(sobject)
            return [self._visible(spec, r) for r in self._records[spec.name].values()]

    def get(
        self, sobject: str, record_id: str, names: Iterable[str] | None = None, version: str = API_VERSION
    ) -> Record:
        """One record as REST returns it, with ``attributes`` (404 NOT_FOUND when absent)."""
        with self._lock:
            spec = self.spec(sobject)
            stored = self._stored(spec.name, record_id)
            return self._render(spec, stored, list(names) if names else None, version)

    def find(self, sobject: str, field_name: str, value: Any) -> list[Record]:
        """Stored records whose field equals ``value`` (text compared case-insensitively)."""
        with self._lock:
            spec = self.spec(sobject)
            cond = _Condition(self._field(spec, field_name).name, "=", value)
            return [
                self._visible(spec, r)
                for r in self._records[spec.name].values()
                if _matches(r.get(cond.field), cond)
            ]

    def _stored(self, sobject: str, record_id: str) -> Record:
        spec = self.spec(sobject)
        if len(record_id) not in (15, 18) or not record_id.startswith(spec.key_prefix):
            raise SalesforceError(
                400, "MALFORMED_ID", f"{spec.name} ID: id value of incorrect type: {record_id}", ["Id"]
            )
        full = to_18(record_id[:15])
        found = self._records[spec.name].get(full)
        if found is None:
            raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
        return found

    def _visible(self, spec: ObjectSpec, stored: Record) -> Record:
        out = dict(stored)
        if spec.name == "Opportunity":
            stage = str(stored.get("StageName") or "")
            out["IsWon"], out["IsClosed"] = stage == "Closed Won", stage in ("Closed Won", "Closed Lost")
        if spec.field("Name") and spec.name in ("Contact", "Lead"):
            out["Name"] = " ".join(p for p in (stored.get("FirstName"), stored.get("LastName")) if p)
        return out

    def _render(self, spec: ObjectSpec, stored: Record, names: list[str] | None, version: str) -> Record:
        visible = self._visible(spec, stored)
        attributes = {
            "type": spec.name,
            "url": f"/services/data/v{version}/sobjects/{spec.name}/{stored['Id']}",
        }
        if names is None:
            return {"attributes": attributes, **{f.name: visible.get(f.name) for f in spec.fields.values()}}
        return {
            "attributes": attributes,
            **{self._field(spec, n).name: visible.get(self._field(spec, n).name) for n in names},
        }

    def _field(self, spec: ObjectSpec, name: str) -> FieldSpec:
        found = spec.field(name)
        if found is None:
            raise SalesforceError(
                400,
                "INVALID_FIELD",
                f"No such column '{name}' on entity '{spec.name}'. If you are attempting to use a custom "
                "field, be sure to append the '__c' after the custom field name. Please reference your "
                "WSDL or the describe call for the appropriate names.",
            )
        return found

    # -- writing: one record -------------------------------------------------------------------

    def create(self, sobject: str, values: Mapping[str, Any]) -> str:
        with self._lock:
            return self._insert(self.spec(sobject).name, values)

    def update(self, sobject: str, record_id: str, values: Mapping[str, Any]) -> None:
        with self._lock:
            self._update(self.spec(sobject).name, record_id, values)

    def delete(self, sobject: str, record_id: str) -> None:
        with self._lock:
            spec = self.spec(sobject)
            stored = self._stored(spec.name, record_id)
            del self._records[spec.name][stored["Id"]]
            self._reindex(spec.name, stored["Id"], stored, None)

    def upsert(
        self, sobject: str, field_name: str, value: str, values: Mapping[str, Any]
    ) -> tuple[str, bool]:
        """Upsert by external id (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/
        api_rest/dome_upsert.htm): create when nothing matches, update one match, 300 for several.
        Returns (id, created)."""
        with self._lock:
            spec = self.spec(sobject)
            key = self._external_field(spec, field_name)
            matches = self._matching(spec, key, value)
            if len(matches) > 1:
                raise SalesforceError(
                    300, "MULTIPLE_CHOICES", f"more than one record found for {key.name} = {value}"
                )
            if matches:
                self._update(spec.name, matches[0]["Id"], values)
                return matches[0]["Id"], False
            if key.name == "Id":
                raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
            return self._insert(spec.name, {**values, key.name: value}), True

    def by_external_id(
        self, sobject: str, field_name: str, value: str, version: str = API_VERSION
    ) -> list[Record]:
        """Records whose external id field (or Id) equals ``value``, rendered as REST returns them."""
        with self._lock:
            spec = self.spec(sobject)
            key = self._external_field(spec, field_name)
            return [self._render(spec, r, None, version) for r in self._matching(spec, key, value)]

    def _external_field(self, spec: ObjectSpec, name: str) -> FieldSpec:
        found = spec.field(name)
        if found is None or not (found.external_id or found.name == "Id"):
            raise SalesforceError(
                404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {name}"
            )
        return found

    def _index(self, sobject: str, field_name: str) -> dict[Any, set[str]]:
        key = (sobject, field_name)
        found = self._indexes.get(key)
        if found is None:
            found = {}
            for r in self._records[sobject].values():
                found.setdefault(_index_key(r.get(field_name)), set()).add(r["Id"])
            self._indexes[key] = found
        return found

    def _reindex(self, sobject: str, record_id: str, old: Record | None, new: Record | None) -> None:
        for (s, field_name), index in self._indexes.items():
            if s != sobject:
                continue
            if old is not None:
                index.get(_index_key(old.get(field_name)), set()).discard(record_id)
            if new is not None:
                index.setdefault(_index_key(new.get(field_name)), set()).add(record_id)

    def _equal(self, sobject: str, field_name: str, value: Any, own_id: str | None = None) -> list[Record]:
        """Records whose field equals ``value`` as SOQL compares (text without case)."""
        cond = _Condition(field_name, "=", value)
        ids = self._index(sobject, field_name).get(_index_key(value), set())
        rows = [self._records[sobject][i] for i in sorted(ids) if i != own_id and i in self._records[sobject]]
        return [r for r in rows if _matches(r.get(field_name), cond)]

    def _matching(self, spec: ObjectSpec, key: FieldSpec, value: Any) -> list[Record]:
        if key.name == "Id":
            try:
                return [self._stored(spec.name, str(value))]
            except SalesforceError:
                return []
        return self._equal(spec.name, key.name, value)

    def _clean(self, spec: ObjectSpec, values: Mapping[str, Any], creating: bool) -> Record:
        """Field names made canonical; unknown and read-only fields refused."""
        out: Record = {}
        locked = []
        for name, value in values.items():
            if name == "attributes" or (name.lower() == "id" and not creating):
                continue
            found = spec.field(name)
            if found is None:
                raise SalesforceError(
                    400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {spec.name}"
                )
            if not (found.createable if creating else found.updateable):
                locked.append(found.name)
            out[found.name] = value
        if locked:
            # Wording as seen in answers quoted by github.com/restforce/restforce/issues/483
            raise SalesforceError(
                400,
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(locked)}. Please check the security settings "
                "of this field and verify that it is read/write for your profile or permission set.",
                locked,
            )
        return out

    def _check(self, spec: ObjectSpec, record: Record, creating: bool, own_id: str | None) -> None:
        missing = [f.name for f in spec.fields.values() if f.required and record.get(f.name) in (None, "")]
        if missing:
            raise SalesforceError(
                400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing
            )
        rule = self._duplicate_rules.get(spec.name)
        if (
            creating
            and rule
            and record.get(rule) not in (None, "")
            and self._equal(spec.name, rule, record[rule], own_id)
        ):
            # The standard rules' alert text; github.com/jetstreamapp/jetstream/issues/482
            raise SalesforceError(400, "DUPLICATES_DETECTED", "Use one of these records?", [])
        for spec_field in spec.fields.values():
            value = record.get(spec_field.name)
            if spec_field.unique and value not in (None, ""):
                clash = next(iter(self._equal(spec.name, spec_field.name, value, own_id)), None)
                if clash is not None:
                    raise SalesforceError(
                        400,
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {spec_field.name} duplicates value on record with id: "
                        f"{clash['Id']}",
                        [spec_field.name],
                    )
        for ref in spec.fields.values():
            if (
                ref.type == "reference"
                and ref.createable
                and record.get(ref.name)
                and "User" not in ref.reference_to
            ):
                self._check_reference(ref, str(record[ref.name]))
        if spec.name == "CampaignMember" and creating:
            others = [r for r in self._records[spec.name].values() if r["Id"] != own_id]
            self._check_campaign_member(record, others)

    def _check_reference(self, ref: FieldSpec, value: str) -> None:
        for target in ref.reference_to:
            prefix_ok = value.startswith(KEY_PREFIXES[target]) and len(value) in (15, 18)
            if prefix_ok and to_18(value[:15]) in self._records[target]:
                return
        # The code for a lookup to a record that is not there; the wording is the fake's own
        raise SalesforceError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [ref.name])

    def _check_campaign_member(self, record: Record, others: list[Record]) -> None:
        who = [(k, record.get(k)) for k in ("ContactId", "LeadId") if record.get(k)]
        if not who:
            # the fake's own wording: the rule (one of ContactId/LeadId) is Salesforce's
            raise SalesforceError(
                400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [ContactId]", ["ContactId"]
            )
        for key, value in who:
            for other in others:
                if other.get("CampaignId") == record["CampaignId"] and other.get(key) == value:
                    # github.com/openstax/tutor-server/pull/1653 quotes this answer
                    raise SalesforceError(400, "DUPLICATE_VALUE", "Already a campaign member.", [])

    def _insert(self, sobject: str, values: Mapping[str, Any]) -> str:
        spec = self.objects[sobject]
        if any(k.lower() == "id" for k in values):
            raise SalesforceError(
                400, "INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", ["Id"]
            )
        clean = self._clean(spec, values, creating=True)
        record: Record = {f.name: f.default for f in spec.fields.values() if f.default is not None}
        record |= _DEFAULT_VALUES.get(sobject, {})
        if spec.field("OwnerId"):
            record["OwnerId"] = self.user_id
        record |= clean
        self._check(spec, record, creating=True, own_id=None)
        now = utc_iso(self._now())
        record_id = self.new_id(sobject)
        record |= {"Id": record_id, "IsDeleted": False, "CreatedDate": now, "CreatedById": self.user_id}
        record |= {"LastModifiedDate": now, "LastModifiedById": self.user_id, "SystemModstamp": now}
        self._records[sobject][record_id] = record
        self._reindex(sobject, record_id, None, record)
        return record_id

    def _update(self, sobject: str, record_id: str, values: Mapping[str, Any]) -> None:
        spec = self.objects[sobject]
        stored = self._stored(sobject, record_id)
        if sobject == "Lead" and stored.get("IsConverted"):
            # github.com/simple-salesforce/simple-salesforce/issues/341 and others quote this answer
            raise SalesforceError(400, "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead", [])
        clean = self._clean(spec, values, creating=False)
        merged = {**stored, **clean}
        self._check(spec, merged, creating=False, own_id=stored["Id"])
        before = dict(stored)
        stored.update(clean)
        self._touch(stored)
        self._reindex(sobject, stored["Id"], before, stored)

    def _touch(self, stored: Record) -> None:
        now = utc_iso(self._now())
        stored.update(LastModifiedDate=now, SystemModstamp=now, LastModifiedById=self.user_id)

    # -- writing: sObject Collections ----------------------------------------------------------

    def collection(
        self, records: list[Any], all_or_none: bool, write: Callable[[Record], Record]
    ) -> list[Record]:
        """Apply ``write`` to each record in order; one result each. With ``allOrNone`` any failure
        rolls every write back and the others report ALL_OR_NONE_OPERATION_ROLLED_BACK."""
        if len(records) > COLLECTION_LIMIT:
            # Wording as quoted in github.com/sorenkrabbe/Chrome-Salesforce-inspector/issues/134
            raise SalesforceError(
                400,
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
            )
        with self._lock:
            saved = (
                copy.deepcopy(self._records) if all_or_none else self._records
            )  # only allOrNone rolls back
            results = []
            for record in records:
                try:
                    if not isinstance(record, dict):
                        raise SalesforceError(400, "JSON_PARSER_ERROR", "each record must be a JSON object")
                    results.append(write(record))
                except SalesforceError as exc:
                    results.append({"id": None, "success": False, "errors": [exc.result_error()]})
            if all_or_none and not all(r["success"] for r in results):
                self._records = saved
                self._indexes = {}  # rebuilt from the restored records on next use
                rolled = SalesforceError(
                    400,
                    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "Record rolled back because not all records were valid and the request was using "
                    "AllOrNone header",
                )
                results = [
                    r
                    if not r["success"]
                    else {"id": None, "success": False, "errors": [rolled.result_error()]}
                    for r in results
                ]
            return results

    @staticmethod
    def _type_of(record: Record) -> str:
        attributes = record.get("attributes")
        if not isinstance(attributes, dict) or not attributes.get("type"):
            raise SalesforceError(
                400, "INVALID_TYPE", "Must specify a type in the attributes map of each record"
            )
        return str(attributes["type"])

    def create_many(self, records: list[Any], all_or_none: bool) -> list[Record]:
        """POST composite/sobjects: SaveResults (https://developer.salesforce.com/docs/atlas.en-us.
        api_rest.meta/api_rest/resources_composite_sobjects_collections_create.htm)."""

        def write(record: Record) -> Record:
            sobject = self.spec(self._type_of(record)).name
            return {"id": self._insert(sobject, record), "success": True, "errors": []}

        return self.collection(records, all_or_none, write)

    def update_many(self, records: list[Any], all_or_none: bool) -> list[Record]:
        """PATCH composite/sobjects: each record names its ``Id``."""

        def write(record: Record) -> Record:
            sobject = self.spec(self._type_of(record)).name
            record_id = record.get("Id") or record.get("id")
            if not record_id:
                raise SalesforceError(400, "MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
            stored = self._stored(sobject, str(record_id))
            self._update(sobject, stored["Id"], record)
            return {"id": stored["Id"], "success": True, "errors": []}

        return self.collection(records, all_or_none, write)

    def upsert_many(
        self, sobject: str, field_name: str, records: list[Any], all_or_none: bool
    ) -> list[Record]:
        """PATCH composite/sobjects/{Type}/{ExternalIdField}: UpsertResults with ``created``
        (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/
        resources_composite_sobjects_collections_upsert.htm)."""
        with self._lock:
            spec = self.spec(sobject)
            key = self._external_field(spec, field_name)

        def write(record: Record) -> Record:
            if self.spec(self._type_of(record)).name != spec.name:
                raise SalesforceError(400, "INVALID_TYPE", f"records must all be of type {spec.name}")
            value = next((v for k, v in record.items() if k.lower() == key.name.lower()), None)
            if value in (None, ""):
                raise SalesforceError(400, "MISSING_ARGUMENT", f"{key.name} not specified", [key.name])
            matches = self._matching(spec, key, value)
            if len(matches) > 1:
                ids = ", ".join(m["Id"] for m in matches)
                raise SalesforceError(
                    300,
                    "DUPLICATE_EXTERNAL_ID",
                    f"{key.name}: more than one record found for external id field: [{ids}]",
                    [key.name],
                )
            if matches:
                self._update(spec.name, matches[0]["Id"], record)
                return {"id": matches[0]["Id"], "success": True, "errors": [], "created": False}
            return {"id": self._insert(spec.name, record), "success": True, "errors": [], "created": True}

        return self.collection(records, all_or_none, write)

    # -- SOQL ----------------------------------------------------------------------------------

    def query(self, soql: str, version: str = API_VERSION, batch_size: int | None = None) -> Record:
        """Run the subset :func:`parse_soql` knows; a first page and, past the batch size, a
        ``nextRecordsUrl`` (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/
        resources_query.htm)."""
        parsed = parse_soql(soql)
        with self._lock:
            try:
                spec = self.spec(parsed.sobject)
            except SalesforceError:
                raise SalesforceError(
                    400,
                    "INVALID_TYPE",
                    f"sObject type '{parsed.sobject}' is not supported. If you are attempting to use a "
                    "custom object, be sure to append the '__c' after the entity name. Please reference "
                    "your WSDL or the describe call for the appropriate names.",
                ) from None
            names = [self._field(spec, n).name for n in parsed.fields]
            conditions = [
                _Condition(self._field(spec, c.field).name, c.op, c.value) for c in parsed.conditions
            ]
            rows = [
                self._visible(spec, r)
                for r in self._records[spec.name].values()
                if all(_matches(self._visible(spec, r).get(c.field), c) for c in conditions)
            ]
            if parsed.order:
                key = self._field(spec, parsed.order[0]).name
                rows.sort(key=lambda r: (r.get(key) is None, _fold(r.get(key))), reverse=parsed.order[1])
            if parsed.limit is not None:
                rows = rows[: parsed.limit]
            rendered = [self._render(spec, r, names, version) for r in rows]
            size = self.query_batch_size
            if batch_size is not None:  # Sforce-Query-Options: batchSize, 200 to 2,000
                size = min(max(batch_size, QUERY_BATCH_MIN), QUERY_BATCH_MAX)
            return self._page(rendered, version, size)

    def query_more(self, locator: str, version: str = API_VERSION) -> Record:
        cursor, _, offset = locator.rpartition("-")
        with self._lock:
            found = self._cursors.get(cursor)
            if found is None or not offset.isdigit():
                raise SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            size, rows = found
            return self._page(rows, version, size, start=int(offset), cursor=cursor)

    def _page(
        self,
        rows: list[Record],
        version: str,
        size: int,
        *,
        start: int = 0,
        cursor: str | None = None,
    ) -> Record:
        end = start + size
        body: Record = {"totalSize": len(rows), "done": end >= len(rows), "records": rows[start:end]}
        if end < len(rows):
            if cursor is None:
                cursor = to_18(_LOCATOR_PREFIX + "Fw0" + _base62(next(self._serial), 9))[:15]
                self._cursors[cursor] = (size, rows)
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{cursor}-{end}"
        return body

    # -- Bulk API 2.0 ingest -------------------------------------------------------------------

    def create_job(self, body: Mapping[str, Any], version: str = API_VERSION) -> Record:
        """Create an ingest job (https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/
        api_asynch/create_job.htm). Job-level refusals use the fake's own wording."""
        operation = str(body.get("operation") or "")
        if operation not in _OPERATIONS:
            raise SalesforceError(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
        if str(body.get("contentType") or "CSV") != "CSV":
            raise SalesforceError(400, "INVALIDJOB", "InvalidJob : contentType must be CSV")
        delimiter = str(body.get("columnDelimiter") or "COMMA")
        line_ending = str(body.get("lineEnding") or "LF")
        if delimiter not in _DELIMITERS or line_ending not in _LINE_ENDINGS:
            raise SalesforceError(400, "INVALIDJOB", "InvalidJob : unsupported columnDelimiter or lineEnding")
        with self._lock:
            try:
                spec = self.spec(str(body.get("object") or ""))
            except SalesforceError:
                raise SalesforceError(
                    400, "INVALIDJOB", f"InvalidJob : Unable to find object: {body.get('object')}"
                ) from None
            external = body.get("externalIdFieldName")
            if operation == "upsert":
                if not external:
                    raise SalesforceError(
                        400,
                        "INVALIDJOB",
                        f"InvalidJob : External ID was blank for {spec.name}. "
                        "An External ID must be specified for upsert.",
                    )
                external = self._external_field(spec, str(external)).name
            now = self._now()
            job = BulkJob(
                id=to_18(_JOB_PREFIX + "Fw0" + _base62(next(self._serial), 9)),
                object=spec.name,
                operation=operation,
                external_id_field=str(external) if external else None,
                column_delimiter=delimiter,
                line_ending=line_ending,
                api_version=version,
                created=now,
                created_by=self.user_id,
                polls_left=self.bulk_polls_to_complete,
            )
            self._jobs[job.id] = job
            return job.info()

    def _job(self, job_id: str) -> BulkJob:
        job = self._jobs.get(job_id)
        if job is None:
            raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
        return job

    def upload(self, job_id: str, data: str) -> None:
        """Upload Job Data: CSV for an Open job (https://developer.salesforce.com/docs/atlas.en-us.
        api_asynch.meta/api_asynch/upload_job_data.htm)."""
        with self._lock:
            job = self._job(job_id)
            if job.state != "Open":
                raise SalesforceError(409, "INVALIDJOBSTATE", f"Job {job_id} is not Open: {job.state}")
            job.uploads.append(data)
            job.modified = self._now()

    def set_job_state(self, job_id: str, state: str) -> Record:
        """Close (UploadComplete) or abort (Aborted) a job (https://developer.salesforce.com/docs/atlas.
        en-us.api_asynch.meta/api_asynch/close_job.htm)."""
        with self._lock:
            job = self._job(job_id)
            allowed = {"UploadComplete": ("Open",), "Aborted": ("Open", "UploadComplete", "InProgress")}
            if state not in allowed or job.state not in allowed[state]:
                raise SalesforceError(
                    400, "INVALIDJOBSTATE", f"Cannot change state of job {job_id} from {job.state} to {state}"
                )
            job.state = state
            job.modified = self._now()
            if state == "Aborted":
                job.header, rows = self._rows(job)
                job.unprocessed = rows
            return job.info()

    def job_info(self, job_id: str) -> Record:
        """Get Job Info. Each GET after UploadComplete moves the job on: InProgress, then (the rows
        processed) JobComplete, so a client has to poll as it must against Salesforce."""
        with self._lock:
            job = self._job(job_id)
            if job.state in ("UploadComplete", "InProgress"):
                job.polls_left -= 1
                if job.polls_left > 0:
                    job.state = "InProgress"
                else:
                    self._process(job)
                job.modified = self._now()
            return job.info()

    def job_results(self, job_id: str, kind: str) -> str:
        """successfulResults, failedResults or unprocessedrecords as CSV (https://developer.
        salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/get_job_successful_results.htm,
        .../get_job_failed_results.htm)."""
        with self._lock:
            job = self._job(job_id)
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            if kind == "successfulResults":
                writer.writerow(["sf__Id", "sf__Created", *job.header])
                writer.writerows(job.successes)
            elif kind == "failedResults":
                writer.writerow(["sf__Id", "sf__Error", *job.header])
                writer.writerows(job.failures)
            else:
                writer.writerow(job.header)
                writer.writerows(job.unprocessed)
            return out.getvalue()

    def jobs(self) -> list[Record]:
        with self._lock:
            return [j.info() for j in self._jobs.values()]

    def delete_job(self, job_id: str) -> None:
        with self._lock:
            self._job(job_id)
            del self._jobs[job_id]

    def _rows(self, job: BulkJob) -> tuple[list[str], list[list[str]]]:
        header: list[str] = []
        rows: list[list[str]] = []
        for data in job.uploads:
            reader = csv.reader(
                io.StringIO(data, newline=""), delimiter=_DELIMITERS[job.column_delimiter], strict=True
            )
            lines = [line for line in reader if line]
            if lines:
                header = header or lines[0]
                rows.extend(lines[1:])
        return header, rows

    def _process(self, job: BulkJob) -> None:
        spec = self.objects[job.object]
        try:
            header, rows = self._rows(job)
        except csv.Error as exc:
            job.state, job.error_message = "Failed", f"InvalidBatch : Failed to parse CSV: {exc}"
            return
        job.header = header
        unknown = [name for name in header if spec.field(name) is None]
        if unknown:  # the whole job fails: wording as quoted in github.com/ForceCLI/force/issues/413
            job.state, job.error_message = "Failed", f"InvalidBatch : Field name not found : {unknown[0]}"
            job.unprocessed = rows
            return
        for row in rows:
            values = {name: cell for name, cell in zip(header, row, strict=False)}
            try:
                record_id, created = self._bulk_write(job, spec, values)
                job.successes.append([record_id, "true" if created else "false", *row])
            except SalesforceError as exc:
                record_id = str(values.get("Id") or "")
                job.failures.append([record_id, exc.bulk_error(), *row])
        job.state = "JobComplete"

    def _bulk_write(self, job: BulkJob, spec: ObjectSpec, cells: Mapping[str, str]) -> tuple[str, bool]:
        values = {}
        for name, cell in cells.items():
            if cell == "":  # Bulk API ignores empty cells; #N/A sets a field to null
                continue
            found = spec.field(name)
            values[name] = None if cell == "#N/A" else _from_csv(found.type if found else "string", cell)
        if job.operation == "insert":
            return self._insert(spec.name, values), True
        if job.operation == "delete":
            stored = self._stored(spec.name, str(values.get("Id") or ""))
            del self._records[spec.name][stored["Id"]]
            self._reindex(spec.name, stored["Id"], stored, None)
            return stored["Id"], False
        if job.operation == "update":
            stored = self._stored(spec.name, str(values.get("Id") or ""))
            self._update(spec.name, stored["Id"], values)
            return stored["Id"], False
        key = self._external_field(spec, job.external_id_field or "Id")
        value = next((v for k, v in values.items() if k.lower() == key.name.lower()), None)
        if value in (None, ""):
            raise SalesforceError(400, "MISSING_ARGUMENT", f"{key.name} not specified", [key.name])
        matches = self._matching(spec, key, value)
        if len(matches) > 1:
            raise SalesforceError(
                300, "DUPLICATE_EXTERNAL_ID", f"{key.name}: more than one record found", [key.name]
            )
        if matches:
            self._update(spec.name, matches[0]["Id"], values)
            return matches[0]["Id"], False
        return self._insert(spec.name, {k: v for k, v in values.items() if k.lower() != "id"}), True


def _from_csv(kind: str, cell: str) -> Any:
    if kind == "boolean":
        return cell.strip().lower() in ("true", "1", "yes")
    if kind in _NUMERIC:
        try:
            return float(cell) if kind != "int" else int(cell)
        except ValueError:
            return cell
    return cell


# -- credentials and sessions -----------------------------------------------------------------


@dataclass(frozen=True)
class User:
    username: str
    password: str = field(repr=False)
    security_token: str = field(repr=False)
    user_id: str


@dataclass(frozen=True)
class ConnectedApp:
    """A connected app: its consumer key (the OAuth client id), secret, the certificate or public
    key its JWTs are signed for, and the user the client-credentials flow runs as."""

    consumer_key: str
    consumer_secret: str | None = field(default=None, repr=False)
    public_key_pem: str | None = field(default=None, repr=False)
    run_as: str | None = None


@dataclass
class Session:
    session_id: str = field(repr=False)
    user_id: str
    flow: str
    issued_at: datetime
    expires_at: datetime


class AuthRegistry:
    """The org's users, connected apps and live sessions, checked the way each flow checks them:

    * SOAP ``login()`` (what simple-salesforce uses for username + password + security token):
      the password must be the password with the security token appended
      (https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_login.htm).
    * OAuth username-password: client id and secret, then the same password check.
    * OAuth JWT bearer: an RS256 assertion from a known consumer key (``iss``) for a known user
      (``sub``), ``aud`` a login host, not expired; the signature is verified against the app's
      registered key when PyJWT has cryptography, else the assertion is only decoded.
    * OAuth client credentials: the app's key and secret; the session is its run-as user's.
    """

    def __init__(
        self, org_id: str, now: Callable[[], datetime], session_seconds: int = SESSION_SECONDS
    ) -> None:
        self.org_id = org_id
        self._now = now
        self.session_seconds = session_seconds
        self._lock = threading.Lock()
        self._users: dict[str, User] = {}
        self._apps: dict[str, ConnectedApp] = {}
        self._sessions: dict[str, Session] = {}

    def add_user(self, username: str, password: str, security_token: str, user_id: str) -> User:
        user = User(username, password, security_token, user_id)
        with self._lock:
            self._users[username.lower()] = user
        return user

    def add_app(self, app: ConnectedApp) -> None:
        with self._lock:
            self._apps[app.consumer_key] = app

    def app(self, consumer_key: str) -> ConnectedApp | None:
        with self._lock:
            return self._apps.get(consumer_key)

    def user(self, username: str) -> User | None:
        with self._lock:
            return self._users.get(username.lower())

    def users(self) -> Iterator[User]:
        with self._lock:
            return iter(list(self._users.values()))

    # -- the flows -----------------------------------------------------------------------------

    def password_login(self, username: str, password_and_token: str, flow: str = "soap") -> Session:
        user = self.user(username)
        if user is None or not hmac.compare_digest(password_and_token, user.password + user.security_token):
            raise AuthFailure("invalid_grant", "authentication failure")
        return self.issue(user.user_id, flow)

    def oauth_password(self, client_id: str, client_secret: str, username: str, password: str) -> Session:
        self._app_with_secret(client_id, client_secret)
        return self.password_login(username, password, flow="oauth-password")

    def client_credentials(self, client_id: str, client_secret: str) -> Session:
        app = self._app_with_secret(client_id, client_secret)
        user = self.user(app.run_as or "")
        if user is None:
            # the fake's own wording for an app with no run-as user
            raise AuthFailure("invalid_grant", "no client credentials user enabled")
        return self.issue(user.user_id, "client-credentials")

    def jwt_bearer(self, assertion: str, login_host: str) -> Session:
        claims = _jwt_claims(assertion)
        app = self.app(str(claims.get("iss") or ""))
        if app is None:
            raise AuthFailure("invalid_client_id", "client identifier invalid")
        if _HAS_CRYPTO and pyjwt is not None:
            if not app.public_key_pem:
                raise AuthFailure("invalid_grant", "invalid assertion")
            try:
                pyjwt.decode(
                    assertion,
                    key=_public_key(app.public_key_pem),
                    algorithms=["RS256"],
                    options={"verify_exp": False, "verify_aud": False, "verify_iss": False},
                )
            except pyjwt.PyJWTError:
                raise AuthFailure("invalid_grant", "invalid assertion") from None
        # https://www.useparagon.com/integration-error-solutions/salesforce-invalid-grant-audience-is-invalid
        if claims.get("aud") not in (*LOGIN_AUDIENCES, f"https://{login_host}"):
            raise AuthFailure("invalid_grant", "audience is invalid")
        try:
            expires = int(float(str(claims.get("exp"))))  # simple-salesforce sends exp as a string
        except ValueError:
            raise AuthFailure("invalid_grant", "invalid assertion") from None
        if expires <= int(self._now().timestamp()):
            raise AuthFailure("invalid_grant", "expired authorization code")
        user = self.user(str(claims.get("sub") or ""))
        if user is None:
            raise AuthFailure("invalid_grant", "authentication failure")
        return self.issue(user.user_id, "jwt-bearer")

    def _app_with_secret(self, client_id: str, client_secret: str) -> ConnectedApp:
        with self._lock:
            app = self._apps.get(client_id)
        if app is None:
            raise AuthFailure("invalid_client_id", "client identifier invalid")
        if not app.consumer_secret or not hmac.compare_digest(client_secret, app.consumer_secret):
            raise AuthFailure("invalid_client", "invalid client credentials")
        return app

    def signature(self, client_id: str | None, identity_url: str, issued_at: str) -> str | None:
        """Base64 HMAC-SHA256 of the identity URL and ``issued_at``, keyed with the consumer secret."""
        app = self.app(client_id or "")
        if app is None or not app.consumer_secret:
            return None
        digest = hmac.new(app.consumer_secret.encode(), (identity_url + issued_at).encode(), hashlib.sha256)
        return base64.b64encode(digest.digest()).decode()

    # -- sessions ------------------------------------------------------------------------------

    def issue(self, user_id: str, flow: str = "direct") -> Session:
        now = self._now()
        session = Session(
            session_id=f"{self.org_id[:15]}!AQ{secrets.token_urlsafe(40)}",
            user_id=user_id,
            flow=flow,
            issued_at=now,
            expires_at=now + timedelta(seconds=self.session_seconds),
        )
        with self._lock:
            self._sessions[session.session_id] = session
        return session

    def check(self, session_id: str | None) -> Session | None:
        """The live session with this id, or None (unknown, expired or ended)."""
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None or session.expires_at <= self._now():
            return None
        return session

    def expire_all(self) -> None:
        with self._lock:
            self._sessions.clear()

    def count(self) -> int:
        with self._lock:
            return len(self._sessions)


def _jwt_claims(assertion: str) -> Record:
    try:
        if pyjwt is not None:
            return dict(pyjwt.decode(assertion, options={"verify_signature": False}))
        payload = assertion.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        if not isinstance(claims, dict):
            raise ValueError("claims are not an object")
        return claims
    except Exception:  # any malformed assertion is refused the same way
        raise AuthFailure("invalid_grant", "invalid assertion") from None


def _public_key(pem: str) -> Any:
    """A PEM public key, or the public key of a PEM certificate (what Salesforce stores)."""
    if "BEGIN CERTIFICATE" in pem:
        from cryptography import x509

        return x509.load_pem_x509_certificate(pem.encode()).public_key()
    return pem
