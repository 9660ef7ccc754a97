"""Alembic environment: the engine comes from the caller (``plugin.db.migrate``), not from an ini."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

import plugin.db.models  # noqa: F401  (registers every table on Base.metadata)
from plugin.db.base import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection: Connection | None = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through `flywheel db upgrade`, which supplies the connection")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs table copies to ALTER
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
