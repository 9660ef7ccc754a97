"""The Salesforce fake driven by the real simple-salesforce, over TLS on 127.0.0.1.

Each test gets its own fake (the ``salesforce_fake`` fixture) on an ephemeral port with its own
``trustme`` CA; nothing leaves the machine. Logins reach the fake through ``fake.session()``, whose
adapter sends simple-salesforce's ``https://{domain}.salesforce.com`` requests to it.
"""

from __future__ import annotations

import csv
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceOperationError,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.util import Usage

from tests.fakes.salesforce_store import to_18

if TYPE_CHECKING:  # imported by pytest as a plugin (below); importing it here first would skip that
    from tests.fakes.salesforce import SalesforceFake


MEMBER_ID = "Flywheel_Member_Id__c"
QUERY = "/services/data/vXX.X/query"
UPSERT_CONTACTS = "/services/data/vXX.X/composite/sobjects/Contact/{field}"


@pytest.fixture
def fake(salesforce_fake: SalesforceFake) -> SalesforceFake:
    """The fake with Flywheel's external id on Contact and Lead, as the admin guide asks for."""
    salesforce_fake.add_field("Contact", MEMBER_ID, external_id=True, unique=True)
    salesforce_fake.add_field("Lead", MEMBER_ID, external_id=True, unique=True)
    return salesforce_fake


@pytest.fixture
def sf(fake: SalesforceFake) -> Salesforce:
    return fake.client()


def contact(member: str, last: str, **more: Any) -> dict[str, Any]:
    return {"attributes": {"type": "Contact"}, MEMBER_ID: member, "LastName": last, **more}


def upsert(sf: Salesforce, sobject: str, records: list[dict[str, Any]], all_or_none: bool = False) -> Any:
    body = {"allOrNone": all_or_none, "records": records}
    return sf.restful(f"composite/sobjects/{sobject}/{MEMBER_ID}", method="PATCH", json=body)


def error_code(exc: Exception) -> str:
    content = getattr(exc, "content", None)
    assert isinstance(content, list), content
    return str(content[0]["errorCode"])


# -- logins ----------------------------------------------------------------------------------------


def test_password_and_token_log_in_through_soap(fake: SalesforceFake) -> None:
    sf = Salesforce(
        username=fake.username,
        password=fake.password,
        security_token=fake.security_token,
        session=fake.session(),
    )
    assert sf.sf_instance == fake.instance_url.removeprefix("https://")
    assert sf.query("SELECT Id FROM Contact")["totalSize"] == 0
    assert fake.count("POST", "/services/Soap/u/XX.X") == 1

    with pytest.raises(SalesforceAuthenticationFailed) as refused:
        Salesforce(
            username=fake.username,
            password="wrong",
            security_token=fake.security_token,
            session=fake.session(),
        )
    assert refused.value.code == "INVALID_LOGIN"


def test_a_jwt_signed_with_the_registered_key_logs_in(fake: SalesforceFake) -> None:
    key = fake.generate_jwt_key()
    sf = Salesforce(
        username=fake.username, consumer_key=fake.consumer_key, privatekey=key, session=fake.session()
    )
    assert sf.query("SELECT Id FROM Lead")["done"] is True
    assert fake.count("POST", "/services/oauth2/token") == 1

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )  # a key the app does not know: its assertion's signature does not verify
    with pytest.raises(SalesforceAuthenticationFailed) as refused:
        Salesforce(
            username=fake.username,
            consumer_key=fake.consumer_key,
            privatekey=stranger.decode(),
            session=fake.session(),
        )
    assert refused.value.code == "invalid_grant"
    assert refused.value.auth_message == "invalid assertion"


def test_client_credentials_log_in_on_a_my_domain(fake: SalesforceFake) -> None:
    sf = Salesforce(
        consumer_key=fake.consumer_key,
        consumer_secret=fake.consumer_secret,
        domain="flywheel-dev.my",
        session=fake.session(),
    )
    assert sf.auth_type == "client-credentials"
    assert sf.Contact.create({"LastName": "Hopper"})["success"] is True

    with pytest.raises(SalesforceAuthenticationFailed) as refused:
        Salesforce(
            consumer_key=fake.consumer_key,
            consumer_secret="nope",
            domain="flywheel-dev.my",
            session=fake.session(),
        )
    assert refused.value.code == "invalid_client"


def test_the_token_answer_has_the_documented_fields(fake: SalesforceFake) -> None:
    session = fake.session()
    answer = session.post(
        "https://login.salesforce.com/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": fake.consumer_key,
            "client_secret": fake.consumer_secret,
            "username": fake.username,
            "password": fake.password + fake.security_token,
        },
    )
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"access_token", "instance_url", "id", "token_type", "issued_at", "signature"}
    assert body["instance_url"] == fake.instance_url
    assert body["id"].startswith("https://login.salesforce.com/id/00D")
    wrong = session.post(
        "https://login.salesforce.com/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": fake.consumer_key,
            "client_secret": fake.consumer_secret,
            "username": fake.username,
            "password": fake.password,  # without the security token
        },
    )
    assert (wrong.status_code, wrong.json()) == (
        400,
        {"error": "invalid_grant", "error_description": "authentication failure"},
    )


def test_the_server_is_real_tls_signed_by_the_fakes_own_ca(fake: SalesforceFake) -> None:
    plain = requests.Session()
    plain.trust_env = False
    with pytest.raises(requests.exceptions.SSLError):
        plain.get(fake.instance_url + "/services/data/v59.0/sobjects")
    assert Path(fake.ca_bundle).read_text().startswith("-----BEGIN CERTIFICATE-----")


# -- sessions and limits ---------------------------------------------------------------------------


def test_an_expired_session_raises_expired_session(fake: SalesforceFake, sf: Salesforce) -> None:
    sf.query("SELECT Id FROM Contact")
    fake.expire_sessions()
    with pytest.raises(SalesforceExpiredSession) as expired:
        sf.query("SELECT Id FROM Contact")
    assert expired.value.content == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


def test_a_logged_in_client_logs_in_again_when_its_session_expires(fake: SalesforceFake) -> None:
    sf = Salesforce(
        username=fake.username,
        password=fake.password,
        security_token=fake.security_token,
        session=fake.session(),
    )
    fake.expire_sessions()
    assert sf.query("SELECT Id FROM Contact")["done"] is True
    assert fake.count("POST", "/services/Soap/u/XX.X") == 2


def test_every_rest_answer_carries_sforce_limit_info(fake: SalesforceFake, sf: Salesforce) -> None:
    sf.query("SELECT Id FROM Contact")
    assert sf.api_usage["api-usage"] == Usage(used=1, total=15000)
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Contact.create({"FirstName": "no last name"})
    response = sf.session.get(
        f"{fake.instance_url}/services/data/v59.0/sobjects/Contact/describe", headers=sf.headers
    )
    assert response.headers["Sforce-Limit-Info"] == "api-usage=3/15000"
    assert error_code(refused.value) == "REQUIRED_FIELD_MISSING"
    assert fake.api_usage == (3, 15000)


def test_past_the_daily_total_requests_are_refused_403(fake: SalesforceFake, sf: Salesforce) -> None:
    fake.daily_api_limit = 100
    fake.set_api_usage(99)
    sf.query("SELECT Id FROM Contact")
    assert sf.api_usage["api-usage"] == Usage(used=100, total=100)
    with pytest.raises(SalesforceRefusedRequest) as refused:
        sf.query("SELECT Id FROM Contact")
    assert refused.value.status == 403
    assert refused.value.content == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    assert fake.api_usage == (100, 100)  # a refused call is not counted


def test_the_limit_error_on_demand(fake: SalesforceFake, sf: Salesforce) -> None:
    fake.rate_limit("GET", QUERY, nth=2)
    sf.query("SELECT Id FROM Contact")
    with pytest.raises(SalesforceRefusedRequest) as refused:
        sf.query("SELECT Id FROM Contact")
    assert error_code(refused.value) == "REQUEST_LIMIT_EXCEEDED"
    sf.query("SELECT Id FROM Contact")


# -- describe, records and SOQL --------------------------------------------------------------------


def test_describe_lists_a_custom_field_once_it_is_created(salesforce_fake: SalesforceFake) -> None:
    sf = salesforce_fake.client()
    names = {f["name"] for f in sf.Contact.describe()["fields"]}
    assert {"Id", "LastName", "Email", "AccountId"} <= names
    assert MEMBER_ID not in names

    salesforce_fake.add_field("Contact", MEMBER_ID, external_id=True)
    salesforce_fake.add_field("Contact", "Flywheel_Advocate_Score__c", type="double")
    fields = {f["name"]: f for f in sf.Contact.describe()["fields"]}
    member = fields[MEMBER_ID]
    assert (member["type"], member["externalId"], member["idLookup"], member["custom"]) == (
        "string",
        True,
        True,
        True,
    )
    assert (member["createable"], member["updateable"]) == (True, True)
    assert fields["Flywheel_Advocate_Score__c"]["type"] == "double"
    assert (fields["Id"]["createable"], fields["Id"]["custom"]) == (False, False)
    assert sf.Lead.describe()["keyPrefix"] == "00Q"


def test_a_write_to_a_missing_field_is_invalid_field(salesforce_fake: SalesforceFake) -> None:
    sf = salesforce_fake.client()
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Contact.create({"LastName": "Ng", MEMBER_ID: "m-1"})
    assert refused.value.content == [
        {"message": f"No such column '{MEMBER_ID}' on sobject of type Contact", "errorCode": "INVALID_FIELD"}
    ]


def test_required_fields_are_named(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Lead.create({"FirstName": "Ann"})
    assert refused.value.content == [
        {
            "message": "Required fields are missing: [LastName, Company]",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": ["LastName", "Company"],
        }
    ]


def test_records_have_18_character_ids_with_the_object_prefix(fake: SalesforceFake, sf: Salesforce) -> None:
    made = {
        "Contact": sf.Contact.create({"LastName": "Ng"})["id"],
        "Lead": sf.Lead.create({"LastName": "Ng", "Company": "Acme"})["id"],
        "Account": sf.Account.create({"Name": "Acme"})["id"],
        "Campaign": sf.Campaign.create({"Name": "Launch"})["id"],
    }
    made["Opportunity"] = sf.Opportunity.create(
        {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2025-01-31", "AccountId": made["Account"]}
    )["id"]
    made["Task"] = sf.Task.create({"Subject": "Call", "WhoId": made["Contact"]})["id"]
    made["CampaignMember"] = sf.CampaignMember.create(
        {"CampaignId": made["Campaign"], "ContactId": made["Contact"]}
    )["id"]
    prefixes = {k: v[:3] for k, v in made.items()}
    assert prefixes == {
        "Contact": "003",
        "Lead": "00Q",
        "Account": "001",
        "Campaign": "701",
        "Opportunity": "006",
        "Task": "00T",
        "CampaignMember": "00v",
    }
    assert all(len(v) == 18 and v == to_18(v[:15]) for v in made.values())
    assert to_18("00558000001N0Ke") == "00558000001N0KeAAK"  # a published 15-to-18 pair
    assert sf.Contact.get(made["Contact"][:15])["Id"] == made["Contact"]  # a 15-character id finds it too
    with pytest.raises(SalesforceResourceNotFound):
        sf.Contact.get(made["Contact"][:14] + "Z")


def test_single_upsert_by_external_id_is_201_then_200(sf: Salesforce) -> None:
    created = sf.Contact.upsert(f"{MEMBER_ID}/m-7", {"LastName": "Ito"}, raw_response=True)
    assert (created.status_code, created.json()["created"]) == (201, True)
    updated = sf.Contact.upsert(f"{MEMBER_ID}/m-7", {"FirstName": "Aki"}, raw_response=True)
    assert (updated.status_code, updated.json()["created"]) == (200, False)
    assert updated.json()["id"] == created.json()["id"]
    assert sf.Contact.get_by_custom_id(MEMBER_ID, "m-7")["FirstName"] == "Aki"


def test_query_filters_with_equals_in_and_limit(fake: SalesforceFake, sf: Salesforce) -> None:
    for i, email in enumerate(["a@example.org", "b@example.org", "c@example.org"]):
        fake.insert("Contact", LastName=f"L{i}", Email=email, **{MEMBER_ID: f"m-{i}"})
    found = sf.query(
        f"SELECT Id, Email, {MEMBER_ID} FROM Contact WHERE Email IN ('A@example.org', 'c@example.org') "
        f"AND {MEMBER_ID} != 'm-9' ORDER BY Email DESC LIMIT 5"
    )
    assert found["totalSize"] == 2 and found["done"] is True
    assert [r["Email"] for r in found["records"]] == ["c@example.org", "a@example.org"]
    first = found["records"][0]
    assert list(first) == ["attributes", "Id", "Email", MEMBER_ID]
    assert first["attributes"] == {
        "type": "Contact",
        "url": f"/services/data/v59.0/sobjects/Contact/{first['Id']}",
    }
    assert sf.query(f"SELECT Id FROM Contact WHERE {MEMBER_ID} = 'm-1' LIMIT 1")["totalSize"] == 1

    with pytest.raises(SalesforceMalformedRequest) as bad:
        sf.query("SELECT Id FROM Contact WHERE")
    assert error_code(bad.value) == "MALFORMED_QUERY"
    with pytest.raises(SalesforceMalformedRequest) as unknown:
        sf.query("SELECT Nope__c FROM Contact")
    assert error_code(unknown.value) == "INVALID_FIELD"


def test_query_all_follows_next_records_url(fake: SalesforceFake, sf: Salesforce) -> None:
    fake.store.query_batch_size = 2
    for i in range(5):
        fake.insert("Lead", LastName=f"L{i}", Company="Acme")
    first = sf.query("SELECT Id, LastName FROM Lead")
    assert (first["totalSize"], first["done"], len(first["records"])) == (5, False, 2)
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    everything = sf.query_all("SELECT Id, LastName FROM Lead")
    assert [r["LastName"] for r in everything["records"]] == [f"L{i}" for i in range(5)]
    assert fake.count("GET", "/services/data/vXX.X/query/{locator}") == 2


# -- sObject Collections ---------------------------------------------------------------------------


def test_200_contacts_upsert_in_order_and_201_are_refused(fake: SalesforceFake, sf: Salesforce) -> None:
    fake.insert("Contact", LastName="Existing", **{MEMBER_ID: "m-100"})
    records = [contact(f"m-{i}", f"Last {i}") for i in range(200)]
    results = upsert(sf, "Contact", records)
    assert len(results) == 200
    assert [r["created"] for r in results[99:102]] == [True, False, True]
    assert all(r["success"] and r["errors"] == [] for r in results)
    by_member = {r[MEMBER_ID]: r["Id"] for r in fake.records("Contact")}
    assert [r["id"] for r in results] == [by_member[f"m-{i}"] for i in range(200)]

    with pytest.raises(SalesforceMalformedRequest) as too_many:
        upsert(sf, "Contact", [*records, contact("m-200", "One too many")])
    assert too_many.value.content == [
        {
            "message": "record limit reached. cannot submit more than 200 records into this call",
            "errorCode": "EXCEEDED_ID_LIMIT",
        }
    ]
    assert len(fake.records("Contact")) == 200


def test_a_converted_lead_refuses_writes(fake: SalesforceFake, sf: Salesforce) -> None:
    lead = fake.insert(
        "Lead", LastName="Diaz", Company="Acme", Email="rosa@example.org", **{MEMBER_ID: "m-1"}
    )
    fake.insert("Lead", LastName="Kim", Company="Initech", **{MEMBER_ID: "m-2"})
    contact_id = fake.convert_lead(lead)
    row = sf.query(f"SELECT IsConverted, ConvertedContactId FROM Lead WHERE Id = '{lead}'")["records"][0]
    assert (row["IsConverted"], row["ConvertedContactId"]) == (True, contact_id)
    assert fake.record("Contact", contact_id)["Email"] == "rosa@example.org"

    leads = [
        {"attributes": {"type": "Lead"}, MEMBER_ID: "m-1", "Title": "CTO"},
        {"attributes": {"type": "Lead"}, MEMBER_ID: "m-2", "Title": "CEO"},
    ]
    results = upsert(sf, "Lead", leads)
    assert results[0] == {
        "id": None,
        "success": False,
        "errors": [
            {
                "statusCode": "CANNOT_UPDATE_CONVERTED_LEAD",
                "message": "cannot reference converted lead",
                "fields": [],
            }
        ],
    }
    assert results[1]["success"] is True
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Lead.update(lead, {"Title": "CTO"})
    assert error_code(refused.value) == "CANNOT_UPDATE_CONVERTED_LEAD"


def test_a_duplicate_rule_refuses_a_second_contact_with_the_email(
    fake: SalesforceFake, sf: Salesforce
) -> None:
    fake.enable_duplicate_rule("Contact", "Email")
    fake.insert("Contact", LastName="Ong", Email="li@example.org")
    results = upsert(sf, "Contact", [contact("m-1", "Ong", Email="LI@example.org"), contact("m-2", "Ray")])
    assert results[0]["errors"] == [
        {"statusCode": "DUPLICATES_DETECTED", "message": "Use one of these records?", "fields": []}
    ]
    assert results[1]["created"] is True
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Contact.create({"LastName": "Ong", "Email": "li@example.org"})
    assert error_code(refused.value) == "DUPLICATES_DETECTED"


def test_all_or_none_rolls_back_every_record(fake: SalesforceFake, sf: Salesforce) -> None:
    results = upsert(sf, "Contact", [contact("m-1", "Ok"), contact("m-2", "")], all_or_none=True)
    assert [r["success"] for r in results] == [False, False]
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert fake.records("Contact") == []


def test_a_contact_joins_a_campaign_once(fake: SalesforceFake, sf: Salesforce) -> None:
    campaign = fake.insert("Campaign", Name="Summit")
    person = fake.insert("Contact", LastName="Ali")
    member = {"attributes": {"type": "CampaignMember"}, "CampaignId": campaign, "ContactId": person}
    results = sf.restful(
        "composite/sobjects", method="POST", json={"allOrNone": False, "records": [member, member]}
    )
    assert results[0]["success"] is True
    assert results[1]["errors"] == [
        {"statusCode": "DUPLICATE_VALUE", "message": "Already a campaign member.", "fields": []}
    ]


def test_collections_update_by_id(fake: SalesforceFake, sf: Salesforce) -> None:
    first = fake.insert("Contact", LastName="One")
    body = {
        "allOrNone": False,
        "records": [
            {"attributes": {"type": "Contact"}, "id": first, "Title": "VP"},
            {"attributes": {"type": "Contact"}, "id": "003Fw0000000zzzAAA", "Title": "VP"},
        ],
    }
    results = sf.restful("composite/sobjects", method="PATCH", json=body)
    assert results[0] == {"id": first, "success": True, "errors": []}
    assert results[1]["errors"][0]["statusCode"] == "NOT_FOUND"
    assert fake.record("Contact", first)["Title"] == "VP"


# -- Bulk API 2.0 ----------------------------------------------------------------------------------


def test_bulk2_upsert_through_simple_salesforce_with_result_csvs(
    fake: SalesforceFake, sf: Salesforce
) -> None:
    fake.insert("Contact", LastName="Before", **{MEMBER_ID: "m-0"})
    rows = [
        {MEMBER_ID: "m-0", "LastName": "After"},
        {MEMBER_ID: "m-1", "LastName": "New"},
        {MEMBER_ID: "m-2", "LastName": ""},  # an empty cell is ignored, so the insert lacks LastName
    ]
    outcome = sf.bulk2.Contact.upsert(records=rows, external_id_field=MEMBER_ID, wait=0)
    assert outcome == [
        {
            "numberRecordsFailed": 1,
            "numberRecordsProcessed": 3,
            "numberRecordsTotal": 3,
            "job_id": outcome[0]["job_id"],
        }
    ]
    job_id = outcome[0]["job_id"]
    assert job_id.startswith("750")
    # polled while InProgress, then JobComplete, then read once more for the counts
    assert fake.count("GET", "/services/data/vXX.X/jobs/ingest/{jobId}") == 3

    done = list(csv.DictReader(sf.bulk2.Contact.get_successful_records(job_id).splitlines()))
    assert sorted((r[MEMBER_ID], r["sf__Created"]) for r in done) == [("m-0", "false"), ("m-1", "true")]
    assert all(r["sf__Id"].startswith("003") for r in done)
    failed = list(csv.DictReader(sf.bulk2.Contact.get_failed_records(job_id).splitlines()))
    assert [(r[MEMBER_ID], r["sf__Error"].split(":")[0]) for r in failed] == [
        ("m-2", "REQUIRED_FIELD_MISSING")
    ]
    assert fake.find("Contact", MEMBER_ID, "m-0")[0]["LastName"] == "After"


def test_a_bulk_job_has_to_be_polled_to_complete(fake: SalesforceFake, sf: Salesforce) -> None:
    base = "jobs/ingest"
    job = sf.restful(
        base,
        method="POST",
        json={
            "object": "Contact",
            "operation": "upsert",
            "externalIdFieldName": MEMBER_ID,
            "contentType": "CSV",
            "lineEnding": "LF",
        },
    )
    assert (job["state"], job["externalIdFieldName"]) == ("Open", MEMBER_ID)
    upload = sf.session.put(
        f"{fake.instance_url}/services/data/v59.0/{base}/{job['id']}/batches",
        data=f"{MEMBER_ID},LastName\nm-5,Five\n",
        headers={**sf.headers, "Content-Type": "text/csv"},
    )
    assert upload.status_code == 201
    closed = sf.restful(f"{base}/{job['id']}", method="PATCH", json={"state": "UploadComplete"})
    assert closed["state"] == "UploadComplete"
    assert fake.find("Contact", MEMBER_ID, "m-5") == []
    polls = [sf.restful(f"{base}/{job['id']}")["state"] for _ in range(3)]
    assert polls == ["InProgress", "JobComplete", "JobComplete"]
    info = sf.restful(f"{base}/{job['id']}")
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (1, 0)
    assert len(fake.find("Contact", MEMBER_ID, "m-5")) == 1


def test_a_bulk_job_naming_a_missing_field_fails_whole(salesforce_fake: SalesforceFake) -> None:
    sf = salesforce_fake.client()  # no Flywheel_Member_Id__c on Contact yet
    rows = [{"LastName": "Ng", "Flywheel_Advocate_Score__c": "3"}]
    with pytest.raises(SalesforceOperationError, match="InvalidBatch : Field name not found"):
        sf.bulk2.Contact.insert(records=rows, wait=0)
    assert salesforce_fake.records("Contact") == []


# -- faults and expectations -----------------------------------------------------------------------


def test_an_injected_503_reaches_the_client_and_the_next_call_goes_through(
    fake: SalesforceFake, sf: Salesforce
) -> None:
    fake.fail("PATCH", UPSERT_CONTACTS, 503)
    fake.expect("PATCH", UPSERT_CONTACTS, at_least=2)
    with pytest.raises(SalesforceGeneralError) as failed:
        upsert(sf, "Contact", [contact("m-1", "Kim")])
    assert failed.value.status == 503
    assert error_code(failed.value) == "SERVER_UNAVAILABLE"
    assert fake.records("Contact") == []
    assert upsert(sf, "Contact", [contact("m-1", "Kim")])[0]["created"] is True
    assert fake.count("PATCH", UPSERT_CONTACTS) == 2


def test_an_injected_failure_on_a_login_endpoint_fails_the_login(fake: SalesforceFake) -> None:
    fake.fail("POST", "/services/oauth2/token", 503)
    fake.fail("POST", "/services/Soap/u/XX.X", 500)
    with pytest.raises(SalesforceAuthenticationFailed) as token:
        Salesforce(
            consumer_key=fake.consumer_key,
            consumer_secret=fake.consumer_secret,
            domain="flywheel-dev.my",
            session=fake.session(),
        )
    assert token.value.code == "unknown_error"
    with pytest.raises(SalesforceAuthenticationFailed) as soap:
        Salesforce(
            username=fake.username,
            password=fake.password,
            security_token=fake.security_token,
            session=fake.session(),
        )
    assert soap.value.code == "UNKNOWN_EXCEPTION"


def test_a_slow_answer_times_the_client_out_and_the_write_still_lands(
    fake: SalesforceFake, sf: Salesforce
) -> None:
    fake.slow("PATCH", UPSERT_CONTACTS, seconds=0.5)
    body = {"allOrNone": False, "records": [contact("m-1", "Lee")]}
    with pytest.raises(requests.exceptions.ReadTimeout):
        sf.restful(f"composite/sobjects/Contact/{MEMBER_ID}", method="PATCH", json=body, timeout=0.1)
    deadline = time.monotonic() + 1.5
    while not fake.find("Contact", MEMBER_ID, "m-1") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake.find("Contact", MEMBER_ID, "m-1")


def test_an_unmet_expectation_fails_verify(fake: SalesforceFake, sf: Salesforce) -> None:
    fake.expect("GET", QUERY)
    with pytest.raises(AssertionError, match=r"expected GET /services/data/vXX\.X/query at least 1"):
        fake.verify()  # what the fixture runs at teardown
    sf.query("SELECT Id FROM Contact")
    fake.verify()


def test_the_fixture_fails_a_test_whose_expected_call_never_came(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        pytest_plugins = ["tests.fakes.salesforce"]

        def test_forgets_to_sync(salesforce_fake):
            salesforce_fake.expect("PATCH", "/services/data/vXX.X/composite/sobjects/Contact/{field}")
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*expected PATCH /services/data/vXX.X/composite/sobjects/Contact/{field} at least 1 time(s), got 0*"]
    )


def test_close_leaves_no_thread_behind(salesforce_fake: SalesforceFake) -> None:
    before = {t.ident for t in threading.enumerate()}
    other = type(salesforce_fake)().start()
    other.client().query("SELECT Id FROM Contact")
    other.close()
    assert {t.ident for t in threading.enumerate()} <= before
    with pytest.raises(RuntimeError):
        _ = other.instance_url
