"""CRM sync over the wire: the real hubspot-api-client against the HubSpot fake, faults injected.

Acceptance of the CRM sync issue, HubSpot side: 10,000 members synced through 429s, 5xx and a
timeout, each present once with the right values, within the call bounds; an immediate re-sync
makes no write call; no secret reaches a log line; a won deal read back makes a customer."""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select

from connectors.crm.hubspot import HubSpotAdapter
from plugin.cli import cli
from plugin.db.models import Member, Score
from plugin.services.crm_connections import save_connection
from plugin.services.crm_pull import pull_crm
from plugin.services.crm_sync import sync_crm
from plugin.settings import Settings
from tests.fakes.hubspot import HubSpotFake
from tests.plugin.helpers import record
from tests.plugin.test_score import ingest, score

UPSERT = ("POST", "/crm/v3/objects/contacts/batch/upsert")
N = 10_000


def members(engine: Engine, workspace_id: int, n: int) -> None:
    rows = [
        record(f"p{i}-{k}", kind=kind, when=f"2026-05-{1 + (i + k) % 28:02d}T10:00:00Z",
               email=f"person{i}@corp{i % 97}.io", name=f"Person {i}")
        for i in range(n)
        for k, kind in enumerate(("post", "answer") if i % 3 else ("reaction",))
    ]  # fmt: skip
    ingest(engine, workspace_id, rows)
    score(engine, workspace_id)


def adapter(fake: HubSpotFake, **kw: Any) -> HubSpotAdapter:
    return HubSpotAdapter(fake.token, host=fake.base_url, timeout=3.0, **kw)


@pytest.mark.slow
def test_ten_thousand_members_sync_through_429s_5xx_and_a_timeout_once_each_with_the_right_values(
    engine: Engine,
    settings: Settings,
    workspace_id: int,
    hubspot_fake: HubSpotFake,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    members(engine, workspace_id, N)
    save_connection(
        engine, settings, workspace_id, "hubspot", {"token": hubspot_fake.token}, hubspot_fake.base_url
    )
    hubspot_fake.rate_limit(*UPSERT, nth=3, retry_after_s=1)
    hubspot_fake.fail(*UPSERT, status=503, nth=10)
    hubspot_fake.fail(*UPSERT, status=502, nth=40)
    hubspot_fake.slow(*UPSERT, seconds=3.5, nth=60)  # outlasts the 3 s timeout; the write lands anyway
    hubspot_fake.expect("POST", "/crm/v3/properties/contacts")  # the flywheel properties were created
    report = sync_crm(engine, settings, workspace_id, adapter=adapter(hubspot_fake))

    batches = math.ceil(N / 100)
    # A timed-out batch may land before or after its retry: "created" or "updated", never twice.
    assert report.counts["created"] + report.counts["updated"] == N and report.counts["failed"] == 0
    contacts = hubspot_fake.contacts_by_email()
    assert len(contacts) == N  # once each: the retried batches (incl. the one that landed) made no duplicate
    with engine.connect() as conn:
        want = dict(
            conn.execute(
                select(Member.primary_email, Score.label).join(Score, Score.subject_id == Member.id)
                .where(Score.kind == "advocate")
            ).all()
        )  # fmt: skip
    assert {e: c["properties"]["flywheel_advocate_level"] for e, c in contacts.items()} == want
    # One call per 100 members, plus one retry for each of the four injected faults.
    assert hubspot_fake.count(*UPSERT) == batches + 4
    assert report.calls["contacts.batch_upsert"] == batches + 4

    again = sync_crm(engine, settings, workspace_id, adapter=adapter(hubspot_fake))
    assert again.counts["unchanged"] == N and hubspot_fake.count(*UPSERT) == batches + 4
    assert all(hubspot_fake.token not in line for line in caplog.text.splitlines())


def test_a_record_hubspot_refuses_fails_alone_with_hubspots_reason(
    engine: Engine, settings: Settings, workspace_id: int, hubspot_fake: HubSpotFake
) -> None:
    members(engine, workspace_id, 150)
    with engine.begin() as conn:
        conn.execute(Member.__table__.update().where(Member.primary_email == "person7@corp7.io")
                     .values(primary_email="person7@corp7"))  # fmt: skip
    save_connection(
        engine, settings, workspace_id, "hubspot", {"token": hubspot_fake.token}, hubspot_fake.base_url
    )
    report = sync_crm(engine, settings, workspace_id, adapter=adapter(hubspot_fake))
    assert (report.counts["created"], report.counts["failed"]) == (149, 1)
    assert (
        "INVALID_EMAIL" in (report.failures[0]["reason"] or "")
        or "email" in report.failures[0]["reason"].lower()
    )
    assert hubspot_fake.count(*UPSERT) == 2  # 207: the bad input named, the rest stored, no split needed


def test_connect_checks_the_token_stores_it_encrypted_and_never_prints_it(
    engine: Engine, workspace_id: int, hubspot_fake: HubSpotFake, runner: CliRunner
) -> None:
    bad = runner.invoke(
        cli, ["crm", "connect", "hubspot", "--token", "wrong-token", "--base-url", hubspot_fake.base_url]
    )
    assert bad.exit_code == 3 and "refused the credentials" in bad.stderr and "wrong-token" not in bad.output
    ok = runner.invoke(
        cli, ["crm", "connect", "hubspot", "--base-url", hubspot_fake.base_url, "--json"],
        env={"FLYWHEEL_HUBSPOT_TOKEN": hubspot_fake.token},
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert hubspot_fake.token not in ok.output
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT credentials_encrypted FROM crm_connections").scalar_one()
    assert hubspot_fake.token not in stored
    checked = runner.invoke(cli, ["crm", "check", "--json"])
    assert checked.exit_code == 0 and '"ok": true' in checked.output


def test_sync_and_pull_through_the_cli_a_won_deal_makes_a_customer(
    engine: Engine, settings: Settings, workspace_id: int, hubspot_fake: HubSpotFake, runner: CliRunner
) -> None:
    members(engine, workspace_id, 30)
    save_connection(
        engine, settings, workspace_id, "hubspot", {"token": hubspot_fake.token}, hubspot_fake.base_url
    )
    dry = runner.invoke(cli, ["crm", "sync", "--dry-run"])
    assert dry.exit_code == 0 and "30 members would change" in dry.output
    assert hubspot_fake.count(*UPSERT) == 0
    done = runner.invoke(cli, ["crm", "sync"])
    assert done.exit_code == 0 and "created" in done.output, done.output
    buyer = hubspot_fake.contact("person4@corp4.io")
    assert buyer is not None
    hubspot_fake.store.create(
        "deals",
        {"dealname": "Corp4 annual", "dealstage": "closedwon", "amount": "12000", "pipeline": "default"},
        associations=[("contacts", buyer["id"])],
    )
    pulled = pull_crm(engine, settings, workspace_id)
    assert pulled.counts["won_deals"] == 1 and pulled.counts["made_customers"] == 1
    with engine.connect() as conn:
        stage = conn.execute(
            select(Member.lifecycle_stage).where(Member.primary_email == "person4@corp4.io")
        ).scalar_one()
    assert stage == "customer"


def test_a_hot_lead_is_a_note_on_the_hubspot_contact(
    engine: Engine, settings: Settings, workspace_id: int, hubspot_fake: HubSpotFake
) -> None:
    asking = {"title": "What does enterprise pricing look like for SSO?"}
    ingest(engine, workspace_id, [
        record("ask", kind="post", when="2026-05-28T10:00:00Z", email="cto@bigco.io", name="Dana Cho",
               title="CTO") | asking,
        record("ask2", kind="support_question", when="2026-05-29T10:00:00Z", email="cto@bigco.io",
               name="Dana Cho", title="CTO"),
    ])  # fmt: skip
    report = score(engine, workspace_id)
    assert report.events.get("lead_turned_hot") == 1
    save_connection(
        engine, settings, workspace_id, "hubspot", {"token": hubspot_fake.token}, hubspot_fake.base_url
    )
    hubspot_fake.expect("POST", "/crm/v3/objects/notes/batch/create")
    synced = sync_crm(engine, settings, workspace_id, adapter=adapter(hubspot_fake))
    assert synced.counts["notes_created"] == 1
    contact = hubspot_fake.contact("cto@bigco.io")
    assert contact is not None
    notes = hubspot_fake.store.associations("contacts", contact["id"], "notes")
    assert len(notes) == 1
    note = hubspot_fake.store.get("notes", notes[0][0])
    assert note is not None and "Lead turned hot" in note["properties"]["hs_note_body"]
    assert "enterprise pricing" in note["properties"]["hs_note_body"]


def test_companies_are_found_by_domain_or_created_and_contacts_associated_in_hubspot(
    engine: Engine, settings: Settings, workspace_id: int, hubspot_fake: HubSpotFake
) -> None:
    members(engine, workspace_id, 40)  # person{i}@corp{i % 97}.io: 40 companies
    existing = hubspot_fake.store.create("companies", {"name": "Corp 3 (from sales)", "domain": "corp3.io"})
    save_connection(
        engine, settings, workspace_id, "hubspot", {"token": hubspot_fake.token}, hubspot_fake.base_url
    )
    hubspot_fake.expect("POST", "/crm/v3/objects/companies/search")
    hubspot_fake.expect("POST", "/crm/v4/associations/contacts/companies/batch/associate/default")
    report = sync_crm(engine, settings, workspace_id, adapter=adapter(hubspot_fake))
    assert (report.counts["companies_found"], report.counts["companies_created"]) == (1, 39)
    companies = hubspot_fake.store.all("companies")
    assert len(companies) == 40 and len({c["properties"]["domain"] for c in companies}) == 40
    contact = hubspot_fake.contact("person3@corp3.io")
    assert contact is not None
    assert [c for c, _ in hubspot_fake.store.associations("contacts", contact["id"], "companies")] == [
        existing["id"]
    ]


def test_the_field_mapping_is_the_workspaces_own(
    engine: Engine, settings: Settings, workspace_id: int, hubspot_fake: HubSpotFake, runner: CliRunner
) -> None:
    members(engine, workspace_id, 5)
    save_connection(
        engine, settings, workspace_id, "hubspot", {"token": hubspot_fake.token}, hubspot_fake.base_url
    )
    assert runner.invoke(cli, ["crm", "map", "flywheel_reasons", "community_notes"]).exit_code == 0
    assert runner.invoke(cli, ["crm", "map", "firstname", "--off"]).exit_code == 0
    shown = runner.invoke(cli, ["crm", "map", "--json"])
    assert '"flywheel_reasons": "community_notes"' in shown.output and '"firstname": null' in shown.output
    bad = runner.invoke(cli, ["crm", "map", "shoe_size", "x"])
    assert bad.exit_code == 2 and "unknown Flywheel field" in bad.stderr
    sync_crm(engine, settings, workspace_id, adapter=adapter(hubspot_fake))
    contact = hubspot_fake.contact("person1@corp1.io")
    assert contact is not None
    assert contact["properties"].get("community_notes") and not contact["properties"].get("firstname")
    assert "flywheel_reasons" not in {p["name"] for p in hubspot_fake.store.properties("contacts")}


class DiesAfter(HubSpotAdapter):
    """The real adapter, until the process 'dies' after a number of contact batches."""

    def __init__(self, *args: Any, batches: int, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.left = batches

    def upsert_contacts(self, records: Any) -> Any:
        if self.left == 0:
            raise KeyboardInterrupt  # what a kill looks like from inside: nothing after this runs
        self.left -= 1
        return super().upsert_contacts(records)


def test_a_sync_killed_midway_is_finished_by_the_next_with_no_duplicate_and_no_one_left_behind(
    engine: Engine, settings: Settings, workspace_id: int, hubspot_fake: HubSpotFake
) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from plugin.db.base import utcnow
    from plugin.db.models import CrmConnection

    members(engine, workspace_id, 750)
    save_connection(
        engine, settings, workspace_id, "hubspot", {"token": hubspot_fake.token}, hubspot_fake.base_url
    )
    with pytest.raises(KeyboardInterrupt):
        sync_crm(
            engine,
            settings,
            workspace_id,
            adapter=DiesAfter(hubspot_fake.token, host=hubspot_fake.base_url, batches=3),
        )
    assert len(hubspot_fake.contacts_by_email()) == 300
    with engine.begin() as conn:  # a SIGKILLed process leaves its lease behind; it runs out
        conn.execute(update(CrmConnection).values(lock_expires_at=utcnow() - timedelta(seconds=1)))
    report = sync_crm(engine, settings, workspace_id, adapter=adapter(hubspot_fake))
    assert (report.counts["created"], report.counts["unchanged"]) == (450, 300)
    assert len(hubspot_fake.contacts_by_email()) == 750


def test_a_panel_becomes_a_static_list_once_and_adding_again_adds_nobody_twice(
    engine: Engine, settings: Settings, workspace_id: int, hubspot_fake: HubSpotFake
) -> None:
    members(engine, workspace_id, 20)
    save_connection(
        engine, settings, workspace_id, "hubspot", {"token": hubspot_fake.token}, hubspot_fake.base_url
    )
    crm = adapter(hubspot_fake)
    sync_crm(engine, settings, workspace_id, adapter=crm)
    ids = [c["id"] for c in hubspot_fake.store.all("contacts")][:8]
    list_id, added = crm.add_to_list("Flywheel panel: onboarding study", ids[:5])
    again_id, again = crm.add_to_list("Flywheel panel: onboarding study", ids)
    assert again_id == list_id and (added, again) == (5, 3)
    assert hubspot_fake.count("POST", "/crm/v3/lists/") + hubspot_fake.count("POST", "/crm/v3/lists") == 1


def test_reconnecting_to_another_account_sends_everyone_there(
    engine: Engine, settings: Settings, workspace_id: int, hubspot_fake: HubSpotFake
) -> None:
    members(engine, workspace_id, 12)
    save_connection(
        engine, settings, workspace_id, "hubspot", {"token": hubspot_fake.token}, hubspot_fake.base_url
    )
    sync_crm(engine, settings, workspace_id, adapter=adapter(hubspot_fake))
    with HubSpotFake(tokens=("other-account",)) as other:
        save_connection(engine, settings, workspace_id, "hubspot", {"token": "other-account"}, other.base_url)
        report = sync_crm(
            engine, settings, workspace_id, adapter=HubSpotAdapter("other-account", host=other.base_url)
        )
        assert report.counts["created"] == 12 and len(other.contacts_by_email()) == 12
        assert report.counts.get("notes_created", 0) == 0  # past signals are not noted again
