"""Read and parse files into column batches, in this process or in a second one.

Parsing is pure Python and holds the GIL, so a thread cannot overlap it with storing; a process
can. The worker sends bounded batches through a queue (memory stays flat whatever the file size),
each pickled in the worker itself so that a failure there reaches the parent instead of being
printed by the queue's feeder thread.
"""

from __future__ import annotations

import gc
import multiprocessing
import pickle
import queue
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.errors import InvalidRecord, NoActivity
from plugin.services.columns import ColumnBatch
from plugin.services.readers import detect_format, read_file

BATCH_RECORDS = 50_000
QUEUE_BATCHES = 3  # batches parsed ahead at most
#: (line, field, reason, invalid): invalid False means "well formed, no activity in it"
Problem = tuple[int | None, str, str, bool]


@dataclass
class Batch:
    file: str
    bytes_done: int  # within this file
    columns: ColumnBatch = field(default_factory=ColumnBatch)
    problems: list[Problem] = field(default_factory=list)
    file_done: bool = False


def read_batches(files: list[Path], fmt: str | None) -> Iterator[Batch]:
    """Column batches of every file in turn, with the problems found on the way."""
    for path in files:
        name = str(path)
        if not path.is_file():
            yield Batch(name, 0, problems=[(None, "path", "no such file", True)], file_done=True)
            continue
        try:
            file_format = detect_format(path, fmt)
        except ValueError as exc:
            yield Batch(name, 0, problems=[(None, "format", str(exc), True)], file_done=True)
            continue
        batch = Batch(name, 0)
        with path.open("rb") as handle:
            for line, outcome in read_file(handle, file_format, path):
                if isinstance(outcome, list):
                    if not outcome:
                        batch.problems.append((line, "payload", "no activity in this item", False))
                    batch.columns.extend(outcome)
                elif isinstance(outcome, NoActivity):
                    batch.problems.append((line, "payload", outcome.reason, False))
                elif isinstance(outcome, InvalidRecord):
                    batch.problems.append((line, outcome.field, outcome.reason, True))
                if len(batch.columns) >= BATCH_RECORDS:
                    batch.bytes_done = handle.tell()
                    yield batch
                    batch = Batch(name, 0)
            batch.bytes_done = handle.tell()
        batch.file_done = True
        yield batch


def _work(files: list[str], fmt: str | None, out: Any) -> None:
    gc.disable()  # records hold no cycles; collector passes over each batch cost a tenth of the time
    try:
        for batch in read_batches([Path(f) for f in files], fmt):
            out.put(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
        out.put(pickle.dumps(None))
    except BaseException:
        out.put(pickle.dumps(("error", traceback.format_exc())))


def parse_in_worker(files: list[Path], fmt: str | None) -> Iterator[Batch]:
    """Batches produced by a child process; the child is stopped when the caller stops reading."""
    ctx = multiprocessing.get_context("spawn")  # a clean child: no inherited pools or threads
    out = ctx.Queue(maxsize=QUEUE_BATCHES)
    worker = ctx.Process(target=_work, args=([str(f) for f in files], fmt, out), daemon=True)
    worker.start()
    try:
        while True:
            try:
                message = pickle.loads(out.get(timeout=5))  # noqa: S301 (our own child's output)
            except queue.Empty:
                # A worker that exited normally may still have batches in the pipe: keep reading
                # until its final None; only a worker that died abnormally is an error.
                if not worker.is_alive() and worker.exitcode != 0:
                    raise RuntimeError(f"the parsing worker stopped (exit code {worker.exitcode})") from None
                continue
            if message is None:
                return
            if isinstance(message, tuple):
                raise RuntimeError(f"the parsing worker failed:\n{message[1]}")
            yield message
    finally:
        if worker.is_alive():
            worker.terminate()
        worker.join(timeout=5)
        out.close()
