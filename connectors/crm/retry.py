"""Calls to a CRM with its rate limit respected before it bites, and transient failures retried.

The adapter says what a failure means (:class:`Failure`, from the HTTP status as a table); this
module decides what to do: wait ``Retry-After`` on a 429, back off with full jitter on 5xx and
timeouts, give up at once on bad credentials or a rejected request.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from connectors.errors import CrmAuthError, CrmRateLimited, CrmRejected, CrmUnavailable

T = TypeVar("T")
Kind = Literal["rate", "daily", "transient", "auth", "rejected"]


@dataclass(frozen=True)
class Failure:
    kind: Kind
    message: str  # safe to show: status, the CRM's category and message, never a token
    retry_after: float | None = None


class Window:
    """A rolling window of our own calls, sized by what the CRM's headers say (e.g. HubSpot's 190
    per 10 s): a call waits when the window is full (less ``margin``), so the 429 never comes."""

    def __init__(self, *, margin: int = 2, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit: int | None = None
        self.seconds: float | None = None
        self.remaining: int | None = None
        self.daily_remaining: int | None = None
        self.margin = margin
        self._clock = clock
        self._calls: deque[float] = deque()

    def learn(
        self, limit: int | None, seconds: float | None, remaining: int | None, daily: int | None
    ) -> None:
        self.limit = limit if limit else self.limit
        self.seconds = seconds if seconds else self.seconds
        self.remaining = remaining
        self.daily_remaining = daily

    def wait_needed(self) -> float:
        """Seconds to wait before the next call (0 when it may go now); records the call."""
        now = self._clock()
        if self.limit is None or self.seconds is None:
            self._calls.append(now)
            return 0.0
        while self._calls and self._calls[0] <= now - self.seconds:
            self._calls.popleft()
        wait = 0.0
        if len(self._calls) >= max(self.limit - self.margin, 1):
            wait = self._calls[0] + self.seconds - now
        self._calls.append(now + wait)
        return max(wait, 0.0)


@dataclass
class Retrier:
    """Runs calls with the pacing of a :class:`Window` and retries per :class:`Failure`."""

    window: Window
    classify: Callable[[BaseException], Failure | None]
    catch: tuple[type[BaseException], ...]
    sleep: Callable[[float], None] = time.sleep
    max_attempts: int = 6  # transient failures, per call
    max_rate_waits: int = 20  # 429s, per call
    base_delay: float = 0.5
    max_delay: float = 30.0
    rng: random.Random | None = None
    retries: int = 0  # counters, read by the caller's report
    rate_waits: int = 0

    def run(self, call: Callable[[], T]) -> T:
        transient = rate = 0
        rng = self.rng or random.Random()  # noqa: S311 (jitter, not secrecy)
        while True:
            wait = self.window.wait_needed()
            if wait:
                self.sleep(wait)
            try:
                return call()
            except self.catch as exc:
                failure = self.classify(exc)
                if failure is None:
                    raise
                if failure.kind == "auth":
                    raise CrmAuthError(failure.message) from exc
                if failure.kind == "rejected":
                    raise CrmRejected(failure.message) from exc
                if failure.kind == "daily":
                    raise CrmRateLimited(failure.message, failure.retry_after or 0.0, daily=True) from exc
                if failure.kind == "rate":
                    rate += 1
                    self.rate_waits += 1
                    if rate > self.max_rate_waits:
                        raise CrmRateLimited(failure.message, failure.retry_after or 1.0) from exc
                    self.sleep(failure.retry_after if failure.retry_after is not None else 1.0)
                    continue
                transient += 1
                self.retries += 1
                if transient >= self.max_attempts:
                    raise CrmUnavailable(f"{failure.message} (after {transient} attempts)") from exc
                # Full jitter: a random wait up to the exponential step, so clients spread out.
                self.sleep(rng.uniform(0, min(self.max_delay, self.base_delay * 2**transient)))
