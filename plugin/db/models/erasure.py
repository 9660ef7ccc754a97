"""GDPR erasures: the anonymous audit line kept after a member's personal data is removed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from plugin.db.base import Base, UTCDateTime, utcnow
from plugin.db.models.types import Json


class Erasure(Base):
    """One erased member. Holds no personal data: the member's (now empty) id, who asked, what was
    removed (counts), and the CRM records to handle (``crm_refs``: connection, object and id, which
    the CRM sync deletes, anonymizes or keeps as the workspace configures, then sets ``crm_done_at``)."""

    __tablename__ = "erasures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(Integer)
    requested_by: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str | None] = mapped_column(String(255))
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    removed: Mapped[dict[str, Any]] = mapped_column(Json)
    crm_action: Mapped[str] = mapped_column(String(16))  # delete | anonymize | keep
    crm_refs: Mapped[list[Any] | None] = mapped_column(Json)
    crm_done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    crm_result: Mapped[str | None] = mapped_column(String(500))
