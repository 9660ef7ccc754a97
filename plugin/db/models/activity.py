"""Activities: what members did, one row per source activity."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from plugin.db.base import Base, EpochMicros
from plugin.db.models.types import BigId, Json


class Activity(Base):
    """``identity_id`` records which identity acted, so an unmerge can hand activities back exactly;
    ``member_id`` is that identity's member, kept here because every query asks by member."""

    __tablename__ = "activities"
    __table_args__ = (
        UniqueConstraint("workspace_id", "source", "source_activity_id"),
        # Scoring reads a member's (time, type, value, sentiment) from this index alone.
        Index("ix_activities_member_time", "member_id", "occurred_at", "type", "value", "sentiment"),
        # member_id last: scoring reads each type's (time, member) from this index alone.
        Index("ix_activities_type_time", "workspace_id", "type", "occurred_at", "member_id"),
        # Few activities carry a sentiment; scoring reads them from this small index alone.
        Index(
            "ix_activities_sentiment",
            "workspace_id",
            "member_id",
            "occurred_at",
            "sentiment",
            sqlite_where=text("sentiment IS NOT NULL"),
            postgresql_where=text("sentiment IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(64))
    source_activity_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(EpochMicros())
    ingested_at: Mapped[datetime] = mapped_column(EpochMicros())
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    identity_id: Mapped[int] = mapped_column(ForeignKey("identities.id"))
    channel: Mapped[str | None] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(String(500))
    url: Mapped[str | None] = mapped_column(String(2048))
    text: Mapped[str | None] = mapped_column(Text)
    properties: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    sentiment: Mapped[float | None] = mapped_column(Float)
    #: the number a survey, review or purchase carries (NPS, rating, amount), taken from
    #: ``properties`` at ingest (``plugin.services.columns.value_of``)
    value: Mapped[float | None] = mapped_column(Float)
