"""``flywheel ingest``: stream files through the readers into the Ingestor, with progress."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

from connectors.errors import InvalidRecord, NoActivity
from plugin.services.ingest import Ingestor, IngestReport
from plugin.services.readers import detect_format, expand_paths, read_file
from plugin.services.suggestions import refresh_suggestions

#: progress(bytes_done, bytes_total) is called about every this many items
PROGRESS_EVERY = 5_000


def ingest_paths(
    engine: Engine,
    workspace_id: int,
    paths: list[Path],
    fmt: str | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    suggest: bool = True,
) -> IngestReport:
    """Ingest every file (folders are walked); returns the report. Bad items never stop the run."""
    files = expand_paths(paths)
    total = sum(p.stat().st_size for p in files if p.is_file())
    done_before = 0
    with Ingestor(engine, workspace_id, background=True) as ingestor:
        for path in files:
            name = str(path)
            if not path.is_file():
                ingestor.reject(None, "path", "no such file", name)
                continue
            try:
                file_format = detect_format(path, fmt)
            except ValueError as exc:
                ingestor.reject(None, "format", str(exc), name)
                continue
            with path.open("rb") as handle:
                for count, (line, outcome) in enumerate(read_file(handle, file_format, path), start=1):
                    if isinstance(outcome, list):
                        if not outcome:
                            ingestor.skip(line, "no activity in this item", name)
                        for record in outcome:
                            ingestor.add(record)
                    elif isinstance(outcome, NoActivity):
                        ingestor.skip(line, outcome.reason, name)
                    elif isinstance(outcome, InvalidRecord):
                        ingestor.reject(line, outcome.field, outcome.reason, name)
                    if progress is not None and count % PROGRESS_EVERY == 0:
                        progress(done_before + handle.tell(), total)
            done_before += path.stat().st_size
            if progress is not None:
                progress(done_before, total)
    report = ingestor.report
    if suggest:
        report.suggestions = refresh_suggestions(engine, workspace_id)
    return report
