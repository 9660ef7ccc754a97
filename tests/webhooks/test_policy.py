"""The retry policy: the specification's schedule, what each answer means, Retry-After honoured."""

from __future__ import annotations

import random

import pytest

from webhooks.policy import SCHEDULE_S, RetryPolicy

POLICY = RetryPolicy(jitter=0.0)


def test_the_default_schedule_is_the_specifications_example() -> None:
    assert SCHEDULE_S == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    assert POLICY.attempts == 8 and POLICY.first_delay() == 0 and POLICY.timeout_s == 15


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_2xx_delivers(status: int) -> None:
    assert POLICY.decide(1, status).kind == "delivered"


def test_a_redirect_a_5xx_and_a_timeout_wait_the_next_step() -> None:
    for status, error in ((301, None), (500, None), (None, "timed out after 15 s")):
        decision = POLICY.decide(2, status, error=error)
        assert (decision.kind, decision.delay_s) == ("retry", 300)
    assert "not followed" in POLICY.decide(1, 302).reason


def test_410_disables_the_endpoint_and_the_last_attempt_fails_the_message() -> None:
    assert POLICY.decide(1, 410).kind == "endpoint_gone"
    last = POLICY.decide(8, 500)
    assert last.kind == "failed" and "no attempts left" in last.reason


def test_429_and_503_wait_retry_after_when_it_asks_for_longer() -> None:
    assert POLICY.decide(1, 429, retry_after="120").delay_s == 120  # schedule says 5 s
    assert POLICY.decide(3, 503, retry_after="10").delay_s == 1800  # schedule says longer
    assert POLICY.decide(1, 500, retry_after="120").delay_s == 5  # only 429 and 503 ask
    assert POLICY.decide(1, 429, retry_after="Wed, 21 Oct 2015 07:28:00 GMT").delay_s == 5  # a past date
    assert POLICY.decide(1, 429, retry_after="Wed, 21 Oct 2015 07:28:00 -0000").delay_s == 5  # no zone


def test_jitter_spreads_waits_within_its_share() -> None:
    policy, rng = RetryPolicy(jitter=0.1), random.Random(3)
    waits = {policy.decide(3, 500, rng=rng).delay_s for _ in range(50)}
    assert len(waits) > 10 and all(1620 <= w <= 1980 for w in waits)
