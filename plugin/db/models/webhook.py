"""The outgoing webhooks' outbox: endpoints, messages, one delivery per message and endpoint, the
log of every attempt, and notices (an endpoint disabled, and why).

A message is written in the transaction of the change that caused it. Its deliveries are claimed
by workers with a lease: while a delivery is claimed, ``next_attempt_at`` is the lease's end, so a
dead worker's claim simply falls due again and another worker sends it (with the same
``msg_id``: at least once, never lost).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from plugin.db.base import Base, UTCDateTime, utcnow
from plugin.db.models.types import BigId, Json


class WebhookEndpoint(Base):
    """Where a workspace's events go. Secrets are Fernet tokens of ``whsec_`` strings; during a
    rotation the previous one keeps signing beside the new one until ``previous_secret_until``."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(String(500))
    event_types: Mapped[list[str] | None] = mapped_column(Json)  # None: every event type
    rate_limit: Mapped[float | None] = mapped_column(Float)  # messages per second; None: no limit
    secret_encrypted: Mapped[str] = mapped_column(Text)
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    previous_secret_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The rate limiter's state (GCRA): the Unix time at which the bucket is empty again.
    rate_tat: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookMessage(Base):
    """One event as sent: its id (the ``webhook-id`` header, the same on every attempt, replays
    included) and the exact body bytes, so every attempt signs and sends the same bytes."""

    __tablename__ = "webhook_messages"
    __table_args__ = (Index("ix_webhook_messages_workspace_created", "workspace_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    msg_id: Mapped[str] = mapped_column(String(40), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookDelivery(Base):
    """A message on its way to one endpoint: pending (due at ``next_attempt_at``), delivered,
    failed (no attempts left; replayable) or paused (its endpoint is disabled)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("message_id", "endpoint_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("webhook_messages.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_holder: Mapped[str | None] = mapped_column(String(64))
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookAttempt(Base):
    """One HTTP attempt: when, the answer (None: no answer, ``error`` says why), how long it took,
    and the first bytes of the response with anything secret-looking masked."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(String(300))
    excerpt: Mapped[str | None] = mapped_column(String(600))
    worker: Mapped[str | None] = mapped_column(String(64))


class WebhookNotice(Base):
    """Something a person should know about an endpoint: disabled after 410 Gone or after days
    of failures, re-enabled, its secret rotated."""

    __tablename__ = "webhook_notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    endpoint_id: Mapped[int | None] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(String(500))
    details: Mapped[dict[str, object] | None] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
