"""The retry and pacing rules every CRM adapter shares: waits come from the CRM's own numbers."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from connectors.crm.retry import Failure, Retrier, Window
from connectors.errors import CrmAuthError, CrmRateLimited, CrmRejected, CrmUnavailable


class Boom(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def retrier(clock: Clock, window: Window | None = None, **kw: int) -> Retrier:
    return Retrier(
        window or Window(clock=clock),
        lambda exc: exc.failure if isinstance(exc, Boom) else None,
        (Boom,),
        sleep=clock.sleep,
        rng=random.Random(1),
        **kw,
    )


def script(*steps: Failure | str) -> Callable[[], str]:
    """A call that fails with each Failure in turn, then returns the string."""
    left = list(steps)

    def call() -> str:
        step = left.pop(0)
        if isinstance(step, Failure):
            raise Boom(step)
        return step

    return call


def test_a_429_waits_retry_after_then_succeeds() -> None:
    clock = Clock()
    r = retrier(clock)
    assert r.run(script(Failure("rate", "429", 7.0), "ok")) == "ok"
    assert clock.slept == [7.0] and r.rate_waits == 1


def test_transient_failures_back_off_with_jitter_and_give_up_after_the_last_attempt() -> None:
    clock = Clock()
    r = retrier(clock, max_attempts=3)
    assert r.run(script(Failure("transient", "503"), Failure("transient", "503"), "ok")) == "ok"
    assert len(clock.slept) == 2 and all(0 <= s <= 30 for s in clock.slept)
    with pytest.raises(CrmUnavailable, match="after 3 attempts"):
        r.run(script(*[Failure("transient", "timeout")] * 3))


@pytest.mark.parametrize(
    ("kind", "error"), [("auth", CrmAuthError), ("rejected", CrmRejected), ("daily", CrmRateLimited)]
)
def test_failures_retrying_cannot_fix_are_raised_at_once(kind: str, error: type[Exception]) -> None:
    clock = Clock()
    with pytest.raises(error):
        retrier(clock).run(script(Failure(kind, "no"), "never"))
    assert clock.slept == []


def test_the_window_learned_from_headers_spaces_calls_before_a_429_comes() -> None:
    clock = Clock()
    window = Window(margin=0, clock=clock)
    window.learn(limit=3, seconds=10.0, remaining=3, daily=1000)
    waits = []
    for _ in range(7):
        wait = window.wait_needed()
        waits.append(wait)
        clock.now += wait
    # Three calls go at once, the fourth waits for the first to leave the 10 s window, and so on:
    # never more than 3 in any 10 s, and no longer waits than that needs.
    assert waits[:3] == [0, 0, 0] and waits[3] == pytest.approx(10.0) and waits[4:6] == [0, 0]
    assert waits[6] == pytest.approx(10.0)
