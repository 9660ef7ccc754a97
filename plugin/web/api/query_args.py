"""Query argument helpers for the list endpoints: bounded text filters, and dates a database can
compare (NUL and cursors are checked in ``core``, for every operation)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import marshmallow as ma


def text(max_length: int, **kwargs: Any) -> ma.fields.String:
    """A non-empty string filter of at most ``max_length`` characters."""
    return ma.fields.String(validate=ma.validate.Length(1, max_length), **kwargs)


def _utc_representable(value: datetime) -> None:
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ma.ValidationError("out of range") from None


def aware_datetime(**kwargs: Any) -> ma.fields.AwareDateTime:
    """A date and time with its offset (a naive one is refused), within the years UTC can hold."""
    return ma.fields.AwareDateTime(default_timezone=None, validate=_utc_representable, **kwargs)
