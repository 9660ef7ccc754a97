"""Webhook endpoints of a workspace: register (after the SSRF guard has seen the URL), list, rotate
the secret, disable and enable. Secrets are generated here, shown once, and kept encrypted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from plugin.db.base import utcnow
from plugin.db.models import WebhookDelivery, WebhookEndpoint, WebhookNotice
from plugin.errors import NotFound, ValidationFailed
from plugin.services.secrets import decrypt, encrypt
from plugin.settings import Settings
from webhooks.events import EVENT_TYPES
from webhooks.guard import Guard, GuardError, parse_networks
from webhooks.policy import SCHEDULE_S, RetryPolicy
from webhooks.signing import new_secret

ROTATION = timedelta(hours=24)  # the old secret keeps signing beside the new one this long
MAX_RATE = 10_000.0


def guard_for(settings: Settings) -> Guard:
    try:
        allowed = parse_networks(settings.webhook_allowed_networks)
    except GuardError as exc:
        raise ValidationFailed(exc.reason, fields={"FLYWHEEL_WEBHOOK_ALLOWED_NETWORKS": exc.reason}) from None
    return Guard(allowed=allowed, https_only=not settings.webhook_allow_http)


def policy_for(settings: Settings) -> RetryPolicy:
    return RetryPolicy(schedule_s=settings.webhook_schedule or SCHEDULE_S, timeout_s=settings.webhook_timeout)


def parse_event_types(text: str | None) -> list[str] | None:
    """``E1,E2`` as a list; empty or ``*``: every event type (None)."""
    wanted = [t.strip() for t in (text or "").split(",") if t.strip()]
    if not wanted or wanted == ["*"]:
        return None
    unknown = [t for t in wanted if t not in EVENT_TYPES]
    if unknown:
        raise ValidationFailed(
            f"unknown event type {', '.join(unknown)}",
            fields={"events": "one or more of " + ", ".join(EVENT_TYPES)},
        )
    return sorted(set(wanted))


@dataclass(frozen=True)
class Created:
    endpoint: WebhookEndpoint
    secret: str  # shown once, never again


def add_endpoint(
    session: Session,
    settings: Settings,
    workspace_id: int,
    url: str,
    *,
    events: str | None = None,
    rate: float | None = None,
    description: str | None = None,
) -> Created:
    url = url.strip()
    if len(url) > 2000:
        raise ValidationFailed("the URL is too long", fields={"url": "at most 2,000 characters"})
    try:
        guard_for(settings).check(url)
    except GuardError as exc:
        raise ValidationFailed(exc.reason, fields={"url": exc.reason}) from None
    if rate is not None and not 0 < rate <= MAX_RATE:
        raise ValidationFailed(
            "the rate limit is out of range", fields={"rate": f"between 0 and {MAX_RATE:g}"}
        )
    secret = new_secret()
    row = WebhookEndpoint(
        workspace_id=workspace_id,
        url=url,
        description=description,
        event_types=parse_event_types(events),
        rate_limit=rate,
        secret_encrypted=encrypt(settings, secret),
        enabled=True,
    )
    session.add(row)
    session.flush()
    return Created(row, secret)


def get_endpoint(session: Session, workspace_id: int, endpoint_id: int) -> WebhookEndpoint:
    row = session.get(WebhookEndpoint, endpoint_id)
    if row is None or row.workspace_id != workspace_id:
        raise NotFound(f"no webhook endpoint {endpoint_id}", hint="`flywheel webhooks list` shows the ids")
    return row


def list_endpoints(session: Session, workspace_id: int) -> list[WebhookEndpoint]:
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.workspace_id == workspace_id)
            .order_by(WebhookEndpoint.id)
        )
    )


def rotate_secret(session: Session, settings: Settings, workspace_id: int, endpoint_id: int) -> Created:
    """A new secret; the current one keeps signing beside it for 24 hours so receivers can switch."""
    row = get_endpoint(session, workspace_id, endpoint_id)
    secret = new_secret()
    row.previous_secret_encrypted = row.secret_encrypted
    row.previous_secret_until = utcnow() + ROTATION
    row.secret_encrypted = encrypt(settings, secret)
    note(session, row, "secret_rotated", "the signing secret was rotated; the old one signs for 24 hours too")
    return Created(row, secret)


def live_secrets(settings: Settings, row: Any, now: datetime) -> tuple[str, ...]:
    """The secrets a message is signed with now: the current one, and the previous one during a
    rotation. ``row`` has the endpoint's three secret columns."""
    current = decrypt(settings, row.secret_encrypted)
    if row.previous_secret_encrypted and row.previous_secret_until and row.previous_secret_until > now:
        return (current, decrypt(settings, row.previous_secret_encrypted))
    return (current,)


def set_enabled(session: Session, workspace_id: int, endpoint_id: int, enabled: bool, reason: str) -> int:
    """Disable (its pending messages wait, paused) or enable (they are due now). Returns how many
    deliveries were paused or resumed."""
    row = get_endpoint(session, workspace_id, endpoint_id)
    row.enabled = enabled
    row.disabled_reason = None if enabled else reason
    row.failing_since = None
    before, after = ("paused", "pending") if enabled else ("pending", "paused")
    values: dict[str, Any] = {"status": after, "lease_holder": None}
    if enabled:
        values |= {"next_attempt_at": utcnow(), "attempts": 0}
    moved = session.connection().execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == before)
        .values(**values)
    )
    note(session, row, "enabled" if enabled else "disabled", reason)
    return int(moved.rowcount or 0)


def note(session: Session, row: WebhookEndpoint, kind: str, text: str, **details: Any) -> None:
    session.add(
        WebhookNotice(
            workspace_id=row.workspace_id,
            endpoint_id=row.id,
            kind=kind,
            text=text[:500],
            details=details or None,
        )
    )


def notices(session: Session, workspace_id: int, limit: int = 20) -> list[WebhookNotice]:
    return list(
        session.scalars(
            select(WebhookNotice)
            .where(WebhookNotice.workspace_id == workspace_id)
            .order_by(WebhookNotice.id.desc())
            .limit(limit)
        )
    )
