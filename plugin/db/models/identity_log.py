"""The merge log (every identity decision, undoable) and merge suggestions awaiting a person."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plugin.db.base import Base, UTCDateTime, utcnow
from plugin.db.models.types import Json

#: kinds of merge-log entries
AUTO_EMAIL = "auto_email"  # an identity joined an existing member through a verified email
MERGE = "merge"  # a person merged member ``source`` into ``target``
SPLIT = "split"  # identities were split off ``target`` into member ``source``


class MergeLog(Base):
    __tablename__ = "merge_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    target_member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    source_member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    identity_ids: Mapped[list[int]] = mapped_column(Json, default=list)
    #: member fields of the target filled from the source, so undo can clear them again
    filled_fields: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    reason: Mapped[str] = mapped_column(String(500))
    actor: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    undone_by_id: Mapped[int | None] = mapped_column(ForeignKey("merge_log.id"))


class MergeSuggestion(Base):
    """Two members who may be one person; never merged without a person's say."""

    __tablename__ = "merge_suggestions"
    __table_args__ = (UniqueConstraint("workspace_id", "member_a_id", "member_b_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    member_a_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    member_b_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    confidence: Mapped[float] = mapped_column(Float)
    evidence: Mapped[list[str]] = mapped_column(Json, default=list)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | accepted | dismissed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
