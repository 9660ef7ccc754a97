"""Merging and unmerging keep every activity and identity, are logged, and can be undone."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from plugin.db.models import Activity, Consent, Identity, Member, MergeLog, MergeSuggestion
from plugin.errors import ValidationFailed
from plugin.services import merges
from plugin.services.ingest_files import ingest_paths
from tests.plugin.helpers import record, write_jsonl


def by_member(session: Session) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for member_id, activity_id in session.execute(select(Activity.member_id, Activity.source_activity_id)):
        out.setdefault(member_id, []).append(activity_id)
    return {k: sorted(v) for k, v in out.items()}


@pytest.fixture
def two_people(engine: Engine, workspace_id: int, tmp_path: Path) -> tuple[int, int]:
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [
            record("g1", source="github", source_user_id="1", handle="lin"),
            record("g2", source="github", source_user_id="1", handle="lin"),
            record(
                "d1", source="discourse", source_user_id="7", email="lin@acme.io", name="Lin", title="CTO"
            ),
        ],
    )
    ingest_paths(engine, workspace_id, [path])
    with Session(engine) as s:
        github = s.scalar(select(Identity.member_id).where(Identity.source == "github"))
        discourse = s.scalar(select(Identity.member_id).where(Identity.source == "discourse"))
        s.add(
            Consent(
                workspace_id=workspace_id, member_id=github, purpose="research", granted=True, source="form"
            )
        )
        s.commit()
    assert github and discourse
    return discourse, github


def test_merge_moves_everything_and_undo_restores_it_exactly(
    engine: Engine, workspace_id: int, two_people: tuple[int, int]
) -> None:
    target, source = two_people
    with Session(engine) as s:
        before = by_member(s)
        entry = merges.merge(s, workspace_id, target, source, actor="test", reason="same person")
        s.commit()
        assert by_member(s) == {target: ["d1", "g1", "g2"]}
        assert s.get(Member, source).merged_into_id == target  # type: ignore[union-attr]
        assert s.scalar(select(Consent.member_id)) == target
        assert s.scalar(select(MergeSuggestion.status)) == "accepted"
        merges.undo(s, workspace_id, entry.id, actor="test")
        s.commit()
        assert by_member(s) == before
        assert s.get(Member, source).merged_into_id is None  # type: ignore[union-attr]
        assert s.scalar(select(Consent.member_id)) == source
        assert s.get(MergeLog, entry.id).undone_at is not None  # type: ignore[union-attr]
        # the person said these two are different: never suggested again
        assert s.scalar(select(MergeSuggestion.status)) == "dismissed"


def test_merging_a_merged_member_is_refused_with_what_to_do(
    engine: Engine, workspace_id: int, two_people: tuple[int, int]
) -> None:
    target, source = two_people
    with Session(engine) as s:
        merges.merge(s, workspace_id, target, source, actor="test", reason="x")
        with pytest.raises(ValidationFailed) as info:
            merges.merge(s, workspace_id, target, source, actor="test", reason="again")
    assert f"use member {target}" in (info.value.hint or "")


def test_undoing_an_automatic_email_merge_splits_the_identity_off(
    engine: Engine, workspace_id: int, tmp_path: Path
) -> None:
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [
            record("d1", source="discourse", source_user_id="7", email="kim@acme.io"),
            record("s1", source="slack", source_user_id="U7", email="kim@acme.io"),
            record("s2", source="slack", source_user_id="U7", email="kim@acme.io"),
        ],
    )
    ingest_paths(engine, workspace_id, [path])
    with Session(engine) as s:
        (auto,) = s.scalars(select(MergeLog)).all()
        assert len(by_member(s)) == 1
        merges.undo(s, workspace_id, auto.id, actor="test")
        s.commit()
        groups = sorted(by_member(s).values())
    assert groups == [["d1"], ["s1", "s2"]]


def test_undo_out_of_order_is_refused_and_names_what_to_undo_first(
    engine: Engine, workspace_id: int, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [
        record("a1", source="slack", source_user_id="A"), record("b1", source="slack", source_user_id="B"),
        record("c1", source="slack", source_user_id="C"),
    ])  # fmt: skip
    ingest_paths(engine, workspace_id, [path])
    with Session(engine) as s:
        ids = dict(s.execute(select(Identity.source_user_id, Identity.member_id)).all())
        first = merges.merge(s, workspace_id, ids["A"], ids["B"], actor="t", reason="x")
        second = merges.merge(s, workspace_id, ids["C"], ids["A"], actor="t", reason="y")
        with pytest.raises(ValidationFailed) as info:
            merges.undo(s, workspace_id, first.id, actor="t")
        assert str(second.id) in (info.value.hint or "")
        merges.undo(s, workspace_id, second.id, actor="t")
        merges.undo(s, workspace_id, first.id, actor="t")
        s.commit()
        assert sorted(by_member(s).values()) == [["a1"], ["b1"], ["c1"]]
