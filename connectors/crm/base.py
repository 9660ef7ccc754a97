"""What every CRM adapter takes and gives back."""

from __future__ import annotations

from dataclasses import dataclass, field
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
