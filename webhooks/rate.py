"""An endpoint's rate limit as a generic cell rate algorithm (GCRA): the whole state is one number,
the theoretical arrival time ``tat``, so it lives in the endpoint's row and every worker that
claims messages for the endpoint shares it under the row's lock."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Grant:
    allowed: int  # how many of the wanted messages may go now
    tat: float  # the state to store
    next_free: float  # when the first message held back may go (Unix seconds)


def grant(rate: float, tat: float, now: float, wanted: int, *, burst_s: float = 1.0) -> Grant:
    """Let through at most ``rate`` messages a second, with bursts of up to ``burst_s`` seconds'
    worth after a quiet spell."""
    if rate <= 0:
        raise ValueError("a rate limit must be above zero")
    interval = 1.0 / rate
    burst_s = max(burst_s, interval)  # below one a second, the burst is one message
    start = max(tat, now)
    room = max(0, int((now + burst_s - start) / interval + 1e-9))
    allowed = min(wanted, room)
    new_tat = start + allowed * interval
    next_free = max(new_tat - burst_s + interval, now) if allowed < wanted else now
    return Grant(allowed, new_tat, next_free)
