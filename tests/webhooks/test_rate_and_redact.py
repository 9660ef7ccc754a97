"""The rate limiter's arithmetic and the redaction of receivers' answers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from webhooks.rate import grant
from webhooks.redact import excerpt, redact


def test_a_quiet_endpoint_gets_a_burst_then_the_steady_rate() -> None:
    first = grant(10, 0.0, 100.0, 50)
    assert first.allowed == 10 and first.next_free > 100.0
    same_moment = grant(10, first.tat, 100.0, 40)
    assert same_moment.allowed == 0
    assert abs(same_moment.next_free - 100.1) < 1e-6
    later = grant(10, first.tat, 100.5, 40)
    assert later.allowed == 5


@given(
    rate=st.floats(0.5, 500),
    calls=st.lists(st.tuples(st.floats(0, 0.5), st.integers(0, 200)), min_size=1, max_size=40),
)
def test_no_window_ever_lets_through_more_than_rate_times_time_plus_the_burst(
    rate: float, calls: list[tuple[float, int]]
) -> None:
    tat, now, sent = 0.0, 1000.0, 0
    for step, wanted in calls:
        now += step
        g = grant(rate, tat, now, wanted)
        assert 0 <= g.allowed <= wanted
        tat, sent = g.tat, sent + g.allowed
    assert sent <= rate * (now - 1000.0) + rate * 1.0 + 1


def test_secrets_in_answers_are_masked_and_the_rest_is_kept() -> None:
    text = (
        'error: invalid payload; {"token": "abc123", "password":"hunter2"} '
        "Authorization: Bearer eyJhbGciOi.eyJzdWIiOiIx.c2lnbmF0dXJl api_key=sk_live_51Habcdefghijkl "
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    )
    out = redact(text)
    for secret in ("abc123", "hunter2", "eyJzdWIiOiIx", "sk_live_51Habcdefghijkl", "whsec_MfKQ9r8"):
        assert secret not in out
    assert "invalid payload" in out and out.count("[redacted]") >= 5


def test_an_excerpt_is_short_and_survives_bad_bytes() -> None:
    assert excerpt(b"") is None
    long = excerpt(b"x " * 2000)
    assert long is not None and len(long) <= 500 and long.endswith("…")
    assert excerpt(b"\xff\xfeok") == "\ufffd\ufffdok"


def test_a_rate_below_one_a_second_still_sends() -> None:
    first = grant(0.5, 0.0, 1000.0, 3)
    assert first.allowed == 1
    assert grant(0.5, first.tat, 1001.0, 3).allowed == 0
    assert grant(0.5, first.tat, 1002.0, 3).allowed == 1


def test_a_short_bearer_or_basic_credential_is_masked() -> None:
    for header in ("Authorization: Bearer abc123def", "authorization=Basic dXNlcjpwYXNz"):
        out = redact(header)
        assert "abc123def" not in out and "dXNlcjpwYXNz" not in out and "[redacted]" in out
