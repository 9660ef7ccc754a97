"""Primary keys allocated up front, so bulk inserts need no RETURNING.

SQLAlchemy inserts ``RETURNING`` rows one statement at a time on SQLite when their order matters,
which made creating members the slowest part of a bulk import. Allocating ids first lets every
insert go out as one ``executemany``.
"""

from __future__ import annotations

from sqlalchemy import Connection, Table, func, select, text


def allocate_ids(conn: Connection, table: Table, count: int) -> list[int]:
    """``count`` fresh ids for ``table``, valid until the current transaction ends.

    PostgreSQL draws them from the column's sequence. SQLite has one writer at a time: a no-op
    UPDATE takes the write lock for this transaction, after which ``max(id)`` cannot move under us.
    """
    if count <= 0:
        return []
    if conn.dialect.name == "postgresql":
        rows = conn.execute(
            text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
            {"table": table.name, "n": count},
        )
        return sorted(row[0] for row in rows)
    conn.execute(table.update().where(table.c.id < 0).values(id=table.c.id))
    start = conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
    return list(range(start + 1, start + 1 + count))


MAX_ID = 2**31 - 1  # the largest id an INTEGER key holds on both databases
MAX_BIG_ID = 2**63 - 1  # ... and a BIGINT key (activities, deliveries, rewards, score events)


def parse_id(text: str | None) -> int | None:
    """An id typed by a person (a URL parameter, a form value, a command argument): ASCII digits
    within what an INTEGER key holds, else None (``"²".isdigit()`` is true, and a 20-digit number
    would reach the database and fail there)."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value <= MAX_ID else None
