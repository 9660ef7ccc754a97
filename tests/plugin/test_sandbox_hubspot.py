"""The HubSpot sandbox driven by the real hubspot-api-client, and the test fake built on it.

Each test starts its own sandbox on an ephemeral 127.0.0.1 port; nothing leaves the machine.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import urllib3
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    BatchInputPublicDefaultAssociationMultiPost,
    PublicDefaultAssociationMultiPost,
)
from hubspot.crm.associations.v4 import PublicObjectId as V4ObjectId
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchReadInputSimplePublicObjectId,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
)
from hubspot.crm.contacts import SimplePublicObjectInputForCreate as ContactInput
from hubspot.crm.contacts.exceptions import ApiException as ContactsApiException
from hubspot.crm.lists import ListCreateRequest
from hubspot.crm.objects.notes import (
    AssociationSpec,
    PublicAssociationsForObject,
    PublicObjectId,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.objects.notes.exceptions import ApiException as NotesApiException
from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate
from hubspot.crm.properties.exceptions import ApiException as PropertiesApiException

from plugin.sandbox.hubspot import HubSpotSandbox
from plugin.sandbox.hubspot_store import HubSpotStore

if TYPE_CHECKING:  # imported by pytest as a plugin (below); importing it here first would skip that
    from tests.fakes.hubspot import HubSpotFake


UPSERT = "/crm/v3/objects/contacts/batch/upsert"
TOKEN = "tok"


@pytest.fixture
def sandbox() -> Iterator[HubSpotSandbox]:
    with HubSpotSandbox(tokens={TOKEN}) as running:
        yield running


def client_for(base_url: str, token: str = TOKEN) -> HubSpot:
    return HubSpot(access_token=token, host=base_url)


@pytest.fixture
def client(sandbox: HubSpotSandbox) -> HubSpot:
    return client_for(sandbox.base_url)


def upsert_body(*inputs: SimplePublicObjectBatchInputUpsert) -> BatchInputSimplePublicObjectBatchInputUpsert:
    return BatchInputSimplePublicObjectBatchInputUpsert(inputs=list(inputs))


def by_email(email: str, trace: str | None = None, **props: str) -> SimplePublicObjectBatchInputUpsert:
    return SimplePublicObjectBatchInputUpsert(
        id=email, id_property="email", properties=props, object_write_trace_id=trace
    )


def error_of(exc: Exception) -> dict[str, object]:
    body = json.loads(getattr(exc, "body", None) or "{}")
    assert isinstance(body, dict)
    return body


def test_the_client_reaches_the_sandbox_through_host(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    assert sandbox.base_url.startswith("http://127.0.0.1:")
    assert not sandbox.base_url.endswith("/")  # the client appends paths to host as given
    page = client.crm.contacts.basic_api.get_page(limit=1)
    assert page.results == []
    assert sandbox.call_count("GET", "/crm/v3/objects/contacts") == 1


def test_group_and_property_are_created_once_then_409(client: HubSpot) -> None:
    groups, core = client.crm.properties.groups_api, client.crm.properties.core_api
    made = groups.create("contacts", PropertyGroupCreate(name="flywheel", label="Flywheel", display_order=-1))
    assert made.name == "flywheel"
    spec = PropertyCreate(
        name="flywheel_score", label="Score", type="number", field_type="number", group_name="flywheel"
    )
    assert core.create("contacts", spec).group_name == "flywheel"

    with pytest.raises(PropertiesApiException) as again:
        groups.create("contacts", PropertyGroupCreate(name="flywheel", label="Flywheel"))
    assert again.value.status == 409
    assert error_of(again.value)["category"] == "OBJECT_ALREADY_EXISTS"
    with pytest.raises(PropertiesApiException) as twice:
        core.create("contacts", spec)
    assert twice.value.status == 409
    assert "correlationId" in error_of(twice.value)

    assert "flywheel" in {g.name for g in groups.get_all("contacts").results}
    assert "flywheel_score" in {p.name for p in core.get_all("contacts").results}


def test_batch_upsert_creates_then_updates_by_email(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    batch = client.crm.contacts.batch_api
    first, status, headers = batch.upsert_with_http_info(
        upsert_body(by_email("ada@example.org", firstname="Ada"))
    )
    assert status == 200
    assert [r.new for r in first.results] == [True]
    assert first.results[0].properties["email"] == "ada@example.org"
    assert headers["X-HubSpot-RateLimit-Max"] == "190"

    again = batch.upsert(upsert_body(by_email("ADA@example.org", lastname="Lovelace")))
    assert [r.new for r in again.results] == [False]
    assert again.results[0].id == first.results[0].id
    stored = sandbox.store.find("contacts", "email", "ada@example.org")
    assert stored is not None
    assert (stored["properties"]["firstname"], stored["properties"]["lastname"]) == ("Ada", "Lovelace")
    assert stored["createdAt"].endswith("Z")


def test_an_unknown_property_is_refused(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    with pytest.raises(ContactsApiException) as refused:
        client.crm.contacts.batch_api.upsert(upsert_body(by_email("bo@example.org", shoe_size="44")))
    assert refused.value.status == 400
    body = error_of(refused.value)
    assert body["category"] == "VALIDATION_ERROR"
    detail = {"message": 'Property "shoe_size" does not exist', "code": "PROPERTY_DOESNT_EXIST"}
    assert body["errors"] == [{**detail, "context": {"propertyName": ["shoe_size"]}}]
    assert sandbox.store.all("contacts") == []


def test_a_batch_of_101_is_refused_whole(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    inputs = [by_email(f"p{i}@example.org") for i in range(101)]
    with pytest.raises(ContactsApiException) as refused:
        client.crm.contacts.batch_api.upsert(upsert_body(*inputs))
    assert refused.value.status == 400
    assert error_of(refused.value)["category"] == "VALIDATION_ERROR"
    assert sandbox.store.all("contacts") == []
    assert len(client.crm.contacts.batch_api.upsert(upsert_body(*inputs[:100])).results) == 100


def test_a_malformed_email_gives_207_and_the_others_are_stored(
    sandbox: HubSpotSandbox, client: HubSpot
) -> None:
    body = upsert_body(
        by_email("good1@example.org", trace="t1"),
        by_email("not-an-email", trace="t2"),
        by_email("good2@example.org", trace="t3"),
    )
    data, status, _ = client.crm.contacts.batch_api.upsert_with_http_info(body)
    assert status == 207
    assert data.num_errors == 1
    assert data.errors[0].category == "VALIDATION_ERROR"
    assert data.errors[0].context == {"objectWriteTraceId": ["t2"]}  # which input failed
    assert "INVALID_EMAIL" in data.errors[0].message
    assert sorted(r.object_write_trace_id for r in data.results) == ["t1", "t3"]
    emails = {c["properties"]["email"] for c in sandbox.store.all("contacts")}
    assert emails == {"good1@example.org", "good2@example.org"}


def test_without_trace_ids_one_bad_input_fails_the_whole_batch(
    sandbox: HubSpotSandbox, client: HubSpot
) -> None:
    body = upsert_body(by_email("good@example.org"), by_email("bad@"))
    with pytest.raises(ContactsApiException) as refused:
        client.crm.contacts.batch_api.upsert(body)
    assert refused.value.status == 400
    assert sandbox.store.all("contacts") == []


def test_a_second_contact_with_a_taken_email_is_409(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    first = client.crm.contacts.basic_api.create(ContactInput(properties={"email": "oz@example.org"}))
    with pytest.raises(ContactsApiException) as taken:
        client.crm.contacts.basic_api.create(ContactInput(properties={"email": "OZ@example.org"}))
    assert taken.value.status == 409
    body = error_of(taken.value)
    assert (body["category"], body["message"]) == (
        "CONFLICT",
        f"Contact already exists. Existing ID: {first.id}",
    )


def test_a_wrong_or_missing_token_is_401(sandbox: HubSpotSandbox) -> None:
    for token in ("wrong", None):
        with pytest.raises(ContactsApiException) as refused:
            client_for(sandbox.base_url, token).crm.contacts.basic_api.get_page()  # type: ignore[arg-type]
        assert refused.value.status == 401
        assert error_of(refused.value)["category"] == "INVALID_AUTHENTICATION"
    assert sandbox.call_count("GET", "/crm/v3/objects/contacts") == 2


def test_429_once_the_ten_second_window_is_full() -> None:
    with HubSpotSandbox(tokens={TOKEN, "other"}, ten_second_max=3) as small:
        basic = client_for(small.base_url).crm.contacts.basic_api
        remaining = [basic.get_page_with_http_info()[2]["X-HubSpot-RateLimit-Remaining"] for _ in range(3)]
        assert remaining == ["2", "1", "0"]
        with pytest.raises(ContactsApiException) as limited:
            basic.get_page()
        assert limited.value.status == 429
        body = error_of(limited.value)
        assert (body["errorType"], body["policyName"]) == ("RATE_LIMIT", "TEN_SECONDLY_ROLLING")
        headers = limited.value.headers
        assert headers["X-HubSpot-RateLimit-Remaining"] == "0"
        assert headers["X-HubSpot-RateLimit-Max"] == "3"
        assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        assert int(headers["X-HubSpot-RateLimit-Daily-Remaining"]) == 1_000_000 - 3
        assert "Retry-After" not in headers  # not documented for API 429s; see HubSpotSandbox
        # Limits are per token.
        assert client_for(small.base_url, "other").crm.contacts.basic_api.get_page().results == []


def test_a_note_is_created_with_an_association_and_read_back(client: HubSpot) -> None:
    contact = client.crm.contacts.batch_api.upsert(upsert_body(by_email("cy@example.org"))).results[0]
    notes = client.crm.objects.notes.basic_api
    link = PublicAssociationsForObject(
        to=PublicObjectId(id=contact.id), types=[AssociationSpec("HUBSPOT_DEFINED", 202)]
    )
    note = notes.create(
        SimplePublicObjectInputForCreate(
            properties={"hs_timestamp": "2026-03-01T10:00:00Z", "hs_note_body": "Asked about SSO"},
            associations=[link],
        )
    )
    read = notes.get_by_id(note.id, properties=["hs_note_body"], associations=["contacts"])
    assert read.properties["hs_note_body"] == "Asked about SSO"
    assert [a.id for a in read.associations["contacts"].results] == [contact.id]
    back = client.crm.contacts.basic_api.get_by_id(contact.id, associations=["notes"])
    assert [a.id for a in back.associations["notes"].results] == [note.id]

    with pytest.raises(NotesApiException) as missing:
        notes.create(SimplePublicObjectInputForCreate(properties={"hs_note_body": "no time"}))
    assert missing.value.status == 400


def test_a_seeded_won_deal_is_read_back_with_its_contact(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    contact = sandbox.store.create("contacts", {"email": "dee@example.org", "firstname": "Dee"})
    deal = sandbox.store.create(
        "deals",
        {"dealname": "Acme renewal", "dealstage": "closedwon", "pipeline": "default", "amount": 12000},
        associations=[("contacts", contact["id"])],
    )
    page = client.crm.deals.basic_api.get_page(properties=["dealstage", "amount"], associations=["contacts"])
    [got] = page.results
    assert got.id == deal["id"]
    assert (got.properties["dealstage"], got.properties["amount"]) == ("closedwon", "12000")
    assert [a.id for a in got.associations["contacts"].results] == [contact["id"]]


def test_v4_default_associations_single_and_batch(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    contact = sandbox.store.create("contacts", {"email": "eve@example.org"})
    acme = sandbox.store.create("companies", {"name": "Acme", "domain": "acme.example"})
    globex = sandbox.store.create("companies", {"name": "Globex", "domain": "globex.example"})
    v4 = client.crm.associations.v4
    made = v4.basic_api.create_default("contacts", contact["id"], "companies", acme["id"])
    assert made.results[0].association_spec.association_type_id == 279
    batch = BatchInputPublicDefaultAssociationMultiPost(
        inputs=[
            PublicDefaultAssociationMultiPost(
                _from=V4ObjectId(id=globex["id"]), to=V4ObjectId(id=contact["id"])
            )
        ]
    )
    v4.batch_api.create_default("companies", "contacts", batch)
    read = client.crm.contacts.basic_api.get_by_id(contact["id"], associations=["companies"])
    assert sorted(a.id for a in read.associations["companies"].results) == sorted([acme["id"], globex["id"]])
    assert sandbox.store.find("companies", "domain", "ACME.example") == sandbox.store.get(
        "companies", acme["id"]
    )


def test_a_manual_list_takes_members(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    contact = sandbox.store.create("contacts", {"email": "fay@example.org"})
    made = client.crm.lists.lists_api.create(
        ListCreateRequest(name="Flywheel champions", object_type_id="0-1", processing_type="MANUAL")
    )
    list_id = made.list.list_id
    changed = client.crm.lists.memberships_api.add(list_id, [contact["id"], "999999"])
    assert (changed.records_ids_added, changed.record_ids_missing) == ([contact["id"]], ["999999"])
    assert [m.record_id for m in client.crm.lists.memberships_api.get_page(list_id).results] == [
        contact["id"]
    ]
    assert client.crm.lists.lists_api.get_by_id(list_id).list.size == 1


def test_batch_read_by_email_names_the_missing(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    sandbox.store.create("contacts", {"email": "gus@example.org"})
    body = BatchReadInputSimplePublicObjectId(
        id_property="email",
        inputs=[SimplePublicObjectId(id="gus@example.org"), SimplePublicObjectId(id="nobody@example.org")],
        properties=["email"],
        properties_with_history=[],
    )
    data, status, _ = client.crm.contacts.batch_api.read_with_http_info(body)
    assert status == 207
    assert [r.properties["email"] for r in data.results] == ["gus@example.org"]
    assert data.errors[0].context == {"ids": ["nobody@example.org"]}


def test_list_paging_follows_after(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    for i in range(3):
        sandbox.store.create("contacts", {"email": f"h{i}@example.org"})
    basic = client.crm.contacts.basic_api
    first = basic.get_page(limit=2)
    assert len(first.results) == 2
    rest = basic.get_page(limit=2, after=first.paging.next.after)
    assert [r.properties["email"] for r in rest.results] == ["h2@example.org"]
    assert rest.paging is None


def test_the_store_survives_a_snapshot(tmp_path: Path) -> None:
    store = HubSpotStore()
    contact = store.create("contacts", {"email": "ida@example.org"})
    store.create("notes", {"hs_timestamp": "1700000000000"}, associations=[("contacts", contact["id"])])
    store.save(tmp_path / "hubspot.json")
    copy = HubSpotStore()
    copy.load(tmp_path / "hubspot.json")
    assert copy.all("contacts") == store.all("contacts")
    assert copy.associations("contacts", contact["id"], "notes") == store.associations(
        "contacts", contact["id"], "notes"
    )
    assert copy.create("contacts", {"email": "jo@example.org"})["id"] not in {contact["id"]}


def test_close_leaves_no_thread_behind() -> None:
    before = {t.ident for t in threading.enumerate()}
    sandbox = HubSpotSandbox(tokens={TOKEN}).start()
    client_for(sandbox.base_url).crm.contacts.basic_api.get_page()
    sandbox.close()
    assert {t.ident for t in threading.enumerate()} <= before
    with pytest.raises(RuntimeError):
        _ = sandbox.base_url


# -- the fake ------------------------------------------------------------------------------------


def test_the_fake_injects_a_503_the_client_sees(hubspot_fake: HubSpotFake) -> None:
    hubspot_fake.fail("POST", UPSERT, 503)
    hubspot_fake.expect("POST", UPSERT, at_least=2)
    batch = client_for(hubspot_fake.base_url, hubspot_fake.token).crm.contacts.batch_api
    with pytest.raises(ContactsApiException) as failed:
        batch.upsert(upsert_body(by_email("kim@example.org")))
    assert failed.value.status == 503
    assert error_of(failed.value)["status"] == "error"
    assert hubspot_fake.contact("kim@example.org") is None
    batch.upsert(upsert_body(by_email("kim@example.org")))  # the next call goes through
    assert "kim@example.org" in hubspot_fake.contacts_by_email()
    assert hubspot_fake.count("POST", UPSERT) == 2


def test_the_fake_rate_limits_the_nth_call_with_retry_after(hubspot_fake: HubSpotFake) -> None:
    # A POST: urllib3, under the client, retries GETs by itself when a 429 carries Retry-After.
    hubspot_fake.rate_limit("POST", UPSERT, nth=2, retry_after_s=3)
    batch = client_for(hubspot_fake.base_url, hubspot_fake.token).crm.contacts.batch_api
    batch.upsert(upsert_body(by_email("nan@example.org")))
    with pytest.raises(ContactsApiException) as limited:
        batch.upsert(upsert_body(by_email("nan@example.org")))
    assert limited.value.status == 429
    assert limited.value.headers["Retry-After"] == "3"
    assert limited.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert error_of(limited.value)["policyName"] == "TEN_SECONDLY_ROLLING"
    assert batch.upsert(upsert_body(by_email("nan@example.org"))).results[0].new is False


def test_the_fake_times_out_the_client_and_the_write_still_lands(hubspot_fake: HubSpotFake) -> None:
    hubspot_fake.slow("POST", UPSERT, seconds=0.5)
    batch = client_for(hubspot_fake.base_url, hubspot_fake.token).crm.contacts.batch_api
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        batch.upsert(upsert_body(by_email("lee@example.org")), _request_timeout=0.1)
    deadline = time.monotonic() + 1.5
    while hubspot_fake.contact("lee@example.org") is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert hubspot_fake.contact("lee@example.org") is not None


def test_an_unmet_expectation_fails_verify(hubspot_fake: HubSpotFake) -> None:
    hubspot_fake.expect("POST", UPSERT)
    with pytest.raises(AssertionError, match="expected POST /crm/v3/objects/contacts/batch/upsert"):
        hubspot_fake.verify()  # what the fixture runs at teardown
    batch = client_for(hubspot_fake.base_url, hubspot_fake.token).crm.contacts.batch_api
    batch.upsert(upsert_body(by_email("mo@example.org")))
    hubspot_fake.verify()


def test_the_fixture_fails_a_test_whose_expected_call_never_came(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        pytest_plugins = ["tests.fakes.hubspot"]

        def test_forgets_to_sync(hubspot_fake):
            hubspot_fake.expect("POST", "/crm/v3/objects/contacts/batch/upsert")
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*expected POST /crm/v3/objects/contacts/batch/upsert at least 1 time(s), got 0*"]
    )
