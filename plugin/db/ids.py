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
