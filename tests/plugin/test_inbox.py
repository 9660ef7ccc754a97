"""The inbox job: activity files dropped into a workspace's folder are pulled in once, reported
line by line, and moved out of the way; files still being written wait; a dead worker's claim is
given back."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

from sqlalchemy import Engine, func, select

from plugin.db.models import Activity
from plugin.jobs.runner import run_job, tick
from plugin.settings import Settings
from tests.plugin.helpers import record, write_jsonl
from tests.plugin.test_jobs import _row


def _stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Activity)).scalar_one())


def _settle(*paths: Path) -> None:
    old = time.time() - 60
    for path in paths:
        os.utime(path, (old, old))


def _inbox(engine: Engine, settings: Settings) -> dict[str, object]:
    tick(engine, settings)
    ran = run_job(engine, settings, _row(engine, "inbox", 1).id)
    assert ran is not None, "the inbox job should have been due"
    return {"status": ran.status, **ran.summary}


def test_files_dropped_in_the_inbox_are_stored_once_reported_and_moved_to_done(
    engine: Engine, settings: Settings, workspace_id: int, tmp_path: Path
) -> None:
    folder = tmp_path / "inbox" / "default"
    folder.mkdir(parents=True)
    live = dataclasses.replace(settings, inbox_dir=tmp_path / "inbox")
    attended = [record(f"a{i}", source="meetup", kind="event_attended") for i in range(3)]
    good = write_jsonl(folder / "meetup-attendance.jsonl", attended)
    bad = write_jsonl(
        folder / "survey.jsonl", [record("s1", source="survey"), {"id": "no source"}, b"{broken"]
    )
    copying = write_jsonl(folder / "still-copying.csv", [])
    _settle(good, bad)
    summary = _inbox(engine, live)
    assert summary == {"status": "ok", "files": 2, "stored": 4, "duplicates": 0, "invalid": 2, "failed": [],
                       "waiting": 1}  # fmt: skip
    assert _stored(engine) == 4
    assert sorted(p.name for p in (folder / "done").iterdir()) == [
        "meetup-attendance.jsonl", "meetup-attendance.jsonl.report.json",
        "survey.jsonl", "survey.jsonl.report.json",
    ]  # fmt: skip
    report = json.loads((folder / "done" / "survey.jsonl.report.json").read_text())
    assert report["stored"] == 1 and [p["line"] for p in report["problems"]] == [2, 3]
    assert copying.exists()  # taken at a later run, once it has settled

    again = write_jsonl(
        folder / "meetup-attendance.jsonl", [record("a0", source="meetup", kind="event_attended")]
    )
    _settle(again, copying)
    summary = _inbox_now(engine, live)
    assert summary["files"] == 2 and summary["stored"] == 0 and summary["duplicates"] == 1  # nothing twice
    assert (folder / "done" / "meetup-attendance.jsonl").exists()
    assert len([p for p in (folder / "done").iterdir() if p.name.endswith("meetup-attendance.jsonl")]) == 2


def _inbox_now(engine: Engine, settings: Settings) -> dict[str, object]:
    from datetime import UTC, datetime

    from sqlalchemy import update

    from plugin.db.models import ScheduledJob

    with engine.begin() as conn:
        conn.execute(
            update(ScheduledJob).where(ScheduledJob.job == "inbox").values(next_run_at=datetime.now(UTC))
        )
    return _inbox(engine, settings)


def test_a_dead_workers_claim_is_given_back_and_an_unreadable_file_goes_to_failed(
    engine: Engine, settings: Settings, workspace_id: int, tmp_path: Path
) -> None:
    folder = tmp_path / "inbox" / "default"
    (folder / ".processing").mkdir(parents=True)
    live = dataclasses.replace(settings, inbox_dir=tmp_path / "inbox", job_lease_s=30)
    left = write_jsonl(folder / ".processing" / "20261202T000000000000Z-forum-export.jsonl", [record("f1")])
    newer = write_jsonl(folder / "forum-export.jsonl", [record("f2")])  # the same name, dropped since
    _settle(left, newer)  # claimed a minute ago by a worker that died
    unreadable = folder / "badges.csv"
    unreadable.write_bytes(b"\xff\xfe\x00not,a,csv\x00")
    _settle(unreadable)
    summary = _inbox(engine, live)
    assert summary["status"] == "ok" and summary["stored"] == 2  # both files, neither lost
    assert (folder / "done" / "forum-export.jsonl").exists() and not any((folder / ".processing").iterdir())
    failed = sorted(p.name for p in (folder / "failed").iterdir()) if (folder / "failed").exists() else []
    done = sorted(p.name for p in (folder / "done").iterdir())
    assert "badges.csv" in failed + done  # refused whole, or line by line with its reasons
    if failed:
        assert "fix the file" in (folder / "failed" / "badges.csv.error.txt").read_text()


def test_without_an_inbox_folder_the_job_says_so(
    engine: Engine, settings: Settings, workspace_id: int
) -> None:
    summary = _inbox(engine, settings)
    assert summary["status"] == "skipped" and "FLYWHEEL_INBOX_DIR" in str(summary["reason"])
