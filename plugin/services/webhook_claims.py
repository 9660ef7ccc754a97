"""Claiming due deliveries with a lease, and recording what their attempts got.

A claim counts the attempt and moves ``next_attempt_at`` to the lease's end, in one statement:
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent workers take disjoint rows; on SQLite one
``UPDATE … WHERE id IN (SELECT … LIMIT n)`` that takes the database's single write lock before it
reads. A worker that dies leaves its claims to fall due when the lease runs out; another worker
then sends them again under the same message id (at least once, never lost).

Rate-limited endpoints share a GCRA state in their row, locked in id order, so every worker's
claims together stay under the limit; what exceeds it is handed back, not counted as an attempt.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, select, text

from plugin.db.base import UTCDateTime
from plugin.db.models import WebhookEndpoint, WebhookMessage
from plugin.db.sql import in_values
from webhooks.rate import grant


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    attempt: int
    endpoint_id: int
    message_id: int


_CLAIM_PG = """
WITH due AS (
    SELECT id FROM webhook_deliveries
    WHERE status = 'pending' AND next_attempt_at <= :now
    ORDER BY next_attempt_at LIMIT :n FOR UPDATE SKIP LOCKED
)
UPDATE webhook_deliveries AS d
SET attempts = d.attempts + 1, next_attempt_at = :lease, lease_holder = :me
FROM due WHERE d.id = due.id
RETURNING d.id, d.attempts, d.endpoint_id, d.message_id
"""

_CLAIM_SQLITE = """
UPDATE webhook_deliveries
SET attempts = attempts + 1, next_attempt_at = :lease, lease_holder = :me
WHERE id IN (
    SELECT id FROM webhook_deliveries
    WHERE status = 'pending' AND next_attempt_at <= :now
    ORDER BY next_attempt_at LIMIT :n
)
RETURNING id, attempts, endpoint_id, message_id
"""

_CLAIM_ONE = """
UPDATE webhook_deliveries
SET attempts = attempts + 1, next_attempt_at = :lease, lease_holder = :me
WHERE id = :id AND status = 'pending'
RETURNING id, attempts, endpoint_id, message_id
"""

_WHEN = ("now", "lease", "at", "next")


def _timed(sql: str) -> Any:
    statement = text(sql)
    names = [n for n in _WHEN if f":{n}" in sql]
    return statement.bindparams(*(bindparam(n, type_=UTCDateTime()) for n in names))


def claim(
    conn: Connection,
    worker: str,
    limit: int,
    lease_s: float,
    now: datetime,
    *,
    delivery_id: int | None = None,
) -> list[Claimed]:
    """Take up to ``limit`` due deliveries for ``worker`` (or the one ``delivery_id``, due or
    not: a test send). The caller commits right after."""
    lease = now + timedelta(seconds=lease_s)
    if delivery_id is not None:
        rows = conn.execute(_timed(_CLAIM_ONE), {"lease": lease, "me": worker, "id": delivery_id}).all()
    else:
        sql = _CLAIM_PG if conn.dialect.name == "postgresql" else _CLAIM_SQLITE
        rows = conn.execute(_timed(sql), {"now": now, "lease": lease, "me": worker, "n": limit}).all()
    claimed = [Claimed(r[0], r[1], r[2], r[3]) for r in rows]
    if not claimed:
        return []
    return _within_rates(conn, claimed, now)


def _within_rates(conn: Connection, claimed: list[Claimed], now: datetime) -> list[Claimed]:
    endpoint_ids = sorted({c.endpoint_id for c in claimed})
    e = WebhookEndpoint
    query = (
        select(e.id, e.rate_limit, e.rate_tat)
        .where(e.rate_limit.is_not(None), in_values(conn, e.id, endpoint_ids))
        .order_by(e.id)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    rows = conn.execute(query).all()
    if not rows:
        return claimed
    by_endpoint: dict[int, list[Claimed]] = defaultdict(list)
    for c in sorted(claimed, key=lambda c: c.delivery_id):
        by_endpoint[c.endpoint_id].append(c)
    clock = now.timestamp()
    held: list[Claimed] = []
    states: list[dict[str, Any]] = []
    wake: dict[int, datetime] = {}
    for endpoint_id, rate, tat in rows:
        wanted = by_endpoint[endpoint_id]
        decided = grant(float(rate or 0.0), float(tat or 0.0), clock, len(wanted))
        states.append({"id": endpoint_id, "tat": decided.tat})
        for c in wanted[decided.allowed :]:
            held.append(c)
            wake[c.delivery_id] = datetime.fromtimestamp(decided.next_free, UTC)
    conn.execute(text("UPDATE webhook_endpoints SET rate_tat = :tat WHERE id = :id"), states)
    if held:
        conn.execute(
            _timed(
                "UPDATE webhook_deliveries SET attempts = attempts - 1, next_attempt_at = :next, "
                "lease_holder = NULL WHERE id = :id"
            ),
            [{"id": c.delivery_id, "next": wake[c.delivery_id]} for c in held],
        )
    kept = {c.delivery_id for c in held}
    return [c for c in claimed if c.delivery_id not in kept]


@dataclass(frozen=True)
class Job:
    """A claimed delivery with what sending it needs."""

    claimed: Claimed
    msg_id: str
    body: bytes
    url: str
    secrets: tuple[str, ...]


def load_jobs(conn: Connection, claimed: Sequence[Claimed], secrets_of: Any) -> list[Job]:
    """Messages and endpoints of the claimed deliveries. ``secrets_of(endpoint_row)`` gives an
    endpoint's live secrets (the worker caches their decryption)."""
    message_ids = sorted({c.message_id for c in claimed})
    endpoint_ids = sorted({c.endpoint_id for c in claimed})
    m = WebhookMessage
    messages = {
        r[0]: (r[1], bytes(r[2]))
        for r in conn.execute(select(m.id, m.msg_id, m.body).where(in_values(conn, m.id, message_ids)))
    }
    e = WebhookEndpoint
    endpoints = {
        r.id: r
        for r in conn.execute(
            select(
                e.id,
                e.workspace_id,
                e.url,
                e.enabled,
                e.secret_encrypted,
                e.previous_secret_encrypted,
                e.previous_secret_until,
            ).where(in_values(conn, e.id, endpoint_ids))
        )
    }
    jobs = [
        Job(c, *messages[c.message_id], endpoints[c.endpoint_id].url, secrets_of(endpoints[c.endpoint_id]))
        for c in claimed
    ]
    return jobs
