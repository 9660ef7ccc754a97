"""``/api/v1/scores``, ``/signals``, ``/organizations`` and ``/activities``: ranking, filters,
cursors, reasons in words, and one workspace never seeing another's ids or data."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from plugin.services.workspaces import ensure_workspace
from tests.plugin.api.conftest import Auth, every_item
from tests.plugin.test_score import FIXED, SENTENCE, community, ingest, score


def _get(client: FlaskClient, headers: dict[str, str], url: str) -> list[dict]:
    page = client.get(url, headers=headers)
    assert page.status_code == 200, page.json
    return page.json["items"]


def _org_ids(client: FlaskClient, headers: dict[str, str]) -> dict[str, int]:
    return {o["domain"]: o["id"] for o in every_item(client, headers, "/api/v1/organizations")}


def test_scores_rank_highest_first_page_by_page_with_reasons_in_words(
    client: FlaskClient, auth: Auth, scored: dict[str, int]
) -> None:
    sales = auth("sales")
    whole = _get(client, sales, "/api/v1/scores/advocate?limit=200")
    assert len(whole) == len(scored)  # every member has an advocate score
    paged = every_item(client, sales, "/api/v1/scores/advocate?limit=3")
    assert [s["subject_id"] for s in paged] == [s["subject_id"] for s in whole]
    assert [s["score"] for s in whole] == sorted((s["score"] for s in whole), reverse=True)
    top = whole[0]
    assert (top["subject_id"], top["name"], top["label"]) == (scored["ann"], "Ann", "champion")
    assert top["reasons"] and all(SENTENCE.match(r) for s in whole for r in s["reasons"])
    assert any("answer" in r for r in top["reasons"])  # she leads because she answers
    assert {s["model_version"] for s in whole} == {"flywheel-scores/1"}
    dana = next(s for s in whole if s["subject_id"] == scored["cto"])
    assert dana["organization"]["domain"] == "bigco.io" and dana["email"] == "dana@bigco.io"
    high = _get(client, sales, "/api/v1/scores/advocate?min_score=20")
    assert high and all(s["score"] >= 20 for s in high) and len(high) < len(whole)
    contributors = _get(client, sales, "/api/v1/scores/advocate?label=contributor")
    assert contributors and {s["label"] for s in contributors} == {"contributor"}


def test_hot_leads_rank_first_and_the_hot_filter_splits_the_list(
    client: FlaskClient, auth: Auth, scored: dict[str, int]
) -> None:
    sales = auth("sales")
    whole = _get(client, sales, "/api/v1/scores/lead?limit=200")
    assert whole[0]["subject_id"] == scored["cto"] and whole[0]["hot"] and whole[0]["triggers"]
    assert all(not s["hot"] for s in whole[1:])
    paged = every_item(client, sales, "/api/v1/scores/lead?limit=2")  # the cursor crosses hot -> not hot
    assert [s["subject_id"] for s in paged] == [s["subject_id"] for s in whole]
    assert [s["subject_id"] for s in _get(client, sales, "/api/v1/scores/lead?hot=true")] == [scored["cto"]]
    cold = every_item(client, sales, "/api/v1/scores/lead?hot=false&limit=4")
    assert len(cold) == len(whole) - 1 and scored["cto"] not in {s["subject_id"] for s in cold}
    assert {scored[p] for p in ("cara", "sid", "quinn")}.isdisjoint(s["subject_id"] for s in whole)
    churn = _get(client, sales, "/api/v1/scores/churn")
    assert churn[0]["subject_id"] == scored["sid"] and churn[0]["label"] == "high"


def test_account_churn_ranks_organizations_by_name_with_reasons(
    client: FlaskClient, auth: Auth, scored: dict[str, int]
) -> None:
    sales = auth("sales")
    accounts = _get(client, sales, "/api/v1/scores/churn?subject=organization")
    assert [(a["name"], a["domain"], a["label"]) for a in accounts][:1] == [("Oldco", "oldco.io", "high")]
    assert [a["domain"] for a in accounts] == ["oldco.io", "custco.io"]
    assert all(a["subject"] == "organization" and a["email"] is None for a in accounts)
    assert any(r.startswith("No activity for 150 days") for r in accounts[0]["reasons"])
    wrong = client.get("/api/v1/scores/advocate?subject=organization", headers=sales)
    assert wrong.status_code == 422 and "subject" in wrong.json["errors"]
    assert client.get("/api/v1/scores/karma", headers=sales).status_code == 404
    bad = client.get("/api/v1/scores/lead?cursor=WzEsMl0", headers=sales)  # [1, 2]: not a lead keyset
    assert bad.status_code == 400 and bad.headers["Content-Type"] == "application/problem+json"


def test_organizations_filter_rank_by_churn_and_show_their_people(
    client: FlaskClient, auth: Auth, scored: dict[str, int]
) -> None:
    sales = auth("sales")
    orgs = _org_ids(client, sales)
    assert set(orgs) == {"bigco.io", "custco.io", "oldco.io", "example.org"}  # no free-mail accounts
    by_risk = _get(client, sales, "/api/v1/organizations?sort=churn")
    assert [o["domain"] for o in by_risk][:2] == ["oldco.io", "custco.io"]
    assert [o["churn"] for o in by_risk[2:]] == [None, None]  # unscored accounts come last
    paged = every_item(client, sales, "/api/v1/organizations?sort=churn&limit=1")
    assert [o["id"] for o in paged] == [o["id"] for o in by_risk]
    customers = _get(client, sales, "/api/v1/organizations?has_customers=true")
    assert {o["domain"] for o in customers} == {"custco.io", "oldco.io"}
    prospects = _get(client, sales, "/api/v1/organizations?has_customers=false")
    assert {o["domain"] for o in prospects} == {"bigco.io", "example.org"}
    assert [o["domain"] for o in _get(client, sales, "/api/v1/organizations?q=CUST")] == ["custco.io"]
    assert [o["name"] for o in _get(client, sales, "/api/v1/organizations?q=oldco.io")] == ["Oldco"]

    custco = client.get(f"/api/v1/organizations/{orgs['custco.io']}", headers=sales).json
    assert (custco["member_count"], custco["customer_count"]) == (2, 1)
    assert custco["churn"]["band"] in ("low", "medium", "high") and custco["churn"]["reasons"]
    assert all(SENTENCE.match(r) for r in custco["churn"]["reasons"])
    people = custco["people"]
    assert [p["id"] for p in people] == [scored["cara"], scored["sam"]]  # most active first
    assert people[0]["activities"] == 40 and people[0]["customer"] and "churn" in people[0]["scores"]
    bigco = client.get(f"/api/v1/organizations/{orgs['bigco.io']}", headers=sales).json
    assert bigco["churn"] is None and bigco["people"][0]["id"] == scored["cto"]
    assert bigco["people"][0]["scores"]["lead"]["hot"] is True and bigco["member_count"] == 5
    assert client.get("/api/v1/organizations/999999", headers=sales).status_code == 404
    assert client.get("/api/v1/organizations?q=a%00b", headers=sales).status_code == 422  # no 500 on PG
    huge = base64.urlsafe_b64encode(json.dumps([0.5, 10**30]).encode()).decode()
    assert client.get(f"/api/v1/organizations?sort=churn&cursor={huge}", headers=sales).status_code == 400


def test_activities_newest_first_filtered_and_paged_without_gaps(
    client: FlaskClient, auth: Auth, scored: dict[str, int]
) -> None:
    sales = auth("sales")
    ann = f"/api/v1/activities?member_id={scored['ann']}"
    whole = _get(client, sales, ann + "&limit=200")
    assert len(whole) == 24 and {a["member_id"] for a in whole} == {scored["ann"]}
    paged = every_item(client, sales, ann + "&limit=5")
    assert [a["id"] for a in paged] == [a["id"] for a in whole]
    assert [a["id"] for a in whole] == sorted((a["id"] for a in whole), reverse=True)
    accepted = _get(client, sales, ann + "&type=answer_accepted")
    assert len(accepted) == 4 and {a["type"] for a in accepted} == {"answer_accepted"}
    since = quote((FIXED - timedelta(days=30)).isoformat())
    until = quote((FIXED - timedelta(days=7)).isoformat())
    window = _get(client, sales, ann + f"&since={since}&until={until}")
    assert window and all("2026-05-02" <= a["occurred_at"] < "2026-05-25" for a in window)
    assert len(window) < len(whole)
    assert _get(client, sales, "/api/v1/activities?source=github") == []
    everyone = every_item(client, sales, "/api/v1/activities?source=discourse&limit=50")
    assert len(everyone) == len({a["id"] for a in everyone}) == len(community()) + 6  # + noa's, layla's
    naive = client.get("/api/v1/activities?since=2026-05-01T00:00:00", headers=sales)
    assert naive.status_code == 422 and "since" in naive.json["errors"]
    assert client.get("/api/v1/activities?member_id=999999", headers=sales).status_code == 404


def test_runs_and_signals_say_what_was_computed_and_who_crossed(
    client: FlaskClient, auth: Auth, scored: dict[str, int]
) -> None:
    sales = auth("sales")
    (run,) = _get(client, sales, "/api/v1/scores/runs")
    assert (run["mode"], run["kinds"], run["members_scored"]) == ("full", ["advocate", "lead", "churn"], 29)
    assert run["model_version"] == "flywheel-scores/1" and run["weights_hash"]
    assert run["as_of"] == FIXED.isoformat() and run["finished_at"] is not None
    signals = every_item(client, sales, "/api/v1/signals?limit=1")
    assert [s["id"] for s in signals] == sorted((s["id"] for s in signals), reverse=True)
    crossed = {(s["event"], s["subject"], s["name"] or s["email"]) for s in signals}
    assert crossed == {
        ("became_champion", "member", "Ann"),
        ("lead_turned_hot", "member", "Dana"),
        ("churn_risk_high", "member", "sid@oldco.io"),
        ("churn_risk_high", "organization", "Oldco"),
    }
    assert sum(run["signals"].values()) == len(signals)
    high = _get(client, sales, "/api/v1/signals?event=churn_risk_high&subject=organization")
    assert [(s["name"], s["domain"], s["after"]) for s in high] == [("Oldco", "oldco.io", "high")]
    assert [s["subject_id"] for s in _get(client, sales, "/api/v1/signals?kind=lead")] == [scored["cto"]]
    later = quote((FIXED + timedelta(seconds=1)).isoformat())
    assert _get(client, sales, f"/api/v1/signals?since={later}") == []
    assert client.get("/api/v1/signals?event=promoted", headers=sales).status_code == 422


@pytest.fixture
def other(engine: Engine, scored: dict[str, int]) -> int:
    """A second workspace with the same community (same emails) scored in it."""
    with Session(engine) as session:
        ws, _ = ensure_workspace(session, "other", "other")
        session.commit()
        ws_id = ws.id
    ingest(engine, ws_id, community())
    score(engine, ws_id)
    return ws_id


LISTS = (
    "/api/v1/scores/advocate?limit=200",
    "/api/v1/scores/lead?limit=200",
    "/api/v1/scores/churn?limit=200",
    "/api/v1/scores/churn?subject=organization&limit=200",
    "/api/v1/organizations?limit=200",
    "/api/v1/activities?limit=200",
    "/api/v1/signals?limit=200",
    "/api/v1/scores/runs?limit=200",
)


def test_another_workspace_sees_only_its_own_and_gets_404_for_ours(
    client: FlaskClient, auth: Auth, scored: dict[str, int], other: int
) -> None:
    ours, theirs = auth("sales"), auth("admin", workspace="other")
    for url in LISTS:  # scores are keyed by member or organization id, everything else by its own
        mine = {i.get("id", i.get("subject_id")) for i in every_item(client, ours, url)}
        seen = {i.get("id", i.get("subject_id")) for i in every_item(client, theirs, url)}
        assert mine and seen and mine.isdisjoint(seen), url
    their_members = {i["subject_id"] for i in every_item(client, theirs, "/api/v1/scores/advocate")}
    assert their_members and their_members.isdisjoint(scored.values())
    their_activities = {a["member_id"] for a in every_item(client, theirs, "/api/v1/activities")}
    assert their_activities == their_members
    our_orgs = _org_ids(client, ours)
    their_orgs = _org_ids(client, theirs)
    assert set(their_orgs.values()).isdisjoint(our_orgs.values())
    for org_id in our_orgs.values():
        assert client.get(f"/api/v1/organizations/{org_id}", headers=theirs).status_code == 404
    assert client.get(f"/api/v1/activities?member_id={scored['ann']}", headers=theirs).status_code == 404
    our_runs = {r["id"] for r in every_item(client, ours, "/api/v1/scores/runs")}
    their_runs = {r["id"] for r in every_item(client, theirs, "/api/v1/scores/runs")}
    assert our_runs and their_runs and our_runs.isdisjoint(their_runs)
    their_signals = every_item(client, theirs, "/api/v1/signals")
    assert {s["run_id"] for s in their_signals} <= their_runs
    assert not {s["subject_id"] for s in their_signals if s["subject"] == "member"} & set(scored.values())
