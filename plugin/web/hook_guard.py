"""The inbound hooks' rate limit: per sending address, in this process, as a GCRA.

Hooks are the one route a platform may call a thousand times a second, so their flood guard costs
one dictionary lookup, not flask-limiter's round trips to its store (three Redis commands a request,
measured at 0.6 ms of CPU): every web process gives each address the configured budget. That is a
guard against a sender gone wild, not an account quota; the API's and sign-in's budgets stay shared
across processes (``FLYWHEEL_RATE_LIMIT_STORAGE``)."""

from __future__ import annotations

import math
import threading
import time

from limits import parse

from webhooks.rate import grant

#: Above this many remembered addresses, those whose budget is full again are forgotten.
MAX_ADDRESSES = 100_000


class HookGuard:
    def __init__(self, limit: str) -> None:
        item = parse(limit)  # flask-limiter's notation, e.g. "2000 per second"
        period = item.get_expiry()
        self.rate = item.amount / period
        self.burst_s = float(period)
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()

    def allow(self, address: str, now: float | None = None) -> float:
        """0 when the request may go on; otherwise the seconds to wait (Retry-After)."""
        at = time.monotonic() if now is None else now
        with self._lock:
            given = grant(self.rate, self._tat.get(address, 0.0), at, 1, burst_s=self.burst_s)
            self._tat[address] = given.tat
            if len(self._tat) > MAX_ADDRESSES:
                self._tat = {a: t for a, t in self._tat.items() if t > at}
        return 0.0 if given.allowed else max(1.0, math.ceil(given.next_free - at))
