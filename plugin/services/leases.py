"""Named leases in the database: one holder at a time does the named work, on any number of
processes and machines. The holder renews its lease while it works (a heartbeat thread) and checks
it inside the transaction that writes its result; a dead holder's lease runs out by itself.

``score:workspace:<id>`` keeps two scoring runs of one workspace from writing at once (a CLI
`flywheel score` beside the scheduled one): both would announce the same crossings, and a run
under other settings would keep its hand-raising matches beside the other's.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, or_, select, update
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from plugin.db.base import utcnow
from plugin.db.models import Lease
from plugin.db.sql import dialect_insert
from plugin.errors import Busy, TransientError

log = logging.getLogger(__name__)

#: How long a scoring run's lease lasts without renewal; renewed every third of it.
SCORE_LEASE_S = 120.0


def holder_name() -> str:
    """This process, uniquely: host, pid and a random tag (a pid is reused after a restart)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def score_lease_name(workspace_id: int) -> str:
    return f"score:workspace:{workspace_id}"


def acquire(
    engine: Engine, name: str, holder: str, seconds: float, doing: str, now: datetime | None = None
) -> None:
    """Take the lease, or raise :class:`Busy` saying who holds it, doing what, until when. The
    holder's write transaction locks the lease (it confirms it there): the wait for that lock is
    cut short at :data:`LOCK_WAIT_S`, and then too the answer is Busy, not a database error."""
    when = now or utcnow()
    t = Lease
    claim = dict(holder=holder, expires_at=when + timedelta(seconds=seconds), doing=doing[:120])
    try:
        with engine.begin() as conn, _short_lock_wait(conn):
            conn.execute(
                dialect_insert(conn)(Lease).values(name=name).on_conflict_do_nothing(index_elements=["name"])
            )
            free = or_(t.holder.is_(None), t.expires_at < when, t.holder == holder)
            if conn.execute(update(t).where(t.name == name, free).values(claim)).rowcount == 1:
                return
            row = conn.execute(select(t.holder, t.expires_at, t.doing).where(t.name == name)).one()
    except OperationalError as exc:
        if not _lock_timeout(exc):
            raise
        raise Busy(
            f"{doing} cannot start: another one is writing its results right now",
            hint="try again in a minute",
        ) from None
    raise Busy(
        f"{row.doing or 'another run'} is in progress ({row.holder}, lease until "
        f"{row.expires_at:%Y-%m-%d %H:%M:%S} UTC)",
        hint="wait for it to finish and try again; a stopped process's lease runs out by itself at that time",
    )


#: How long taking a lease waits for a lock held by a writing transaction before answering Busy.
LOCK_WAIT_S = 10


@contextmanager
def _short_lock_wait(conn: Connection) -> Iterator[None]:
    """Wait at most :data:`LOCK_WAIT_S` for locks in this transaction (SQLite: its busy timeout,
    put back after; PostgreSQL: ``lock_timeout`` for the transaction)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_WAIT_S}s'")
        yield
        return
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        before = cursor.execute("PRAGMA busy_timeout").fetchone()[0]
        cursor.execute(f"PRAGMA busy_timeout = {LOCK_WAIT_S * 1000}")
        try:
            yield
        finally:
            cursor.execute(f"PRAGMA busy_timeout = {int(before)}")
    finally:
        cursor.close()


def _lock_timeout(exc: OperationalError) -> bool:
    """SQLite's "database is locked" or PostgreSQL's lock_not_available (55P03)."""
    return "database is locked" in str(exc.orig) or getattr(exc.orig, "sqlstate", None) == "55P03"


def renew(conn: Connection, name: str, holder: str, seconds: float) -> bool:
    """Extend the lease if ``holder`` still has it; False if it ran out and another took it."""
    t = Lease
    done = conn.execute(
        update(t)
        .where(t.name == name, t.holder == holder)
        .values(expires_at=utcnow() + timedelta(seconds=seconds))
    )
    return done.rowcount == 1


def release(engine: Engine, name: str, holder: str) -> None:
    t = Lease
    with engine.begin() as conn:
        free = {"holder": None, "expires_at": None, "doing": None}
        conn.execute(update(t).where(t.name == name, t.holder == holder).values(free))


def heartbeat(
    engine: Engine, renew_in: Callable[[Connection], bool], every_s: float, done: threading.Event
) -> None:
    """Call ``renew_in`` in a transaction every ``every_s`` until ``done`` is set or it says the
    lease is lost. The body of a heartbeat thread."""
    while not done.wait(every_s):
        try:
            with engine.begin() as conn:
                if not renew_in(conn):
                    log.warning("lease lost; another process may do the same work")
                    return
        except SQLAlchemyError:
            log.warning("could not renew a lease (the database is busy or unreachable); retrying")


@dataclass(frozen=True)
class Held:
    name: str
    holder: str
    seconds: float

    def confirm(self, conn: Connection) -> None:
        """Renew the lease inside the transaction about to write the result, or stop here: if it
        ran out and another process took it, this one must not write beside it."""
        if not renew(conn, self.name, self.holder, self.seconds):
            raise TransientError(
                "this run lost its lease (another run took over after a long pause); nothing was written",
                hint="run it again once the other one is done",
            )


@contextmanager
def held(engine: Engine, name: str, doing: str, seconds: float, holder: str | None = None) -> Iterator[Held]:
    """Hold the lease ``name`` for the ``with`` block, renewed every third of ``seconds``."""
    lease = Held(name, holder or holder_name(), seconds)
    acquire(engine, name, lease.holder, seconds, doing)
    done = threading.Event()
    beat = threading.Thread(
        target=heartbeat,
        args=(engine, lambda conn: renew(conn, name, lease.holder, seconds), seconds / 3, done),
        daemon=True,
        name=f"lease {name}",
    )
    beat.start()
    try:
        yield lease
    finally:
        done.set()
        beat.join(timeout=seconds)
        try:
            release(engine, name, lease.holder)
        except SQLAlchemyError:  # the work's own outcome matters more; the lease runs out by itself
            log.warning("could not release the lease %s; it runs out at its expiry", name)
