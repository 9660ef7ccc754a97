"""Small SQL helpers that differ by dialect."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Integer, String, any_, bindparam, cast
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute


def in_values(
    conn: Connection, column: InstrumentedAttribute[Any], values: Sequence[Any]
) -> ColumnElement[bool]:
    """``column IN values``; on PostgreSQL ``column = ANY(:array)`` with one typed array parameter.

    One array keeps the statement text constant (psycopg prepares it once) and lets PostgreSQL use
    every column of a composite index, where a long literal IN list is re-parsed on each call.
    """
    if conn.dialect.name == "postgresql":
        element = Integer() if values and isinstance(values[0], int) else String()
        param = bindparam(None, list(values), type_=ARRAY(element))
        return column == any_(cast(param, ARRAY(element)))
    return column.in_(values)
