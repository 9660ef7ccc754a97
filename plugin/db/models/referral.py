"""Referral programs: the personal codes advocates are invited with, the referrals they bring, and
the one contact log every program's outreach counts against."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from plugin.db.base import Base, UTCDateTime, utcnow
from plugin.db.models.types import BigId


class ReferralInvite(Base):
    """An advocate's personal, unguessable code for one campaign."""

    __tablename__ = "referral_invites"
    __table_args__ = (Index("ix_referral_invites_member", "workspace_id", "member_id", "campaign"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    code: Mapped[str] = mapped_column(String(32), unique=True)
    campaign: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Referral(Base):
    """Someone an advocate referred: pending until the CRM reports a won deal (converted), or held
    for review with the reason a fraud check gave, or rejected by a person."""

    __tablename__ = "referrals"
    __table_args__ = (
        Index("ix_referrals_workspace_email", "workspace_id", "prospect_email"),
        Index("ix_referrals_advocate", "workspace_id", "member_id", "created_at"),
        # The first referral of a prospect wins, even when two arrive at the same moment: only one
        # may be open (pending or converted) per prospect; later ones are held.
        Index(
            "uq_referrals_open_prospect",
            "workspace_id",
            "prospect_email",
            unique=True,
            sqlite_where=text("status IN ('pending', 'converted')"),
            postgresql_where=text("status IN ('pending', 'converted')"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    invite_id: Mapped[int] = mapped_column(ForeignKey("referral_invites.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))  # the advocate
    prospect_name: Mapped[str] = mapped_column(String(255))
    prospect_email: Mapped[str] = mapped_column(String(255))
    prospect_company: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending|held|converted|rejected
    held_reason: Mapped[str | None] = mapped_column(String(300))
    deal_crm_id: Mapped[str | None] = mapped_column(String(64))
    reward_grant_id: Mapped[int | None] = mapped_column(ForeignKey("reward_grants.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    converted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Outreach(Base):
    """One ask of a member (a referral invitation, a panel invitation or reminder, a reward
    notice): the contact budget shared by every program counts these."""

    __tablename__ = "outreach_log"
    __table_args__ = (Index("ix_outreach_member_at", "workspace_id", "member_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
