"""Insight panels (focus groups): a researcher's definition, each draw's manifest, and who is on
the panel or in its reserve, by stratum, with where their invitation stands."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from plugin.db.base import Base, UTCDateTime, utcnow
from plugin.db.models.types import Json


class Panel(Base):
    __tablename__ = "panels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    spec: Mapped[dict[str, Any]] = mapped_column(Json)  # the panel file, as checked
    status: Mapped[str] = mapped_column(String(12), default="draft")  # draft | drawn | closed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PanelDraw(Base):
    """One draw: its seed and manifest (criteria, eligible and selected counts per stratum,
    exclusions by reason, shortfalls). The latest draw is the panel's."""

    __tablename__ = "panel_draws"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    panel_id: Mapped[int] = mapped_column(ForeignKey("panels.id", ondelete="CASCADE"), index=True)
    seed: Mapped[int] = mapped_column(Integer)
    manifest: Mapped[dict[str, Any]] = mapped_column(Json)
    drawn_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PanelMember(Base):
    """A member drawn onto a panel (``selected``) or into its reserve, in their stratum's order."""

    __tablename__ = "panel_members"
    __table_args__ = (Index("ix_panel_members_member", "member_id", "status"),)

    panel_id: Mapped[int] = mapped_column(ForeignKey("panels.id", ondelete="CASCADE"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    stratum: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(8))  # selected | reserve
    rank: Mapped[int] = mapped_column(Integer)  # order within the stratum's draw
    # selected | invited | accepted | declined | no_response | completed | disqualified | waiting (reserve)
    status: Mapped[str] = mapped_column(String(14))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    invited_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the links expire then
    reminders: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
