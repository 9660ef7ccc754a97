"""Scoring on the edges: colleagues not reloaded, no organizations, odd values, bad settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, select

from plugin.cli import cli
from plugin.db.models import Score
from tests.plugin.helpers import record
from tests.plugin.test_score import act, count, ingest, score, stored


def test_incremental_run_keeps_a_customer_through_their_company(
    engine: Engine, workspace_id: int, people: dict[str, int]
) -> None:
    score(engine, workspace_id)
    sam = people["sam"]  # a customer only because custco.io (cara) is one
    assert sam in stored(engine, "churn") and sam not in stored(engine, "lead")
    account_before = stored(engine, "churn", "organization")
    ingest(engine, workspace_id, [act("sam-new", "sam", "reply", 0.5)])
    again = score(engine, workspace_id)
    assert again.mode == "incremental" and again.members_scored == 1
    assert sam in stored(engine, "churn") and sam not in stored(engine, "lead")
    account_after = stored(engine, "churn", "organization")
    assert set(account_after) == set(account_before)
    # The account's reasons are its most engaged customer's (cara, not rescored: read back from her
    # stored score), the ones a full run names (whose refitted activity model moves the numbers a
    # little).
    score(engine, workspace_id, full=True)
    account_full = stored(engine, "churn", "organization")
    for org, row in account_after.items():
        assert row.reasons and [r[0] for r in row.reasons] == [r[0] for r in account_full[org].reasons]
        assert row.score == pytest.approx(account_full[org].score, abs=0.02)


def test_a_workspace_without_organizations_scores_leads_and_churn(engine: Engine, workspace_id: int) -> None:
    rows = [
        record(
            f"g{i}-{k}", kind="post", when=f"2026-05-{10 + k:02d}T10:00:00+00:00", email=f"fan{i}@gmail.com"
        )
        for i in range(25)
        for k in range(3)
    ]
    rows.append(record("buy", kind="purchase", when="2026-05-01T10:00:00+00:00", email="fan0@gmail.com"))
    ingest(engine, workspace_id, rows)
    report = score(engine, workspace_id)
    assert report.scored == {"advocate": 25, "lead": 24, "churn": 1}


def test_odd_purchase_amounts_are_no_value_and_full_and_incremental_agree(
    engine: Engine, workspace_id: int, people: dict[str, int]
) -> None:
    odd = [
        act("q-buy2", "quinn", "purchase", 20, properties={"amount": "USD 49"}),
        act("q-buy3", "quinn", "purchase", 19, properties={"amount": True}),
        act("q-buy4", "quinn", "purchase", 18, properties={"amount": {"value": 49}}),
    ]
    ingest(engine, workspace_id, odd)
    score(engine, workspace_id, full=True)  # must not crash on any of them
    full = stored(engine, "churn")[people["quinn"]]
    ingest(engine, workspace_id, [act("q-new", "quinn", "reply", 0.5)])
    score(engine, workspace_id)  # incremental: read by member, not by type
    incremental = stored(engine, "churn")[people["quinn"]]
    spend = [r for r in full.reasons if r[0] == "spend"]
    assert spend == [r for r in incremental.reasons if r[0] == "spend"]


def test_bad_numbers_in_a_config_name_the_key_and_store_nothing(
    engine: Engine, workspace_id: int, people: dict[str, int], runner: CliRunner, tmp_path: Path
) -> None:
    for text, key in (
        ("[windows]\nrecent_days = 0\n", "windows.recent_days"),
        ('[churn.bands]\nhigh = "0.6"\n', "churn.bands.high"),
        ("[churn.bands]\nmedium = 0.9\nhigh = 0.5\n", "churn.bands"),
    ):
        bad = tmp_path / "bad.toml"
        bad.write_text(text, encoding="utf-8")
        result = runner.invoke(cli, ["score", "--config", str(bad), "--json"])
        assert result.exit_code == 3, result.output
        assert key in json.loads(result.output)["error"]
    assert count(engine, Score) == 0


def test_labels_saved_by_excel_with_a_byte_order_mark_are_read(
    engine: Engine, workspace_id: int, people: dict[str, int], runner: CliRunner, tmp_path: Path
) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_bytes(
        "email,churned\nsid@oldco.io,1\ncara@custco.io,0\nsam@custco.io,0\n".encode("utf-8-sig")
    )
    result = runner.invoke(cli, ["evaluate", "--kind", "churn", "--labels", str(labels), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["labelled"] == 3
    latin = tmp_path / "latin.csv"
    latin.write_bytes("email,label\nren\xe9@x.io,1\n".encode("latin-1"))
    result = runner.invoke(cli, ["evaluate", "--kind", "churn", "--labels", str(latin)])
    assert result.exit_code == 2 and "not UTF-8" in result.output
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Score)).scalar_one() == 0


def test_reading_plain_types_in_a_second_process_gives_the_same_scores(
    engine: Engine, workspace_id: int, people: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from plugin.services import score_inputs

    monkeypatch.setattr(score_inputs, "PARALLEL_READ", False)
    score(engine, workspace_id, full=True)
    alone = {
        k: {m: (r.score, r.label) for m, r in stored(engine, k).items()}
        for k in ("advocate", "lead", "churn")
    }
    monkeypatch.setattr(score_inputs, "PARALLEL_READ", True)
    monkeypatch.setattr(score_inputs, "PARALLEL_MIN_MEMBERS", 0)
    score(engine, workspace_id, full=True)
    shared = {
        k: {m: (r.score, r.label) for m, r in stored(engine, k).items()}
        for k in ("advocate", "lead", "churn")
    }
    assert shared == alone and alone["advocate"]


def test_a_full_run_rewrites_only_changed_member_summaries_and_they_match_a_fresh_write(
    engine: Engine, workspace_id: int, people: dict[str, int]
) -> None:
    from plugin.db.models import MemberStats

    def summaries() -> list[tuple[object, ...]]:
        with engine.connect() as conn:
            return sorted(tuple(r) for r in conn.execute(select(*MemberStats.__table__.c)))

    score(engine, workspace_id, full=True)
    ingest(
        engine,
        workspace_id,
        [act("dev1-more", "dev1", "answer", 0.2), act("sam-buy", "sam", "purchase", 0.3)],
    )
    score(engine, workspace_id, full=True)  # compares with what is stored, writes the difference
    diffed = summaries()
    with engine.begin() as conn:
        conn.execute(MemberStats.__table__.delete())
    score(engine, workspace_id, full=True)  # nothing stored: writes everyone
    assert diffed == summaries() and len(diffed) == len(people)


def test_a_members_profile_shows_their_scores_with_reasons(
    engine: Engine, workspace_id: int, people: dict[str, int], runner: CliRunner
) -> None:
    before = json.loads(runner.invoke(cli, ["members", "show", "dana@bigco.io", "--json"]).output)
    assert before["scores"] == {}
    score(engine, workspace_id)
    result = runner.invoke(cli, ["members", "show", "dana@bigco.io", "--json"])
    profile = json.loads(result.output)
    assert set(profile["scores"]) == {"advocate", "lead"}  # a prospect: no churn score
    lead = profile["scores"]["lead"]
    assert lead["hot"] and lead["triggers"] and all(r.endswith(")") for r in lead["reasons"])
    text = runner.invoke(cli, ["members", "show", "dana@bigco.io"]).output
    assert "lead score:" in text and "HOT" in text


def test_a_lead_who_buys_loses_the_lead_score_and_gets_a_churn_score_in_an_incremental_run(
    engine: Engine, workspace_id: int, people: dict[str, int]
) -> None:
    score(engine, workspace_id)
    rex = people["rex"]
    assert rex in stored(engine, "lead") and rex not in stored(engine, "churn")
    ingest(engine, workspace_id, [act("rex-buys", "rex", "purchase", 0.5, properties={"amount": 490})])
    again = score(engine, workspace_id)
    assert again.mode == "incremental" and again.members_scored == 1
    assert rex not in stored(engine, "lead") and rex in stored(engine, "churn")
    assert len(stored(engine, "advocate")) == len(people)  # nobody else's rows went
