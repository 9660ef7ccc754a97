"""Scores, the runs that made them, and the crossings they caused.

One row per (workspace, kind, subject): the latest score, the run that made it (whose row holds the
model version, the hash of the weights, when it was computed and as of which date), and its top three
reasons as numbers (feature,
value, points, and a detail some sentences need), rendered into sentences when shown. Reasons are
plain columns rather than JSON: a full run writes a million rows, and building a JSON document per
row was the largest cost of the write. A crossing (a member
becomes a champion, a lead turns hot, a churn risk turns high) is an event row that the CRM sync and
the webhooks pick up; a rescore that changes nothing adds none.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plugin.db.base import Base, UTCDateTime, utcnow
from plugin.db.models.types import BigId, Json

SUBJECTS = ("member", "organization")


class ScoreRun(Base):
    __tablename__ = "score_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    kinds: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(16))  # full | incremental | as_of
    as_of: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Highest activity id this run had seen; the next incremental run rescored members whose
    #: activities came in above it.
    activity_watermark: Mapped[int] = mapped_column(BigInteger, default=0)
    members_scored: Mapped[int] = mapped_column(Integer, default=0)
    model_version: Mapped[str] = mapped_column(String(64))
    weights_hash: Mapped[str] = mapped_column(String(64))
    activity_model: Mapped[dict[str, Any] | None] = mapped_column(Json)  # fitted BG/NBD parameters
    #: Advocate level cut scores of the community at its last full run (incremental runs reuse them).
    level_cutoffs: Mapped[list[float] | None] = mapped_column(Json)
    #: ``hand_raises`` holds every match among activities up to ``activity_watermark`` that occurred
    #: after this time (epoch microseconds); None: the run kept none (an older version's run).
    hand_raises_since: Mapped[int | None] = mapped_column(BigInteger)
    #: the settings' hash and the matcher's version those matches were made with
    hand_raises_key: Mapped[str | None] = mapped_column(String(40))


class Score(Base):
    __tablename__ = "scores"
    # WITHOUT ROWID on SQLite: rows live in the primary-key tree itself, one tree fewer to write.
    # No index on score: a full run writes a million rows, and an index in score order cost 40% of
    # that; ranking one kind by a scan of its primary-key range takes a fraction of a second.
    __table_args__ = ({"sqlite_with_rowid": False},)

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # advocate | lead | churn
    subject: Mapped[str] = mapped_column(String(16), primary_key=True)  # member | organization
    subject_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    score: Mapped[float] = mapped_column(Float)
    label: Mapped[str] = mapped_column(String(24))  # level, grade or band
    hot: Mapped[bool] = mapped_column(Boolean, default=False)
    reason1: Mapped[str | None] = mapped_column(String(32))
    value1: Mapped[float | None] = mapped_column(Float)
    points1: Mapped[float | None] = mapped_column(Float)
    detail1: Mapped[float | None] = mapped_column(Float)
    reason2: Mapped[str | None] = mapped_column(String(32))
    value2: Mapped[float | None] = mapped_column(Float)
    points2: Mapped[float | None] = mapped_column(Float)
    detail2: Mapped[float | None] = mapped_column(Float)
    reason3: Mapped[str | None] = mapped_column(String(32))
    value3: Mapped[float | None] = mapped_column(Float)
    points3: Mapped[float | None] = mapped_column(Float)
    detail3: Mapped[float | None] = mapped_column(Float)
    triggers: Mapped[list[int] | None] = mapped_column(Json)  # activity ids that made a lead hot
    #: The run that computed this score: its model version, weights hash, computed_at and as_of
    #: are the score's (kept once per run, not on a million rows).
    run_id: Mapped[int] = mapped_column(ForeignKey("score_runs.id", ondelete="CASCADE"))
    run: Mapped[ScoreRun] = relationship(lazy="joined")

    @property
    def model_version(self) -> str:
        return self.run.model_version

    @property
    def weights_hash(self) -> str:
        return self.run.weights_hash

    @property
    def computed_at(self) -> datetime:
        return self.run.started_at

    @property
    def as_of(self) -> datetime:
        return self.run.as_of

    @property
    def reasons(self) -> list[list[Any]]:
        """``[[feature, value, points(, detail)], ...]``, the largest first."""
        return reasons_of(
            [self.reason1, self.value1, self.points1, self.detail1,
             self.reason2, self.value2, self.points2, self.detail2,
             self.reason3, self.value3, self.points3, self.detail3]
        )  # fmt: skip


#: The reason columns, in the order :func:`reasons_of` reads them.
REASON_COLUMNS = tuple(f"{part}{i}" for i in (1, 2, 3) for part in ("reason", "value", "points", "detail"))


def reasons_of(cells: Sequence[Any]) -> list[list[Any]]:
    """Reason columns (12 cells, as :data:`REASON_COLUMNS`) back into a list of reasons."""
    out: list[list[Any]] = []
    for k in range(0, 12, 4):
        feature, value, points, detail = cells[k : k + 4]
        if feature is None:
            break
        out.append([feature, value, points] if detail is None else [feature, value, points, detail])
    return out


class MemberStats(Base):
    """Each member's activity summary as of their last scoring: what an incremental run needs to
        know about the people it does not rescore (their account's champion, who is active). Nothing in
    it depends on the date, so a full run rewrites only the rows whose activity changed. Filed by
        organization (0: none) so one account's people are read as one range. A member whose
        organization changed keeps a stale row under the old one until the next full run."""

    __tablename__ = "member_stats"
    __table_args__ = ({"sqlite_with_rowid": False},)

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    organization_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    activities: Mapped[int] = mapped_column(Integer)
    last_at: Mapped[int | None] = mapped_column(BigInteger)  # epoch microseconds
    usual_gap_days: Mapped[float | None] = mapped_column(Float)
    customer: Mapped[bool] = mapped_column(Boolean)  # by own lifecycle stage or a purchase
    last_purchase_at: Mapped[int | None] = mapped_column(BigInteger)  # epoch microseconds


class HandRaise(Base):
    """A hand-raising activity (a question about pricing, security, a trial...) and the intent
    topic its text matched under the settings of the scoring run that read it. Incremental runs read
    these for the members they rescore instead of the texts of their older posts; a full run
    matches every recent text again and rewrites them. Keyed by member so one member's are one
    range; a row goes with its member (and, through erasure, with its activity)."""

    __tablename__ = "hand_raises"
    __table_args__ = (
        Index("ix_hand_raises_activity_id", "activity_id"),  # merges, erasure, re-read id ranges
        {"sqlite_with_rowid": False},
    )

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    occurred_at: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # epoch microseconds
    activity_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    topic: Mapped[int] = mapped_column(SmallInteger)  # index into the settings' sorted topic names


class ScoreEvent(Base):
    __tablename__ = "score_events"
    __table_args__ = (Index("ix_score_events_workspace_id_id", "workspace_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    run_id: Mapped[int] = mapped_column(ForeignKey("score_runs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[int] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(40))  # became_champion | lead_turned_hot | churn_risk_high
    before: Mapped[str | None] = mapped_column(String(24))
    after: Mapped[str] = mapped_column(String(24))
    score: Mapped[float] = mapped_column(Float)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime())
