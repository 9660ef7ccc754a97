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
