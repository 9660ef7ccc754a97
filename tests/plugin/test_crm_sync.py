"""CRM sync as a sales rep and an admin see it: scores land on contacts, nothing is sent twice,
failures and interruptions lose nothing, two syncs never overlap."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from connectors.crm.base import CrmDeal
from plugin.db.base import utcnow
from plugin.db.models import CrmConnection, CrmLink, Member
from plugin.db.models import CrmDeal as CrmDealRow
from plugin.errors import NotFound, TransientError
from plugin.services.crm_connections import acquire_lease, save_connection
from plugin.services.crm_pull import pull_crm
from plugin.services.crm_sync import sync_crm
from plugin.services.score_config import load_scoring_config
from plugin.services.score_run import run_scoring
from plugin.settings import Settings
from tests.plugin.crm_helpers import Killed, MemoryCrm
from tests.plugin.test_score import PEOPLE, act, ingest, score, stored

EMAILS = {p["email"] for p in PEOPLE.values()}


@pytest.fixture
def crm(engine: Engine, settings: Settings, workspace_id: int, people: dict[str, int]) -> MemoryCrm:
    score(engine, workspace_id)
    save_connection(engine, settings, workspace_id, "hubspot", {"token": "pat-na1-secret"}, None)
    return MemoryCrm()


def sync(engine: Engine, settings: Settings, workspace_id: int, crm: MemoryCrm, **kw: Any) -> Any:
    return sync_crm(engine, settings, workspace_id, adapter=crm, **kw)


def test_first_sync_puts_every_member_with_scores_and_reasons_then_a_resync_sends_nothing(
    engine: Engine, settings: Settings, workspace_id: int, people: dict[str, int], crm: MemoryCrm
) -> None:
    first = sync(engine, settings, workspace_id, crm)
    assert first.counts["created"] == len(PEOPLE) and set(crm.contacts) == EMAILS
    assert crm.calls["contacts.batch_upsert"] == 1  # 28 members: one batch
    ann = crm.contacts["ann@gmail.com"]
    advocate = stored(engine, "advocate")[people["ann"]]
    assert ann["flywheel_advocate_level"] == advocate.label
    assert float(ann["flywheel_advocate_score"]) == pytest.approx(advocate.score, abs=0.05)
    assert ann["flywheel_reasons"].startswith("Advocate: ") and ann["firstname"] == "Ann"
    assert crm.contacts["dana@bigco.io"]["flywheel_lead_hot"] == "true"  # asked about pricing
    assert "flywheel_churn_band" in crm.contacts["cara@custco.io"]
    again = sync(engine, settings, workspace_id, crm)
    assert again.counts["unchanged"] == len(PEOPLE) and again.counts["created"] == 0
    assert crm.calls["contacts.batch_upsert"] == 1  # the re-sync made no write call


def test_only_members_whose_fields_changed_are_sent(
    engine: Engine, settings: Settings, workspace_id: int, people: dict[str, int], crm: MemoryCrm
) -> None:
    sync(engine, settings, workspace_id, crm)
    ingest(engine, workspace_id, [act("rex-answer", "rex", "answer_accepted", 0.1)])
    score(engine, workspace_id)
    report = sync(engine, settings, workspace_id, crm)
    assert report.counts["updated"] >= 1 and report.counts["created"] == 0
    assert report.counts["updated"] + report.counts["unchanged"] == len(PEOPLE)
    assert report.counts["updated"] < 5  # rex (and at most the few whose account signal moved)


def test_a_refused_record_fails_alone_keeps_its_reason_and_is_retried_next_time(
    engine: Engine, settings: Settings, workspace_id: int, people: dict[str, int], crm: MemoryCrm
) -> None:
    crm.refuse["rex@gmail.com"] = "VALIDATION_ERROR: Email address rex@gmail.com is invalid"
    report = sync(engine, settings, workspace_id, crm)
    assert report.counts["failed"] == 1 and report.counts["created"] == len(PEOPLE) - 1
    assert report.failures == [{"member_id": people["rex"], "reason": crm.refuse["rex@gmail.com"]}]
    with engine.connect() as conn:
        link = conn.execute(select(CrmLink).where(CrmLink.member_id == people["rex"])).one()
    assert link.failure and link.failures == 1 and link.fields_hash is None
    del crm.refuse["rex@gmail.com"]
    retry = sync(engine, settings, workspace_id, crm)
    assert (retry.counts["created"], retry.counts["unchanged"]) == (1, len(PEOPLE) - 1)


def test_a_run_killed_midway_is_finished_by_the_next_without_duplicates(
    engine: Engine, settings: Settings, workspace_id: int, people: dict[str, int], crm: MemoryCrm
) -> None:
    crm.batch_size = 10
    crm.die_after_batches = 2
    with pytest.raises(Killed):
        sync(engine, settings, workspace_id, crm)
    assert len(crm.contacts) == 20
    # The dead run's lease outlives it until it expires; a restart after that takes over.
    with engine.begin() as conn:
        conn.execute(
            update(CrmConnection).values(
                lock_holder="dead:1:x", lock_expires_at=utcnow() - timedelta(seconds=1)
            )
        )
    crm.die_after_batches = None
    report = sync(engine, settings, workspace_id, crm)
    assert report.counts["created"] == len(PEOPLE) - 20 and report.counts["unchanged"] == 20
    assert set(crm.contacts) == EMAILS and crm.calls["contacts.batch_upsert"] == 2 + 1


def test_two_syncs_of_one_crm_never_overlap(
    engine: Engine, settings: Settings, workspace_id: int, people: dict[str, int], crm: MemoryCrm
) -> None:
    with engine.connect() as conn:
        connection_id = conn.execute(select(CrmConnection.id)).scalar_one()
    acquire_lease(engine, connection_id, "other-host:42:abc")
    with pytest.raises(TransientError, match="another sync of this CRM is running") as caught:
        sync(engine, settings, workspace_id, crm)
    assert caught.value.hint and "runs out by itself" in caught.value.hint
    assert crm.calls["contacts.batch_upsert"] == 0


def test_a_dry_run_says_what_would_change_field_by_field_and_sends_nothing(
    engine: Engine, settings: Settings, workspace_id: int, people: dict[str, int], crm: MemoryCrm
) -> None:
    sync(engine, settings, workspace_id, crm)
    ingest(engine, workspace_id, [act("rex-answer", "rex", "answer_accepted", 0.1)])
    score(engine, workspace_id)
    calls = sum(crm.calls.values())
    report = sync(engine, settings, workspace_id, crm, dry_run=True)
    assert sum(crm.calls.values()) == calls
    rex = next(c for c in report.changes if c["member_id"] == people["rex"])
    assert not rex["new"] and "flywheel_advocate_score" in rex["fields"]
    before = rex["fields"]["flywheel_advocate_score"]
    assert float(before["to"]) > float(before["from"])
    assert sync(engine, settings, workspace_id, crm).counts["updated"] == report.counts["would_change"]


def test_without_a_connection_the_user_is_told_how_to_connect(
    engine: Engine, settings: Settings, workspace_id: int
) -> None:
    with pytest.raises(NotFound) as caught:
        sync_crm(engine, settings, workspace_id, adapter=MemoryCrm())
    assert caught.value.hint and "flywheel crm connect hubspot" in caught.value.hint


def test_a_won_deal_in_the_crm_makes_the_member_a_customer_scored_for_churn(
    engine: Engine, settings: Settings, workspace_id: int, people: dict[str, int], crm: MemoryCrm
) -> None:
    sync(engine, settings, workspace_id, crm)
    dana = people["cto"]
    assert dana in stored(engine, "lead") and dana not in stored(engine, "churn")
    crm.contacts["ann@gmail.com"]["lifecyclestage"] = "evangelist"
    dana_id = crm.contacts["dana@bigco.io"]["id"]
    crm.deals.append(
        CrmDeal("9001", "BigCo platform", "closedwon", True, True, 48000.0, "2026-05-30", (dana_id,))
    )
    crm.deals.append(
        CrmDeal("9002", "Side deal", "appointmentscheduled", False, False, None, None, (dana_id,))
    )
    report = pull_crm(engine, settings, workspace_id, adapter=crm)
    assert report.counts["won_deals"] == 1 and report.counts["made_customers"] == 1
    with engine.connect() as conn:
        stages = dict(conn.execute(select(Member.id, Member.lifecycle_stage)).all())
    assert stages[dana] == "customer" and stages[people["ann"]] == "evangelist"
    rescore = score(engine, workspace_id)
    assert rescore.mode == "full" and "lifecycle" in rescore.why
    assert dana in stored(engine, "churn") and dana not in stored(engine, "lead")


def test_signals_become_notes_on_the_contact_once_each_with_reasons_and_the_posts_that_raised_the_hand(
    engine: Engine, settings: Settings, workspace_id: int, people: dict[str, int], crm: MemoryCrm
) -> None:
    first = sync(engine, settings, workspace_id, crm)
    dana = crm.contacts["dana@bigco.io"]["id"]
    hot = [n for n in crm.notes if n.contact_id == dana and "Lead turned hot" in n.body]
    assert len(hot) == 1 and "enterprise pricing" in hot[0].body and "<li>" in hot[0].body
    assert first.counts["notes_created"] == len(crm.notes) >= 2
    assert all(n.timestamp.tzinfo is not None for n in crm.notes)
    again = sync(engine, settings, workspace_id, crm)
    assert again.counts["notes_created"] == 0 and len(crm.notes) == first.counts["notes_created"]
    # A new signal later is noted alone.
    ingest(engine, workspace_id, [act(f"rex-a{d}", "rex", "answer_accepted", d / 10) for d in range(1, 30)])
    score(engine, workspace_id)
    third = sync(engine, settings, workspace_id, crm)
    rex = crm.contacts["rex@gmail.com"]["id"]
    assert third.counts["notes_created"] >= 1
    assert any(
        n.contact_id == rex and "champion" in n.body for n in crm.notes[first.counts["notes_created"] :]
    )


def test_organizations_become_companies_reusing_one_the_crm_has_and_contacts_are_associated_once(
    engine: Engine, settings: Settings, workspace_id: int, people: dict[str, int], crm: MemoryCrm
) -> None:
    crm.companies["c-existing"] = {"name": "BigCo (entered by sales)", "domain": "bigco.io"}
    first = sync(engine, settings, workspace_id, crm)
    domains = sorted(p["domain"] for p in crm.companies.values())
    assert domains == ["bigco.io", "custco.io", "oldco.io"]  # no company for gmail.com, none twice
    assert first.counts["companies_found"] == 1 and first.counts["companies_created"] == 2
    dana = crm.contacts["dana@bigco.io"]["id"]
    assert crm.company_of[dana] == "c-existing"
    assert crm.company_of[crm.contacts["sam@custco.io"]["id"]] != "c-existing"
    assert first.counts["contacts_associated"] == 8  # dana, dev0-3 at bigco; cara, sam at custco; sid
    calls = dict(crm.calls)
    again = sync(engine, settings, workspace_id, crm)
    assert again.counts["companies_unchanged"] == 3 and again.counts["contacts_associated"] == 0
    assert crm.calls["companies.write"] == calls["companies.write"]
    assert crm.calls["associations.batch"] == calls["associations.batch"]


def test_notes_stopped_midway_are_finished_next_time_and_none_is_noted_twice(
    engine: Engine,
    settings: Settings,
    workspace_id: int,
    people: dict[str, int],
    crm: MemoryCrm,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from plugin.services import crm_sync

    monkeypatch.setattr(crm_sync, "NOTE_BATCH", 1)
    made = crm.create_notes
    calls = {"n": 0}

    def dies_on_the_second(notes: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise Killed
        return made(notes)

    crm.create_notes = dies_on_the_second  # type: ignore[method-assign]
    with pytest.raises(Killed):
        sync(engine, settings, workspace_id, crm)
    assert len(crm.notes) == 1
    crm.create_notes = made  # type: ignore[method-assign]
    with engine.begin() as conn:
        conn.execute(update(CrmConnection).values(lock_holder=None))
    sync(engine, settings, workspace_id, crm)
    keys = [n.key for n in crm.notes]
    assert len(keys) == len(set(keys)) >= 3  # every signal noted, once


def test_a_sync_that_lost_its_lease_stops_instead_of_writing_beside_another(
    engine: Engine, settings: Settings, workspace_id: int, people: dict[str, int], crm: MemoryCrm
) -> None:
    from plugin.services.crm_connections import renew_lease

    with engine.connect() as conn:
        connection_id = conn.execute(select(CrmConnection.id)).scalar_one()
    acquire_lease(engine, connection_id, "slow-host:1:a")
    with engine.begin() as conn:  # its lease ran out and another process took over
        conn.execute(update(CrmConnection).values(lock_expires_at=utcnow() - timedelta(seconds=1)))
    acquire_lease(engine, connection_id, "fast-host:2:b")
    with pytest.raises(TransientError, match="lost its lease"), engine.begin() as conn:
        renew_lease(conn, connection_id, "slow-host:1:a")


def test_a_deal_a_pull_finds_new_or_changed_is_scored_by_the_next_incremental_run(
    engine: Engine, settings: Settings, workspace_id: int, people: dict[str, int], crm: MemoryCrm
) -> None:
    """The scheduled incremental run rescores the members a new or changed deal involves (and their
    colleagues), not only those with new activity; a pull that changes nothing rescores no one.
    Runs on the real clock here: a deal's change is stamped by the pull's clock."""

    def run(**kw: Any) -> Any:
        return run_scoring(engine, workspace_id, load_scoring_config(), **kw)

    def an_hour_passes() -> None:
        with engine.begin() as conn:
            rows = conn.execute(select(CrmDealRow.crm_id, CrmDealRow.changed_at)).all()
            for crm_id, changed in rows:
                if changed is not None:
                    conn.execute(
                        update(CrmDealRow)
                        .where(CrmDealRow.crm_id == crm_id)
                        .values(changed_at=changed - timedelta(hours=1))
                    )

    sync(engine, settings, workspace_id, crm)
    assert pull_crm(engine, settings, workspace_id, adapter=crm).counts["deals_changed"] == 0
    run(full=True)
    dana, dev0 = people["cto"], people["dev0"]
    before = stored(engine, "lead")
    dana_id = crm.contacts["dana@bigco.io"]["id"]
    crm.deals.append(
        CrmDeal("9100", "BigCo pilot", "presentation", False, False, 12000.0, "2027-01-15", (dana_id,))
    )
    assert pull_crm(engine, settings, workspace_id, adapter=crm).counts["deals_changed"] == 1
    rescore = run()
    assert rescore.mode == "incremental" and rescore.members_scored == 5  # Dana and BigCo's four devs
    after = stored(engine, "lead")
    assert after[dana].score > before[dana].score and after[dev0].score > before[dev0].score
    assert after[people["rex"]].run_id == before[people["rex"]].run_id  # not rescored

    an_hour_passes()
    assert pull_crm(engine, settings, workspace_id, adapter=crm).counts["deals_changed"] == 0
    assert run().members_scored == 0
    crm.deals[-1] = CrmDeal(
        "9100", "BigCo pilot", "presentation", False, False, 15000.0, "2027-01-20", (dana_id,)
    )
    assert pull_crm(engine, settings, workspace_id, adapter=crm).counts["deals_changed"] == 1
    assert run().members_scored == 5
