"""GDPR actions as an admin and a data subject see them: an export holds everything about the person;
after an erasure no table holds their name or email, an anonymous audit line stays, scoring and the
CRM sync go on, and the CRM record is deleted, anonymized or kept as the workspace says (a CRM
failure is tried again on the next sync). Over the wire with the HubSpot and Salesforce fakes."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from connectors.crm.hubspot import HubSpotAdapter
from connectors.crm.salesforce import ERASED_NAME, EXTERNAL_ID, SalesforceAdapter
from connectors.errors import CrmUnavailable
from plugin.cli import cli
from plugin.db.base import Base, utcnow
from plugin.db.models import (
    Consent,
    CrmLink,
    Erasure,
    Member,
    Outreach,
    Panel,
    PanelMember,
    Referral,
    ReferralInvite,
    RewardGrant,
    RewardLine,
    Score,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)
from plugin.errors import NotFound, ValidationFailed
from plugin.services import merges
from plugin.services.crm_connections import save_connection
from plugin.services.crm_sync import sync_crm
from plugin.services.gdpr import erase_member, erasure, export_member, set_erasure_policy
from plugin.settings import Settings
from tests.fakes.hubspot import HubSpotFake
from tests.fakes.salesforce import SalesforceFake
from tests.plugin.crm_helpers import MemoryCrm
from tests.plugin.helpers import record
from tests.plugin.test_crm_hubspot import members
from tests.plugin.test_crm_salesforce import add_fields
from tests.plugin.test_score import FIXED, at, ingest, score

DANA = ("dana@bigco.io", "dana.levi@gmail.com", "Dana Levi", "dana-gh", "Dana")
GDPR_DELETE = ("POST", "/crm/v3/objects/contacts/gdpr-delete")


class ErasingCrm(MemoryCrm):
    """The in-process CRM, with the erasure calls; ``fail`` makes the next N of them fail."""

    def __init__(self) -> None:
        super().__init__()
        self.fail = 0

    def _email_of(self, crm_id: str) -> str | None:
        return next((e for e, p in self.contacts.items() if p["id"] == crm_id), None)

    def _maybe_fail(self) -> None:
        if self.fail:
            self.fail -= 1
            raise CrmUnavailable("HubSpot 503 SERVICE_UNAVAILABLE: Service Unavailable (after 6 attempts)")

    def delete_contact(self, crm_id: str) -> bool:
        self.calls["contacts.gdpr_delete"] += 1
        self._maybe_fail()
        email = self._email_of(crm_id)
        if email is None:
            return False
        del self.contacts[email]
        return True

    def anonymize_contact(self, crm_id: str, fields: list[str]) -> bool:
        self.calls["contacts.update"] += 1
        self._maybe_fail()
        email = self._email_of(crm_id)
        if email is None:
            return False
        props = self.contacts.pop(email)
        props.update(dict.fromkeys([*fields, "email", "firstname", "lastname"], ""))
        self.contacts[f"anonymous-{crm_id}"] = props
        return True


def leftovers(engine: Engine, needles: tuple[str, ...]) -> list[str]:
    """Every table.column (text, JSON and bytes alike) holding any of ``needles``, case-insensitively."""
    found = set()
    wanted = [n.lower() for n in needles]
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(table.select()):
                for column, value in row._mapping.items():
                    if isinstance(value, bytes):
                        text = value.decode("utf-8", "replace")
                    elif isinstance(value, str):
                        text = value
                    elif isinstance(value, dict | list):
                        text = json.dumps(value, ensure_ascii=False, default=str)
                    else:
                        continue
                    if any(n in text.lower() for n in wanted):
                        found.add(f"{table.name}.{column}")
    return sorted(found)


def _message(conn: Any, workspace_id: int, endpoint_id: int, msg_id: str, member: dict[str, Any]) -> None:
    body = orjson.dumps({"type": "lead.signal", "version": 1, "data": {"member": member, "reasons": []}})
    message_id = conn.execute(
        insert(WebhookMessage)
        .values(workspace_id=workspace_id, msg_id=msg_id, event_type="lead.signal", body=body)
        .returning(WebhookMessage.id)
    ).scalar_one()
    conn.execute(
        insert(WebhookDelivery).values(
            message_id=message_id, endpoint_id=endpoint_id, status="pending", next_attempt_at=utcnow()
        )
    )


@pytest.fixture
def dana(engine: Engine, workspace_id: int, people: dict[str, int]) -> dict[str, int]:
    """Dana (the community's CTO lead) with everything a person can leave in Flywheel: a second
    identity merged in, consents, referrals both ways, an unused invitation, a reward, a panel place,
    a contact-log entry and pending webhooks; and Pat, whom Dana referred. Scored."""
    ingest(
        engine,
        workspace_id,
        [
            record("gh-dana-1", source="github", kind="post", when=at(4), email="dana.levi@gmail.com",
                   name="Dana Levi", handle="dana-gh"),
            record("pat-1", kind="post", when=at(3), email="pat@quill.io", name="Pat Quill"),
        ],
    )  # fmt: skip
    with Session(engine) as session:
        other = session.scalar(select(Member.id).where(Member.primary_email == "dana.levi@gmail.com"))
        pat = session.scalar(select(Member.id).where(Member.primary_email == "pat@quill.io"))
        assert other and pat
        merges.merge(session, workspace_id, people["cto"], other, actor="test", reason="same person")
        session.commit()
    me, ann = people["cto"], people["ann"]
    with engine.begin() as conn:
        conn.execute(
            insert(Consent),
            [
                {"workspace_id": workspace_id, "member_id": me, "purpose": p, "granted": True,
                 "recorded_at": FIXED, "source": "form"}
                for p in ("marketing", "sales")
            ],
        )  # fmt: skip
        invites = {}
        for who, code in ((me, "DANA-SPRING"), (me, "DANA-UNUSED"), (ann, "ANN-SPRING")):
            invites[code] = conn.execute(
                insert(ReferralInvite)
                .values(workspace_id=workspace_id, member_id=who, code=code, campaign="spring")
                .returning(ReferralInvite.id)
            ).scalar_one()
        conn.execute(
            insert(Referral),
            [
                {"workspace_id": workspace_id, "invite_id": invites["DANA-SPRING"], "member_id": me,
                 "prospect_name": "Pat Quill", "prospect_email": "pat@quill.io", "status": "pending"},
                {"workspace_id": workspace_id, "invite_id": invites["ANN-SPRING"], "member_id": ann,
                 "prospect_name": "Dana Levi", "prospect_email": "dana@bigco.io", "status": "pending"},
            ],
        )  # fmt: skip
        grant = conn.execute(
            insert(RewardGrant)
            .values(workspace_id=workspace_id, member_id=me, kind="money", amount=Decimal("50"),
                    currency="EUR", reason="referral_converted", idempotency_key="manual-dana@bigco.io",
                    note="pay to dana@bigco.io", created_by="cli")
            .returning(RewardGrant.id)
        ).scalar_one()  # fmt: skip
        conn.execute(
            insert(RewardLine).values(grant_id=grant, status="pending", by="cli", note="for Dana Levi")
        )
        panel = conn.execute(
            insert(Panel)
            .values(workspace_id=workspace_id, name="Pricing research", spec={})
            .returning(Panel.id)
        ).scalar_one()
        conn.execute(
            insert(PanelMember).values(panel_id=panel, member_id=me, stratum="all", role="selected", rank=0,
                                       status="invited")
        )  # fmt: skip
        conn.execute(
            insert(Outreach).values(workspace_id=workspace_id, member_id=me, kind="referral.invitation")
        )
        endpoint = conn.execute(
            insert(WebhookEndpoint)
            .values(workspace_id=workspace_id, url="https://hooks.example.com/in", secret_encrypted="x")
            .returning(WebhookEndpoint.id)
        ).scalar_one()
        _message(conn, workspace_id, endpoint, "msg_dana", {"id": me, "name": "Dana", "email": DANA[0]})
        _message(conn, workspace_id, endpoint, "msg_ann", {"id": ann, "name": "Ann"})
    score(engine, workspace_id, full=True)
    return {"me": me, "merged": other, "pat": pat, "ann": ann, "grant": grant}


def erase(engine: Engine, workspace_id: int, member_id: int, reason: str = "request 42") -> dict[str, Any]:
    with engine.begin() as conn:
        erasure_id = erase_member(conn, workspace_id, member_id, actor="test", reason=reason, now=FIXED)
        return erasure(conn, workspace_id, erasure_id)


def connect_memory(engine: Engine, settings: Settings, workspace_id: int) -> ErasingCrm:
    save_connection(engine, settings, workspace_id, "hubspot", {"token": "pat-na1-secret"}, None)
    return ErasingCrm()


def test_an_export_holds_everything_about_the_person_as_json_with_utc_times(
    engine: Engine, settings: Settings, workspace_id: int, dana: dict[str, int]
) -> None:
    crm = connect_memory(engine, settings, workspace_id)
    sync_crm(engine, settings, workspace_id, adapter=crm)
    with engine.connect() as conn:
        data = export_member(conn, workspace_id, dana["merged"])  # a merged id leads to the person
    assert json.loads(json.dumps(data)) == data  # plain JSON all the way down
    assert data["member"]["id"] == dana["me"] and data["member"]["merged_member_ids"] == [dana["merged"]]
    assert data["member"]["primary_email"] == "dana@bigco.io" and data["member"]["title"] == "CTO"
    assert {i["email"] for i in data["identities"]} == {"dana@bigco.io", "dana.levi@gmail.com"}
    assert len(data["activities"]) == 11 and data["activities"][0]["occurred_at"].endswith("+00:00")
    assert any(a["title"] and "pricing" in a["title"] for a in data["activities"])
    assert {c["purpose"] for c in data["consents"]} == {"marketing", "sales"}
    lead = next(s for s in data["scores"] if s["kind"] == "lead")
    assert lead["hot"] and lead["reasons"] and all(isinstance(r, str) for r in lead["reasons"])
    programs = data["programs"]
    assert [r["prospect_email"] for r in programs["referrals_made"]] == ["pat@quill.io"]
    assert [r["prospect_name"] for r in programs["referred_as_prospect"]] == ["Dana Levi"]
    assert {i["code"] for i in programs["referral_invitations"]} == {"DANA-SPRING", "DANA-UNUSED"}
    assert (
        programs["rewards"][0]["amount"] == "50"
        and programs["rewards"][0]["statuses"][0]["status"] == "pending"
    )
    assert programs["panels"][0]["name"] == "Pricing research" and programs["contact_log"]
    assert data["crm"][0]["crm"] == "hubspot" and data["crm"][0]["crm_id"]
    with pytest.raises(NotFound), engine.connect() as conn:
        export_member(conn, workspace_id + 1000, dana["me"])


def test_after_an_erasure_no_table_holds_the_persons_name_or_email_and_an_anonymous_audit_line_stays(
    engine: Engine, settings: Settings, workspace_id: int, dana: dict[str, int]
) -> None:
    crm = connect_memory(engine, settings, workspace_id)
    sync_crm(engine, settings, workspace_id, adapter=crm)
    assert "dana" in crm.contacts["pat@quill.io"]["flywheel_referred_by"].lower()  # Pat: referred by Dana
    assert set(leftovers(engine, DANA)) >= {"members.display_name", "identities.email", "crm_links.fields"}

    line = erase(engine, workspace_id, dana["me"], reason="GDPR request 42 from dana@bigco.io")

    assert leftovers(engine, DANA) == []
    assert not any(n.lower() in orjson.dumps(line).decode().lower() for n in DANA)
    assert line["reason"] == "GDPR request 42 from [erased]" and line["member_id"] == dana["me"]
    removed = line["removed"]
    assert removed["members"] == 2 and removed["identities"] == 2 and removed["activities"] == 11
    assert removed["consents"] == 2 and removed["webhook_messages"] >= 1 and removed["referral_invites"] == 1
    assert removed["scores"] >= 2 and removed["crm_links"] == 1 and removed["panel_places"] == 1
    assert removed["hand_raises"] >= 1  # scoring's copy of the pricing question goes with it
    [ref] = line["crm_refs"]
    assert (ref["crm"], ref["action"], ref["done_at"]) == ("hubspot", "delete", None)
    assert line["crm_action"] == "delete" and line["crm_done_at"] is None
    with engine.connect() as conn:
        shells = conn.execute(select(Member).where(Member.id.in_([dana["me"], dana["merged"]]))).all()
        assert all(m.merged_into_id == dana["me"] and m.display_name is None and m.organization_id is None
                   for m in shells)  # fmt: skip
        grant = conn.execute(select(RewardGrant).where(RewardGrant.id == dana["grant"])).one()
        assert grant.amount == Decimal("50") and grant.note is None  # the ledger's amount stays
        by_ann = conn.execute(select(Referral).where(Referral.member_id == dana["ann"])).one()
        assert by_ann.status == "rejected" and by_ann.prospect_name == ""
        left = conn.execute(select(WebhookMessage.msg_id)).scalars().all()
        assert "msg_ann" in left and "msg_dana" not in left  # Dana's are not sent; others' are
        codes = conn.execute(select(ReferralInvite.code).where(ReferralInvite.member_id == dana["me"])).all()
        assert [c.code.startswith("erased-") for c in codes] == [True]  # the old link stops working

    # Scoring and the CRM sync go on; the CRM record is deleted; Pat's "referred by" no longer names Dana.
    report = score(engine, workspace_id, full=True)
    assert report.members_scored > 0
    with engine.connect() as conn:
        assert not conn.execute(
            select(Score).where(Score.subject_id == dana["me"], Score.subject == "member")
        ).all()
    synced = sync_crm(engine, settings, workspace_id, adapter=crm)
    assert synced.counts["erasures_done"] == 1 and "dana@bigco.io" not in crm.contacts
    assert crm.contacts["pat@quill.io"]["flywheel_referred_by"] == "a community member"
    with engine.connect() as conn:
        done = erasure(conn, workspace_id, line["id"])
    assert done["crm_done_at"] and done["crm_refs"][0]["result"] == "deleted"
    assert leftovers(engine, DANA) == []

    with pytest.raises(ValidationFailed, match="already erased"):
        erase(engine, workspace_id, dana["me"])
    with pytest.raises(NotFound):
        erase(engine, workspace_id + 1000, dana["pat"])


def test_a_crm_failure_leaves_the_erasure_pending_and_the_next_sync_finishes_it(
    engine: Engine, settings: Settings, workspace_id: int, dana: dict[str, int]
) -> None:
    crm = connect_memory(engine, settings, workspace_id)
    sync_crm(engine, settings, workspace_id, adapter=crm)
    line = erase(engine, workspace_id, dana["me"])
    score(engine, workspace_id)
    crm.fail = 1
    first = sync_crm(engine, settings, workspace_id, adapter=crm)
    assert first.counts["erasures_failed"] == 1 and first.counts["failed"] == 0  # the rest of the sync ran
    assert "dana@bigco.io" in crm.contacts
    with engine.connect() as conn:
        pending = erasure(conn, workspace_id, line["id"])
    assert pending["crm_done_at"] is None and "503" in (pending["crm_result"] or "")
    assert pending["crm_refs"][0]["attempts"] == 1
    dry = sync_crm(engine, settings, workspace_id, adapter=crm, dry_run=True)
    assert dry.counts["erasures_pending"] == 1
    second = sync_crm(engine, settings, workspace_id, adapter=crm)
    assert second.counts["erasures_done"] == 1 and "dana@bigco.io" not in crm.contacts
    third = sync_crm(engine, settings, workspace_id, adapter=crm)
    assert "erasures_done" not in third.counts and crm.calls["contacts.gdpr_delete"] == 2


@pytest.mark.parametrize("policy", ["anonymize", "keep"])
def test_the_crm_record_is_anonymized_or_kept_as_the_policy_says(
    engine: Engine, settings: Settings, workspace_id: int, dana: dict[str, int], policy: str
) -> None:
    crm = connect_memory(engine, settings, workspace_id)
    sync_crm(engine, settings, workspace_id, adapter=crm)
    contact_id = crm.contacts["dana@bigco.io"]["id"]
    assert set_erasure_policy(engine, workspace_id, policy) == {"hubspot": policy}
    line = erase(engine, workspace_id, dana["me"])
    assert line["crm_action"] == policy
    sync_crm(engine, settings, workspace_id, adapter=crm)
    with engine.connect() as conn:
        assert erasure(conn, workspace_id, line["id"])["crm_done_at"]
    if policy == "keep":
        assert crm.contacts["dana@bigco.io"]["id"] == contact_id and crm.calls["contacts.update"] == 0
    else:
        anonymous = crm.contacts[f"anonymous-{contact_id}"]
        assert anonymous["firstname"] == "" and anonymous["flywheel_lead_score"] == ""


def test_an_erasure_without_a_crm_record_is_done_at_once(
    engine: Engine, workspace_id: int, dana: dict[str, int]
) -> None:
    line = erase(engine, workspace_id, dana["pat"])
    assert line["crm_refs"] == [] and line["crm_done_at"] and line["crm_result"] == "no CRM record to handle"
    assert leftovers(engine, ("pat@quill.io", "Pat Quill")) == []


# -- over the wire ---------------------------------------------------------------------------------


def hubspot(fake: HubSpotFake) -> HubSpotAdapter:
    return HubSpotAdapter(fake.token, host=fake.base_url, timeout=3.0, sleep=lambda s: None, max_attempts=2)


def member_id(engine: Engine, email: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(Member.id).where(Member.primary_email == email)).scalar_one())


@pytest.mark.parametrize("policy", ["delete", "anonymize", "keep"])
def test_hubspot_deletes_anonymizes_or_keeps_the_contact(
    engine: Engine, settings: Settings, workspace_id: int, hubspot_fake: HubSpotFake, policy: str
) -> None:
    members(engine, workspace_id, 5)
    save_connection(
        engine, settings, workspace_id, "hubspot", {"token": hubspot_fake.token}, hubspot_fake.base_url
    )
    sync_crm(engine, settings, workspace_id, adapter=hubspot(hubspot_fake))
    contact = hubspot_fake.contact("person3@corp3.io")
    assert contact is not None and contact["properties"]["flywheel_advocate_level"]
    set_erasure_policy(engine, workspace_id, policy)
    line = erase(engine, workspace_id, member_id(engine, "person3@corp3.io"))
    report = sync_crm(engine, settings, workspace_id, adapter=hubspot(hubspot_fake))
    assert report.counts["erasures_done"] == 1 and report.counts["failed"] == 0
    with engine.connect() as conn:
        assert erasure(conn, workspace_id, line["id"])["crm_done_at"]
    stored = hubspot_fake.store.get("contacts", contact["id"])
    if policy == "delete":
        assert stored is None and hubspot_fake.count(*GDPR_DELETE) == 1
        assert any(c.route == GDPR_DELETE[1] and c.status == 204 for c in hubspot_fake.call_log)
    elif policy == "anonymize":
        assert stored is not None and hubspot_fake.count(*GDPR_DELETE) == 0
        props = stored["properties"]
        assert not props["email"] and not props["firstname"] and not props["lastname"]
        assert not props["flywheel_advocate_level"] and not props["flywheel_member_id"]
    else:
        assert stored is not None and stored["properties"]["email"] == "person3@corp3.io"
        assert hubspot_fake.count(*GDPR_DELETE) == 0
    assert len(hubspot_fake.contacts_by_email()) == (
        5 if policy == "keep" else 4
    )  # an anonymous one has none


def test_a_hubspot_failure_is_retried_on_the_next_sync_and_a_contact_already_gone_counts_as_done(
    engine: Engine, settings: Settings, workspace_id: int, hubspot_fake: HubSpotFake
) -> None:
    members(engine, workspace_id, 5)
    save_connection(
        engine, settings, workspace_id, "hubspot", {"token": hubspot_fake.token}, hubspot_fake.base_url
    )
    sync_crm(engine, settings, workspace_id, adapter=hubspot(hubspot_fake))
    first = erase(engine, workspace_id, member_id(engine, "person1@corp1.io"))
    second = erase(engine, workspace_id, member_id(engine, "person2@corp2.io"))
    gone = hubspot_fake.contact("person2@corp2.io")
    assert gone is not None
    hubspot_fake.store.purge("contacts", gone["id"])  # someone deleted it in HubSpot meanwhile
    hubspot_fake.fail(*GDPR_DELETE, status=503, times=2)  # both attempts of the first erasure
    report = sync_crm(engine, settings, workspace_id, adapter=hubspot(hubspot_fake))
    assert report.counts["erasures_failed"] == 1 and report.counts["erasures_done"] == 1
    with engine.connect() as conn:
        pending, done = erasure(conn, workspace_id, first["id"]), erasure(conn, workspace_id, second["id"])
    assert pending["crm_done_at"] is None and "HubSpot 503" in pending["crm_result"]
    assert done["crm_done_at"] and done["crm_refs"][0]["result"] == "not found in the CRM (already gone)"
    assert hubspot_fake.contact("person1@corp1.io") is not None
    again = sync_crm(engine, settings, workspace_id, adapter=hubspot(hubspot_fake))
    assert again.counts["erasures_done"] == 1 and hubspot_fake.contact("person1@corp1.io") is None
    with engine.connect() as conn:
        assert erasure(conn, workspace_id, first["id"])["crm_done_at"]


def salesforce(fake: SalesforceFake) -> SalesforceAdapter:
    return SalesforceAdapter(fake.client(), sleep=lambda s: None, timeout=5.0, max_attempts=2)


@pytest.mark.parametrize("policy", ["delete", "anonymize", "keep"])
def test_salesforce_deletes_anonymizes_or_keeps_the_lead_or_contact(
    engine: Engine, settings: Settings, workspace_id: int, salesforce_fake: SalesforceFake, policy: str
) -> None:
    members(engine, workspace_id, 5)
    add_fields(salesforce_fake)
    contact = salesforce_fake.insert("Contact", LastName="Known", FirstName="Kim", Email="person4@corp4.io")
    save_connection(
        engine, settings, workspace_id, "salesforce", {"session": "fake"}, salesforce_fake.instance_url
    )
    sync_crm(engine, settings, workspace_id, adapter=salesforce(salesforce_fake))
    lead = salesforce_fake.find("Lead", "Email", "person3@corp3.io")[0]
    set_erasure_policy(engine, workspace_id, policy, "salesforce")
    lines = [
        erase(engine, workspace_id, member_id(engine, e)) for e in ("person3@corp3.io", "person4@corp4.io")
    ]
    assert [x["crm_refs"][0]["crm_id"][:3] for x in lines] == ["00Q", "003"]
    report = sync_crm(engine, settings, workspace_id, adapter=salesforce(salesforce_fake))
    assert report.counts["erasures_done"] == 2 and report.counts["failed"] == 0
    leads = {r["Id"] for r in salesforce_fake.records("Lead")}
    known = {r["Id"]: r for r in salesforce_fake.records("Contact")}
    if policy == "delete":
        assert lead["Id"] not in leads and contact not in known
        assert salesforce_fake.count("DELETE", "/services/data/vXX.X/sobjects/Lead/{id}") == 1
    elif policy == "anonymize":
        erased = salesforce_fake.record("Lead", lead["Id"])
        assert erased["LastName"] == ERASED_NAME and erased["Email"] is None and erased["FirstName"] is None
        assert erased[EXTERNAL_ID] is None and erased["Flywheel_Advocate_Level__c"] is None
        assert erased["Company"]  # required on a Lead, and not the person's
        assert known[contact]["Email"] is None and known[contact]["LastName"] == ERASED_NAME
    else:
        assert lead["Id"] in leads and known[contact]["Email"] == "person4@corp4.io"


# -- the CLI ---------------------------------------------------------------------------------------


def test_the_cli_exports_asks_before_erasing_and_says_what_the_crm_will_do(
    runner: CliRunner,
    engine: Engine,
    settings: Settings,
    workspace_id: int,
    dana: dict[str, int],
    tmp_path: Path,
) -> None:
    save_connection(engine, settings, workspace_id, "hubspot", {"token": "pat-na1-secret"}, None)
    sync_crm(engine, settings, workspace_id, adapter=ErasingCrm())
    out = tmp_path / "dana.json"
    done = runner.invoke(cli, ["members", "export", "dana@bigco.io", "--out", str(out), "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["activities"] == 11
    assert json.loads(out.read_text())["member"]["display_name"] == "Dana"
    printed = runner.invoke(cli, ["members", "export", str(dana["me"])])
    assert printed.exit_code == 0 and json.loads(printed.output)["member"]["id"] == dana["me"]

    policy = runner.invoke(cli, ["crm", "erasure-policy", "anonymize", "--json"])
    assert policy.exit_code == 0 and json.loads(policy.output)["erasure_policy"] == {"hubspot": "anonymize"}
    shown = runner.invoke(cli, ["crm", "erasure-policy"])
    assert "hubspot: an erased member's CRM record is anonymized" in shown.output

    refused = runner.invoke(cli, ["members", "erase", "dana@bigco.io", "--reason", "request 7"], input="n\n")
    assert refused.exit_code != 0 and "Erase member" in refused.output
    with engine.connect() as conn:
        assert not conn.execute(select(Erasure)).all()
    erased = runner.invoke(cli, ["members", "erase", "dana@bigco.io", "--reason", "request 7"], input="y\n")
    assert erased.exit_code == 0, erased.output
    assert f"Erased member {dana['me']}" in erased.output and "activities 11" in erased.output
    assert "will be anonymized" in erased.output and "flywheel crm sync" in erased.output
    again = runner.invoke(cli, ["members", "erase", str(dana["pat"]), "--reason", "r", "--yes", "--json"])
    assert again.exit_code == 0 and json.loads(again.output)["crm_refs"][0]["action"] == "anonymize"
    gone = runner.invoke(cli, ["members", "erase", "dana@bigco.io", "--reason", "r", "--yes"])
    assert gone.exit_code == 4 and "no member" in gone.output  # the email is nowhere any more
    listed = runner.invoke(cli, ["members", "erasures", "--json"])
    assert [x["member_id"] for x in json.loads(listed.output)] == [dana["pat"], dana["me"]]
    assert leftovers(engine, DANA) == []
    with engine.connect() as conn:
        assert not conn.execute(select(CrmLink).where(CrmLink.member_id == dana["me"])).all()


def test_a_member_sharing_the_email_unmerged_is_erased_with_the_person(
    engine: Engine, workspace_id: int
) -> None:
    from plugin.db.base import utcnow
    from plugin.db.models import Identity, Member
    from tests.plugin.helpers import record
    from tests.plugin.test_score import ingest

    twin = {"email": "sam@quill.io", "name": "Sam Quill"}
    ingest(engine, workspace_id, [
        record("d-1", source="discourse", **twin),
        record("g-1", source="github", kind="post", **twin, email_verified=False),
    ])  # fmt: skip
    with engine.connect() as conn:
        live = conn.execute(select(Member.id).where(Member.merged_into_id.is_(None))).scalars().all()
    assert len(live) == 2  # the unverified email opened no merge
    with engine.begin() as conn:
        erase_member(conn, workspace_id, live[0], actor="test", reason="asked", now=utcnow())
    with engine.connect() as conn:
        assert conn.execute(select(Member.id).where(Member.merged_into_id.is_(None))).all() == []
        assert conn.execute(select(Identity.id)).all() == []


def test_a_pending_erasure_is_never_sent_to_another_crm_account(
    engine: Engine, settings: Settings, workspace_id: int
) -> None:
    from plugin.db.base import utcnow
    from plugin.db.models import CrmConnection, CrmLink, Erasure, Member
    from plugin.services.crm_connections import save_connection

    row = save_connection(engine, settings, workspace_id, "hubspot", {"token": "account-a"}, None)
    with engine.begin() as conn:
        member = conn.execute(
            insert(Member).values(
                workspace_id=workspace_id, display_name="Dana", primary_email="dana@a.example"
            )
        ).inserted_primary_key[0]
        conn.execute(insert(CrmLink).values(connection_id=row.id, member_id=member, crm_id="101"))
        erasure = erase_member(conn, workspace_id, member, actor="test", reason=None, now=utcnow())
    with engine.connect() as conn:
        assert conn.execute(select(Erasure.crm_done_at).where(Erasure.id == erasure)).scalar() is None
    save_connection(
        engine, settings, workspace_id, "hubspot", {"token": "account-b"}, None
    )  # another account
    with engine.connect() as conn:
        line = conn.execute(select(Erasure.crm_done_at, Erasure.crm_refs).where(Erasure.id == erasure)).one()
        assert conn.execute(select(CrmConnection.id)).scalar() == row.id
    assert line.crm_done_at is not None and "account changed" in line.crm_refs[0]["result"]
