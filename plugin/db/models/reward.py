"""The rewards ledger, append-only: a grant is written once and never changed; what happens to it
(approved after its hold or by a person, paid, reversed) is a new status line. A correction is a
new grant (a negative amount for a partial one) pointing at the grant it corrects. Balances are
sums over grants by their latest status."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plugin.db.base import Base, UTCDateTime, utcnow
from plugin.db.models.types import BigId, Decimal4


class RewardGrant(Base):
    __tablename__ = "reward_grants"
    __table_args__ = (
        UniqueConstraint("workspace_id", "idempotency_key"),
        Index("ix_reward_grants_member", "workspace_id", "member_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    kind: Mapped[str] = mapped_column(String(8))  # points | money
    amount: Mapped[Decimal] = mapped_column(Decimal4())  # exact, four places; negative corrects
    currency: Mapped[str | None] = mapped_column(String(3))  # ISO 4217 for money; None for points
    reason: Mapped[str] = mapped_column(String(32))  # referral_converted | review_written | ...
    idempotency_key: Mapped[str] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(String(500))
    hold_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    needs_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("reward_grants.id"))
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RewardLine(Base):
    """One status of a grant: pending (written with it), approved, paid or reversed."""

    __tablename__ = "reward_lines"
    __table_args__ = (Index("ix_reward_lines_grant", "grant_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("reward_grants.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(12))
    by: Mapped[str] = mapped_column(String(120))  # a person, or "hold" when a hold ran out
    note: Mapped[str | None] = mapped_column(String(500))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
