"""The inbox: files of activity (event attendance, survey answers, exports of a platform without a
webhook) dropped into a folder per workspace, pulled in by the ``inbox`` job.

``FLYWHEEL_INBOX_DIR``/<workspace slug>/ takes ``.jsonl``, ``.ndjson`` and ``.csv`` files in the
canonical activity format (docs/activity-record.md). A file is taken once it has not changed for a
few seconds (still being copied otherwise), claimed by renaming it into ``.processing/`` (one
worker wins, on any number of hosts sharing the folder), ingested (nothing is stored twice), then
moved to ``done/`` beside a ``.report.json`` of what was stored and what was refused, line by line;
a file that cannot be read at all goes to ``failed/`` with an ``.error.txt`` saying why. A claim left
by a worker that died is given back after the job's lease, and the next run takes the file again.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from plugin.services.ingest_files import ingest_paths

SUFFIXES = (".jsonl", ".ndjson", ".csv")
SETTLED_S = 5.0  # a file changed more recently than this is still being written
PROBLEMS_KEPT = 1_000


@dataclass
class InboxReport:
    files: int = 0
    stored: int = 0
    duplicates: int = 0
    invalid: int = 0
    failed: list[str] = field(default_factory=list)
    waiting: int = 0  # files still being written: taken next time

    def as_dict(self) -> dict[str, Any]:
        return {"files": self.files, "stored": self.stored, "duplicates": self.duplicates,
                "invalid": self.invalid, "failed": self.failed, "waiting": self.waiting}  # fmt: skip


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _give_back_stale(folder: Path, older_than_s: float, now: float) -> None:
    processing = folder / ".processing"
    if not processing.is_dir():
        return
    for path in processing.iterdir():
        if path.is_file() and now - path.stat().st_mtime > older_than_s:
            original = path.name.split("-", 1)[1] if "-" in path.name else path.name
            back = folder / original
            if back.exists():  # a new file of the same name was dropped meanwhile: keep both
                back = folder / f"{_stamp()}-{original}"
            try:
                path.rename(back)
            except OSError:
                continue  # another worker gave it back first


def pull_inbox(engine: Engine, workspace_id: int, folder: Path, *, lease_s: float) -> InboxReport:
    """Ingest every settled file of ``folder``; see the module's docstring."""
    report = InboxReport()
    if not folder.is_dir():
        return report
    now = time.time()
    _give_back_stale(folder, lease_s, now)
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES):
        if now - path.stat().st_mtime < SETTLED_S:
            report.waiting += 1
            continue
        (folder / ".processing").mkdir(exist_ok=True)
        claimed = folder / ".processing" / f"{_stamp()}-{path.name}"
        try:
            path.rename(claimed)
            os.utime(claimed)  # the claim's age, for giving it back if this worker dies
        except FileNotFoundError:
            continue  # another worker took it
        report.files += 1
        try:
            done = ingest_paths(engine, workspace_id, [claimed])
        except Exception as exc:  # an unreadable file must not stop the others
            moved = _move(claimed, folder / "failed", path.name)
            moved.with_name(moved.name + ".error.txt").write_text(
                f"{type(exc).__name__}: {exc}\nfix the file and drop it into the inbox again\n",
                encoding="utf-8",
            )
            report.failed.append(path.name)
            continue
        report.stored += done.stored
        report.duplicates += done.duplicates
        report.invalid += done.invalid
        moved = _move(claimed, folder / "done", path.name)
        problems = [
            {"line": p.line, "field": p.field, "reason": p.reason} for p in done.problems[:PROBLEMS_KEPT]
        ]
        summary = {"file": path.name, "read": done.read, "stored": done.stored, "duplicates": done.duplicates,
                   "skipped": done.skipped, "invalid": done.invalid, "problems": problems}  # fmt: skip
        moved.with_name(moved.name + ".report.json").write_text(
            json.dumps(summary, indent=2), encoding="utf-8"
        )
    return report


def _move(path: Path, to: Path, name: str) -> Path:
    to.mkdir(exist_ok=True)
    target = to / name
    if target.exists():
        target = to / f"{_stamp()}-{name}"
    path.rename(target)
    return target
