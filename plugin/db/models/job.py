"""The schedule of background jobs: one row per job and scope (a workspace, or the whole install).

The row is the truth about when a job runs next and who runs it now. A broker only carries "run
job N now" messages, so a lost or repeated message costs nothing: the row says whether it is due,
and the lease (``lease_holder`` until ``lease_until``) lets exactly one worker run it at a time. A
dead worker's lease runs out and the next tick sends the job again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column

from plugin.db.base import Base, UTCDateTime, utcnow
from plugin.db.models.types import Json


class ScheduledJob(Base):
    __tablename__ = "scheduled_jobs"
    __table_args__ = (
        UniqueConstraint("scope", "job"),
        Index("ix_scheduled_jobs_due", "enabled", "next_run_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: ``workspace:<id>`` or ``global`` (jobs that work across workspaces, such as webhook delivery)
    scope: Mapped[str] = mapped_column(String(40))
    workspace_id: Mapped[int | None] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    job: Mapped[str] = mapped_column(String(40))
    every_s: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    next_run_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: a tick sent "run now" to the broker; it is not sent again before this time
    queued_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_holder: Mapped[str | None] = mapped_column(String(120))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    runs: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status: Mapped[str | None] = mapped_column(String(16))  # running | ok | skipped | busy | failed
    last_error: Mapped[str | None] = mapped_column(Text)
    last_summary: Mapped[dict[str, Any] | None] = mapped_column(Json)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Lease(Base):
    """A named lease: one holder at a time does the named work (``score:workspace:<id>``: a
    scoring run that writes). The holder renews it while it works; a dead holder's lease runs out
    at ``expires_at`` and the next one takes it."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(120))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: what the holder is doing, in words for whoever finds the lease taken
    doing: Mapped[str | None] = mapped_column(String(120))
