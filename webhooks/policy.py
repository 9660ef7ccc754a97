"""What happens after each delivery attempt, as data: the retry schedule with jitter, and the
response (or its absence) to an outcome.

The default schedule is the Standard Webhooks example: immediately, then 5 s, 5 min, 30 min, 2 h,
5 h, 10 h and 10 h. 2xx delivers; a redirect is a failure (it is not followed: it could lead
anywhere); 410 Gone disables the endpoint; 429 and 503 wait their ``Retry-After`` when it asks for
longer than the schedule; anything else, a timeout included, waits the schedule's next step.
After the last attempt the message is failed: it stays visible and can be replayed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

SCHEDULE_S = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
TIMEOUT_S = 15.0
DISABLE_AFTER_S = 5 * 86_400.0  # an endpoint failing for five days running is disabled
MAX_RETRY_AFTER_S = 86_400.0  # a Retry-After is honoured up to a day

# "held": nothing was sent (e.g. the secret cannot be read); the attempt does not count.
Kind = Literal["delivered", "retry", "failed", "endpoint_gone", "held"]


@dataclass(frozen=True)
class Decision:
    kind: Kind
    delay_s: float = 0.0  # for "retry": wait this long before the next attempt
    reason: str = ""


@dataclass(frozen=True)
class RetryPolicy:
    schedule_s: tuple[float, ...] = SCHEDULE_S
    jitter: float = 0.1  # each wait varies by up to this share, so retries do not arrive in waves
    timeout_s: float = TIMEOUT_S

    @property
    def attempts(self) -> int:
        return len(self.schedule_s)

    def first_delay(self) -> float:
        return self.schedule_s[0]

    def decide(
        self,
        attempt: int,
        status: int | None,
        *,
        retry_after: str | None = None,
        error: str | None = None,
        rng: random.Random | None = None,
    ) -> Decision:
        """After attempt number ``attempt`` (1 for the first) answered ``status`` (None: no answer,
        ``error`` says why)."""
        if status is not None and 200 <= status < 300:
            return Decision("delivered")
        if status == 410:
            return Decision("endpoint_gone", reason="410 Gone: the endpoint is disabled")
        reason = error or (
            f"{status} (redirects are not followed)" if status and 300 <= status < 400 else str(status)
        )
        if attempt >= self.attempts:
            return Decision("failed", reason=f"{reason}; no attempts left")
        step = self.schedule_s[attempt]
        wait = step * (1 + (rng or random.Random()).uniform(-self.jitter, self.jitter))  # noqa: S311
        asked = parse_retry_after(retry_after) if status in (429, 503) else None
        if asked is not None:
            wait = max(wait, min(asked, MAX_RETRY_AFTER_S))
        return Decision("retry", delay_s=max(wait, 0.0), reason=reason)


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds, or an HTTP date (from now, at least 0)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" in an HTTP date means UTC with no zone given
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)
