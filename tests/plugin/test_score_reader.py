"""The helper's tasks: types it has not started are taken back and read by the caller."""

from __future__ import annotations

from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from plugin.services.score_reader import Pairs, Pending


def pairs(n: int) -> Pairs:
    return np.full((n, 2), n, dtype=np.int64)


def test_unstarted_types_are_read_here_from_the_last_and_started_ones_awaited() -> None:
    started: Future[Pairs] = Future()
    assert started.set_running_or_notify_cancel()
    started.set_result(pairs(1))
    waiting_b: Future[Pairs] = Future()
    waiting_c: Future[Pairs] = Future()
    read_here: list[str] = []

    def read(name: str) -> Pairs:
        read_here.append(name)
        return pairs(len(name))

    got = Pending([("a", started), ("bb", waiting_b), ("ccc", waiting_c)]).collect(read)
    assert read_here == ["ccc", "bb"]  # stolen from the end, the helper's last tasks
    assert waiting_b.cancelled() and waiting_c.cancelled()
    assert {k: v.shape[0] for k, v in got.items()} == {"a": 1, "bb": 2, "ccc": 3}


def test_a_broken_helper_leaves_its_types_to_the_caller() -> None:
    broken: Future[Pairs] = Future()
    assert broken.set_running_or_notify_cancel()
    broken.set_exception(BrokenProcessPool("a child died"))
    got = Pending([("post", broken)]).collect(lambda name: pairs(4))
    assert got["post"].shape == (4, 2)
