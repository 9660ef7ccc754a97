"""The inbound webhook receivers' rules, apart from any web framework.

Two servers answer ``POST /hooks/...`` with these rules: the Flask blueprint (``plugin/web/hooks.py``:
the development server and Flask's test client) and the asynchronous receiver that ``flywheel serve``
runs in production (``plugin/web/hooks_asgi.py``). Both build a :class:`HookRequest`, call
:meth:`HookIntake.check` and either answer at once or store the :class:`Pending` delivery, then
answer :meth:`HookIntake.stored`.

Each request is checked in this order, so a forged request learns nothing and costs little: the
sender's flood guard (429), size (413, checked by the server as it reads), signature over the raw
bytes (401), body (400 not JSON, 422 a field is wrong), then store. The workspace is named by
``?workspace=SLUG`` (default: the default workspace); its id and secret are cached per process for a
few seconds (``HookSecretCache``).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine

from connectors.errors import InvalidRecord, NoActivity, SignatureError
from connectors.records import ActivityRecord, parse_record
from connectors.sources import signatures
from connectors.sources.discourse import parse_discourse
from connectors.sources.github import parse_github
from connectors.sources.slack import parse_slack, slack_challenge
from plugin.errors import AuthError, FlywheelError
from plugin.services.hook_secrets import HookSecretCache, check_source
from plugin.services.ingest import Delivery
from plugin.settings import Settings
from plugin.web.hook_guard import HookGuard
from plugin.web.problems import problem_body, too_large_detail

MAX_GENERIC_RECORDS = 1_000
ROUTES = ("github", "discourse", "slack", "generic")

#: Metric outcome of each refusal (``flywheel_hook_events{outcome}``).
OUTCOMES = {
    400: "invalid",
    401: "unauthorized",
    404: "unknown_source",
    413: "too_large",
    422: "invalid",
    429: "rate_limited",
}

#: Checked against when a workspace or source has no secret, so that such a request is answered
#: exactly like a wrong signature (same messages, same work) and reveals nothing configured.
_DECOY = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@dataclass(frozen=True)
class HookRequest:
    """What a receiver reads of a request. ``headers`` has lower-case names; ``name`` is the
    source name in ``/hooks/generic/<name>`` (empty on the other routes)."""

    route: str
    headers: Mapping[str, str]
    body: bytes
    address: str
    workspace: str | None = None
    name: str = ""


@dataclass
class HookAnswer:
    """A response to send: status, JSON body, extra headers, and the metric's source and outcome."""

    status: int
    body: dict[str, Any]
    source: str
    outcome: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def content_type(self) -> str:
        return "application/problem+json" if self.status >= 400 else "application/json"


@dataclass
class Pending:
    """A verified, parsed delivery to store before answering (:meth:`HookIntake.stored`)."""

    workspace_id: int
    delivery: Delivery
    source: str
    ignored: str | None = None  # why a well-formed delivery carries no activity


def refusal(status: int, source: str, title: str, detail: str, **extra: Any) -> HookAnswer:
    return HookAnswer(
        status, problem_body(status, title, detail, **extra), source, OUTCOMES.get(status, "rejected")
    )


def metric_source(route: str, name: str, status: int) -> str:
    """The metric's source label. A generic source's own name only once its signature was
    verified: a caller cannot make new label values (and memory) by posting to made-up names."""
    if route != "generic":
        return route
    return f"generic:{name}" if status < 300 and name else "generic"


class HookIntake:
    """One per web process: the secret cache and the flood guard it shares between requests."""

    def __init__(self, engine: Engine, settings: Settings, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.secrets = HookSecretCache()
        self.guard = HookGuard(settings.hooks_rate_limit)

    def too_large(self, route: str) -> HookAnswer:
        """As the Flask app answers any body over its limit (``plugin.web.api.core``)."""
        return refusal(413, route, "Request Entity Too Large", too_large_detail(self.settings.max_hook_body))

    def admit(self, route: str, address: str) -> HookAnswer | None:
        """The flood guard, asked before the body is read: None, or the 429 to answer."""
        wait = self.guard.allow(address)
        if not wait:
            return None
        answer = refusal(
            429,
            route,
            "Too many requests",
            f"this address sends faster than {self.settings.hooks_rate_limit}; retry later",
        )
        answer.headers["Retry-After"] = str(int(wait))
        return answer

    def check(self, req: HookRequest) -> HookAnswer | Pending:
        """Answer now (refused, a Slack URL check) or the delivery to store."""
        if req.route == "generic":
            req = replace(req, name=req.name.lower())
            try:
                check_source(f"generic:{req.name}")
            except FlywheelError:
                return refusal(
                    404, "generic", "Unknown source", "source names are letters, digits, '-' and '_'"
                )
        reader = _READERS[req.route]
        try:
            return reader(self, req)
        except _Refused as refused:
            return refused.answer

    def stored(self, pending: Pending) -> HookAnswer:
        """The 200 answer once ``pending`` was stored."""
        delivery = pending.delivery
        if delivery.already_received:
            body: dict[str, Any] = {"status": "duplicate", "stored": 0}
        elif pending.ignored is not None:
            body = {"status": "ignored", "reason": pending.ignored, "stored": 0}
        else:
            body = {"status": "stored", "stored": delivery.stored, "duplicates": delivery.duplicates}
        return HookAnswer(200, body, pending.source, body["status"])

    # -- the shared steps ------------------------------------------------------------------------

    def _secret(self, req: HookRequest, source: str) -> tuple[int, str]:
        """(workspace id, secret); (-1, a random decoy) when there is none to check against."""
        slug = req.workspace or self.settings.default_workspace
        found = self.secrets.lookup(self.engine, self.settings, slug, source)
        return found if found is not None else (-1, _DECOY)

    def _verified(self, req: HookRequest, source: str, verify: Callable[[str, bytes], None]) -> int:
        """The workspace id once the signature holds; else a 401, the same whether or not a secret
        is configured."""
        try:
            workspace_id, secret = self._secret(req, source)
            verify(secret, req.body)
            if workspace_id < 0:
                raise SignatureError("no signature matches the body")
        except (SignatureError, AuthError) as exc:
            raise _Refused(refusal(401, req.route, "Signature cannot be verified", str(exc))) from None
        return workspace_id

    def _receive(
        self,
        req: HookRequest,
        source: str,
        verify: Callable[[str, bytes], None],
        delivery_id: str | None,
        event: str | None,
        parse: Callable[[Any], list[ActivityRecord]],
    ) -> Pending:
        workspace_id = self._verified(req, source, verify)
        label = metric_source(req.route, req.name, 200)
        try:
            records = parse(_json_body(req.body))
        except NoActivity as exc:
            return Pending(workspace_id, Delivery(source, delivery_id, event, []), label, exc.reason)
        except InvalidRecord as exc:
            status = 400 if exc.field == "body" else 422
            raise _Refused(
                refusal(status, req.route, "Malformed payload", str(exc), errors={exc.field: exc.reason})
            ) from None
        return Pending(workspace_id, Delivery(source, delivery_id, event, records), label)

    def _slack_verify(self, req: HookRequest) -> Callable[[str, bytes], None]:
        def verify(secret: str, raw: bytes) -> None:
            signatures.verify_slack(
                secret,
                raw,
                req.headers.get("x-slack-request-timestamp"),
                req.headers.get("x-slack-signature"),
                self.clock(),
            )

        return verify


class _Refused(Exception):
    def __init__(self, answer: HookAnswer) -> None:
        super().__init__(answer.status)
        self.answer = answer


def _json_body(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRecord("body", f"not valid JSON ({exc.msg})") from None


def _mapping(obj: Any) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise InvalidRecord("body", "must be a JSON object")
    return obj


def _missing(route: str, header: str, what: str) -> _Refused:
    return _Refused(refusal(400, route, "Missing header", f"{header} names {what}"))


def _github(intake: HookIntake, req: HookRequest) -> HookAnswer | Pending:
    event = req.headers.get("x-github-event", "")
    delivery = req.headers.get("x-github-delivery")
    if not event:
        raise _missing("github", "X-GitHub-Event", "the event")
    return intake._receive(
        req,
        "github",
        lambda secret, body: signatures.verify_github(secret, body, req.headers.get("x-hub-signature-256")),
        delivery,
        event,
        lambda obj: parse_github(event, _mapping(obj), delivery),
    )


def _discourse(intake: HookIntake, req: HookRequest) -> HookAnswer | Pending:
    event = req.headers.get("x-discourse-event", "")
    instance = req.headers.get("x-discourse-instance")
    if not event:
        raise _missing("discourse", "X-Discourse-Event", "the event")
    return intake._receive(
        req,
        "discourse",
        lambda secret, body: signatures.verify_discourse(
            secret, body, req.headers.get("x-discourse-event-signature")
        ),
        req.headers.get("x-discourse-event-id"),
        event,
        lambda obj: parse_discourse(event, _mapping(obj), instance),
    )


def _slack(intake: HookIntake, req: HookRequest) -> HookAnswer | Pending:
    try:
        envelope = orjson.loads(req.body)
    except orjson.JSONDecodeError:
        envelope = None
    verify = intake._slack_verify(req)
    if isinstance(envelope, dict) and slack_challenge(envelope) is not None:
        intake._verified(req, "slack", verify)
        return HookAnswer(200, {"challenge": slack_challenge(envelope)}, "slack", "accepted")
    delivery = envelope.get("event_id") if isinstance(envelope, dict) else None
    return intake._receive(
        req,
        "slack",
        verify,
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


def _generic(intake: HookIntake, req: HookRequest) -> HookAnswer | Pending:
    name = req.name
    return intake._receive(
        req,
        f"generic:{name}",
        lambda secret, body: signatures.verify_standard_webhooks(
            secret,
            body,
            req.headers.get("webhook-id"),
            req.headers.get("webhook-timestamp"),
            req.headers.get("webhook-signature"),
            intake.clock(),
        ),
        req.headers.get("webhook-id"),
        "generic",
        lambda obj: _generic_records(name, obj),
    )


_READERS: dict[str, Callable[[HookIntake, HookRequest], HookAnswer | Pending]] = {
    "github": _github,
    "discourse": _discourse,
    "slack": _slack,
    "generic": _generic,
}
