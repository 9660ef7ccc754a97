"""Reading fields out of platform payloads: each miss becomes an InvalidRecord naming its path."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from connectors.errors import InvalidRecord
from connectors.records import MAX_NAME, parse_time


def obj(parent: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    """A required nested object."""
    value = parent.get(key)
    if not isinstance(value, Mapping):
        raise InvalidRecord(f"{path}.{key}", "is required" if value is None else "must be an object")
    return value


def text(parent: Any, key: str, limit: int = MAX_NAME) -> str | None:
    """An optional string, cut to ``limit``; anything else is None."""
    value = parent.get(key) if isinstance(parent, Mapping) else None
    return value[:limit] if isinstance(value, str) and value else None


def time(parent: Mapping[str, Any], key: str, path: str) -> datetime:
    """A required ISO 8601 time with a zone, as an aware UTC datetime."""
    try:
        return parse_time(parent.get(key), f"{path}.{key}")
    except (OverflowError, ValueError):
        raise InvalidRecord(f"{path}.{key}", "time out of range") from None


def delivery(event: object, payload: object, header: str) -> tuple[str, Mapping[str, Any]]:
    """A delivery's event name (from ``header``) and JSON body, checked before any mapping."""
    if not isinstance(event, str) or not event.strip():
        raise InvalidRecord("event", f"is required (the {header} header)")
    if not isinstance(payload, Mapping):
        raise InvalidRecord("payload", "must be a JSON object")
    return event.strip(), payload
