"""`flywheel score`: what is stored, ranked, explained and exported, on a small hand-built community."""

from __future__ import annotations

import csv
import importlib
import io
import json
import re
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from connectors.records import parse_record
from plugin.cli import cli
from plugin.db.models import Activity, Member, Score, ScoreEvent, ScoreRun
from plugin.services import merges
from plugin.services.ingest import Ingestor
from plugin.services.score_config import load_scoring_config
from plugin.services.score_run import ScoreReport, run_scoring
from scoring.config import ScoringConfig, merge
from scoring.explain import known_features
from tests.plugin.helpers import record

FIXED = datetime(2026, 6, 1, 12, tzinfo=UTC)
CFG = load_scoring_config()
PEOPLE: dict[str, dict[str, Any]] = {
    "ann": {"email": "ann@gmail.com", "name": "Ann"},  # answers questions every week
    "rex": {"email": "rex@gmail.com", "name": "Rex"},  # only reacts
    "cto": {"email": "dana@bigco.io", "name": "Dana", "title": "CTO"},  # evaluating us
    **{f"dev{i}": {"email": f"dev{i}@bigco.io", "title": "Engineer"} for i in range(4)},
    "cara": {"email": "cara@custco.io", "lifecycle_stage": "customer"},  # active customer
    "sam": {"email": "sam@custco.io"},  # customer through custco
    "quinn": {"email": "quinn@gmail.com"},  # customer through a purchase
    "sid": {"email": "sid@oldco.io", "lifecycle_stage": "customer"},  # weekly, then silent
    **{f"fan{i}": {"email": f"fan{i}@gmail.com"} for i in range(16)},
}
CUSTOMERS = {"cara", "sam", "quinn", "sid"}
PRICING_POST = "cto-pricing"
SENTENCE = re.compile(r"^(?!\w+ = ).+ \([+-]\d+\.\d\)$")  # a template's words, then the points


def at(days_ago: float) -> str:
    return (FIXED - timedelta(days=days_ago)).isoformat()


def act(rid: str, who: str, kind: str, days_ago: float, **extra: Any) -> dict[str, Any]:
    return record(rid, kind=kind, when=at(days_ago), **PEOPLE[who]) | extra


def community() -> list[dict[str, Any]]:
    rows = [act(f"ann-a{w}", "ann", "answer", 7 * w + 1) for w in range(20)]
    rows += [act(f"ann-acc{w}", "ann", "answer_accepted", 14 * w + 2) for w in range(4)]
    rows += [act(f"rex-r{d}", "rex", "reaction", 3 * d + 1) for d in range(20)]
    rows += [
        act(PRICING_POST, "cto", "post", 1, title="What does the enterprise pricing look like?"),
        act("cto-api", "cto", "feature_request", 2, text="Is there an API integration with Salesforce?"),
        act("cto-sso", "cto", "post", 3, title="Do you support SSO with SAML?"),
        act("cto-trial", "cto", "support_question", 5, text="Can we extend our trial sandbox?"),
    ]
    rows += [act(f"cto-ev{d}", "cto", "event_attended", d) for d in (8, 12, 18)]
    rows += [act(f"cto-reg{d}", "cto", "event_registered", d) for d in (10, 15, 20)]
    rows += [act(f"dev{i}-r{d}", f"dev{i}", "reply", d + i) for i in range(4) for d in (3, 9)]
    rows += [act(f"cara-{w}", "cara", "reply", 7 * w + 2) for w in range(40)]
    rows += [act("sam-1", "sam", "reply", 20), act("sam-2", "sam", "post", 40)]
    rows += [act("quinn-buy", "quinn", "purchase", 100)]
    rows += [act(f"quinn-{d}", "quinn", "reply", d) for d in (5, 30, 60, 90)]
    rows += [act(f"sid-{w}", "sid", "reply", 150 + 7 * w) for w in range(30)]
    rows += [act(f"fan{i}-{d}", f"fan{i}", "post", 5 * i + d) for i in range(16) for d in (1, 30, 60)]
    return rows


def ingest(engine: Engine, workspace_id: int, rows: list[dict[str, Any]]) -> None:
    with Ingestor(engine, workspace_id) as ingestor:
        ingestor.add_many(parse_record(r) for r in rows)


def score(engine: Engine, workspace_id: int, **kw: Any) -> ScoreReport:
    return run_scoring(engine, workspace_id, kw.pop("cfg", CFG), clock=lambda: FIXED, **kw)


def ids(engine: Engine) -> dict[str, int]:
    """Who is who: the live member id of each person."""
    by_email = {p["email"]: name for name, p in PEOPLE.items()}
    with engine.connect() as conn:
        rows = conn.execute(select(Member.primary_email, Member.id).where(Member.merged_into_id.is_(None)))
        return {by_email[email]: mid for email, mid in rows}


def stored(engine: Engine, kind: str, subject: str = "member") -> dict[int, Any]:
    with Session(engine, expire_on_commit=False) as session:
        rows = session.scalars(select(Score).where(Score.kind == kind, Score.subject == subject)).all()
    return {r.subject_id: r for r in rows}


def count(engine: Engine, model: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def snapshot(engine: Engine) -> tuple[list[Any], int, int]:
    with engine.connect() as conn:
        scores = sorted(tuple(r) for r in conn.execute(select(*Score.__table__.c)))
    return scores, count(engine, ScoreEvent), count(engine, ScoreRun)


def test_full_run_scores_each_member_with_the_right_models_version_and_reasons(
    engine: Engine, workspace_id: int, people: dict[str, int]
) -> None:
    report = score(engine, workspace_id)
    assert report.mode == "full" and report.members_scored == len(PEOPLE)
    advocate, lead, churn = (stored(engine, k) for k in ("advocate", "lead", "churn"))
    assert set(advocate) == set(people.values())
    assert set(lead) == {mid for who, mid in people.items() if who not in CUSTOMERS}
    assert set(churn) == {people[who] for who in CUSTOMERS}
    accounts = stored(engine, "churn", "organization")
    assert len(accounts) == 2  # custco and oldco; quinn's free-mail address makes no account
    known = known_features()
    for row in [*advocate.values(), *lead.values(), *churn.values(), *accounts.values()]:
        assert (row.model_version, row.weights_hash, row.as_of) == (CFG.version, CFG.weights_hash, FIXED)
        assert {reason[0] for reason in row.reasons} <= known
    assert all(row.reasons for row in advocate.values())
    assert report.scored == {"advocate": len(advocate), "lead": len(lead), "churn": len(churn)}


def test_answers_beat_reactions_a_pricing_question_is_hot_and_silence_is_risky(
    engine: Engine, workspace_id: int, people: dict[str, int]
) -> None:
    score(engine, workspace_id)
    advocate, lead, churn = (stored(engine, k) for k in ("advocate", "lead", "churn"))
    assert advocate[people["ann"]].score > advocate[people["rex"]].score
    assert max(advocate.values(), key=lambda r: r.score).subject_id == people["ann"]
    assert "helpfulness" in {r[0] for r in advocate[people["ann"]].reasons}
    with engine.connect() as conn:
        post = conn.scalar(select(Activity.id).where(Activity.source_activity_id == PRICING_POST))
        events = conn.execute(select(ScoreEvent.event, ScoreEvent.subject_id)).all()
    cto = lead[people["cto"]]
    assert cto.hot and cto.label.startswith(("A", "B")) and post in cto.triggers
    assert ("lead_turned_hot", people["cto"]) in events
    assert not any(r.hot for mid, r in lead.items() if mid != people["cto"])
    assert churn[people["sid"]].score > churn[people["cara"]].score
    assert "silence" in {r[0] for r in churn[people["sid"]].reasons}


def test_reruns_add_no_events_and_new_activity_rescores_only_that_account(
    engine: Engine, workspace_id: int, people: dict[str, int]
) -> None:
    first = score(engine, workspace_id)
    assert first.activity_model is not None and sum(first.events.values()) > 0
    events = count(engine, ScoreEvent)
    again = score(engine, workspace_id)
    assert (again.mode, again.members_scored, sum(again.events.values())) == ("incremental", 0, 0)
    assert score(engine, workspace_id, full=True).events == {}
    assert count(engine, ScoreEvent) == events
    before = stored(engine, "advocate")
    ingest(engine, workspace_id, [act("dev1-new", "dev1", "answer_accepted", 0.5)])
    third = score(engine, workspace_id)
    assert third.mode == "incremental"
    assert third.members_scored == 1  # only dev1: the others at bigco.io come from stored summaries
    assert third.activity_model == first.activity_model
    with engine.connect() as conn:
        runs = conn.execute(select(ScoreRun.mode, ScoreRun.activity_model).order_by(ScoreRun.id)).all()
    assert [tuple(r) for r in runs] == [
        ("full", first.activity_model),
        ("full", first.activity_model),  # the same activities fit the same model
        ("incremental", first.activity_model),
    ]  # an incremental run with nothing new to score records no run
    after = stored(engine, "advocate")
    assert {mid for mid in after if after[mid].run_id == third.run_id} == {people["dev1"]}
    assert after[people["dev1"]].score > before[people["dev1"]].score
    assert all(after[m].score == before[m].score for m in after if m != people["dev1"])
    # What the incremental run knew of dev1's colleagues (stored summaries) is what a full run
    # computes from their activities: dev1's lead score, account signal included, is the same.
    lead_incremental = stored(engine, "lead")[people["dev1"]]
    score(engine, workspace_id, full=True)
    lead_full = stored(engine, "lead")[people["dev1"]]
    assert lead_incremental.score == pytest.approx(lead_full.score, abs=1e-3)
    assert lead_incremental.reasons == lead_full.reasons


def test_a_full_pass_older_than_a_day_brings_time_decay_up_to_date_for_everyone(
    engine: Engine, workspace_id: int, people: dict[str, int]
) -> None:
    def at(hours: float, cfg: ScoringConfig = CFG) -> ScoreReport:
        later = FIXED + timedelta(hours=hours)
        return run_scoring(engine, workspace_id, cfg, clock=lambda: later)

    at(0)
    before = stored(engine, "advocate")
    ingest(engine, workspace_id, [act("dev1-soon", "dev1", "reply", -2 / 24)])  # 2 h after the full pass
    soon = at(3)
    assert soon.mode == "incremental" and soon.members_scored == 1
    assert "everyone else stands as of the full pass 3.0 h ago" in soon.why
    ingest(engine, workspace_id, [act("dev1-later", "dev1", "reply", -25 / 24)])
    later = at(26)
    assert later.mode == "full" and later.members_scored == len(PEOPLE)
    assert "26 h old" in later.why and "runs.full_every_hours" in later.why
    after = stored(engine, "advocate")
    # Nobody else did anything, yet everyone's score is of today: engagement faded a little.
    assert {r.as_of for r in after.values()} == {FIXED + timedelta(hours=26)}
    assert after[people["cara"]].score < before[people["cara"]].score
    # How often to refresh is not a weight: changing it keeps the hash, and the run incremental.
    relaxed = ScoringConfig.from_mapping(merge(CFG.raw, {"runs": {"full_every_hours": 72}}))
    assert relaxed.weights_hash == CFG.weights_hash
    ingest(engine, workspace_id, [act("dev1-last", "dev1", "reply", -60 / 24)])
    assert at(61, relaxed).mode == "incremental"


def test_as_of_ignores_later_activity_and_changes_nothing_stored(
    engine: Engine, workspace_id: int, people: dict[str, int]
) -> None:
    score(engine, workspace_id)
    before = snapshot(engine)
    report = score(engine, workspace_id, as_of=FIXED - timedelta(days=60))
    assert report.mode == "as_of" and report.run_id is None and report.as_of == FIXED - timedelta(days=60)
    assert snapshot(engine) == before
    assert report.result is not None and report.loaded is not None
    row = {int(mid): i for i, mid in enumerate(report.loaded.member_ids.tolist())}
    advocate, lead = report.result.scored["advocate"], report.result.scored["lead"]
    for who in ("dev0", "dev1"):  # all of their activity came later
        assert advocate.score[row[people[who]]] == 0 and advocate.label[row[people[who]]] == "observer"
    assert lead.hot is not None and not lead.hot.any()  # the pricing questions came later too
    assert advocate.score[row[people["ann"]]] > 0


def test_a_changed_config_rescores_everyone_and_a_bad_one_is_refused(
    engine: Engine,
    workspace_id: int,
    people: dict[str, int],
    runner: CliRunner,
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[advocate.components]\nengagement = { points = "lots", scale = 40.0 }\n')
    result = runner.invoke(cli, ["score", "--config", str(bad)])
    assert result.exit_code == 3
    assert "advocate.components.engagement.points" in result.stderr
    assert count(engine, ScoreRun) == count(engine, Score) == 0

    score(engine, workspace_id)
    rex = stored(engine, "advocate")[people["rex"]].score
    better = tmp_path / "reactions.toml"
    better.write_text("[types]\nreaction = { weight = 3.0, half_life_days = 30 }\n")
    cfg = load_scoring_config(better)
    report = score(engine, workspace_id, cfg=cfg)
    assert report.mode == "full" and report.members_scored == len(PEOPLE)
    assert report.weights_hash == cfg.weights_hash != CFG.weights_hash
    advocate = stored(engine, "advocate")
    assert {r.weights_hash for r in advocate.values()} == {cfg.weights_hash}
    assert advocate[people["rex"]].score > rex


@pytest.fixture
def fixed_cli(monkeypatch: pytest.MonkeyPatch, runner: CliRunner) -> CliRunner:
    module = importlib.import_module("plugin.cli.score")  # the attribute is the command
    monkeypatch.setattr(module, "run_scoring", partial(run_scoring, clock=lambda: FIXED))
    return runner


def test_score_json_shows_mode_counts_labels_and_top_reasons_in_words(
    fixed_cli: CliRunner, engine: Engine, people: dict[str, int]
) -> None:
    result = fixed_cli.invoke(cli, ["score", "--json", "--top", "3"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["mode"] == "full" and data["workspace"] == "default"
    assert data["scored"] == {"advocate": len(PEOPLE), "lead": len(PEOPLE) - 4, "churn": 4}
    assert sum(data["labels"]["advocate"].values()) == len(PEOPLE)
    assert set(data["top"]) == {"advocate", "lead", "churn"}
    assert all(len(rows) == 3 for rows in data["top"].values())
    assert data["top"]["advocate"][0]["email"] == "ann@gmail.com"
    assert data["top"]["lead"][0]["email"] == "dana@bigco.io" and data["top"]["lead"][0]["hot"]
    for rows in data["top"].values():
        for row in rows:
            assert row["reasons"] and all(SENTENCE.match(s) for s in row["reasons"]), row["reasons"]
    again = json.loads(fixed_cli.invoke(cli, ["score", "--json"]).stdout)
    assert again["mode"] == "incremental" and again["events"] == {}
    before = snapshot(engine)
    past = json.loads(fixed_cli.invoke(cli, ["score", "--as-of", "2026-04-01", "--json"]).stdout)
    assert past["mode"] == "as_of" and past["as_of"].startswith("2026-04-01T23:59:59")
    assert not any(row["hot"] for row in past["top"]["lead"])
    assert all(SENTENCE.match(s) for row in past["top"]["advocate"] for s in row["reasons"])
    assert snapshot(engine) == before


def test_export_lists_every_member_highest_first_in_csv_and_jsonl(
    fixed_cli: CliRunner, people: dict[str, int], tmp_path: Path
) -> None:
    empty = fixed_cli.invoke(cli, ["scores", "export", "--kind", "advocate"])
    assert empty.exit_code == 0 and "run `flywheel score` first" in empty.stderr
    assert fixed_cli.invoke(cli, ["score"]).exit_code == 0

    result = fixed_cli.invoke(cli, ["scores", "export", "--kind", "advocate", "--format", "csv"])
    assert result.exit_code == 0
    header, *rows = list(csv.reader(io.StringIO(result.stdout)))
    assert header == [
        "member_id", "email", "name", "score", "label", "hot", "reasons",
        "model_version", "weights_hash", "as_of",
    ]  # fmt: skip
    assert len(rows) == len(PEOPLE) and {int(r[0]) for r in rows} == set(people.values())
    scores = [float(r[3]) for r in rows]
    assert scores == sorted(scores, reverse=True) and rows[0][1] == "ann@gmail.com"
    assert all(SENTENCE.match(s) for s in rows[0][6].split(" | "))
    assert {r[7] for r in rows} == {CFG.version} and rows[0][9].startswith("2026-06-01T12:00:00")

    out = tmp_path / "leads.jsonl"
    args = ["scores", "export", "--kind", "lead", "--format", "jsonl", "-o", str(out)]
    assert fixed_cli.invoke(cli, args).exit_code == 0
    lines = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert len(lines) == len(PEOPLE) - len(CUSTOMERS)
    assert list(lines[0]) == header and lines[0]["email"] == "dana@bigco.io" and lines[0]["hot"] is True
    assert [x["score"] for x in lines] == sorted((x["score"] for x in lines), reverse=True)
    assert isinstance(lines[0]["reasons"], list) and all(SENTENCE.match(s) for s in lines[0]["reasons"])


@pytest.mark.parametrize("command", [["score"], ["scores", "export"]])
def test_an_unknown_kind_is_refused_naming_the_kinds(
    runner: CliRunner, engine: Engine, command: list[str]
) -> None:
    result = runner.invoke(cli, [*command, "--kind", "nonsense"])
    assert result.exit_code == 2
    assert "'nonsense' is not one of 'advocate', 'lead', 'churn'" in result.stderr
    assert count(engine, ScoreRun) == 0


def test_merged_away_members_are_not_scored(
    engine: Engine, workspace_id: int, people: dict[str, int]
) -> None:
    def merge(target: str, source: str) -> None:
        with Session(engine) as session:
            merges.merge(session, workspace_id, people[target], people[source], actor="t", reason="same")
            session.commit()

    merge("fan1", "fan0")
    score(engine, workspace_id)
    for kind in ("advocate", "lead"):
        assert people["fan0"] not in stored(engine, kind) and people["fan1"] in stored(engine, kind)
    # merged after a run: the next (incremental) run drops the merged-away member's scores too
    merge("fan3", "fan2")
    report = score(engine, workspace_id)
    for kind in ("advocate", "lead"):
        assert people["fan2"] not in stored(engine, kind), (report.mode, kind)
    assert len(stored(engine, "advocate")) == len(PEOPLE) - 2
