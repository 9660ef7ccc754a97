"""Identity resolution: verified emails merge, weaker evidence only suggests."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, func, select

from plugin.db.models import Activity, Identity, Member, MergeLog, MergeSuggestion
from plugin.services.ingest_files import ingest_paths
from tests.plugin.helpers import record, write_jsonl


def members(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Member)).scalar_one())


def test_same_verified_email_on_three_platforms_is_one_member(
    engine: Engine, workspace_id: int, tmp_path: Path
) -> None:
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [
            record("d1", source="discourse", source_user_id="17", email=" Noa@Example.ORG "),
            record("s1", source="slack", source_user_id="U9", email="noa@example.org"),
            record("e1", source="events", email="noa@example.org"),
        ],
    )
    report = ingest_paths(engine, workspace_id, [path])
    assert members(engine) == 1
    assert report.auto_merges == 2
    with engine.connect() as conn:
        assert (
            conn.execute(
                select(func.count()).select_from(MergeLog).where(MergeLog.kind == "auto_email")
            ).scalar_one()
            == 2
        )
        assert len(set(conn.execute(select(Activity.member_id)).scalars())) == 1


def test_the_same_identity_across_batches_and_runs_is_reused(
    engine: Engine, workspace_id: int, tmp_path: Path
) -> None:
    write_jsonl(tmp_path / "a.jsonl", [record("1", source="slack", source_user_id="U1")])
    write_jsonl(tmp_path / "b.jsonl", [record("2", source="slack", source_user_id="U1", name="Late Name")])
    ingest_paths(engine, workspace_id, [tmp_path / "a.jsonl"])
    ingest_paths(engine, workspace_id, [tmp_path / "b.jsonl"])
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Identity)).scalar_one() == 1
        # a profile field the member lacked is filled from the later record
        assert conn.execute(select(Member.display_name)).scalar_one() == "Late Name"


def test_unverified_email_and_shared_handle_only_suggest(
    engine: Engine, workspace_id: int, tmp_path: Path
) -> None:
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [
            record(
                "g1", source="github", source_user_id="501", handle="octo", email="octo@acme.io"
            ),  # GitHub: unverified
            record("d1", source="discourse", source_user_id="9", handle="Octo", email="octo@acme.io"),
        ],
    )
    report = ingest_paths(engine, workspace_id, [path])
    assert members(engine) == 2 and report.auto_merges == 0
    with engine.connect() as conn:
        ((evidence, confidence),) = conn.execute(
            select(MergeSuggestion.evidence, MergeSuggestion.confidence)
        ).all()
    # the display names are the handles here, at the same company domain: three signals
    assert evidence == ["email:octo@acme.io", "handle:octo", "name_org:octo"]
    assert confidence == round(1 - (1 - 0.8) * (1 - 0.6) * (1 - 0.5), 3)


def test_same_name_at_same_organization_is_a_suggestion(
    engine: Engine, workspace_id: int, tmp_path: Path
) -> None:
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [
            record("1", email="maria.garcia@globex.com", name="María García"),
            record("2", email="mgarcia@globex.com", name="maría garcía"),
            record("3", email="maria@other.com", name="María García"),
        ],
    )
    report = ingest_paths(engine, workspace_id, [path])
    assert report.suggestions == 1
    with engine.connect() as conn:
        evidence = conn.execute(select(MergeSuggestion.evidence)).scalar_one()
    assert evidence == ["name_org:maría garcía"]


def test_suggestions_are_not_proposed_twice(engine: Engine, workspace_id: int, tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [
            record("g1", source="github", source_user_id="1", handle="zed"),
            record("s1", source="slack", source_user_id="U1", handle="zed"),
        ],
    )
    assert ingest_paths(engine, workspace_id, [path]).suggestions == 1
    assert ingest_paths(engine, workspace_id, [path]).suggestions == 0


def test_an_identity_that_learns_its_verified_email_later_is_proposed(
    engine: Engine, workspace_id: int, tmp_path: Path
) -> None:
    write_jsonl(tmp_path / "a.jsonl", [record("s1", source="slack", source_user_id="U1", handle="ann")])
    write_jsonl(tmp_path / "b.jsonl", [
        record("s2", source="slack", source_user_id="U1", email="ann@acme.com"),
        record("d1", source="discourse", source_user_id="7", email="ann@acme.com"),
    ])  # fmt: skip
    ingest_paths(engine, workspace_id, [tmp_path / "a.jsonl"])
    ingest_paths(engine, workspace_id, [tmp_path / "b.jsonl"])
    with engine.connect() as conn:
        assert (
            conn.execute(select(Identity.email).where(Identity.source == "slack")).scalar_one()
            == "ann@acme.com"
        )
        evidence, confidence = conn.execute(
            select(MergeSuggestion.evidence, MergeSuggestion.confidence)
        ).one()
    assert evidence == ["verified_email:ann@acme.com"] and confidence == 0.95
