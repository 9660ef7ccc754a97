"""Query argument helpers for the list endpoints: text filters a database can hold, dates it can
compare, and cursors whose keys fit the columns they are compared with (400, never a 500)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import marshmallow as ma

from plugin.web.api.core import decode_cursor

BIG = 2**63 - 1  # the largest id any column holds


def _no_nul(value: str) -> None:
    if "\x00" in value:  # PostgreSQL text cannot hold NUL: no row has it
        raise ma.ValidationError("must not contain NUL characters")


def text(max_length: int, **kwargs: Any) -> ma.fields.String:
    """A non-empty string filter of at most ``max_length`` characters."""
    return ma.fields.String(validate=[ma.validate.Length(1, max_length), _no_nul], **kwargs)


def _utc_representable(value: datetime) -> None:
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ma.ValidationError("out of range") from None


def aware_datetime(**kwargs: Any) -> ma.fields.AwareDateTime:
    """A date and time with its offset (a naive one is refused), within the years UTC can hold."""
    return ma.fields.AwareDateTime(default_timezone=None, validate=_utc_representable, **kwargs)


def cursor_key(cursor: str | None, types: Sequence[type], *, wide: bool = False) -> list[Any] | None:
    """:func:`decode_cursor` (which refuses ids no column holds and scores that are not numbers)."""
    return decode_cursor(cursor, types, wide=wide)
