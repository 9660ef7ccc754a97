"""Small SQL helpers that differ by dialect."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Column, ColumnElement, Connection, Float, Integer, String, Table, any_, bindparam, cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
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


def dialect_insert(conn: Connection) -> Any:
    """The dialect's own ``insert`` (with ``on_conflict_do_update``): SQLite's or PostgreSQL's."""
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """A plain ``executemany`` INSERT of many rows, skipping SQLAlchemy's per-row parameter work.

    Values go through each column's own bind processor (UTC datetimes, JSON...), so what is stored
    is exactly what an ORM insert would store; column defaults are not applied, give every value.
    """
    if not rows:
        return
    names = list(rows[0])
    columns = [table.c[name] for name in names]
    processors = [column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect) for column in columns]
    mark = "%s" if conn.dialect.paramstyle in ("format", "pyformat") else "?"
    marks = ", ".join(f"{mark}::jsonb" if _is_jsonb(conn, c) else mark for c in columns)
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})"  # noqa: S608 (model names)
    prepared = list(zip(*(_processed(process, [row[name] for row in rows]) for process, name in
                          zip(processors, names, strict=True)), strict=True))  # fmt: skip
    conn.exec_driver_sql(sql, prepared)


def insert_columns(
    conn: Connection,
    table: Table,
    columns: Mapping[str, Sequence[Any]],
    *,
    upsert_on: Sequence[str] = (),
) -> None:
    """:func:`insert_rows` for data already held column by column (no dict per row): each value
    list goes through its column's bind processor once, then one ``executemany``. With
    ``upsert_on`` (the primary key's columns) a row that exists is updated in place instead:
    ``ON CONFLICT ... DO UPDATE``, on SQLite and PostgreSQL alike."""
    names = list(columns)
    if not names or not len(columns[names[0]]):
        return
    cols = [table.c[name] for name in names]
    mark = "%s" if conn.dialect.paramstyle in ("format", "pyformat") else "?"
    marks = ", ".join(f"{mark}::jsonb" if _is_jsonb(conn, c) else mark for c in cols)
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})"  # noqa: S608 (model names)
    if upsert_on:
        updates = ", ".join(f"{n} = excluded.{n}" for n in names if n not in upsert_on)
        sql += f" ON CONFLICT ({', '.join(upsert_on)}) DO UPDATE SET {updates}"
    processed = [_column_values(conn, c, list(columns[c.name])) for c in cols]
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:  # rows made one at a time as the driver takes them: no list of a million tuples
        cursor.executemany(sql, zip(*processed, strict=True))  # type: ignore[arg-type]
    finally:
        cursor.close()


_FLOATS = {float, type(None)}


def _column_values(conn: Connection, column: Column[Any], values: list[Any]) -> list[Any]:
    """A column's values as the driver takes them. Floats (and NULLs) for a plain float column go
    as they are: its bind processor would only make floats of them, one call per value."""
    kind = column.type
    if isinstance(kind, Float) and not kind.asdecimal and set(map(type, values)) <= _FLOATS:
        return values
    return _processed(kind.dialect_impl(conn.dialect).bind_processor(conn.dialect), values)


def _processed(process: Any, values: list[Any]) -> list[Any]:
    """A column's values through its bind processor; a value repeated row after row (the batch's
    timestamp) is processed once."""
    if process is None:
        return values
    out: list[Any] = []
    last: Any = object()
    done: Any = None
    for value in values:
        if value is not last:
            last, done = value, (None if value is None else process(value))
        out.append(done)
    return out


def _is_jsonb(conn: Connection, column: Column[Any]) -> bool:
    return conn.dialect.name == "postgresql" and isinstance(column.type.dialect_impl(conn.dialect), JSONB)


def id_set(conn: Connection, column: str, ids: Sequence[int], *, negate: bool = False) -> tuple[str, Any]:
    """``column IN ids`` (``NOT IN`` with ``negate``) for raw SQL with ``?`` marks, as one
    parameter however many ids there are: a JSON array read by ``json_each`` on SQLite, a typed
    array on PostgreSQL. Returns the condition and its parameter."""
    values = [int(i) for i in ids]
    if conn.dialect.name == "postgresql":
        return (f"{column} <> ALL(?::bigint[])" if negate else f"{column} = ANY(?::bigint[])"), values
    sql = f"{column} {'NOT IN' if negate else 'IN'} (SELECT value FROM json_each(?))"  # noqa: S608 (a column name)
    return sql, "[" + ",".join(map(str, values)) + "]"


IN_CHUNK = 5_000  # values per IN list: SQLite caps the parameters of one statement


def in_chunks(values: Sequence[Any], size: int = IN_CHUNK) -> Iterator[tuple[list[Any], str]]:
    """``values`` in slices an IN list can hold, each with its ``?, ?, ...`` marks."""
    for start in range(0, len(values), size):
        part = list(values[start : start + size])
        yield part, ", ".join("?" * len(part))


def execute_raw(conn: Connection, sql: str, params: Sequence[Any]) -> None:
    """One statement with ``?`` parameters on the driver's own cursor (``%s`` for PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        sql = sql.replace("?", "%s")
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, tuple(params))
    finally:
        cursor.close()


def execute_many(conn: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """One statement with ``?`` parameters for each of ``rows``, on the driver's own cursor."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        sql = sql.replace("?", "%s")
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, [tuple(r) for r in rows])
    finally:
        cursor.close()


def upsert_rows(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    update: Sequence[str] | None = None,
) -> None:
    """Insert ``rows`` (dicts with the same keys), or update those whose ``keys`` exist: every
    other column given, or only ``update``. Through SQLAlchemy, so JSON and times are converted."""
    if not rows:
        return
    stmt = dialect_insert(conn)(table)
    changed = update if update is not None else [c for c in rows[0] if c not in keys]
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=list(keys), set_={c: getattr(stmt.excluded, c) for c in changed}
        ),
        list(rows),
    )


RAW_CHUNK = 200_000  # rows fetched at a time by raw_rows


def raw_rows(conn: Connection, sql: str, params: Sequence[Any]) -> Iterator[list[tuple[Any, ...]]]:
    """Chunks of plain tuples from the driver's own cursor: no per-row SQLAlchemy work. ``sql`` uses
    ``?`` for parameters; PostgreSQL's driver gets ``%s``."""
    if conn.dialect.name == "postgresql":
        sql = sql.replace("?", "%s")
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, tuple(params))
        while part := cursor.fetchmany(RAW_CHUNK):
            yield list(part)
    finally:
        cursor.close()


def number_rows(
    conn: Connection, columns: Sequence[str], rest: str, params: Sequence[Any], dtype: type = np.int64
) -> NDArray[Any]:
    """``SELECT columns rest`` (numeric expressions; ``rest`` from FROM on, ``?`` parameters) as an
    (n, len(columns)) array. With an integer ``dtype`` a row holding a NULL is left out; with a float
    one NULL reads as NaN (exact for integers up to 2**53).

    On SQLite the database itself writes the rows as one comma-separated text, which numpy parses
    in C: no Python object per value, about twice as fast as fetching tuples at a million rows. A
    result longer than SQLite's string limit is fetched as tuples instead."""
    width = len(columns)
    floats = np.issubdtype(dtype, np.floating)
    if conn.dialect.name == "sqlite":
        parts = [f"coalesce({c}, 'nan')" if floats else f"CAST(({c}) AS INTEGER)" for c in columns]
        row = " || ',' || ".join(parts)
        sql = f"SELECT group_concat({row}, ',') {rest}"
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            text = cursor.execute(sql, tuple(params)).fetchone()[0]
        except sqlite3.DataError:  # "string or blob too big": fall back to tuples below
            text = None
        else:
            if not text:
                return np.zeros((0, width), dtype)
            return np.fromstring(text, dtype=dtype, sep=",").reshape(-1, width)
        finally:
            cursor.close()
    rows = raw_rows(conn, f"SELECT {', '.join(columns)} {rest}", params)
    if floats:
        chunks = [np.array(p, dtype=np.float64).reshape(-1, width) for p in rows]
    else:
        chunks = [np.array([r for r in p if None not in r], dtype=dtype).reshape(-1, width) for p in rows]
    return np.concatenate(chunks).astype(dtype) if chunks else np.zeros((0, width), dtype)
