"""Inbound webhook receivers: verify, de-duplicate, parse, store.

Each platform's request is checked in this order, so a forged request learns nothing and costs
little: size (413, by Flask's MAX_CONTENT_LENGTH), signature over the raw bytes (401), body (400
not JSON, 422 a field is wrong), then store. The activities and the delivery id are written in one
transaction, the delivery id with INSERT ... ON CONFLICT DO NOTHING: a delivery already recorded
(a platform's retry, even one arriving at the same moment) rolls it back and is answered 200
"duplicate" with nothing stored, and a delivery that failed to store is not recorded, so its retry
stores it. The workspace is named by ``?workspace=SLUG`` (default: the default workspace); its id
and secret are cached per process for a few seconds (``HookSecretCache``).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from flask import Blueprint, current_app, g, jsonify, request

from connectors.errors import InvalidRecord, NoActivity, SignatureError
from connectors.records import ActivityRecord, parse_record
from connectors.sources import signatures
from connectors.sources.discourse import parse_discourse
from connectors.sources.github import parse_github
from connectors.sources.slack import parse_slack, slack_challenge
from plugin.errors import AuthError, FlywheelError
from plugin.services.hook_secrets import HookSecretCache, check_source
from plugin.services.ingest import Delivery, DeliveryWriter
from plugin.web.app import problem
from plugin.web.context import engine as _engine
from plugin.web.context import now as _now
from plugin.web.context import settings as _settings

hooks_bp = Blueprint("hooks", __name__, url_prefix="/hooks")
MAX_GENERIC_RECORDS = 1_000


#: Checked against when a workspace or source has no secret, so that such a request is answered
#: exactly like a wrong signature (same messages, same work) and reveals nothing configured.
_DECOY = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _secret(source: str) -> tuple[int, str]:
    """(workspace id, secret); (-1, a random decoy) when there is none to check against."""
    slug = request.args.get("workspace") or _settings().default_workspace
    cache: HookSecretCache = current_app.extensions.setdefault("flywheel.hook_secrets", HookSecretCache())
    found = cache.lookup(_engine(), _settings(), slug, source)
    return found if found is not None else (-1, _DECOY)


@hooks_bp.before_request
def _guard() -> Any:
    """Per sending address, this process's budget (``FLYWHEEL_HOOKS_RATE_LIMIT``): 429 beyond it."""
    wait = current_app.extensions["flywheel.hook_guard"].allow(request.remote_addr or "")
    if not wait:
        return None
    body, status = problem(
        429,
        "Too many requests",
        f"this address sends faster than {_settings().hooks_rate_limit}; retry later",
    )
    response = current_app.make_response((body, status))
    response.headers["Retry-After"] = str(int(wait))
    return response


def _store(workspace_id: int, delivery: Delivery) -> None:
    writer = current_app.extensions.get("flywheel.delivery_writer")
    if writer is None:
        writer = current_app.extensions.setdefault("flywheel.delivery_writer", DeliveryWriter(_engine()))
    writer.store(workspace_id, delivery)


_DUPLICATE = {"status": "duplicate", "stored": 0}


def _unauthorized(exc: SignatureError | AuthError) -> Any:
    """401 with the signature's own complaint (the same whether or not a secret is configured)."""
    return problem(401, "Signature cannot be verified", str(exc))


def _json_body(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRecord("body", f"not valid JSON ({exc.msg})") from None


def _receive(
    source: str,
    verify: Callable[[str, bytes], None],
    delivery_id: str | None,
    event: str | None,
    parse: Callable[[Any], list[ActivityRecord]],
) -> Any:
    body = request.get_data(cache=True)
    try:
        workspace_id, secret = _secret(source)
        verify(secret, body)
        if workspace_id < 0:
            raise SignatureError("no signature matches the body")
    except (SignatureError, AuthError) as exc:
        return _unauthorized(exc)
    try:
        records = parse(_json_body(body))
    except NoActivity as exc:
        delivery = Delivery(source, delivery_id, event, [])
        _store(workspace_id, delivery)
        if delivery.already_received:
            return _answer(_DUPLICATE)
        return _answer({"status": "ignored", "reason": exc.reason, "stored": 0})
    except InvalidRecord as exc:
        status = 400 if exc.field == "body" else 422
        return problem(status, "Malformed payload", str(exc), errors={exc.field: exc.reason})
    delivery = Delivery(source, delivery_id, event, records)
    _store(workspace_id, delivery)
    if delivery.already_received:
        return _answer(_DUPLICATE)
    return _answer({"status": "stored", "stored": delivery.stored, "duplicates": delivery.duplicates})


def _answer(body: dict[str, Any]) -> Any:
    """The 200 answer; its outcome is noted for the metrics (plugin/web/ops.py) on the request."""
    g.flywheel_hook_outcome = body["status"]
    return jsonify(body)


def _mapping(obj: Any) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise InvalidRecord("body", "must be a JSON object")
    return obj


@hooks_bp.post("/github")
def github() -> Any:
    event = request.headers.get("X-GitHub-Event", "")
    delivery = request.headers.get("X-GitHub-Delivery")
    if not event:
        return problem(400, "Missing header", "X-GitHub-Event names the event")
    return _receive(
        "github",
        lambda secret, body: signatures.verify_github(
            secret, body, request.headers.get("X-Hub-Signature-256")
        ),
        delivery,
        event,
        lambda obj: parse_github(event, _mapping(obj), delivery),
    )


@hooks_bp.post("/discourse")
def discourse() -> Any:
    event = request.headers.get("X-Discourse-Event", "")
    instance = request.headers.get("X-Discourse-Instance")
    if not event:
        return problem(400, "Missing header", "X-Discourse-Event names the event")
    return _receive(
        "discourse",
        lambda secret, body: signatures.verify_discourse(
            secret, body, request.headers.get("X-Discourse-Event-Signature")
        ),
        request.headers.get("X-Discourse-Event-Id"),
        event,
        lambda obj: parse_discourse(event, _mapping(obj), instance),
    )


def _verify_slack(secret: str, raw: bytes) -> None:
    signatures.verify_slack(
        secret,
        raw,
        request.headers.get("X-Slack-Request-Timestamp"),
        request.headers.get("X-Slack-Signature"),
        _now(),
    )


@hooks_bp.post("/slack")
def slack() -> Any:
    body = request.get_data(cache=True)
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError:
        envelope = None
    delivery = envelope.get("event_id") if isinstance(envelope, dict) else None
    if isinstance(envelope, dict) and slack_challenge(envelope) is not None:
        try:
            workspace_id, secret = _secret("slack")
            _verify_slack(secret, body)
            if workspace_id < 0:
                raise SignatureError("X-Slack-Signature does not match the body")
        except (SignatureError, AuthError) as exc:
            return _unauthorized(exc)
        return jsonify({"challenge": slack_challenge(envelope)})
    return _receive(
        "slack",
        _verify_slack,
        delivery if isinstance(delivery, str) else None,
        envelope.get("type") if isinstance(envelope, dict) else None,
        lambda obj: parse_slack(_mapping(obj)),
    )


def _generic_records(source: str, obj: Any) -> list[ActivityRecord]:
    items = obj.get("records") if isinstance(obj, dict) and "records" in obj else obj
    items = items if isinstance(items, list) else [items]
    if len(items) > MAX_GENERIC_RECORDS:
        raise InvalidRecord("records", f"at most {MAX_GENERIC_RECORDS} records per request")
    records = []
    for index, item in enumerate(items):
        try:
            record = parse_record(item, default_source=source)
        except InvalidRecord as exc:
            raise InvalidRecord(f"records[{index}].{exc.field}", exc.reason) from None
        if record.member.email and record.member.email_verified is None:
            # A relaying tool (a form, a survey) passes on what people typed: never proof of an
            # address, so it only ever suggests a merge unless the sender vouches explicitly.
            record = record._replace(member=record.member._replace(email_verified=False))
        if record.source != source:
            raise InvalidRecord(f"records[{index}].source", f"must be {source!r} on /hooks/generic/{source}")
        records.append(record)
    return records


@hooks_bp.post("/generic/<source>")
def generic(source: str) -> Any:
    source = source.lower()
    try:
        check_source(f"generic:{source}")
    except FlywheelError:
        return problem(404, "Unknown source", "source names are letters, digits, '-' and '_'")
    return _receive(
        f"generic:{source}",
        lambda secret, body: signatures.verify_standard_webhooks(
            secret,
            body,
            request.headers.get("webhook-id"),
            request.headers.get("webhook-timestamp"),
            request.headers.get("webhook-signature"),
            _now(),
        ),
        request.headers.get("webhook-id"),
        "generic",
        lambda obj: _generic_records(source, obj),
    )
