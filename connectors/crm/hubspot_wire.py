"""The wire between Flywheel and HubSpot: calls paced under the rate window HubSpot's headers
announce and retried per status (as a table), and batch results matched back to their inputs."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import urllib3
from hubspot import HubSpot
from hubspot.crm.associations.v4.exceptions import ApiException as AssociationsApiException
from hubspot.crm.companies.exceptions import ApiException as CompaniesApiException
from hubspot.crm.contacts.exceptions import ApiException as ContactsApiException
from hubspot.crm.deals.exceptions import ApiException as DealsApiException
from hubspot.crm.lists.exceptions import ApiException as ListsApiException
from hubspot.crm.objects.notes.exceptions import ApiException as NotesApiException
from hubspot.crm.properties.exceptions import ApiException as PropertiesApiException

from connectors.crm.retry import Failure, Retrier, Window

HUBSPOT_BATCH = 100  # inputs per batch call: HubSpot's cap
PAGE = 100  # records per page of a list read (HubSpot's maximum)
GROUP = "flywheel"
NOTE_TO_CONTACT = 202  # HubSpot-defined association type: note to contact (notes guide)
TIMEOUT_S = 15.0
API_ERRORS = (
    ContactsApiException,
    PropertiesApiException,
    DealsApiException,
    NotesApiException,
    CompaniesApiException,
    AssociationsApiException,
    ListsApiException,
)
NETWORK_ERRORS = (urllib3.exceptions.HTTPError, OSError)


def header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    items = headers.items() if hasattr(headers, "items") else headers
    for key, value in items:
        if str(key).lower() == name.lower():
            return str(value)
    return None


def as_int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _error_text(body: Any) -> tuple[str, str]:
    """(category, message) of HubSpot's error JSON, or empty strings when it is not JSON."""
    try:
        data = json.loads(body) if isinstance(body, str | bytes) else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return "", ""
    return str(data.get("category") or data.get("errorType") or ""), str(data.get("message") or "")


def classify(exc: BaseException) -> Failure | None:
    """HTTP status to action, as a table (the Airbyte way)."""
    if isinstance(exc, NETWORK_ERRORS):
        return Failure("transient", f"network: {type(exc).__name__}")
    status = getattr(exc, "status", None)
    if status is None:
        return None
    category, message = _error_text(getattr(exc, "body", None))
    text = f"HubSpot {status} {category}: {message}".strip().rstrip(":")
    if status == 429:
        policy = _error_policy(getattr(exc, "body", None))
        retry_after = as_int(header(getattr(exc, "headers", None), "Retry-After"))
        if policy == "DAILY":
            return Failure("daily", text, float(retry_after or 0))
        interval = as_int(header(getattr(exc, "headers", None), "X-HubSpot-RateLimit-Interval-Milliseconds"))
        wait = retry_after if retry_after is not None else (interval or 1000) / 1000
        return Failure("rate", text, float(wait))
    if status in (401, 403):
        return Failure("auth", text)
    if status >= 500 or status == 408:
        return Failure("transient", text)
    return Failure("rejected", text)


def _error_policy(body: Any) -> str:
    try:
        data = json.loads(body) if isinstance(body, str | bytes) else None
    except ValueError:
        return ""
    return str(data.get("policyName") or "") if isinstance(data, dict) else ""


class HubSpotCore:
    """One HubSpot account (a private-app or OAuth token) and its paced, retried calls. ``host``
    points it elsewhere (the sandbox, a proxy); ``sleep`` and ``clock`` are injectable so tests
    need not wait."""

    def __init__(
        self,
        token: str,
        *,
        host: str | None = None,
        timeout: float = TIMEOUT_S,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_attempts: int = 6,
    ) -> None:
        config: dict[str, Any] = {"access_token": token}
        if host:
            config["host"] = host.rstrip("/")
        self._client = HubSpot(**config)
        self._timeout = timeout
        self.window = Window(clock=clock)
        self.retrier = Retrier(
            self.window, classify, API_ERRORS + NETWORK_ERRORS, sleep=sleep, max_attempts=max_attempts
        )
        self.calls: Counter[str] = Counter()  # API calls made, by operation (retries included)

    def _call(self, name: str, call: Callable[[], tuple[Any, int, Any]]) -> tuple[Any, int]:
        def once() -> tuple[Any, int, Any]:
            self.calls[name] += 1
            try:
                got = call()
            except API_ERRORS as exc:
                self._learn(getattr(exc, "headers", None))
                raise
            self._learn(got[2])
            return got

        data, status, _ = self.retrier.run(once)
        return data, status

    def _learn(self, headers: Any) -> None:
        self.window.learn(
            as_int(header(headers, "X-HubSpot-RateLimit-Max")),
            (as_int(header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")) or 0) / 1000 or None,
            as_int(header(headers, "X-HubSpot-RateLimit-Remaining")),
            as_int(header(headers, "X-HubSpot-RateLimit-Daily-Remaining")),
        )


def reasons_by_trace(errors: Sequence[Any]) -> Mapping[str, str]:
    """The 207 errors by the ``objectWriteTraceId`` their context names; "" for errors naming none."""
    out: dict[str, str] = {}
    for err in errors:
        text = f"{err.category or 'ERROR'}: {err.message or ''}".strip()
        context = err.context or {}
        traces = [str(v) for v in (context.get("objectWriteTraceId") or [])]
        for key in traces or [""]:
            out.setdefault(key, text)
    return out
