"""Salesforce, through simple-salesforce: a member goes onto the Contact with their email when
there is one, else onto a Lead keyed by the external id ``Flywheel_Member_Id__c``.

From Salesforce's REST reference (developer.salesforce.com/docs/atlas.en-us.api_rest.meta):
sObject Collections take at most 200 records a call and answer one result per record, in order
(``composite/sobjects`` PATCH by Id; ``composite/sobjects/{Type}/{ExternalIdField}`` PATCH upserts);
errors are arrays of ``{errorCode, message, fields}``; a converted Lead refuses writes with
``CANNOT_UPDATE_CONVERTED_LEAD`` and is followed to its Contact; ``Sforce-Limit-Info`` reports the
day's API use on every response. SOQL is built with ``format_soql``, never by string formatting.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.format import format_soql

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
from connectors.errors import CrmRateLimited, CrmRejected

SALESFORCE_BATCH = 200  # records per sObject Collections call: Salesforce's cap
BULK_THRESHOLD = 2_000  # changed members above which Leads go by Bulk API 2.0 (one job, not N calls)
EXTERNAL_ID = "Flywheel_Member_Id__c"
TIMEOUT_S = 30.0
STOP_AT_SHARE = 0.95  # of the day's API allowance: stop before the org's own integrations starve
CONVERTED = "CANNOT_UPDATE_CONVERTED_LEAD"
ERASED_NAME = "(erased)"  # an anonymized record's LastName, which Salesforce requires
NUMBER_TYPES = {"double", "percent", "currency", "int", "long"}
_STANDARD = {"firstname": "FirstName", "lastname": "LastName", "company": "Company", "email": "Email"}
_SF_TYPES = {
    "string": "Text(255)",
    "text": "Long Text Area(32768)",
    "number": "Number(18, 4)",
    "datetime": "Date/Time",
}


def sf_name(name: str) -> str:
    """A Flywheel field name as Salesforce's: ``flywheel_advocate_score`` is the custom field
    ``Flywheel_Advocate_Score__c``; a name already in Salesforce's form is kept."""
    if name in _STANDARD:
        return _STANDARD[name]
    if name.endswith("__c") or name[:1].isupper():
        return name
    return "_".join(part.capitalize() for part in name.split("_")) + "__c"


def classify(exc: BaseException) -> Failure | None:
    """simple-salesforce's exceptions (raised by HTTP status) to what to do, as a table."""
    if isinstance(exc, requests.exceptions.Timeout | requests.exceptions.ConnectionError):
        return Failure("transient", f"network: {type(exc).__name__}")
    if isinstance(exc, SalesforceExpiredSession | SalesforceAuthenticationFailed):
        return Failure("auth", "Salesforce: session expired or invalid")
    codes = _codes(exc)
    text = f"Salesforce {getattr(exc, 'status', '')} {', '.join(codes)}".strip()
    if "REQUEST_LIMIT_EXCEEDED" in codes:
        return Failure("daily", text)
    if isinstance(exc, SalesforceRefusedRequest):
        return Failure("auth", text)
    if isinstance(exc, SalesforceMalformedRequest | SalesforceResourceNotFound):
        return Failure("rejected", text)
    if isinstance(exc, SalesforceGeneralError):
        status = int(getattr(exc, "status", 500) or 500)
        if status == 429:  # too many at once (concurrency): wait, then go on
            return Failure("rate", text, 1.0)
        return Failure("transient" if status >= 500 else "rejected", text)
    return None


def _codes(exc: BaseException) -> list[str]:
    content = getattr(exc, "content", None)
    if isinstance(content, list):
        return [str(e.get("errorCode")) for e in content if isinstance(e, dict) and e.get("errorCode")]
    return []


class SalesforceAdapter:
    """One Salesforce org, through a logged-in simple-salesforce client (any of its login flows)."""

    batch_size = SALESFORCE_BATCH
    companies = False  # Accounts are left to the org's own matching rules for now

    def __init__(
        self,
        client: Salesforce,
        *,
        timeout: float = TIMEOUT_S,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_attempts: int = 6,
        bulk_threshold: int = BULK_THRESHOLD,
        bulk_poll_s: int = 5,
    ) -> None:
        self._sf: Any = client  # simple-salesforce's sObject attributes are dynamic
        self.bulk_threshold = bulk_threshold  # above this many changed members, Leads go by Bulk API 2.0
        self._bulk_poll_s = bulk_poll_s
        self._timeout = timeout
        self.window = Window(clock=clock)
        errors = (SalesforceError, requests.exceptions.Timeout, requests.exceptions.ConnectionError)
        self.retrier = Retrier(self.window, classify, errors, sleep=sleep, max_attempts=max_attempts)
        self.calls: Counter[str] = Counter()
        self._fields: dict[str, dict[str, str]] = {}  # sObject -> field name -> type

    # -- the wire ------------------------------------------------------------------------------

    def _call(self, name: str, call: Callable[[], Any]) -> Any:
        def once() -> Any:
            self.calls[name] += 1
            got = call()
            self._check_usage()
            return got

        return self.retrier.run(once)

    def _check_usage(self) -> None:
        usage = (getattr(self._sf, "api_usage", None) or {}).get("api-usage")
        if usage is not None and usage.total and usage.used >= STOP_AT_SHARE * usage.total:
            raise CrmRateLimited(
                f"Salesforce API use is at {usage.used:,} of {usage.total:,} for the day; "
                f"the sync stops at {STOP_AT_SHARE:.0%}",
                0.0,
                daily=True,
            )

    def _rest(self, name: str, path: str, method: str = "GET", **kwargs: Any) -> Any:
        return self._call(
            name, lambda: self._sf.restful(path, method=method, timeout=self._timeout, **kwargs)
        )

    def _query(self, name: str, soql: str) -> list[dict[str, Any]]:
        got = self._call(name, lambda: self._sf.query_all(soql, timeout=self._timeout))
        return list(got.get("records") or [])

    def _describe(self, sobject: str) -> dict[str, str]:
        if sobject not in self._fields:
            got = self._rest(f"{sobject}.describe", f"sobjects/{sobject}/describe")
            self._fields[sobject] = {f["name"]: f["type"] for f in got["fields"]}
        return self._fields[sobject]

    # -- the adapter ---------------------------------------------------------------------------

    def check(self) -> None:
        """One authenticated call (Contact's describe, which every sync needs anyway)."""
        self._fields.pop("Contact", None)
        self._describe("Contact")

    def ensure_schema(self, specs: Sequence[PropertySpec]) -> SchemaReport:
        """Salesforce fields are made by an admin: this checks with describe() that every field
        Flywheel writes exists on Contact and Lead, and names exactly what to create when not."""
        report = SchemaReport()
        wanted = [(EXTERNAL_ID, "Text(64), External ID, Unique")] + [
            (sf_name(s.name), _SF_TYPES.get(s.kind, "Text(255)"))
            for s in specs
            if s.name != "flywheel_member_id"
        ]
        missing: list[str] = []
        for sobject in ("Contact", "Lead"):
            have = self._describe(sobject)
            for name, kind in wanted:
                (report.present if name in have else missing).append(
                    f"{sobject}.{name}" + ("" if name in have else f" ({kind})")
                )
        if missing:
            raise CrmRejected(
                "these custom fields are missing in Salesforce; create them (Setup > Object Manager > "
                "Fields & Relationships), then sync again: " + "; ".join(missing)
            )
        return report

    def upsert_contacts(self, records: Sequence[CrmRecord]) -> list[Outcome]:
        out: list[Outcome] = []
        for start in range(0, len(records), SALESFORCE_BATCH):
            out += self._upsert_batch(records[start : start + SALESFORCE_BATCH])
        return out

    def upsert_bulk(self, records: Sequence[CrmRecord]) -> list[Outcome]:
        """Many members at once: Contacts found by email are updated with collections; the Leads go
        in one Bulk API 2.0 upsert job (polled until done), its results read back per record."""
        return self._upsert_batch(records, bulk=True)

    def _upsert_batch(self, records: Sequence[CrmRecord], *, bulk: bool = False) -> list[Outcome]:
        """An existing Contact with the member's email wins; everyone else is a Lead keyed by the
        member id. A Lead converted since is followed to its Contact."""
        emails = sorted({r.email for r in records})
        contacts: dict[str, str] = {}
        for start in range(0, len(emails), SALESFORCE_BATCH):
            soql = format_soql(
                "SELECT Id, Email FROM Contact WHERE Email IN {}", emails[start : start + SALESFORCE_BATCH]
            )
            for row in self._query("Contact.query", soql):
                contacts.setdefault(str(row["Email"]).lower(), str(row["Id"]))
        on_contact = [r for r in records if r.email in contacts]
        as_lead = [r for r in records if r.email not in contacts]
        outcomes = {o.key: o for o in self._update_contacts([(r, contacts[r.email]) for r in on_contact])}
        converted: list[CrmRecord] = []
        lead_outcomes = self._bulk_leads(as_lead) if bulk else self._upsert_leads(as_lead)
        for o, r in zip(lead_outcomes, as_lead, strict=True):
            if o.status == "failed" and CONVERTED in (o.reason or ""):
                converted.append(r)
            else:
                outcomes[o.key] = o
        if converted:
            keys = [r.key for r in converted]
            soql = format_soql(
                "SELECT Flywheel_Member_Id__c, ConvertedContactId FROM Lead "
                "WHERE Flywheel_Member_Id__c IN {}",
                keys,
            )
            target = {
                str(row[EXTERNAL_ID]): str(row["ConvertedContactId"])
                for row in self._query("Lead.query", soql)
            }
            followed = [(r, target[r.key]) for r in converted if target.get(r.key)]
            for o in self._update_contacts(followed):
                outcomes[o.key] = o
            for r in converted:
                outcomes.setdefault(
                    r.key, Outcome(r.key, "failed", reason="converted Lead without a Contact")
                )
        return [outcomes[r.key] for r in records]

    def _values(self, sobject: str, record: CrmRecord, *, lead: bool) -> dict[str, Any]:
        types = self._describe(sobject)
        values: dict[str, Any] = {}
        for name, value in record.properties.items():
            field = sf_name(name)
            if field == "Company" and not lead:
                continue  # a Contact's company is its Account
            values[field] = _typed(types.get(field, "string"), value)
        values[EXTERNAL_ID] = record.key
        values["Email"] = record.email
        if lead and not values.get("LastName"):  # required on a new Lead; a Contact's is sales-owned
            values["LastName"] = values.pop("FirstName", None) or record.email.split("@")[0]
        if lead and not values.get("Company"):
            values["Company"] = record.email.split("@")[-1]
        return values

    def _update_contacts(self, pairs: Sequence[tuple[CrmRecord, str]]) -> list[Outcome]:
        if len(pairs) > SALESFORCE_BATCH:
            return [
                o
                for i in range(0, len(pairs), SALESFORCE_BATCH)
                for o in self._update_contacts(pairs[i : i + SALESFORCE_BATCH])
            ]
        if not pairs:
            return []
        body = {
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Contact"}, "id": cid, **self._values("Contact", r, lead=False)}
                for r, cid in pairs
            ],
        }
        results = self._rest("Contact.collections_update", "composite/sobjects", "PATCH", json=body)
        return [_outcome(r.key, res, created=False) for (r, _), res in zip(pairs, results, strict=True)]

    def _upsert_leads(self, records: Sequence[CrmRecord]) -> list[Outcome]:
        if len(records) > SALESFORCE_BATCH:
            return [
                o
                for i in range(0, len(records), SALESFORCE_BATCH)
                for o in self._upsert_leads(records[i : i + SALESFORCE_BATCH])
            ]
        if not records:
            return []
        body = {
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Lead"}, **self._values("Lead", r, lead=True)} for r in records
            ],
        }
        results = self._rest(
            "Lead.collections_upsert", f"composite/sobjects/Lead/{EXTERNAL_ID}", "PATCH", json=body
        )
        return [_outcome(r.key, res, created=None) for r, res in zip(records, results, strict=True)]

    def _bulk_leads(self, records: Sequence[CrmRecord]) -> list[Outcome]:
        if not records:
            return []
        rows = [self._values("Lead", r, lead=True) for r in records]
        columns = sorted({k for row in rows for k in row})
        text_rows = [{c: "" if row.get(c) is None else str(row[c]) for c in columns} for row in rows]
        bulk = self._sf.bulk2.Lead
        jobs = self._call(
            "Lead.bulk_upsert",
            lambda: bulk.upsert(records=text_rows, external_id_field=EXTERNAL_ID, wait=self._bulk_poll_s),
        )
        results: dict[str, Outcome] = {}
        for job in jobs:
            job_id = str(job["job_id"])
            good: str = self._call("Lead.bulk_results", partial(bulk.get_successful_records, job_id))
            bad: str = self._call("Lead.bulk_failures", partial(bulk.get_failed_records, job_id))
            for row in csv.DictReader(io.StringIO(good)):
                made = str(row.get("sf__Created", "")).lower() == "true"
                key = row[EXTERNAL_ID]
                results[key] = Outcome(key, "created" if made else "updated", crm_id=row.get("sf__Id"))
            for row in csv.DictReader(io.StringIO(bad)):
                key = row[EXTERNAL_ID]
                results[key] = Outcome(key, "failed", reason=row.get("sf__Error") or "refused")
        return [
            results.get(r.key) or Outcome(r.key, "failed", reason="not in the Bulk job's results")
            for r in records
        ]

    def create_notes(self, notes: Sequence[CrmNote]) -> list[Outcome]:
        """Signals as completed Tasks on the Contact or Lead (``WhoId``), 200 a call."""
        out: list[Outcome] = []
        for start in range(0, len(notes), SALESFORCE_BATCH):
            part = notes[start : start + SALESFORCE_BATCH]
            body = {
                "allOrNone": False,
                "records": [
                    {
                        "attributes": {"type": "Task"},
                        "WhoId": n.contact_id,
                        "Subject": "Flywheel: " + _plain(n.body)[:200],
                        "Description": _plain(n.body)[:32000],
                        "ActivityDate": n.timestamp.astimezone(UTC).date().isoformat(),
                        "Status": "Completed",
                    }
                    for n in part
                ],
            }
            results = self._rest("Task.collections_create", "composite/sobjects", "POST", json=body)
            out += [_outcome(n.key, res, created=True) for n, res in zip(part, results, strict=True)]
        return out

    def add_to_list(self, name: str, contact_ids: Sequence[str]) -> tuple[str, int]:
        """Put Contacts and Leads in a Campaign (made when none has that name) as CampaignMembers,
        200 a call; someone already a member counts as done (``DUPLICATE_VALUE``). Returns the
        Campaign id and how many were added."""
        found = self._query("Campaign.query", format_soql("SELECT Id FROM Campaign WHERE Name = {}", name))
        if found:
            campaign = str(found[0]["Id"])
        else:
            made = self._rest(
                "Campaign.create", "sobjects/Campaign", "POST", json={"Name": name, "IsActive": True}
            )
            campaign = str(made["id"])
        added = 0
        for start in range(0, len(contact_ids), SALESFORCE_BATCH):
            part = contact_ids[start : start + SALESFORCE_BATCH]
            body = {
                "allOrNone": False,
                "records": [
                    {
                        "attributes": {"type": "CampaignMember"},
                        "CampaignId": campaign,
                        ("LeadId" if who.startswith("00Q") else "ContactId"): who,
                    }
                    for who in part
                ],
            }
            results = self._rest("CampaignMember.collections_create", "composite/sobjects", "POST", json=body)
            for res in results:
                codes = {e.get("statusCode") for e in res.get("errors") or []}
                if res.get("success"):
                    added += 1
                elif codes != {"DUPLICATE_VALUE"}:
                    raise CrmRejected(
                        f"Salesforce refused a campaign member: {', '.join(sorted(map(str, codes)))}"
                    )
        return campaign, added

    def delete_contact(self, crm_id: str) -> bool:
        """Delete the Contact or Lead (by its id's prefix) as ``sf.Contact.delete(id)`` does:
        ``DELETE sobjects/{type}/{id}``, 204 with no body. False when Salesforce answers 404
        (NOT_FOUND, or ENTITY_IS_DELETED for one already in the recycle bin): it is gone already."""
        sobject = _sobject_of(crm_id)
        try:
            self._rest(f"{sobject}.delete", f"sobjects/{sobject}/{crm_id}", "DELETE")
        except CrmRejected as exc:
            if isinstance(exc.__cause__, SalesforceResourceNotFound):
                return False
            raise
        return True

    def anonymize_contact(self, crm_id: str, fields: Sequence[str]) -> bool:
        """Blank the record's email, names and every field Flywheel wrote (``fields``, Flywheel's
        names), keeping the record: ``PATCH sobjects/{type}/{id}`` with nulls. LastName is required
        on Contacts and Leads and a Lead's Company too, so LastName becomes ``ERASED_NAME`` and the
        Company (an organization, not the person) stays. False when Salesforce answers 404."""
        sobject = _sobject_of(crm_id)
        have = self._describe(sobject)
        names = {sf_name(f) for f in fields} | {"Email", "FirstName", "LastName", EXTERNAL_ID}
        values: dict[str, Any] = {n: None for n in sorted(names) if n in have and n != "Company"}
        values["LastName"] = ERASED_NAME
        try:
            self._rest(f"{sobject}.update", f"sobjects/{sobject}/{crm_id}", "PATCH", json=values)
        except CrmRejected as exc:
            if isinstance(exc.__cause__, SalesforceResourceNotFound):
                return False
            raise
        return True

    def find_companies(self, domains: Sequence[str]) -> dict[str, str]:
        return {}

    def write_companies(self, companies: Sequence[CrmCompany]) -> list[Outcome]:
        return []

    def associate_contacts(self, pairs: Sequence[tuple[str, str]]) -> None:
        return None

    def read_contacts(self) -> Iterator[CrmContact]:
        """Contacts (no lifecycle stage of their own: a won Opportunity says customer) and Leads
        (their Status), with their owners."""
        for row in self._query("Contact.query", "SELECT Id, Email, OwnerId FROM Contact"):
            yield CrmContact(str(row["Id"]), row.get("Email"), None, row.get("OwnerId"))
        for row in self._query(
            "Lead.query", "SELECT Id, Email, OwnerId, Status FROM Lead WHERE IsConverted = false"
        ):  # a Lead's Status is where it stands in the CRM: kept as the member's stage
            yield CrmContact(str(row["Id"]), row.get("Email"), row.get("Status") or None, row.get("OwnerId"))

    def read_deals(self) -> Iterator[CrmDeal]:
        soql = (
            "SELECT Id, Name, StageName, IsWon, IsClosed, Amount, CloseDate, ContactId, AccountId "
            "FROM Opportunity"
        )
        for row in self._query("Opportunity.query", soql):
            contact = row.get("ContactId")
            yield CrmDeal(
                str(row["Id"]),
                row.get("Name"),
                row.get("StageName"),
                bool(row.get("IsWon")),
                bool(row.get("IsClosed")),
                float(row["Amount"]) if row.get("Amount") is not None else None,
                row.get("CloseDate"),
                (str(contact),) if contact else (),
                (str(row["AccountId"]),) if row.get("AccountId") else (),
            )


def _sobject_of(record_id: str) -> str:
    """Lead ids start with 00Q; Flywheel's other records are Contacts (003)."""
    return "Lead" if record_id.startswith("00Q") else "Contact"


def _typed(kind: str, value: str) -> Any:
    if kind in NUMBER_TYPES:
        try:
            return float(value)
        except ValueError:
            return None
    if kind == "boolean":
        return value == "true"
    if kind == "datetime" and value.isdigit():  # epoch milliseconds
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
    return value


def _outcome(key: str, result: dict[str, Any], *, created: bool | None) -> Outcome:
    if result.get("success"):
        made = result.get("created") if created is None else created
        return Outcome(key, "created" if made else "updated", crm_id=str(result.get("id")))
    errors = result.get("errors") or []
    reason = "; ".join(f"{e.get('statusCode')}: {e.get('message')}" for e in errors) or "refused"
    return Outcome(key, "failed", reason=reason)


def _plain(html_text: str) -> str:
    text = re.sub(r"</(p|li)>", "\n", html_text)
    return re.sub(r"<[^>]+>", "", text).strip()
