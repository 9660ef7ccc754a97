"""Ingesting files: what is stored, what is refused and why, and that nothing is stored twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from connectors.records import parse_record
from plugin.db.models import Activity, Identity, Member, Organization
from plugin.services.identity import IdentityResolver
from plugin.services.ingest import Ingestor
from plugin.services.ingest_files import ingest_paths
from tests.plugin.helpers import record, write_jsonl


def count(engine: Engine, model: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())  # type: ignore[arg-type]


def test_good_rows_stored_bad_rows_reported_with_line_and_reason(
    engine: Engine, workspace_id: int, tmp_path: Path
) -> None:
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [
            record("1"),
            b"{not json",
            record("2", kind="teleport"),
            {**record("3"), "occurred_at": "2026-03-01T10:00:00"},
            record("4", email="not-an-email"),
            record("5"),
        ],
    )
    report = ingest_paths(engine, workspace_id, [path])
    assert (report.read, report.stored, report.invalid) == (6, 2, 4)
    problems = {(p.line, p.field) for p in report.problems}
    assert problems == {(2, "line"), (3, "type"), (4, "occurred_at"), (5, "member.email")}
    assert all(p.file == str(path) for p in report.problems)
    assert count(engine, Activity) == 2


def test_reingesting_a_file_stores_nothing_new(engine: Engine, workspace_id: int, tmp_path: Path) -> None:
    rows = [record(str(i), email=f"p{i % 7}@acme.io") for i in range(50)]
    path = write_jsonl(tmp_path / "a.jsonl", rows)
    first = ingest_paths(engine, workspace_id, [path])
    before = (count(engine, Activity), count(engine, Member), count(engine, Identity))
    second = ingest_paths(engine, workspace_id, [path])
    assert (first.stored, second.stored, second.duplicates) == (50, 0, 50)
    assert (count(engine, Activity), count(engine, Member), count(engine, Identity)) == before == (50, 7, 7)


def test_duplicates_inside_one_file_are_counted_once(
    engine: Engine, workspace_id: int, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [record("1"), record("1"), record("2")])
    report = ingest_paths(engine, workspace_id, [path])
    assert (report.stored, report.duplicates) == (2, 1)


def test_csv_uses_the_same_fields_flattened(engine: Engine, workspace_id: int, tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(
        "source,id,type,occurred_at,member_email,member_name,member_email_verified,properties,sentiment\n"
        "surveys,s1,survey_response,2026-01-02T03:04:05+02:00,Dana@Acme.IO,Dana Levi,true,"
        '"{""nps"": 9}",0.5\n'
        "surveys,s2,survey_response,2026-01-02T03:04:05Z,x@acme.io,X,maybe,{},\n",
        encoding="utf-8",
    )
    report = ingest_paths(engine, workspace_id, [path])
    assert report.stored == 1
    assert [(p.line, p.field) for p in report.problems] == [(3, "member_email_verified")]
    with engine.connect() as conn:
        props, sentiment, occurred = conn.execute(
            select(Activity.properties, Activity.sentiment, Activity.occurred_at)
        ).one()
        email = conn.execute(select(Identity.email)).scalar_one()
    assert props == {"nps": 9} and sentiment == 0.5
    assert occurred.isoformat() == "2026-01-02T01:04:05+00:00"  # stored in UTC
    assert email == "dana@acme.io"  # normalised


def test_organizations_come_from_company_domains_only(
    engine: Engine, workspace_id: int, tmp_path: Path
) -> None:
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [
            record("1", email="ana@acme-labs.com", company="ACME Labs"),
            record("2", email="bo@acme-labs.com"),
            record("3", email="cy@gmail.com"),
            record("4", email="dee@mailinator.com"),  # disposable
            record("5", email="eve@yandex.ru"),
        ],
    )
    ingest_paths(engine, workspace_id, [path])
    with engine.connect() as conn:
        orgs = conn.execute(select(Organization.domain, Organization.name)).all()
        linked = conn.execute(
            select(func.count()).select_from(Member).where(Member.organization_id.is_not(None))
        ).scalar_one()
    assert orgs == [("acme-labs.com", "ACME Labs")]
    assert linked == 2


def test_a_folder_is_walked_and_unknown_files_are_reported(
    engine: Engine, workspace_id: int, tmp_path: Path
) -> None:
    write_jsonl(tmp_path / "one.jsonl", [record("1")])
    (tmp_path / "sub").mkdir()
    write_jsonl(tmp_path / "sub" / "two.jsonl", [record("2")])
    (tmp_path / "odd.json").write_text("{}")
    report = ingest_paths(engine, workspace_id, [tmp_path, tmp_path / "missing.jsonl"])
    assert report.stored == 2
    assert {(Path(p.file or "").name, p.field) for p in report.problems} == {
        ("odd.json", "format"),
        ("missing.jsonl", "path"),
    }


def test_parsing_in_a_worker_process_gives_the_same_result(
    engine: Engine, workspace_id: int, tmp_path: Path
) -> None:
    rows = [record(str(i), email=f"p{i % 5}@acme.io") for i in range(30)]
    rows[7] = b'{"broken": '
    rows[12] = {**record("12"), "type": "nope"}
    path = write_jsonl(tmp_path / "a.jsonl", [*rows, record("0")])  # the last repeats the first
    in_process = ingest_paths(engine, workspace_id, [path], parallel=False, suggest=False)
    with engine.begin() as conn:  # start again from an empty store
        conn.execute(Activity.__table__.delete())
    in_worker = ingest_paths(engine, workspace_id, [path], parallel=True, suggest=False)
    assert (in_worker.read, in_worker.stored, in_worker.duplicates, in_worker.invalid) == (31, 28, 1, 2)
    assert (in_process.read, in_process.stored, in_process.duplicates) == (31, 28, 1)
    assert [(p.line, p.field) for p in in_worker.problems] == [(8, "line"), (13, "type")]
    assert count(engine, Activity) == 28


def test_a_batch_colliding_with_a_concurrent_writer_is_retried(
    engine: Engine, workspace_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = Ingestor(engine, workspace_id)
    first.add(parse_record(record("x1", source="slack", source_user_id="U1", email="new@acme.io")))
    first.finish()
    # The second writer looked U1 up just before the first committed it: its lookup misses once,
    # so it inserts U1 again, collides with the unique key, and must retry the whole batch.
    real_load = IdentityResolver._load_identities
    calls: list[int] = []

    def miss_once(self: IdentityResolver, conn: Any, keys: Any) -> None:
        calls.append(1)
        if len(calls) > 1:
            real_load(self, conn, keys)

    monkeypatch.setattr(IdentityResolver, "_load_identities", miss_once)
    second = Ingestor(engine, workspace_id)
    second.add(parse_record(record("x2", source="slack", source_user_id="U1", email="new@acme.io")))
    report = second.finish()
    assert len(calls) == 2  # the collision happened and the batch ran again
    assert (report.stored, report.identities_created, report.members_created) == (1, 0, 0)
    with engine.connect() as conn:
        assert len(set(conn.execute(select(Activity.member_id)).scalars())) == 1
        assert conn.execute(select(func.count()).select_from(Identity)).scalar_one() == 1


def test_a_csv_that_turns_into_bad_bytes_keeps_the_rows_before(
    engine: Engine, workspace_id: int, tmp_path: Path
) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(
        b"source,id,type,occurred_at,member_email\n"
        b"events,e1,event_attended,2026-01-02T03:04:05Z,a@acme.io\n"
        + b"events,e2,event_attended,2026-01-02T03:04:05Z,b@acme.io\n" * 3000
        + b"events,e3,event_attended,2026-01-02T03:04:05Z,\xff\xfe@acme.io\n"
    )
    report = ingest_paths(engine, workspace_id, [path])
    assert report.stored == 2 and report.duplicates == 2999
    assert [p.field for p in report.problems] == ["file"] and "UTF-8" in report.problems[0].reason


@pytest.mark.parametrize("parallel", [False, True])
def test_the_number_a_survey_review_or_purchase_carries_is_stored_in_its_own_column(
    engine: Engine, workspace_id: int, tmp_path: Path, parallel: bool
) -> None:
    def valued(rid: str, kind: str, properties: dict[str, Any]) -> dict[str, Any]:
        return {**record(rid, kind=kind), "properties": properties}

    path = write_jsonl(
        tmp_path / "a.jsonl",
        [
            valued("nps", "survey_response", {"nps": 9, "comment": "great"}),
            valued("stars", "review", {"rating": 4.5}),
            valued("buy", "purchase", {"amount": 1200, "currency": "EUR"}),
            valued("odd", "purchase", {"amount": "USD 49"}),  # not a number: no value
            valued("yes", "review", {"rating": True}),  # a JSON true is no rating
            valued("post", "post", {"nps": 7}),  # a post carries no number scoring reads
        ],
    )
    ingest_paths(engine, workspace_id, [path], parallel=parallel, suggest=False)
    with engine.connect() as conn:
        got = dict(conn.execute(select(Activity.source_activity_id, Activity.value)).all())
    assert got == {"nps": 9.0, "stars": 4.5, "buy": 1200.0, "odd": None, "yes": None, "post": None}
