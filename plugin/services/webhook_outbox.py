"""The outbox: messages are written in the caller's transaction (no change without its message,
no message without its change), one delivery per subscribed endpoint; replay and recover put
deliveries back in line with their original message id."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select, update

from plugin.db.base import table_of, utcnow
from plugin.db.ids import allocate_ids
from plugin.db.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from plugin.db.sql import insert_rows
from plugin.errors import NotFound, ValidationFailed
from webhooks.events import EVENT_TYPES, body
from webhooks.signing import new_message_id


@dataclass(frozen=True)
class Event:
    event_type: str
    payload: Mapping[str, Any]


def subscribers(conn: Connection, workspace_id: int) -> list[tuple[int, bool, list[str] | None]]:
    """(endpoint id, enabled, event types or None for all) of a workspace's endpoints."""
    t = table_of(WebhookEndpoint)
    rows = conn.execute(select(t.c.id, t.c.enabled, t.c.event_types).where(t.c.workspace_id == workspace_id))
    return [(r[0], bool(r[1]), r[2]) for r in rows]


def emit(
    conn: Connection,
    workspace_id: int,
    events: Iterable[Event],
    *,
    now: datetime | None = None,
    endpoint_id: int | None = None,
) -> list[str]:
    """Write ``events`` to the outbox inside the caller's transaction; returns the message ids.

    An event no endpoint subscribes to is not stored. A disabled endpoint's deliveries wait,
    paused, until it is enabled again: nothing is lost while a receiver is being fixed."""
    wanted = list(events)
    for event in wanted:
        if event.event_type not in EVENT_TYPES:
            raise ValidationFailed(f"unknown webhook event type {event.event_type!r}")
    endpoints = [e for e in subscribers(conn, workspace_id) if endpoint_id in (None, e[0])]
    if endpoint_id is not None:  # a test ping: to this endpoint, whatever it subscribes to
        endpoints = [(i, on, None) for i, on, _ in endpoints]
    if not endpoints or not wanted:
        return []
    when = now or utcnow()
    plans = [
        (e, [(i, on) for i, on, types in endpoints if types is None or e.event_type in types]) for e in wanted
    ]
    plans = [(e, targets) for e, targets in plans if targets]
    if not plans:
        return []
    message_table = table_of(WebhookMessage)
    ids = allocate_ids(conn, message_table, len(plans))
    messages: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    for message_id, (event, targets) in zip(ids, plans, strict=True):
        msg_id = new_message_id()
        messages.append(
            {
                "id": message_id,
                "workspace_id": workspace_id,
                "msg_id": msg_id,
                "event_type": event.event_type,
                "body": body(event.payload),
                "created_at": when,
            }
        )
        for endpoint_id, enabled in targets:
            deliveries.append(
                {
                    "message_id": message_id,
                    "endpoint_id": endpoint_id,
                    "status": "pending" if enabled else "paused",
                    "attempts": 0,
                    "next_attempt_at": when,
                    "created_at": when,
                }
            )
    insert_rows(conn, message_table, messages)
    insert_rows(conn, table_of(WebhookDelivery), deliveries)
    return [m["msg_id"] for m in messages]


def _message(conn: Connection, workspace_id: int, msg_id: str) -> int:
    t = table_of(WebhookMessage)
    found = conn.execute(
        select(t.c.id).where(t.c.msg_id == msg_id, t.c.workspace_id == workspace_id)
    ).scalar()
    if found is None:
        raise NotFound(
            f"no webhook message {msg_id}", hint="`flywheel webhooks deliveries` lists message ids"
        )
    return int(found)


def _resend(conn: Connection, condition: Any) -> int:
    """Put deliveries of enabled endpoints back in line: due now, a fresh set of attempts."""
    d = table_of(WebhookDelivery)
    e = table_of(WebhookEndpoint)
    enabled = select(e.c.id).where(e.c.enabled.is_(True)).scalar_subquery()
    moved = conn.execute(
        update(d)
        .where(and_(condition, d.c.endpoint_id.in_(enabled)))
        .values(status="pending", attempts=0, next_attempt_at=utcnow(), lease_holder=None)
    ).rowcount
    return int(moved or 0)


def replay(conn: Connection, workspace_id: int, msg_id: str, endpoint_id: int | None = None) -> int:
    """Send a message again, with its original ``webhook-id``, to every enabled endpoint it went to
    (or to one). Works whatever became of it: delivered, failed or still pending."""
    d = table_of(WebhookDelivery)
    condition = d.c.message_id == _message(conn, workspace_id, msg_id)
    if endpoint_id is not None:
        condition = and_(condition, d.c.endpoint_id == endpoint_id)
    moved = _resend(conn, condition)
    if not moved:
        raise ValidationFailed(
            f"message {msg_id} has no delivery to an enabled endpoint",
            hint="enable the endpoint first with `flywheel webhooks enable ID`",
        )
    return moved


def recover(conn: Connection, workspace_id: int, endpoint_id: int, since: datetime) -> int:
    """Resend every message to ``endpoint_id`` that failed since ``since``, original ids kept."""
    e = table_of(WebhookEndpoint)
    row = conn.execute(
        select(e.c.enabled).where(e.c.id == endpoint_id, e.c.workspace_id == workspace_id)
    ).first()
    if row is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}", hint="`flywheel webhooks list` shows the ids")
    if not row[0]:
        raise ValidationFailed(
            f"endpoint {endpoint_id} is disabled",
            hint=f"enable it first: `flywheel webhooks enable {endpoint_id}`",
        )
    d = table_of(WebhookDelivery)
    a = table_of(WebhookAttempt)
    # "Failed since": by when the last attempt failed, not when the message was made (a message
    # fails a day and a half after it is made, on the default schedule).
    failed_since = (
        select(a.c.delivery_id).group_by(a.c.delivery_id).having(func.max(a.c.attempted_at) >= since)
    )
    return _resend(
        conn, and_(d.c.endpoint_id == endpoint_id, d.c.status == "failed", d.c.id.in_(failed_since))
    )


def deliveries(
    conn: Connection,
    workspace_id: int,
    *,
    endpoint_id: int | None = None,
    failed: bool = False,
    status: str | None = None,
    msg_id: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """The latest deliveries (older than delivery ``before_id``, for paging), newest first, with
    their message ids, last outcome and the excerpt of the last answer; ``next_attempt_at`` only
    while one is due."""
    d, m, a = table_of(WebhookDelivery), table_of(WebhookMessage), table_of(WebhookAttempt)
    excerpt = select(a.c.excerpt).where(a.c.delivery_id == d.c.id).order_by(a.c.id.desc()).limit(1)
    query = (
        select(
            d.c.id,
            m.c.msg_id,
            m.c.event_type,
            d.c.endpoint_id,
            d.c.status,
            d.c.attempts,
            d.c.last_status,
            d.c.last_error,
            excerpt.scalar_subquery().label("last_response"),
            d.c.created_at,
            d.c.next_attempt_at,
            d.c.delivered_at,
        )
        .join(m, m.c.id == d.c.message_id)
        .where(m.c.workspace_id == workspace_id)
        .order_by(d.c.id.desc())
        .limit(limit)
    )
    status = "failed" if failed else status
    for value, column in ((endpoint_id, d.c.endpoint_id), (status, d.c.status), (msg_id, m.c.msg_id)):
        if value is not None:
            query = query.where(column == value)
    if before_id is not None:
        query = query.where(d.c.id < before_id)
    rows = [dict(r._mapping) for r in conn.execute(query)]
    for r in rows:
        if r["status"] in ("delivered", "failed"):
            r["next_attempt_at"] = None
    return rows


def prune(conn: Connection, older_than: datetime, *, limit: int = 10_000) -> int:
    """Forget messages older than ``older_than`` that every endpoint has received (their
    deliveries and attempt logs go with them). Failed, paused and pending ones are kept."""
    m = table_of(WebhookMessage)
    d = table_of(WebhookDelivery)
    unfinished = select(d.c.message_id).where(d.c.status != "delivered")
    ids = (
        conn.execute(
            select(m.c.id)
            .where(m.c.created_at < older_than, m.c.id.not_in(unfinished))
            .order_by(m.c.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    if not ids:
        return 0
    delivery_ids = select(d.c.id).where(d.c.message_id.in_(ids))
    a = table_of(WebhookAttempt)
    conn.execute(a.delete().where(a.c.delivery_id.in_(delivery_ids)))
    conn.execute(d.delete().where(d.c.message_id.in_(ids)))
    conn.execute(m.delete().where(m.c.id.in_(ids)))
    return len(ids)
