"""CRM connections (credentials encrypted), what each member last sent to the CRM, and sync runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plugin.db.base import Base, UTCDateTime, utcnow
from plugin.db.models.types import Json


class CrmConnection(Base):
    """One CRM account of a workspace (one per kind). ``credentials_encrypted`` is a Fernet token
    of a JSON object; it is never printed. The lease (``lock_holder`` until ``lock_expires_at``)
    keeps two syncs from overlapping; a dead process's lease simply runs out."""

    __tablename__ = "crm_connections"
    __table_args__ = (UniqueConstraint("workspace_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # hubspot | salesforce
    base_url: Mapped[str | None] = mapped_column(String(500))
    credentials_encrypted: Mapped[str] = mapped_column(Text)
    settings: Mapped[dict[str, Any] | None] = mapped_column(Json)  # field mapping overrides
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lock_holder: Mapped[str | None] = mapped_column(String(120))
    lock_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The last score event (score_events.id) turned into a CRM note: signals are noted once.
    events_noted: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class CrmLink(Base):
    """A member's record in one CRM: its id there, the fields last sent with success (and their
    hash, so an unchanged member costs no call), and the last failure, retried next run."""

    __tablename__ = "crm_links"

    connection_id: Mapped[int] = mapped_column(
        ForeignKey("crm_connections.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    crm_object: Mapped[str] = mapped_column(String(24), default="contact")
    crm_id: Mapped[str | None] = mapped_column(String(64))
    fields_hash: Mapped[str | None] = mapped_column(String(64))
    fields: Mapped[dict[str, Any] | None] = mapped_column(Json)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failure: Mapped[str | None] = mapped_column(String(500))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    crm_stage: Mapped[str | None] = mapped_column(String(64))  # as read back by `crm pull`
    owner_id: Mapped[str | None] = mapped_column(String(64))
    company_crm_id: Mapped[str | None] = mapped_column(String(64))  # the company it is associated with


class CrmSyncRun(Base):
    """One `flywheel crm sync` (or pull): counts by outcome, API calls by operation, time taken."""

    __tablename__ = "crm_sync_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection_id: Mapped[int] = mapped_column(
        ForeignKey("crm_connections.id", ondelete="CASCADE"), index=True
    )
    direction: Mapped[str] = mapped_column(String(8), default="push")  # push | pull
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | done | failed
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    counts: Mapped[dict[str, Any] | None] = mapped_column(Json)
    calls: Mapped[dict[str, Any] | None] = mapped_column(Json)
    error: Mapped[str | None] = mapped_column(String(500))


class CrmDeal(Base):
    """A deal (opportunity) read back from the CRM, with the members it is associated with: what
    makes a member a customer, and later what converts a referral or dates a renewal."""

    __tablename__ = "crm_deals"

    connection_id: Mapped[int] = mapped_column(
        ForeignKey("crm_connections.id", ondelete="CASCADE"), primary_key=True
    )
    crm_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    stage: Mapped[str | None] = mapped_column(String(64))
    won: Mapped[bool] = mapped_column(Boolean, default=False)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    amount: Mapped[float | None] = mapped_column(Float)
    close_date: Mapped[str | None] = mapped_column(String(40))
    member_ids: Mapped[list[int] | None] = mapped_column(Json)
    company_ids: Mapped[list[str] | None] = mapped_column(Json)
    read_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: when a pull last found it new or different (scoring rescores the members it involves)
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CrmCompanyLink(Base):
    """An organization's company in one CRM: found by domain or created, and the fields last sent."""

    __tablename__ = "crm_company_links"

    connection_id: Mapped[int] = mapped_column(
        ForeignKey("crm_connections.id", ondelete="CASCADE"), primary_key=True
    )
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    crm_id: Mapped[str | None] = mapped_column(String(64))
    fields_hash: Mapped[str | None] = mapped_column(String(64))
    failure: Mapped[str | None] = mapped_column(String(500))
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
