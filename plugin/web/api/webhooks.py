"""``/api/v1/webhooks``: endpoints (register, read, change, rotate the secret, recover), the
delivery log, replays and notices. A signing secret is shown once, in the answer that made it."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import marshmallow as ma
from flask import request
from flask_smorest import abort
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.db.base import table_of
from plugin.db.ids import MAX_ID
from plugin.db.models import WebhookDelivery, WebhookEndpoint, WebhookNotice
from plugin.errors import NotFound, ValidationFailed
from plugin.services.webhook_endpoints import MAX_RATE, add_endpoint, get_endpoint, rotate_secret, set_enabled
from plugin.services.webhook_outbox import deliveries, recover, replay
from plugin.web.api.core import (
    PageArgs,
    blueprint,
    current,
    decode_cursor,
    guarded,
    if_match,
    page_schema,
    paged,
)
from plugin.web.context import engine, now, settings
from webhooks.events import EVENT_TYPES

blp = blueprint("webhooks", "/webhooks", "Outgoing webhooks: endpoints, deliveries, replays, notices")
F = ma.fields
STATUSES = ("pending", "delivered", "failed", "paused")
ETAG_HEADER = {
    "ETag": {
        "description": "The endpoint's settings as read; send it back as `If-Match` to change them",
        "schema": {"type": "string"},
    }
}
IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": True,
    "description": "the ETag of the endpoint as you read it (without it: 428; a stale one: 412)",
    "schema": {"type": "string"},
}


def plain_text(value: str) -> None:
    """Text a person typed: no control characters, and encodable (no lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ma.ValidationError("not valid Unicode text") from None
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ma.ValidationError("control characters are not allowed")


NO_CONTROLS = ma.validate.Regexp(r"^[^\x00-\x1f\x7f]*$", error="control characters are not allowed")
URL_SHAPE = ma.validate.Regexp(r"^https?://[^\x00-\x20\x7f]+$", error="an http(s):// URL without spaces")


def _text(low: int, high: int, shape: ma.validate.Regexp = NO_CONTROLS, **kwargs: Any) -> ma.fields.String:
    """A string field documented with its length and pattern, and checked to be plain text."""
    return F.String(validate=[ma.validate.Length(low, high), shape, plain_text], **kwargs)


def after_id(cursor: str | None, *, wide: bool = False) -> int | None:
    """The id a cursor of an id-ordered page carries (400 on anything this API did not give)."""
    key = decode_cursor(cursor, [int], wide=wide)
    return None if key is None else int(key[0])


ABOVE_ZERO = {"exclusiveMinimum": True}  # apispec leaves Range's min_inclusive=False out
EventType = F.String(validate=ma.validate.OneOf(EVENT_TYPES))
EVENTS_DOC = {"description": "the event types sent to it; null: every event type"}


class WebhookEndpointItem(ma.Schema):
    id = F.Integer(required=True)
    url = F.String(required=True)
    description = F.String(required=True, allow_none=True)
    event_types = F.List(F.String(), required=True, allow_none=True, metadata=EVENTS_DOC)
    rate_limit = F.Float(
        required=True, allow_none=True, metadata={"description": "messages per second; null: no limit"}
    )
    enabled = F.Boolean(required=True)
    disabled_reason = F.String(required=True, allow_none=True)
    failing_since = F.AwareDateTime(required=True, allow_none=True)
    rotating_until = F.AwareDateTime(
        required=True,
        allow_none=True,
        metadata={"description": "until when the previous secret signs too, after a rotation"},
    )
    created_at = F.AwareDateTime(required=True)
    deliveries = F.Dict(
        keys=F.String(),
        values=F.Integer(),
        required=True,
        metadata={"description": "how many of its deliveries are pending, delivered, failed, paused"},
    )


class WebhookEndpointCreated(WebhookEndpointItem):
    secret = F.String(
        required=True,
        metadata={"description": "the signing secret (whsec_...): shown this once, never again"},
    )


EndpointPage = page_schema(WebhookEndpointItem, "WebhookEndpointPage")


def _settings_of(row: WebhookEndpoint) -> dict[str, Any]:
    return {
        "url": row.url,
        "description": row.description,
        "event_types": row.event_types,
        "rate_limit": row.rate_limit,
        "enabled": row.enabled,
        "disabled_reason": row.disabled_reason,
    }


def _etag(row: WebhookEndpoint) -> str:
    digest = hashlib.sha256(json.dumps(_settings_of(row), sort_keys=True).encode()).hexdigest()
    return f'"{digest[:32]}"'


def _counts(session: Session, ids: list[int]) -> dict[int, dict[str, int]]:
    d = WebhookDelivery
    out: dict[int, dict[str, int]] = {i: {} for i in ids}
    if ids:
        for endpoint_id, status, n in session.execute(
            select(d.endpoint_id, d.status, func.count())
            .where(d.endpoint_id.in_(ids))
            .group_by(d.endpoint_id, d.status)
        ):
            out[endpoint_id][status] = int(n)
    return out


def _endpoint(row: WebhookEndpoint, counts: dict[str, int]) -> dict[str, Any]:
    until = row.previous_secret_until
    return _settings_of(row) | {
        "id": row.id,
        "failing_since": row.failing_since,
        "rotating_until": until if until is not None and until > now() else None,
        "created_at": row.created_at,
        "deliveries": counts,
    }


def _answer(session: Session, row: WebhookEndpoint) -> dict[str, Any]:
    return _endpoint(row, _counts(session, [row.id])[row.id])


@blp.get("/endpoints")
@guarded(blp, "webhooks:manage", not_found=False)
@blp.arguments(PageArgs, location="query", unknown=ma.RAISE)
@blp.response(200, EndpointPage)
@blp.alt_response(400, response="BAD_REQUEST")
def list_endpoints(args: dict[str, Any]) -> dict[str, Any]:
    """The workspace's endpoints by id, with their state and deliveries by status (no secrets)."""
    after = after_id(args["cursor"])
    e = WebhookEndpoint
    with Session(engine()) as session:
        stmt = select(e).where(e.workspace_id == current().workspace_id)
        if after is not None:
            stmt = stmt.where(e.id > after)
        rows = list(session.scalars(stmt.order_by(e.id).limit(args["limit"] + 1)))
        counts = _counts(session, [r.id for r in rows[: args["limit"]]])
        items = [_endpoint(r, counts.get(r.id, {})) for r in rows]
    return paged(items, args["limit"], lambda r: [r["id"]])


class WebhookEndpointBody(ma.Schema):
    url = _text(1, 2000, URL_SHAPE, required=True, metadata={"description": "https://...: a public address"})
    event_types = F.List(
        EventType, allow_none=True, load_default=None, validate=ma.validate.Length(min=1), metadata=EVENTS_DOC
    )
    description = _text(0, 500, allow_none=True, load_default=None)
    rate_limit = F.Float(
        allow_none=True,
        load_default=None,
        validate=ma.validate.Range(0, MAX_RATE, min_inclusive=False),
        metadata={"description": "at most this many messages per second; null: no limit", **ABOVE_ZERO},
    )


def _checked_url(url: str) -> None:
    """What the SSRF guard cannot parse is refused as bad input, never answered with a 500."""
    try:
        urlsplit(url.strip()).port  # noqa: B018 (parsing it is the check)
    except ValueError:
        raise ValidationFailed("the URL cannot be parsed", fields={"url": "not a valid URL"}) from None


@blp.post("/endpoints")
@guarded(blp, "webhooks:manage", not_found=False)
@blp.arguments(WebhookEndpointBody)
@blp.response(201, WebhookEndpointCreated, headers=ETAG_HEADER)
def create_endpoint(body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Register an endpoint. Its URL must reach a public address (the SSRF guard resolves it).
    The answer carries the signing secret: keep it, it is never shown again."""
    _checked_url(body["url"])
    events = ",".join(body["event_types"]) if body["event_types"] else None
    with Session(engine()) as session:
        try:
            created = add_endpoint(
                session,
                settings(),
                current().workspace_id,
                body["url"],
                events=events,
                rate=body["rate_limit"],
                description=body["description"],
            )
        except ValueError:  # an address the resolver cannot even encode (e.g. a label too long)
            raise ValidationFailed(
                "the URL's host cannot be resolved", fields={"url": "not a valid host"}
            ) from None
        session.commit()
        data = _answer(session, created.endpoint) | {"secret": created.secret}
        etag = _etag(created.endpoint)
    return data, 201, {"ETag": etag}


@blp.get("/endpoints/<int:endpoint_id>")
@guarded(blp, "webhooks:manage")
@blp.response(200, WebhookEndpointItem, headers=ETAG_HEADER)
def get_endpoint_(endpoint_id: int) -> tuple[dict[str, Any], int, dict[str, str]]:
    """One endpoint (no secret), with an ``ETag`` to send back as ``If-Match`` when changing it."""
    with Session(engine()) as session:
        row = get_endpoint(session, current().workspace_id, endpoint_id)
        return _answer(session, row), 200, {"ETag": _etag(row)}


class WebhookEndpointPatch(ma.Schema):
    enabled = F.Boolean(
        metadata={
            "description": "false: stop sending (its messages wait); true: send again, waiting ones first"
        }
    )
    event_types = F.List(EventType, allow_none=True, validate=ma.validate.Length(min=1), metadata=EVENTS_DOC)
    description = _text(0, 500, allow_none=True)
    rate_limit = F.Float(
        allow_none=True,
        validate=ma.validate.Range(0, MAX_RATE, min_inclusive=False),
        metadata={"description": "messages per second; null: no limit", **ABOVE_ZERO},
    )


@blp.patch("/endpoints/<int:endpoint_id>")
@guarded(blp, "webhooks:manage")
@blp.arguments(WebhookEndpointPatch)
@blp.response(200, WebhookEndpointItem, headers=ETAG_HEADER)
@blp.alt_response(412, response="PRECONDITION_FAILED")
@blp.alt_response(428, response="PRECONDITION_REQUIRED")
@blp.doc(parameters=[IF_MATCH])
def patch_endpoint(body: dict[str, Any], endpoint_id: int) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Enable or disable an endpoint, or change its event types, description or rate limit; fields
    left out stay as they are. Send ``If-Match`` with the ETag you read: if the endpoint changed
    since (someone else, or the worker disabling it), the answer is 412 and nothing changes."""
    expected = request.headers.get("If-Match")
    if not expected:
        abort(
            428, message="send If-Match with the ETag of GET the endpoint, so a concurrent edit is not lost"
        )
    ws = current().workspace_id
    e = table_of(WebhookEndpoint)
    with Session(engine()) as session:
        # Touch the row first: it takes its write lock, so two edits with one ETag cannot both pass.
        touched = session.connection().execute(
            e.update().where(e.c.id == endpoint_id, e.c.workspace_id == ws).values(enabled=e.c.enabled)
        )
        if not touched.rowcount:
            raise NotFound(f"no webhook endpoint {endpoint_id}")
        row = get_endpoint(session, ws, endpoint_id)
        if not if_match(expected, _etag(row)):
            abort(412, message="the endpoint changed since you read it; read it again and retry")
        if "description" in body:
            row.description = body["description"]
        if "event_types" in body:
            row.event_types = sorted(set(body["event_types"])) if body["event_types"] else None
        if "rate_limit" in body:
            row.rate_limit = body["rate_limit"]
        if "enabled" in body and body["enabled"] != row.enabled:
            how = "enabled" if body["enabled"] else "disabled"
            set_enabled(
                session, ws, endpoint_id, body["enabled"], f"{how} through the API ({current().actor})"
            )
        session.commit()
        return _answer(session, row), 200, {"ETag": _etag(row)}


class WebhookSecretRotated(ma.Schema):
    id = F.Integer(required=True)
    secret = F.String(
        required=True, metadata={"description": "the new signing secret: shown this once, never again"}
    )
    previous_secret_until = F.AwareDateTime(
        required=True, allow_none=True, metadata={"description": "the old secret signs beside it until then"}
    )


@blp.post("/endpoints/<int:endpoint_id>/rotate-secret")
@guarded(blp, "webhooks:manage")
@blp.response(200, WebhookSecretRotated)
def rotate(endpoint_id: int) -> dict[str, Any]:
    """A new signing secret, shown once; the old one keeps signing beside it for 24 hours."""
    with Session(engine()) as session:
        created = rotate_secret(session, settings(), current().workspace_id, endpoint_id)
        session.commit()
        return {
            "id": created.endpoint.id,
            "secret": created.secret,
            "previous_secret_until": created.endpoint.previous_secret_until,
        }


class WebhookRecoverBody(ma.Schema):
    since = F.AwareDateTime(
        required=True,
        default_timezone=UTC,
        metadata={"description": "resend what failed since then (UTC unless an offset is given)"},
    )


class WebhookQueued(ma.Schema):
    deliveries_queued = F.Integer(required=True, metadata={"description": "deliveries due again now"})


class WebhookRecovered(WebhookQueued):
    endpoint_id = F.Integer(required=True)
    since = F.AwareDateTime(required=True)


@blp.post("/endpoints/<int:endpoint_id>/recover")
@guarded(blp, "webhooks:manage")
@blp.arguments(WebhookRecoverBody)
@blp.response(202, WebhookRecovered)
def recover_(body: dict[str, Any], endpoint_id: int) -> dict[str, Any]:
    """Resend every message whose last attempt to this endpoint failed since ``since``, with their
    original ids; the delivery worker sends them."""
    try:
        since: datetime = body["since"].astimezone(UTC)
    except OverflowError:
        raise ValidationFailed("the time is out of range", fields={"since": "a time after year 1"}) from None
    with Session(engine()) as session:
        moved = recover(session.connection(), current().workspace_id, endpoint_id, since)
        session.commit()
    return {"endpoint_id": endpoint_id, "since": since, "deliveries_queued": moved}


class WebhookDeliveryArgs(PageArgs):
    endpoint_id = F.Integer(validate=ma.validate.Range(1, MAX_ID))
    status = F.String(validate=ma.validate.OneOf(STATUSES))
    msg_id = F.String(
        validate=ma.validate.Length(1, 40), metadata={"description": "one message's deliveries"}
    )


class WebhookDeliveryItem(ma.Schema):
    id = F.Integer(required=True)
    msg_id = F.String(
        required=True, metadata={"description": "the webhook-id header, the same on every attempt"}
    )
    event_type = F.String(required=True)
    endpoint_id = F.Integer(required=True)
    status = F.String(required=True, metadata={"description": "pending, delivered, failed or paused"})
    attempts = F.Integer(required=True)
    last_status = F.Integer(required=True, allow_none=True, metadata={"description": "the last HTTP answer"})
    last_error = F.String(required=True, allow_none=True)
    last_response = F.String(
        required=True,
        allow_none=True,
        metadata={"description": "the first bytes of the last answer, secret-looking values masked"},
    )
    created_at = F.AwareDateTime(required=True)
    next_attempt_at = F.AwareDateTime(
        required=True,
        allow_none=True,
        metadata={"description": "when it is due (null once delivered or failed)"},
    )
    delivered_at = F.AwareDateTime(required=True, allow_none=True)


DeliveryPage = page_schema(WebhookDeliveryItem, "WebhookDeliveryPage")


@blp.get("/deliveries")
@guarded(blp, "webhooks:manage", not_found=False)
@blp.arguments(WebhookDeliveryArgs, location="query", unknown=ma.RAISE)
@blp.response(200, DeliveryPage)
@blp.alt_response(400, response="BAD_REQUEST")
def list_deliveries(args: dict[str, Any]) -> dict[str, Any]:
    """The delivery log, newest first: one row per message and endpoint, with its last outcome."""
    with engine().connect() as conn:
        rows = deliveries(
            conn, current().workspace_id, endpoint_id=args.get("endpoint_id"), status=args.get("status"),
            msg_id=args.get("msg_id"), before_id=after_id(args["cursor"], wide=True), limit=args["limit"] + 1,
        )  # fmt: skip
    return paged(rows, args["limit"], lambda r: [r["id"]])


class WebhookReplayBody(ma.Schema):
    endpoint_id = F.Integer(
        validate=ma.validate.Range(1, MAX_ID),
        metadata={"description": "only to this endpoint (default: every enabled endpoint it went to)"},
    )


class WebhookReplayed(WebhookQueued):
    msg_id = F.String(required=True)


def _msg_id(text: str) -> str:
    if not 0 < len(text) <= 40 or not all(c.isascii() and (c.isalnum() or c in "_-") for c in text):
        raise NotFound(f"no webhook message {text[:40]!r}")
    return text


@blp.post("/messages/<string:msg_id>/replay")
@guarded(blp, "webhooks:manage")
@blp.arguments(WebhookReplayBody, required=False)
@blp.response(202, WebhookReplayed)
def replay_(body: dict[str, Any], msg_id: str) -> dict[str, Any]:
    """Send a message again with its original ``webhook-id``, whatever became of it, to every
    enabled endpoint it went to (or to one); the delivery worker sends it."""
    with Session(engine()) as session:
        moved = replay(session.connection(), current().workspace_id, _msg_id(msg_id), body.get("endpoint_id"))
        session.commit()
    return {"msg_id": msg_id, "deliveries_queued": moved}


class WebhookNoticeArgs(PageArgs):
    endpoint_id = F.Integer(validate=ma.validate.Range(1, MAX_ID))


class WebhookNoticeItem(ma.Schema):
    id = F.Integer(required=True)
    endpoint_id = F.Integer(required=True, allow_none=True)
    kind = F.String(required=True, metadata={"description": "disabled, enabled, secret_rotated, gone..."})
    text = F.String(required=True)
    details = F.Dict(required=True, allow_none=True)
    created_at = F.AwareDateTime(required=True)


NoticePage = page_schema(WebhookNoticeItem, "WebhookNoticePage")


@blp.get("/notices")
@guarded(blp, "webhooks:manage", not_found=False)
@blp.arguments(WebhookNoticeArgs, location="query", unknown=ma.RAISE)
@blp.response(200, NoticePage)
@blp.alt_response(400, response="BAD_REQUEST")
def list_notices(args: dict[str, Any]) -> dict[str, Any]:
    """What happened to endpoints, newest first: disabled after failures or 410 Gone, re-enabled,
    secrets rotated."""
    after = after_id(args["cursor"])
    n = table_of(WebhookNotice)
    stmt = select(n.c.id, n.c.endpoint_id, n.c.kind, n.c.text, n.c.details, n.c.created_at).where(
        n.c.workspace_id == current().workspace_id
    )
    if args.get("endpoint_id") is not None:
        stmt = stmt.where(n.c.endpoint_id == args["endpoint_id"])
    if after is not None:
        stmt = stmt.where(n.c.id < after)
    with engine().connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(stmt.order_by(n.c.id.desc()).limit(args["limit"] + 1))]
    return paged(rows, args["limit"], lambda r: [r["id"]])
