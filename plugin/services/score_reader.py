"""Read the (member, time) pairs of some activity types in a second process.

At a million members, turning twenty million rows into Python tuples is the largest single cost
of a full scoring run, and one Python thread cannot share it (the GIL). A spawned process reads
half of the types over its own database connection and sends back plain arrays, while the parent
reads the other half.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import create_engine

from plugin.db.sql import number_rows

PAIRS = ("member_id", "occurred_at")
PAIRS_FROM = "FROM activities WHERE workspace_id = ? AND type = ? AND occurred_at <= ?"
Pending = Future[list[NDArray[np.int64]]]


def read_pairs(url: str, workspace_id: int, types: Sequence[str], now: int) -> list[NDArray[np.int64]]:
    """In the child: for each type, its activities' (member_id, occurred_at) as an (n, 2) array."""
    engine = create_engine(url)
    out = []
    try:
        with engine.connect() as conn:
            out = [number_rows(conn, PAIRS, PAIRS_FROM, (workspace_id, name, now)) for name in types]
    finally:
        engine.dispose()
    return out


class PairReader:
    """One helper process for the duration of a ``with`` block."""

    def __enter__(self) -> PairReader:
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"))
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(
        self, url: str, workspace_id: int, types: Sequence[str], now: int
    ) -> Future[list[NDArray[np.int64]]]:
        return self._pool.submit(read_pairs, url, workspace_id, list(types), now)
