"""A HubSpot fake for tests: the product's sandbox, plus faults on a schedule and expectations.

The sandbox already answers like HubSpot (state, auth, rate limits); the fake adds the failures a
test cannot provoke on demand: for the Nth matching call, or the next K, a 429 with the rate-limit
headers and ``Retry-After``, a 5xx with HubSpot's error body, or a slow answer that outlasts the
client's timeout. ``expect(...)`` names calls that must come; the ``hubspot_fake`` fixture fails
the test at teardown when one never did. tests/conftest.py registers it as a plugin for every test.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import pytest

from plugin.sandbox.hubspot import Call, HubSpotSandbox, Reply

FAKE_TOKEN = "test-token"
# Categories and wording for injected server errors are the fake's own: HubSpot's docs describe
# 5xx answers as transient (pause, then retry) but give no body for them.
_SERVER_ERRORS = {
    500: ("INTERNAL_ERROR", "internal error"),
    502: ("BAD_GATEWAY", "Bad Gateway"),
    503: ("SERVICE_UNAVAILABLE", "Service Unavailable"),
    504: ("GATEWAY_TIMEOUT", "Gateway Timeout"),
}


@dataclass(frozen=True)
class Fault:
    """What an affected call gets. ``status``: that status with HubSpot's error body.
    ``rate_limit``: a 429 as HubSpot sends it, with ``Retry-After``. ``slow``: the handler waits
    ``seconds`` and then answers normally (so the write still lands, as it can on a real timeout)."""

    kind: Literal["status", "rate_limit", "slow"]
    status: int = 503
    seconds: float = 0.0
    retry_after_s: int = 1
    policy: str = "TEN_SECONDLY_ROLLING"


@dataclass
class _Rule:
    method: str
    route: str
    fault: Fault
    first: int  # the first matching call affected, counted from 1 when the rule was added
    times: int  # how many matching calls in a row are affected
    seen: int = 0

    def hit(self, call: Call) -> bool:
        if self.method not in ("*", call.method) or self.route not in ("*", call.route):
            return False
        self.seen += 1
        return self.first <= self.seen < self.first + self.times


@dataclass(frozen=True)
class _Expectation:
    method: str
    route: str
    at_least: int


class HubSpotFake(HubSpotSandbox):
    """:class:`HubSpotSandbox` (same constructor, ``tokens`` defaulting to :data:`FAKE_TOKEN`)
    with faults and expectations. Routes are the sandbox's, e.g.
    ``("POST", "/crm/v3/objects/contacts/batch/upsert")``; ``"*"`` matches any method or route."""

    def __init__(self, tokens: Iterable[str] = (FAKE_TOKEN,), **options: Any) -> None:
        super().__init__(tokens, **options)
        self._rules: list[_Rule] = []
        self._expected: list[_Expectation] = []
        self._fake_lock = threading.Lock()

    @property
    def token(self) -> str:
        """A token the fake accepts."""
        return sorted(self.tokens)[0]

    # -- faults --------------------------------------------------------------------------------

    def inject(self, method: str, route: str, fault: Fault, *, nth: int = 1, times: int = 1) -> None:
        """Give ``fault`` to matching calls number ``nth`` .. ``nth + times - 1`` from now on."""
        with self._fake_lock:
            self._rules.append(_Rule(method.upper() if method != "*" else "*", route, fault, nth, times))

    def fail(self, method: str, route: str, status: int = 503, *, nth: int = 1, times: int = 1) -> None:
        """A 5xx (or any status) with HubSpot's error body."""
        self.inject(method, route, Fault("status", status=status), nth=nth, times=times)

    def rate_limit(
        self,
        method: str,
        route: str,
        *,
        nth: int = 1,
        times: int = 1,
        retry_after_s: int = 1,
        policy: str = "TEN_SECONDLY_ROLLING",
    ) -> None:
        """A 429 with the rate-limit headers (``Remaining: 0``) and ``Retry-After``."""
        fault = Fault("rate_limit", status=429, retry_after_s=retry_after_s, policy=policy)
        self.inject(method, route, fault, nth=nth, times=times)

    def slow(self, method: str, route: str, seconds: float, *, nth: int = 1, times: int = 1) -> None:
        """The handler waits ``seconds`` before answering: longer than the client's timeout, and
        the client sees a read timeout while the call still takes effect."""
        self.inject(method, route, Fault("slow", seconds=seconds), nth=nth, times=times)

    def before_dispatch(self, call: Call) -> Reply | None:
        with self._fake_lock:
            fault = next((rule.fault for rule in self._rules if rule.hit(call)), None)
        if fault is None:
            return None
        if fault.kind == "slow":
            self.pause(fault.seconds)
            return None
        if fault.kind == "rate_limit":
            return self.rate_limited(call.token, fault.policy, fault.retry_after_s, retry_after=True)
        category, message = _SERVER_ERRORS.get(fault.status, ("ERROR", f"error {fault.status}"))
        return self.error_reply(fault.status, category, message)

    # -- expectations --------------------------------------------------------------------------

    def expect(self, method: str, route: str, at_least: int = 1) -> None:
        """This call must come at least ``at_least`` times before the test ends."""
        with self._fake_lock:
            self._expected.append(_Expectation(method.upper(), route, at_least))

    def unmet(self) -> list[str]:
        """One line per expectation not met so far."""
        with self._fake_lock:
            expected = list(self._expected)
        out = []
        for e in expected:
            got = self.call_count(e.method, e.route)
            if got < e.at_least:
                out.append(f"expected {e.method} {e.route} at least {e.at_least} time(s), got {got}")
        return out

    def verify(self) -> None:
        """Raise AssertionError naming every unmet expectation (and the calls that did come)."""
        missing = self.unmet()
        if missing:
            seen = ", ".join(f"{m} {r} x{n}" for (m, r), n in sorted(self.calls.items())) or "none"
            raise AssertionError("HubSpot fake: " + "; ".join(missing) + f" (calls received: {seen})")

    # -- reading what happened -----------------------------------------------------------------

    def count(self, method: str, route: str) -> int:
        return self.call_count(method, route)

    def contacts_by_email(self) -> dict[str, dict[str, Any]]:
        """Stored contacts keyed by lower-cased email, with every stored property."""
        out = {}
        for contact in self.store.all("contacts"):
            email = contact["properties"].get("email")
            if email:
                out[str(email).lower()] = contact
        return out

    def contact(self, email: str) -> dict[str, Any] | None:
        return self.store.find("contacts", "email", email)


@pytest.fixture
def hubspot_fake() -> Iterator[HubSpotFake]:
    """A running fake accepting :data:`FAKE_TOKEN`; at teardown, unmet expectations fail the test."""
    with HubSpotFake() as fake:
        yield fake
        fake.verify()
