"""The plugin's error taxonomy: every class says what the caller should do next.

The CLI maps them to exit codes, the HTTP layer to statuses. ``user_message`` is safe to show;
``detail`` may hold internal context and is never shown with secrets in it.
"""

from __future__ import annotations


class FlywheelError(Exception):
    exit_code = 1
    http_status = 500

    def __init__(self, user_message: str, *, hint: str | None = None, detail: str | None = None) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.hint = hint
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.user_message} ({self.hint})" if self.hint else self.user_message


class ConfigError(FlywheelError):
    """The user must fix a setting."""

    exit_code = 3
    http_status = 400


class AuthError(FlywheelError):
    """Credentials or signatures are missing or wrong."""

    exit_code = 3
    http_status = 401


class NotFound(FlywheelError):
    exit_code = 4
    http_status = 404


class ValidationFailed(FlywheelError):
    """Bad input; ``fields`` maps a field name to what is wrong with it."""

    exit_code = 2
    http_status = 422

    def __init__(self, user_message: str, *, fields: dict[str, str] | None = None, hint: str | None = None):
        super().__init__(user_message, hint=hint)
        self.fields = fields or {}


class TransientError(FlywheelError):
    """Retry later with backoff."""

    exit_code = 75  # EX_TEMPFAIL
    http_status = 503


class Busy(TransientError):
    """Someone else holds the thing (a CRM connection's lease): try again soon, nothing is wrong."""


class PermanentError(FlywheelError):
    """Retrying will not help."""

    exit_code = 1
    http_status = 400
