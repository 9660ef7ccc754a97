"""Errors raised by connectors, named for what the caller should do with them.

The plugin translates these into exit codes and HTTP statuses; connectors never decide that.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every error a connector raises on purpose."""


class InvalidRecord(ConnectorError):
    """One record is malformed: count it, report its field and reason, go on with the others."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NoActivity(ConnectorError):
    """A well-formed payload that carries no community activity (a ping, a label change...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SignatureError(ConnectorError):
    """A request's signature is missing, malformed, stale or wrong. Never says which secret was tried."""


class CrmError(ConnectorError):
    """A CRM call failed. ``message`` is safe to show: never a token, never a record's content."""


class CrmAuthError(CrmError):
    """The CRM refused the credentials (401/403): the user must reconnect; retrying will not help."""


class CrmRateLimited(CrmError):
    """The CRM's rate limit is reached; ``retry_after`` seconds until the next call may succeed.
    ``daily`` when it is the daily quota: wait for tomorrow, not seconds."""

    def __init__(self, message: str, retry_after: float, *, daily: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.daily = daily


class CrmUnavailable(CrmError):
    """5xx, a timeout or a dropped connection, still so after the retries: try the run again later."""


class CrmRejected(CrmError):
    """The CRM refused the request as a whole (e.g. an unknown property): fix the mapping or schema."""
