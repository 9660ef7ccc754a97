"""CRM sync to Salesforce over the wire: the real simple-salesforce against the Salesforce fake.

A member goes onto the Contact holding their email, else onto a Lead keyed by Flywheel_Member_Id__c;
a converted Lead is followed to its Contact; missing custom fields are named for the admin; the
day's API allowance is respected."""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from connectors.crm.salesforce import EXTERNAL_ID, SalesforceAdapter, sf_name
from plugin.cli import cli
from plugin.errors import PermanentError, TransientError
from plugin.services import crm_connections
from plugin.services.crm_connections import save_connection
from plugin.services.crm_fields import FIELDS
from plugin.services.crm_pull import pull_crm
from plugin.services.crm_sync import sync_crm
from plugin.settings import Settings
from tests.fakes.salesforce import SalesforceFake
from tests.plugin.test_crm_hubspot import members

UPSERT = ("PATCH", "/services/data/vXX.X/composite/sobjects/Lead/{field}")
TYPES = {"string": "string", "text": "textarea", "number": "double", "datetime": "datetime"}


def add_fields(fake: SalesforceFake) -> None:
    for sobject in ("Contact", "Lead"):
        fake.add_field(sobject, EXTERNAL_ID, external_id=True, unique=True)
        for spec in FIELDS[1:]:
            fake.add_field(sobject, sf_name(spec.name), type=TYPES[spec.kind])


def connect(engine: Engine, settings: Settings, workspace_id: int, fake: SalesforceFake) -> None:
    save_connection(engine, settings, workspace_id, "salesforce", {"session": "fake"}, fake.instance_url)


def sync(engine: Engine, settings: Settings, workspace_id: int, fake: SalesforceFake, **kw: Any) -> Any:
    adapter = SalesforceAdapter(fake.client(), sleep=lambda s: None, timeout=5.0)
    return sync_crm(engine, settings, workspace_id, adapter=adapter, **kw)


def test_missing_custom_fields_are_named_for_the_admin_and_nothing_is_written(
    engine: Engine, settings: Settings, workspace_id: int, salesforce_fake: SalesforceFake
) -> None:
    members(engine, workspace_id, 20)
    connect(engine, settings, workspace_id, salesforce_fake)
    with pytest.raises(PermanentError) as caught:
        sync(engine, settings, workspace_id, salesforce_fake)
    assert "Contact.Flywheel_Member_Id__c (Text(64), External ID, Unique)" in caught.value.user_message
    assert "Lead.Flywheel_Advocate_Score__c (Number(18, 4))" in caught.value.user_message
    assert salesforce_fake.records("Lead") == []


def test_members_go_to_their_contact_or_a_lead_once_each_and_a_resync_writes_nothing(
    engine: Engine, settings: Settings, workspace_id: int, salesforce_fake: SalesforceFake
) -> None:
    n = 450
    members(engine, workspace_id, n)
    add_fields(salesforce_fake)
    contact = salesforce_fake.insert("Contact", LastName="Known", Email="person5@corp5.io")
    connect(engine, settings, workspace_id, salesforce_fake)
    salesforce_fake.fail(*UPSERT, status=503, nth=2)  # retried
    report = sync(engine, settings, workspace_id, salesforce_fake)
    assert report.counts["failed"] == 0 and report.counts["created"] + report.counts["updated"] == n
    leads = salesforce_fake.records("Lead")
    assert len(leads) == n - 1 and len({r[EXTERNAL_ID] for r in leads}) == n - 1
    known = salesforce_fake.record("Contact", contact)
    assert known["Flywheel_Advocate_Level__c"] and known[EXTERNAL_ID]
    assert isinstance(known["Flywheel_Advocate_Score__c"], float)
    assert all(r["Company"] and r["LastName"] for r in leads)
    batches = math.ceil(n / 200)
    assert salesforce_fake.count(*UPSERT) == batches + 1  # one call per 200, plus the retried 503
    again = sync(engine, settings, workspace_id, salesforce_fake)
    assert again.counts["unchanged"] == n and salesforce_fake.count(*UPSERT) == batches + 1


def test_a_converted_lead_is_followed_to_its_contact(
    engine: Engine, settings: Settings, workspace_id: int, salesforce_fake: SalesforceFake
) -> None:
    members(engine, workspace_id, 10)
    add_fields(salesforce_fake)
    connect(engine, settings, workspace_id, salesforce_fake)
    sync(engine, settings, workspace_id, salesforce_fake)
    lead = salesforce_fake.find("Lead", "Email", "person3@corp3.io")[0]
    contact_id = salesforce_fake.convert_lead(lead["Id"])
    with engine.begin() as conn:  # the member's name changed: their fields must be sent again
        conn.exec_driver_sql(
            "UPDATE members SET display_name = 'Ada Lovelace' WHERE primary_email = 'person3@corp3.io'"
        )
    report = sync(engine, settings, workspace_id, salesforce_fake)
    assert report.counts["updated"] == 1 and report.counts["failed"] == 0
    assert salesforce_fake.record("Contact", contact_id)["LastName"] == "Lovelace"


def test_the_sync_stops_before_the_days_api_allowance_runs_out(
    engine: Engine, settings: Settings, workspace_id: int, salesforce_fake: SalesforceFake
) -> None:
    members(engine, workspace_id, 10)
    add_fields(salesforce_fake)
    connect(engine, settings, workspace_id, salesforce_fake)
    salesforce_fake.set_api_usage(int(salesforce_fake.daily_api_limit * 0.97))
    with pytest.raises(TransientError, match="daily API limit") as caught:
        sync(engine, settings, workspace_id, salesforce_fake)
    assert caught.value.hint and "tomorrow" in caught.value.hint


def test_connect_check_and_sync_through_the_cli_without_printing_a_secret(
    engine: Engine,
    workspace_id: int,
    salesforce_fake: SalesforceFake,
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(crm_connections, "salesforce_session", salesforce_fake.session)
    members(engine, workspace_id, 30)
    login = ["crm", "connect", "salesforce", "--username", salesforce_fake.username]
    bad = runner.invoke(cli, [*login, "--password", "wrong-password", "--security-token", "x"])
    assert bad.exit_code == 3 and "refused the login" in bad.stderr and "wrong-password" not in bad.output
    ok = runner.invoke(
        cli, [*login, "--security-token", salesforce_fake.security_token, "--json"],
        env={"FLYWHEEL_SALESFORCE_PASSWORD": salesforce_fake.password},
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert salesforce_fake.password not in ok.output
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT credentials_encrypted FROM crm_connections").scalar_one()
    assert salesforce_fake.password not in stored and salesforce_fake.security_token not in stored
    missing = runner.invoke(cli, ["crm", "check"])
    assert missing.exit_code == 1 and "Contact.Flywheel_Member_Id__c" in missing.stderr
    add_fields(salesforce_fake)
    assert runner.invoke(cli, ["crm", "check"]).exit_code == 0
    done = runner.invoke(cli, ["crm", "sync", "--json"])
    assert done.exit_code == 0, done.output
    assert '"created": 30' in done.output and len(salesforce_fake.records("Lead")) == 30


@pytest.mark.slow
@pytest.mark.parametrize("path", ["collections", "bulk"])
def test_ten_thousand_members_through_5xx_and_a_timeout_once_each_within_the_call_bounds(
    engine: Engine,
    settings: Settings,
    workspace_id: int,
    salesforce_fake: SalesforceFake,
    path: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    n = 10_000
    members(engine, workspace_id, n)
    add_fields(salesforce_fake)
    connect(engine, settings, workspace_id, salesforce_fake)
    bulk = path == "bulk"
    route = ("PUT", "/services/data/vXX.X/jobs/ingest/{jobId}/batches") if bulk else UPSERT
    salesforce_fake.fail(*route, status=503, nth=1 if bulk else 7)
    salesforce_fake.fail("GET", "/services/data/vXX.X/query", status=429, nth=2)  # too many at once
    salesforce_fake.slow(
        *("GET", "/services/data/vXX.X/query"), seconds=2.5, nth=3
    )  # outlasts the 2 s timeout
    adapter = SalesforceAdapter(
        salesforce_fake.client(),
        sleep=lambda s: None,
        timeout=2.0,
        bulk_poll_s=0,
        bulk_threshold=2_000 if bulk else n + 1,
    )
    report = sync_crm(engine, settings, workspace_id, adapter=adapter)
    # A timed-out call may land before its retry: "created" or "updated", never twice.
    assert report.counts["created"] + report.counts["updated"] == n and report.counts["failed"] == 0
    leads = salesforce_fake.records("Lead")
    assert len(leads) == n and len({r[EXTERNAL_ID] for r in leads}) == n
    with engine.connect() as conn:
        want = dict(conn.exec_driver_sql(
            "SELECT m.id, s.label FROM members m JOIN scores s ON s.subject_id = m.id AND s.kind = 'advocate'"
        ).all())  # fmt: skip
    assert {int(r[EXTERNAL_ID]): r["Flywheel_Advocate_Level__c"] for r in leads} == want
    secret = adapter._sf.session_id  # the live session: what a leak would expose
    assert secret and all(secret not in line for line in caplog.text.splitlines())
    if bulk:
        assert (
            report.calls["Lead.bulk_upsert"] == 2 and salesforce_fake.count(*UPSERT) == 0
        )  # one retry: the 503
    else:  # one collections call per 200 members, plus the one the 503 cost
        assert salesforce_fake.count(*UPSERT) == math.ceil(n / 200) + 1
    again = sync_crm(engine, settings, workspace_id, adapter=adapter)
    assert again.counts["unchanged"] == n and again.calls.get("Lead.bulk_upsert", 0) == report.calls.get(
        "Lead.bulk_upsert", 0
    )


def test_a_won_opportunity_read_back_makes_the_member_a_customer(
    engine: Engine, settings: Settings, workspace_id: int, salesforce_fake: SalesforceFake
) -> None:
    members(engine, workspace_id, 10)
    add_fields(salesforce_fake)
    contact = salesforce_fake.insert("Contact", LastName="Buyer", Email="person4@corp4.io")
    connect(engine, settings, workspace_id, salesforce_fake)
    adapter = SalesforceAdapter(salesforce_fake.client(), sleep=lambda s: None)
    sync_crm(engine, settings, workspace_id, adapter=adapter)
    salesforce_fake.insert(
        "Opportunity", Name="Corp4 renewal", StageName="Closed Won", CloseDate="2026-05-30", ContactId=contact
    )
    report = pull_crm(engine, settings, workspace_id, adapter=adapter)
    assert report.counts["won_deals"] == 1 and report.counts["made_customers"] == 1
    with engine.connect() as conn:
        stage = conn.exec_driver_sql(
            "SELECT lifecycle_stage FROM members WHERE primary_email = 'person4@corp4.io'"
        ).scalar_one()
    assert stage == "customer"


def test_a_panel_becomes_campaign_members_and_a_member_already_there_is_not_an_error(
    engine: Engine, settings: Settings, workspace_id: int, salesforce_fake: SalesforceFake
) -> None:
    members(engine, workspace_id, 6)
    add_fields(salesforce_fake)
    connect(engine, settings, workspace_id, salesforce_fake)
    crm = SalesforceAdapter(salesforce_fake.client(), sleep=lambda s: None)
    sync_crm(engine, settings, workspace_id, adapter=crm)
    leads = [r["Id"] for r in salesforce_fake.records("Lead")]
    campaign, added = crm.add_to_list("Flywheel panel: pricing interviews", leads[:4])
    again, more = crm.add_to_list("Flywheel panel: pricing interviews", leads)
    assert again == campaign and (added, more) == (4, 2)
    assert (
        len(salesforce_fake.records("CampaignMember")) == 6 and len(salesforce_fake.records("Campaign")) == 1
    )
