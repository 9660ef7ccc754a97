"""What every CRM adapter takes and gives back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Status = Literal["created", "updated", "failed"]


@dataclass(frozen=True)
class CrmRecord:
    """One member as the CRM should hold it: ``key`` is Flywheel's id (the outcome names it back),
    ``email`` the CRM's match key, ``properties`` CRM field names to values already rendered as
    the CRM's strings."""

    key: str
    email: str
    properties: dict[str, str]


@dataclass(frozen=True)
class Outcome:
    key: str
    status: Status
    crm_id: str | None = None
    reason: str | None = None  # why it failed, in the CRM's words (never the record's content)


@dataclass(frozen=True)
class CrmCompany:
    """An organization as the CRM should hold it; ``crm_id`` when it is known there already."""

    key: str
    domain: str
    properties: dict[str, str]
    crm_id: str | None = None


@dataclass(frozen=True)
class CrmNote:
    """A note for the people who own a CRM record (a signal: a lead turned hot, a churn risk rose).
    ``key`` names it back in the outcome; ``body`` is HTML the CRM shows as is."""

    key: str
    contact_id: str
    timestamp: datetime
    body: str


@dataclass(frozen=True)
class PropertySpec:
    """A custom field Flywheel writes. ``kind`` is one of string, number, datetime, text."""

    name: str
    label: str
    kind: str
    description: str = ""


@dataclass
class SchemaReport:
    created: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    group_created: bool = False


@dataclass(frozen=True)
class CrmContact:
    """A contact (or Salesforce Contact/Lead) as read back: who owns it and where it stands."""

    crm_id: str
    email: str | None
    lifecycle_stage: str | None
    owner_id: str | None
    company_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class CrmDeal:
    """A deal (opportunity) as read back, with the contacts and companies it is associated with."""

    crm_id: str
    name: str | None
    stage: str | None
    won: bool
    closed: bool
    amount: float | None
    close_date: str | None  # ISO date or time, as the CRM gives it
    contact_ids: tuple[str, ...] = ()
    company_ids: tuple[str, ...] = ()
