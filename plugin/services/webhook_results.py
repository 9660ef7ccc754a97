"""Recording attempts: the log row, the delivery's new state and the endpoint's health, for a
batch of outcomes in one transaction.

A success always lands (even if the lease ran out and another worker has the delivery again: the
receiver dedupes on the message id). A failure only lands while the lease is still this worker's,
so a slow worker cannot push back a delivery someone else has since taken. An endpoint that
answers 410 Gone, or has failed without a single success for five days, is disabled with a notice
and its pending deliveries wait, paused, until someone enables it again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, select, update

from plugin.db.base import table_of
from plugin.db.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookNotice
from plugin.db.sql import in_values, insert_rows
from plugin.services.webhook_claims import Job
from webhooks.policy import DISABLE_AFTER_S, Decision
from webhooks.transport import Answer


@dataclass(frozen=True)
class Outcome:
    job: Job
    answer: Answer
    decision: Decision
    attempted_at: datetime


def record(conn: Connection, worker: str, outcomes: Sequence[Outcome], now: datetime) -> Counter[str]:
    if not outcomes:
        return Counter()
    insert_rows(
        conn,
        table_of(WebhookAttempt),
        [
            {
                "delivery_id": o.job.claimed.delivery_id,
                "attempt": o.job.claimed.attempt,
                "attempted_at": o.attempted_at,
                "status": o.answer.status,
                "duration_ms": o.answer.duration_ms,
                "error": (o.answer.error or "")[:300] or None,
                "excerpt": o.answer.excerpt,
                "worker": worker[:64],
            }
            for o in outcomes
        ],
    )
    d = table_of(WebhookDelivery)
    tally: Counter[str] = Counter(o.decision.kind for o in outcomes)
    delivered = [o for o in outcomes if o.decision.kind == "delivered"]
    if delivered:
        conn.execute(
            update(d)
            .where(and_(d.c.id == _b("did"), d.c.status == "pending"))
            .values(
                status="delivered",
                delivered_at=_b("at"),
                last_status=_b("st"),
                last_error=None,
                lease_holder=None,
            ),
            [
                {"did": o.job.claimed.delivery_id, "at": o.attempted_at, "st": o.answer.status}
                for o in delivered
            ],
        )
    others = [o for o in outcomes if o.decision.kind in ("retry", "failed")]
    if others:
        conn.execute(
            update(d)
            .where(_under_lease(d, worker))
            .values(
                status=_b("new"),
                next_attempt_at=_b("next"),
                last_status=_b("st"),
                last_error=_b("err"),
                lease_holder=None,
            ),
            [
                {
                    "did": o.job.claimed.delivery_id,
                    "n": o.job.claimed.attempt,
                    "new": "pending" if o.decision.kind == "retry" else "failed",
                    "next": now + timedelta(seconds=o.decision.delay_s),
                    "st": o.answer.status,
                    "err": (o.decision.reason or o.answer.error or "")[:300] or None,
                }
                for o in others
            ],
        )
    held = [o for o in outcomes if o.decision.kind == "held"]
    if held:
        conn.execute(
            update(d)
            .where(_under_lease(d, worker))
            .values(
                attempts=d.c.attempts - 1, next_attempt_at=_b("next"), last_error=_b("err"), lease_holder=None
            ),
            [
                {
                    "did": o.job.claimed.delivery_id,
                    "n": o.job.claimed.attempt,
                    "next": now + timedelta(seconds=o.decision.delay_s),
                    "err": o.decision.reason[:300],
                }
                for o in held
            ],
        )
    _health(conn, [o for o in outcomes if o.decision.kind != "held"], now)
    return tally


def _under_lease(d: Any, worker: str) -> Any:
    """The delivery named by the ``did`` parameter, still pending under this worker's lease for
    attempt ``n``: a late worker cannot move back a delivery someone else has taken since."""
    return and_(
        d.c.id == _b("did"), d.c.status == "pending", d.c.lease_holder == worker, d.c.attempts == _b("n")
    )


def _b(name: str) -> Any:
    return bindparam(name)


def _health(conn: Connection, outcomes: Sequence[Outcome], now: datetime) -> None:
    good = {o.job.claimed.endpoint_id for o in outcomes if o.decision.kind == "delivered"}
    gone = {o.job.claimed.endpoint_id: o for o in outcomes if o.decision.kind == "endpoint_gone"}
    bad = {o.job.claimed.endpoint_id for o in outcomes if o.decision.kind in ("retry", "failed")} - good
    e = WebhookEndpoint
    if good:
        conn.execute(
            update(e)
            .where(in_values(conn, e.id, sorted(good)), e.failing_since.is_not(None))
            .values(failing_since=None)
        )
    if bad:
        conn.execute(
            update(e)
            .where(in_values(conn, e.id, sorted(bad)), e.failing_since.is_(None))
            .values(failing_since=now)
        )
        cutoff = now - timedelta(seconds=DISABLE_AFTER_S)
        stale = conn.execute(
            select(e.id, e.workspace_id).where(
                in_values(conn, e.id, sorted(bad)), e.enabled.is_(True), e.failing_since <= cutoff
            )
        ).all()
        for endpoint_id, workspace_id in stale:
            _disable(
                conn, endpoint_id, workspace_id, "failing", "disabled: every attempt failed for 5 days", now
            )
    for endpoint_id, outcome in gone.items():
        workspace_id = conn.execute(select(e.workspace_id).where(e.id == endpoint_id)).scalar_one()
        # This delivery waits with the rest: a receiver that comes back can have it.
        conn.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == outcome.job.claimed.delivery_id, WebhookDelivery.status == "pending")
            .values(last_status=410, last_error="410 Gone", lease_holder=None)
        )
        _disable(conn, endpoint_id, workspace_id, "gone", "disabled: the receiver answered 410 Gone", now)


def _disable(
    conn: Connection, endpoint_id: int, workspace_id: int, kind: str, text: str, now: datetime
) -> None:
    e = WebhookEndpoint
    changed = conn.execute(
        update(e).where(e.id == endpoint_id, e.enabled.is_(True)).values(enabled=False, disabled_reason=text)
    ).rowcount
    if not changed:
        return
    paused = conn.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == "pending")
        .values(status="paused", lease_holder=None)
    ).rowcount
    insert_rows(
        conn,
        table_of(WebhookNotice),
        [
            {
                "workspace_id": workspace_id,
                "endpoint_id": endpoint_id,
                "kind": kind,
                "text": f"{text}; {paused} message(s) wait until `flywheel webhooks enable {endpoint_id}`",
                "details": {"paused": int(paused or 0)},
                "created_at": now,
            }
        ],
    )
