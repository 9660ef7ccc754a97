"""Apply and inspect Alembic migrations using the packaged scripts and the configured engine."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    # A plain connection: env.py's begin_transaction() owns the transaction, so a migration can
    # step out of it (autocommit_block) to build an index CONCURRENTLY on PostgreSQL.
    cfg = alembic_config(engine)
    with engine.connect() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
        connection.commit()


def downgrade(engine: Engine, revision: str) -> None:
    cfg = alembic_config(engine)
    with engine.connect() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)
        connection.commit()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def is_current(engine: Engine) -> bool:
    return current_revision(engine) == head_revision(engine)


def downgrade_plan(engine: Engine, target: str) -> tuple[str | None, list[tuple[str, str]]]:
    """What ``downgrade(engine, target)`` would do: the revision it ends at (None: an empty schema)
    and the ``(revision, description)`` of every migration it reverts, newest first.

    ``target`` is a revision id (or an unambiguous prefix of one), ``base``, or ``-N`` (N steps
    down). Raises ValueError when it names no revision or one that is not below the database's."""
    script = ScriptDirectory.from_config(alembic_config(engine))
    current = current_revision(engine)
    chain: list[tuple[str, str]] = []  # the database's revision and its ancestors, newest first
    rev = script.get_revision(current) if current else None
    while rev is not None:
        chain.append((rev.revision, rev.doc))
        down = rev.down_revision
        if not (down is None or isinstance(down, str)):
            raise ValueError("the migration history branches; downgrade with alembic directly")
        rev = script.get_revision(down) if down else None
    if target == "base":
        return None, chain
    if target.startswith("-") and target[1:].isdigit():
        steps = int(target[1:])
        if steps == 0 or steps > len(chain):
            raise ValueError(f"cannot go {steps} step(s) down from {current or 'an empty schema'}")
        return (chain[steps][0] if steps < len(chain) else None), chain[:steps]
    try:
        resolved = script.get_revision(target)
    except Exception as exc:  # alembic's CommandError / RevisionError: unknown or ambiguous id
        raise ValueError(f"no migration named {target!r}") from exc
    if resolved is None:
        raise ValueError(f"no migration named {target!r}")
    ids = [revision for revision, _ in chain]
    if resolved.revision not in ids:
        raise ValueError(f"{resolved.revision} is not below the database's revision {current or 'empty'}")
    return resolved.revision, chain[: ids.index(resolved.revision)]
