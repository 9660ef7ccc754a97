"""Inbound webhook secrets (encrypted at rest) and the deliveries already received."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plugin.db.base import Base, UTCDateTime, utcnow


class HookSecret(Base):
    """The signing secret a platform uses for one workspace; ``source`` is github, slack, discourse
    or ``generic:<name>``. Stored as a Fernet token, never in clear."""

    __tablename__ = "hook_secrets"
    __table_args__ = (UniqueConstraint("workspace_id", "source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(80))
    secret_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class InboundDelivery(Base):
    """One received webhook delivery, so a platform's retry of it stores nothing new."""

    __tablename__ = "inbound_deliveries"
    __table_args__ = (UniqueConstraint("workspace_id", "source", "delivery_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(80))
    delivery_id: Mapped[str] = mapped_column(String(255))
    event: Mapped[str | None] = mapped_column(String(120))
    activities_stored: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
