"""Panel invitations: signed, expiring accept and decline links; ``focus_group.invitation`` and
``focus_group.reminder`` rendered in the member's language; research consent and the contact
budget checked at each send (a withdrawal stops pending reminders); a deadline that passes
without an answer is a no-response, replaced from the same stratum's reserve."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import Connection, select, update

from plugin.db.base import utcnow
from plugin.db.models import PanelMember, Workspace
from plugin.errors import ConfigError, ValidationFailed
from plugin.services import contact_budget
from plugin.services.panel_messages import render
from plugin.services.panels import get, latest_consent, respond
from plugin.services.program_rules import Programs, Rule
from plugin.services.secrets import derived_key
from plugin.services.webhook_outbox import Event, emit
from plugin.services.webhook_signals import member_refs
from plugin.settings import Settings
from webhooks.events import MemberRef, focus_group_invitation, focus_group_reminder

ACTIONS = ("accept", "decline")


def _signer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(derived_key(settings, "panel-links"), salt="flywheel-panel")


def link_token(settings: Settings, panel_id: int, member_id: int, action: str, expires: datetime) -> str:
    return str(
        _signer(settings).dumps({"p": panel_id, "m": member_id, "a": action, "e": int(expires.timestamp())})
    )


@dataclass(frozen=True)
class Link:
    panel_id: int
    member_id: int
    action: str
    expired: bool


def read_token(settings: Settings, token: str, now: datetime) -> Link | None:
    """The link's meaning, or None when it was not signed by this installation."""
    try:
        data = _signer(settings).loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("a") not in ACTIONS:
        return None
    return Link(int(data["p"]), int(data["m"]), str(data["a"]), now.timestamp() > int(data["e"]))


@dataclass
class Sent:
    members: list[int] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)


def _links(settings: Settings, panel_id: int, member_id: int, deadline: datetime) -> tuple[str, str]:
    if not settings.public_url:
        raise ConfigError(
            "panel links need the address people reach Flywheel at",
            hint="set FLYWHEEL_PUBLIC_URL, e.g. https://flywheel.example.com",
        )
    base = f"{settings.public_url}/p/"
    return tuple(base + link_token(settings, panel_id, member_id, a, deadline) for a in ACTIONS)  # type: ignore[return-value]


def _send(
    conn: Connection,
    settings: Settings,
    workspace_id: int,
    panel_id: int,
    rows: list[Any],
    kind: str,
    policy: Programs,
    now: datetime,
    deadline_of: Any,
) -> Sent:
    panel = get(conn, workspace_id, panel_id)
    sent = Sent()
    research = latest_consent(conn, workspace_id, "research")
    consenting = [r for r in rows if research.get(r.member_id, False)]
    sent.skipped["research consent withdrawn"] = len(rows) - len(consenting)
    ids = [r.member_id for r in consenting]
    allowed = contact_budget.within_budget(conn, workspace_id, ids, now, policy, follow_up=kind == "reminder")
    ready = [r for r in consenting if r.member_id in allowed]
    sent.skipped["over the contact budget"] = len(consenting) - len(ready)
    people = member_refs(conn, [r.member_id for r in ready])
    workspace = conn.execute(select(Workspace.slug).where(Workspace.id == workspace_id)).scalar_one()
    events: list[Event] = []
    for r in ready:
        person = people.get(
            r.member_id, {"name": None, "locale": None, "email": None, "consents": set(), "crm": {}}
        )
        deadline = deadline_of(r)
        accept, decline = _links(settings, panel_id, r.member_id, deadline)
        message = render(kind, person["locale"], name=person["name"], panel=panel.name, accept_url=accept,
                         decline_url=decline, deadline=deadline)  # fmt: skip
        email = person["email"] if "research" in person["consents"] else None
        common: dict[str, Any] = {
            "workspace": workspace, "occurred_at": now,
            "member": MemberRef(r.member_id, person["name"], person["locale"], email),
            "panel_id": panel_id, "panel_name": panel.name, "accept_url": accept, "decline_url": decline,
            "expires_at": deadline, "crm": person["crm"], "message": message.as_dict(),
        }  # fmt: skip
        if kind == "invitation":
            events.append(Event("focus_group.invitation", focus_group_invitation(**common)))
        else:
            events.append(Event("focus_group.reminder", focus_group_reminder(**common, deadline=deadline)))
    emit(conn, workspace_id, events)
    contact_budget.record(conn, workspace_id, [r.member_id for r in ready], f"focus_group.{kind}", now)
    sent.members = [r.member_id for r in ready]
    return sent


def invite(
    conn: Connection,
    settings: Settings,
    workspace_id: int,
    panel_id: int,
    *,
    policy: Programs,
    deadline_days: int = 7,
    now: datetime | None = None,
) -> Sent:
    """Invite every selected member not yet invited (replacements included)."""
    if not 1 <= deadline_days <= 90:
        raise ValidationFailed("the deadline must be 1 to 90 days away", fields={"deadline_days": "1-90"})
    when = now or utcnow()
    deadline = when + timedelta(days=deadline_days)
    pm = PanelMember
    rows = conn.execute(
        select(pm.member_id).where(pm.panel_id == panel_id, pm.role == "selected", pm.status == "selected")
    ).all()
    sent = _send(
        conn, settings, workspace_id, panel_id, list(rows), "invitation", policy, when, lambda _r: deadline
    )
    if sent.members:
        conn.execute(
            update(pm)
            .where(pm.panel_id == panel_id, pm.member_id.in_(sent.members))
            .values(status="invited", invited_at=when, deadline=deadline, updated_at=when)
        )
    return sent


def remind(
    conn: Connection, settings: Settings, workspace_id: int, panel_id: int, *, policy: Programs,
    now: datetime | None = None, halfway: bool = False,
) -> Sent:  # fmt: skip
    """One reminder to each invited member who has not answered, while their links still work.
    ``halfway`` (the scheduled job): only once half their time to answer has gone by."""
    when = now or utcnow()
    pm = PanelMember
    rows = [
        r
        for r in conn.execute(
            select(pm.member_id, pm.deadline, pm.invited_at).where(
                pm.panel_id == panel_id, pm.status == "invited", pm.reminders == 0
            )
        )
        if r.deadline is not None
        and r.deadline > when
        and not (
            halfway and r.invited_at is not None and when < r.invited_at + (r.deadline - r.invited_at) / 2
        )
    ]
    sent = _send(conn, settings, workspace_id, panel_id, rows, "reminder", policy, when, lambda r: r.deadline)
    if sent.members:
        conn.execute(
            update(pm)
            .where(pm.panel_id == panel_id, pm.member_id.in_(sent.members))
            .values(reminders=pm.reminders + 1, updated_at=when)
        )
    return sent


def expire(
    conn: Connection, workspace_id: int, panel_id: int, *, rules: dict[str, Rule], now: datetime | None = None
) -> list[dict[str, Any]]:
    """Invitations past their deadline become no-responses, each replaced from the reserve."""
    when = now or utcnow()
    pm = PanelMember
    late = [
        r.member_id
        for r in conn.execute(
            select(pm.member_id, pm.deadline).where(pm.panel_id == panel_id, pm.status == "invited")
        )
        if r.deadline is not None and r.deadline <= when
    ]
    return [respond(conn, workspace_id, panel_id, m, "no_response", rules=rules) for m in late]
