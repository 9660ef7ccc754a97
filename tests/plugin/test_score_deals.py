"""What the CRM's deals tell scoring once `crm pull` brought them. Churn risk dates renewals from
them: an open renewal deal's close date, else a year after the latest won deal, in place of the
estimate from purchase activities; other open deals and deals won after the run's date are left
out. Lead intent counts the open deals a lead or their company is in."""

from __future__ import annotations

import math
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from plugin.db.models import CrmCompanyLink, CrmDeal, Organization
from plugin.services import merges
from plugin.services.crm_connections import save_connection
from plugin.services.score_read import words
from plugin.services.score_run import ScoreReport
from plugin.settings import Settings
from tests.plugin.test_score import FIXED, score, stored


def renewal_days(report: ScoreReport) -> dict[int, float]:
    """Each churn-scored member's days to renewal, as this run computed them."""
    assert report.result is not None and report.loaded is not None
    churn = report.result.scored["churn"]
    members = report.loaded.member_ids[churn.rows].tolist()
    return dict(zip(members, churn.values["renewal"].tolist(), strict=True))


def org_id(engine: Engine, domain: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(Organization.id).where(Organization.domain == domain)).scalar_one())


@pytest.fixture
def connection_id(engine: Engine, settings: Settings, workspace_id: int) -> int:
    row = save_connection(engine, settings, workspace_id, "hubspot", {"token": "t"}, "http://127.0.0.1:9")
    return int(row.id)


def deal(engine: Engine, connection: int, crm_id: str, **fields: Any) -> None:
    values = {"connection_id": connection, "crm_id": crm_id, "won": False, "closed": False} | fields
    with engine.begin() as conn:
        conn.execute(insert(CrmDeal).values(values))


def test_crm_deals_date_renewals_in_place_of_the_purchase_estimate(
    engine: Engine, workspace_id: int, people: dict[str, int], connection_id: int
) -> None:
    quinn, cara, sam, sid = (people[p] for p in ("quinn", "cara", "sam", "sid"))
    before = score(engine, workspace_id, full=True)
    days = renewal_days(before)
    assert days[quinn] == pytest.approx(265, abs=1)  # bought 100 days ago: a year after that
    assert math.isinf(days[sid]) and math.isinf(days[cara])  # nothing bought, no CRM date: unknown
    risk_before = stored(engine, "churn")[cara].score

    # Quinn's contract was renewed in the CRM after that purchase (HubSpot gives a time); CustCo's
    # renewal deal, on the company linked to its organization, closes in 10 days (Salesforce gives
    # a date).
    deal(engine, connection_id, "d-quinn", won=True, closed=True, close_date="2026-03-13T09:30:00Z",
         member_ids=[quinn])  # fmt: skip
    with engine.begin() as conn:
        conn.execute(
            insert(CrmCompanyLink).values(
                connection_id=connection_id, organization_id=org_id(engine, "custco.io"), crm_id="co-custco"
            )
        )
    deal(engine, connection_id, "d-custco", name="CustCo renewal 2026", close_date="2026-06-11",
         company_ids=["co-custco"])  # fmt: skip
    # Not renewals: an open upsell at OldCo and a deal won after the run's date.
    deal(
        engine,
        connection_id,
        "d-upsell",
        name="OldCo seats upsell",
        close_date="2026-06-05",
        member_ids=[sid],
    )
    deal(engine, connection_id, "d-later", won=True, closed=True, close_date="2026-07-01", member_ids=[sid])

    after = score(engine, workspace_id, full=True)
    days = renewal_days(after)
    assert days[quinn] == pytest.approx(284.5, abs=0.01)  # 2027-03-13 00:00 from 2026-06-01 12:00
    assert days[cara] == days[sam] == pytest.approx(9.5, abs=0.01)  # the account's date, for both
    assert math.isinf(days[sid])  # neither the upsell nor the later win dates a renewal
    assert stored(engine, "churn")[cara].score > risk_before  # a renewal 10 days out adds risk
    custco = stored(engine, "churn", "organization")[org_id(engine, "custco.io")]
    for reasons in (stored(engine, "churn")[cara].reasons, custco.reasons):  # said in words, both
        assert "Renewal due in 10 days (+0.6)" in words(reasons)

    # OldCo's renewal deal is past its close date and still open: overdue.
    deal(engine, connection_id, "d-oldco", name="OldCo Renewal", close_date="2026-05-22", member_ids=[sid])
    late = score(engine, workspace_id, full=True)
    assert renewal_days(late)[sid] == pytest.approx(-10.5, abs=0.01)


def test_a_backtest_counts_only_deals_won_by_its_date(
    engine: Engine, workspace_id: int, people: dict[str, int], connection_id: int
) -> None:
    quinn = people["quinn"]
    deal(engine, connection_id, "d-q", won=True, closed=True, close_date="2026-05-01", member_ids=[quinn])
    now = renewal_days(score(engine, workspace_id, full=True))[quinn]
    assert now == pytest.approx(333.5, abs=0.01)  # won 2026-05-01: renews 2027-05-01
    then = renewal_days(score(engine, workspace_id, as_of=FIXED.replace(month=4)))[quinn]
    assert then == pytest.approx(265 + 61, abs=0.01)  # on April 1 that deal was not won: the purchase


def lead_values(report: ScoreReport, feature: str) -> dict[int, float]:
    assert report.result is not None and report.loaded is not None
    lead = report.result.scored["lead"]
    members = report.loaded.member_ids[lead.rows].tolist()
    return dict(zip(members, lead.values[feature].tolist(), strict=True))


def test_an_open_deal_at_a_leads_company_adds_intent_with_its_reason(
    engine: Engine, workspace_id: int, people: dict[str, int], connection_id: int
) -> None:
    cto, dev0, fan = people["cto"], people["dev0"], people["fan0"]
    before = score(engine, workspace_id, full=True)
    assert set(lead_values(before, "intent_open_deal").values()) == {0.0}
    lead_before = stored(engine, "lead")

    # One open deal with the CTO, one on the company linked to BigCo; a lost one counts for nothing.
    with engine.begin() as conn:
        conn.execute(
            insert(CrmCompanyLink).values(
                connection_id=connection_id, organization_id=org_id(engine, "bigco.io"), crm_id="co-bigco"
            )
        )
    deal(engine, connection_id, "d-1", name="BigCo pilot", close_date="2026-07-15", member_ids=[cto])
    deal(
        engine, connection_id, "d-2", name="BigCo platform", close_date="2026-09-01", company_ids=["co-bigco"]
    )
    deal(
        engine, connection_id, "d-3", name="Fan lost", closed=True, close_date="2026-03-01", member_ids=[fan]
    )
    after = score(engine, workspace_id, full=True)
    signal = lead_values(after, "intent_open_deal")
    assert signal[cto] == signal[dev0] == 2.0  # the account's two deals, for everyone at BigCo
    assert signal[fan] == 0.0
    lead = stored(engine, "lead")
    assert lead[dev0].score > lead_before[dev0].score and lead[fan].score == lead_before[fan].score
    said = words(lead[dev0].reasons)
    assert any(w.startswith("In 2 open deals in the CRM (them or their company)") for w in said), said


def test_the_later_contract_dates_the_renewal_and_leftover_open_renewals_are_ignored(
    engine: Engine, workspace_id: int, people: dict[str, int], connection_id: int
) -> None:
    """An old win in the CRM does not undo a newer purchase (renewed through a billing system); an
    open renewal deal dated before the latest win is a leftover the CRM never closed."""
    quinn, sid = people["quinn"], people["sid"]
    deal(engine, connection_id, "d-first", won=True, closed=True, close_date="2025-01-15", member_ids=[quinn])
    deal(engine, connection_id, "d-r25", name="OldCo renewal 2025", close_date="2025-05-01", member_ids=[sid])
    deal(engine, connection_id, "d-w26", name="OldCo renewal 2026", won=True, closed=True,
         close_date="2026-05-01", member_ids=[sid])  # fmt: skip
    days = renewal_days(score(engine, workspace_id, full=True))
    assert days[quinn] == pytest.approx(265, abs=0.01)  # the purchase 100 days ago, not 2025's win
    assert days[sid] == pytest.approx(333.5, abs=0.01)  # a year after the 2026 win, not overdue


def test_deals_follow_members_through_merges_and_odd_ids_are_skipped(
    engine: Engine, workspace_id: int, people: dict[str, int], connection_id: int
) -> None:
    """A deal names the member the CRM knew; after two merges (fan1 into fan2, fan2 into fan3) it
    counts for fan3. An id the CRM mangled is skipped, not a failed run."""
    deal(engine, connection_id, "d-fan1", name="Fan pilot", close_date="2026-07-01",
         member_ids=[people["fan1"], None, "not-an-id"])  # fmt: skip
    for target, source in (("fan2", "fan1"), ("fan3", "fan2")):
        with Session(engine) as session:
            merges.merge(session, workspace_id, people[target], people[source], actor="t", reason="same")
            session.commit()
    signal = lead_values(score(engine, workspace_id, full=True), "intent_open_deal")
    assert signal[people["fan3"]] == 1.0 and signal[people["fan4"]] == 0.0


def test_open_deals_count_for_the_present_only_and_stale_ones_not_at_all(
    engine: Engine, workspace_id: int, people: dict[str, int], connection_id: int
) -> None:
    """Which deals were open on a past date is not known (only today's state is read), so a
    backtest counts none, and open renewals neither; an open deal 90 days past its close date is
    abandoned."""
    cto, dev1, cara = people["cto"], people["dev1"], people["cara"]
    deal(engine, connection_id, "d-cto", name="BigCo pilot", close_date="2026-07-15", member_ids=[cto])
    deal(engine, connection_id, "d-old", name="Dev pilot", close_date="2026-02-01", member_ids=[dev1])
    deal(engine, connection_id, "d-cara", name="CustCo renewal", close_date="2026-06-11", member_ids=[cara])
    present = score(engine, workspace_id, full=True)
    signal = lead_values(present, "intent_open_deal")
    assert signal[cto] == signal[dev1] == 1.0  # BigCo's pilot; dev1's deal 120 days overdue is stale
    assert renewal_days(present)[cara] == pytest.approx(9.5, abs=0.01)
    back = score(engine, workspace_id, as_of=FIXED.replace(month=4))
    assert set(lead_values(back, "intent_open_deal").values()) == {0.0}
    assert math.isinf(renewal_days(back)[cara])
