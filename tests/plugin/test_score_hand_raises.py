"""Hand-raising posts kept between scoring runs: an incremental run reads what earlier runs matched
for the members it rescores and matches only the texts of new activities, with the scores a full
run gives."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from plugin.db.base import utcnow
from plugin.db.models import Activity, HandRaise, ScoreRun
from plugin.services import merges, score_run
from plugin.services.gdpr import erase_member
from plugin.services.score_run import ScoreReport
from scoring.config import ScoringConfig
from tests.plugin.test_score import CFG, PRICING_POST, act, ingest, score, stored


def kept(engine: Engine) -> dict[int, set[int]]:
    """Stored hand raises: activity ids by member."""
    with engine.connect() as conn:
        rows = conn.execute(select(HandRaise.member_id, HandRaise.activity_id)).all()
    out: dict[int, set[int]] = {}
    for member, activity in rows:
        out.setdefault(member, set()).add(activity)
    return out


def activity_id(engine: Engine, source_id: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(select(Activity.id).where(Activity.source_activity_id == source_id)).scalar_one()
        )


def test_an_incremental_run_keeps_earlier_hand_raises_and_matches_new_ones_as_a_full_run_does(
    engine: Engine, workspace_id: int, people: dict[str, int]
) -> None:
    score(engine, workspace_id)
    cto = people["cto"]
    pricing = activity_id(engine, PRICING_POST)
    assert pricing in kept(engine)[cto]  # the full run kept the CTO's matched posts
    hot_before = stored(engine, "lead")[cto]
    assert hot_before.hot and pricing in hot_before.triggers

    # The CTO only replies now (no text to match); dev2 asks about pricing for the first time.
    ingest(
        engine,
        workspace_id,
        [
            act("cto-reply", "cto", "reply", 0.5),
            act(
                "dev2-pricing",
                "dev2",
                "support_question",
                0.4,
                text="How much is the enterprise plan? Pricing?",
            ),
        ],
    )
    inc = score(engine, workspace_id)
    assert inc.mode == "incremental" and inc.members_scored == 2
    lead = stored(engine, "lead")
    assert lead[cto].hot and lead[cto].triggers == hot_before.triggers  # from the kept matches
    new_question = activity_id(engine, "dev2-pricing")
    assert new_question in kept(engine)[people["dev2"]]  # matched from its text, and kept
    assert new_question in (lead[people["dev2"]].triggers or [])

    incremental = {m: (round(r.score, 3), r.hot, r.triggers) for m, r in lead.items()}
    score(engine, workspace_id, full=True)
    full = {m: (round(r.score, 3), r.hot, r.triggers) for m, r in stored(engine, "lead").items()}
    assert incremental[cto] == full[cto] and incremental[people["dev2"]] == full[people["dev2"]]


def test_a_run_that_kept_no_hand_raises_makes_the_next_one_full(
    engine: Engine, workspace_id: int, people: dict[str, int]
) -> None:
    score(engine, workspace_id)
    with engine.begin() as conn:  # as a run of the version before these were kept
        conn.execute(update(ScoreRun).values(hand_raises_since=None))
        conn.execute(HandRaise.__table__.delete())
    ingest(engine, workspace_id, [act("cto-reply", "cto", "reply", 0.5)])
    again = score(engine, workspace_id)
    assert again.mode == "full" and "kept no hand-raising posts" in again.why
    assert kept(engine)  # and the full run kept them again


def test_a_full_rescore_reuses_kept_matches_which_move_with_a_merge_and_go_when_topics_change(
    engine: Engine, workspace_id: int, people: dict[str, int]
) -> None:
    score(engine, workspace_id)
    pricing = activity_id(engine, PRICING_POST)
    # The CTO turns out to be dev0 under another address: merged into dev0, the kept posts move
    # with the activities, and the full run that follows finds them there.
    with Session(engine) as session:
        merges.merge(session, workspace_id, people["dev0"], people["cto"], actor="t", reason="same person")
        session.commit()
    assert pricing in kept(engine)[people["dev0"]] and people["cto"] not in kept(engine)
    full = score(engine, workspace_id)
    assert full.mode == "full" and "merged" in full.why
    lead = stored(engine, "lead")
    assert lead[people["dev0"]].hot and pricing in lead[people["dev0"]].triggers

    # Without the pricing topic the settings' hash changes: every text is matched again, and the
    # pricing question is no hand raise any more.
    topics = {k: v for k, v in CFG.raw["lead"]["topics"].items() if k != "pricing"}
    raw = copy.deepcopy(CFG.raw)
    raw["lead"]["topics"] = topics
    narrower = ScoringConfig.from_mapping(raw)
    assert narrower.weights_hash != CFG.weights_hash
    score(engine, workspace_id, cfg=narrower)
    assert pricing not in kept(engine).get(people["dev0"], set())
    assert pricing not in (stored(engine, "lead")[people["dev0"]].triggers or [])


PRICING_QUESTION = {"text": "How much is the enterprise plan? Pricing?"}


def raised(report: ScoreReport) -> list[int]:
    """The hand-raising activity ids a run counted."""
    assert report.loaded is not None
    ids: list[int] = report.loaded.inputs.raises.activity_id.tolist()
    return ids


def test_a_post_stored_while_a_run_reads_is_counted_once_by_each_later_run(
    engine: Engine, workspace_id: int, people: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A webhook stores a pricing question after the run took its watermark and before it read
    # the texts: that run may count it, and every later run counts it exactly once.
    real = score_run.load_inputs
    calls: list[int] = []

    def racing(*args: Any, **kwargs: Any) -> Any:
        if not calls:
            calls.append(1)
            ingest(
                engine,
                workspace_id,
                [act("dev2-pricing", "dev2", "support_question", 0.4, **PRICING_QUESTION)],
            )
        return real(*args, **kwargs)

    monkeypatch.setattr(score_run, "load_inputs", racing)
    score(engine, workspace_id)
    monkeypatch.setattr(score_run, "load_inputs", real)
    question = activity_id(engine, "dev2-pricing")
    for report in (score(engine, workspace_id), score(engine, workspace_id, full=True)):
        assert raised(report).count(question) == 1, report.mode
        assert len(raised(report)) == len(set(raised(report)))
    assert stored(engine, "lead")[people["dev2"]].triggers.count(question) == 1


def test_a_post_given_an_id_below_the_last_watermark_is_still_matched(
    engine: Engine, workspace_id: int, people: dict[str, int]
) -> None:
    # SQLite hands out max(id) + 1: once the newest activity is erased, the next post takes its
    # id, at or below the last run's watermark (on PostgreSQL a late commit does the same).
    ingest(engine, workspace_id, [act("fan3-late", "fan3", "reply", 0.1)])
    score(engine, workspace_id)
    with engine.begin() as conn:
        erase_member(conn, workspace_id, people["fan3"], actor="t", reason="request", now=utcnow())
    ingest(engine, workspace_id, [act("dev2-pricing", "dev2", "support_question", 0.4, **PRICING_QUESTION)])
    question = activity_id(engine, "dev2-pricing")
    assert question in raised(score(engine, workspace_id, full=True))
    assert question in (stored(engine, "lead")[people["dev2"]].triggers or [])


def test_a_merge_while_a_run_reads_files_the_new_match_under_the_member_it_went_to(
    engine: Engine, workspace_id: int, people: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    score(engine, workspace_id)
    ingest(engine, workspace_id, [act("dev2-pricing", "dev2", "support_question", 0.4, **PRICING_QUESTION)])
    real = score_run.load_inputs

    def then_merge(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        with Session(engine) as session:  # dev2 is merged into dev0 while the run computes
            merges.merge(session, workspace_id, people["dev0"], people["dev2"], actor="t", reason="same")
            session.commit()
        return out

    monkeypatch.setattr(score_run, "load_inputs", then_merge)
    score(engine, workspace_id)
    monkeypatch.setattr(score_run, "load_inputs", real)
    question = activity_id(engine, "dev2-pricing")
    assert question in kept(engine)[people["dev0"]]
    after = score(engine, workspace_id)
    assert after.mode == "full" and question in raised(after)
    assert question in (stored(engine, "lead")[people["dev0"]].triggers or [])
