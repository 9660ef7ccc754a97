"""Read the (member, time) pairs of the plain activity types in a second process.

At a million members, turning twenty million rows into arrays is the largest single cost of a
full scoring run, and one Python thread cannot share it (the GIL). A spawned process reads the
plain types one by one over its own database connection and sends back plain arrays, while the
parent reads everything else. Each type is its own task: when the parent is done with its part,
it takes back the types the helper has not started (:meth:`Pending.collect`), so neither waits
long for the other whatever the mix of types.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine, create_engine

from plugin.db.sql import number_rows

PAIRS = ("member_id", "occurred_at")
PAIRS_FROM = "FROM activities WHERE workspace_id = ? AND type = ? AND occurred_at <= ?"
Pairs = NDArray[np.int64]

_engines: dict[str, Engine] = {}  # in the child: one engine per database for all its tasks


def read_pairs(url: str, workspace_id: int, name: str, now: int) -> Pairs:
    """In the child: one type's activities as an (n, 2) array of (member_id, occurred_at)."""
    engine = _engines.get(url) or _engines.setdefault(url, create_engine(url))
    with engine.connect() as conn:
        return number_rows(conn, PAIRS, PAIRS_FROM, (workspace_id, name, now))


class Pending:
    """The helper's tasks, one per type, in the order it takes them."""

    def __init__(self, tasks: list[tuple[str, Future[Pairs]]]) -> None:
        self.tasks = tasks

    def collect(self, read_here: Callable[[str], Pairs]) -> dict[str, Pairs]:
        """Every type's pairs: the types the helper has not started are cancelled, from the last,
        and read here with ``read_here``; the rest are awaited. A broken helper (e.g. a caller's
        script without a ``__main__`` guard) leaves its types to ``read_here`` too."""
        got: dict[str, Pairs] = {}
        for name, task in reversed(self.tasks):
            if not task.cancel():
                break
            got[name] = read_here(name)
        for name, task in self.tasks:
            if name not in got:
                try:
                    got[name] = task.result()
                except BrokenProcessPool:
                    got[name] = read_here(name)
        return got


class PairReader:
    """One helper process for the duration of a ``with`` block."""

    def __enter__(self) -> PairReader:
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"))
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, url: str, workspace_id: int, types: Sequence[str], now: int) -> Pending:
        return Pending(
            [(name, self._pool.submit(read_pairs, url, workspace_id, name, now)) for name in types]
        )
