"""A HubSpot-compatible server on 127.0.0.1: the HTTP side of the sandbox, like a payment
provider's test mode. The real ``hubspot-api-client`` talks to it with ``host=sandbox.base_url``.

It answers the CRM v3 objects, properties and lists endpoints and the v4 association endpoints
Flywheel uses, with HubSpot's status codes, error bodies and rate-limit headers, so the code that
handles HubSpot's answers is exercised rather than mocked. The state lives in
:class:`~plugin.sandbox.hubspot_store.HubSpotStore`; this module adds routing, private-app token
auth, per-token rate limits and a count of every call by (method, route)::

    with HubSpotSandbox(tokens={"tok"}, ten_second_max=190) as sandbox:
        client = HubSpot(access_token="tok", host=sandbox.base_url)

Subclasses may override :meth:`HubSpotSandbox.before_dispatch` to answer a call themselves (the
test fake injects faults there).
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wrappers import Request, Response

from plugin.sandbox.hubspot_store import (
    ASSOCIATION_BATCH_LIMIT,
    BATCH_LIMIT,
    JSON,
    HubSpotError,
    HubSpotStore,
    batch_limit_error,
    object_type,
    utc_iso,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)

TEN_SECONDS_MS = 10_000
_TYPE_PARAMS = ("objectType", "fromObjectType", "toObjectType")
# HubSpot's 401 text for a missing or unknown bearer token (seen in its answers to hubspot-api-client).
_AUTH_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find "
    "more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)


@dataclass(frozen=True)
class Reply:
    """An answer: status, JSON-ready body (None for none) and extra headers."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    """One request as the sandbox counts it: ``route`` is the route template with the object
    types filled in, e.g. ``/crm/v3/objects/contacts/batch/upsert``."""

    method: str
    route: str
    path: str
    token: str | None = field(repr=False)


@dataclass(frozen=True)
class CallRecord:
    method: str
    route: str
    path: str
    status: int


# Rate limits: https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines and
# https://developers.hubspot.com/changelog/2018-11-06-rate-limit-information-headers-will-be-included-in-http-responses
class RateLimiter:
    """Per-token limits as HubSpot counts them: a rolling ten-second window and a daily total
    (UTC days here; HubSpot's day follows the account's time zone). A refused call is not counted."""

    def __init__(
        self,
        ten_second_max: int,
        daily_max: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.ten_second_max = ten_second_max
        self.daily_max = daily_max
        self._clock = clock
        self._now = now
        self._lock = threading.Lock()
        self._windows: dict[str, deque[float]] = {}
        self._days: dict[str, tuple[date, int]] = {}

    def _usage(self, token: str) -> tuple[deque[float], int]:
        window = self._windows.setdefault(token, deque())
        cutoff = self._clock() - TEN_SECONDS_MS / 1000
        while window and window[0] <= cutoff:
            window.popleft()
        today = self._now().date()
        day, count = self._days.get(token, (today, 0))
        return window, count if day == today else 0

    def admit(self, token: str) -> tuple[str | None, float]:
        """Count one call; (the policy that refused it or None, seconds until it would pass)."""
        with self._lock:
            window, daily = self._usage(token)
            now = self._now()
            if daily >= self.daily_max:
                midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
                return "DAILY", (midnight - now).total_seconds()
            if len(window) >= self.ten_second_max:
                return "TEN_SECONDLY_ROLLING", window[0] + TEN_SECONDS_MS / 1000 - self._clock()
            window.append(self._clock())
            self._days[token] = (now.date(), daily + 1)
            return None, 0.0

    def headers(self, token: str) -> dict[str, str]:
        """The ``X-HubSpot-RateLimit-*`` headers with this token's current numbers. ``-Secondly``
        is sent as the 2018 changelog describes it but not enforced: the rolling window is."""
        with self._lock:
            window, daily = self._usage(token)
            secondly = max(1, self.ten_second_max // 10)
            last_second = sum(1 for at in window if at > self._clock() - 1)
            return {
                "X-HubSpot-RateLimit-Daily": str(self.daily_max),
                "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, self.daily_max - daily)),
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(TEN_SECONDS_MS),
                "X-HubSpot-RateLimit-Max": str(self.ten_second_max),
                "X-HubSpot-RateLimit-Remaining": str(max(0, self.ten_second_max - len(window))),
                "X-HubSpot-RateLimit-Secondly": str(secondly),
                "X-HubSpot-RateLimit-Secondly-Remaining": str(max(0, secondly - last_second)),
            }

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()
            self._days.clear()


def error_body(category: str, message: str, **extra: Any) -> JSON:
    """HubSpot's error JSON (every field optional to a careful parser).
    https://developers.hubspot.com/docs/api-reference/error-handling"""
    return {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }


def _names(request: Request, key: str) -> list[str]:
    """A list query parameter, repeated (the Python client's way) or comma-separated."""
    return [n.strip() for raw in request.args.getlist(key) for n in raw.split(",") if n.strip()]


def _batch_reply(results: list[JSON], errors: list[JSON], started: datetime, ok: int = 200) -> Reply:
    """``ok`` (200; 201 for batch create, as HubSpot's OpenAPI spec and its generated clients have
    it), or 207 MULTI-STATUS with ``errors`` and ``numErrors`` when some inputs failed."""
    body: JSON = {"status": "COMPLETE", "results": results, "startedAt": utc_iso(started)}
    body["completedAt"] = utc_iso(datetime.now(UTC))
    if errors:
        body.update({"numErrors": len(errors), "errors": errors})
    return Reply(207 if errors else ok, body)


class _Handler(WSGIRequestHandler):
    # One request per connection: an idle keep-alive connection would hold a handler thread that
    # close() could not end.
    protocol_version = "HTTP/1.0"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s", self.requestline, code)


class _Server(ThreadedWSGIServer):
    daemon_threads = False  # server_close() joins the handler threads: none outlives the sandbox


RouteHandler = Callable[[Request, dict[str, str]], Reply]


class HubSpotSandbox:
    """A stateful HubSpot on ``127.0.0.1`` (an ephemeral port unless ``port`` is given), served
    by a background thread from :meth:`start` (or ``with``) to :meth:`close`.

    ``tokens``: private-app tokens it accepts as ``Authorization: Bearer <token>``.
    ``ten_second_max`` / ``daily_max``: per-token limits (190 per rolling ten seconds and 1,000,000 a
    day unless given).
    ``retry_after_on_429``: HubSpot's docs name ``Retry-After`` for 477 and for workflow webhooks,
    not for API 429s, so by default a 429 says when to retry only through ``Remaining: 0`` and
    ``Interval-Milliseconds``; set it to also send ``Retry-After`` in whole seconds.
    """

    def __init__(
        self,
        tokens: Iterable[str] = ("sandbox-token",),
        *,
        ten_second_max: int = 190,
        daily_max: int = 1_000_000,
        store: HubSpotStore | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        retry_after_on_429: bool = False,
    ) -> None:
        self.tokens = set(tokens)
        self.store = store or HubSpotStore()
        self.limiter = RateLimiter(ten_second_max, daily_max)
        self.retry_after_on_429 = retry_after_on_429
        self._host, self._port = host, port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._calls: Counter[tuple[str, str]] = Counter()
        self._log: list[CallRecord] = []
        self._routes = [
            (method, _compile(template), template, handler) for method, template, handler in self._table()
        ]

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not running; use start() or a with block")
        return f"http://{self._host}:{self._server.port}"

    def start(self) -> Self:
        if self._server is not None:
            return self
        try:
            self._server = _Server(self._host, self._port, self._wsgi, handler=_Handler)
        except SystemExit as exc:  # werkzeug exits when it cannot bind; a library must raise instead
            raise OSError(f"the HubSpot sandbox cannot listen on {self._host}:{self._port}") from exc
        self._closing.clear()
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05), name="hubspot-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving: wake calls paused by :meth:`pause`, then wait for every handler thread."""
        if self._server is None:
            return
        self._closing.set()
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join()
        self._server.server_close()
        self._server, self._thread = None, None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def pause(self, seconds: float) -> None:
        """Sleep inside a handler, cut short when the sandbox closes."""
        self._closing.wait(seconds)

    # -- what the owner reads ------------------------------------------------------------------

    @property
    def calls(self) -> Counter[tuple[str, str]]:
        """Calls received so far by (method, route), e.g. ``("POST", "/crm/v3/objects/contacts")``."""
        with self._lock:
            return Counter(self._calls)

    def call_count(self, method: str, route: str) -> int:
        with self._lock:
            return self._calls[(method.upper(), route)]

    @property
    def call_log(self) -> list[CallRecord]:
        """Every answered call in order, with the status it got."""
        with self._lock:
            return list(self._log)

    # -- the extension point -------------------------------------------------------------------

    def before_dispatch(self, call: Call) -> Reply | None:
        """Called for every routed request after it is counted and before auth; a Reply answers
        it instead of the sandbox. The base sandbox answers nothing here."""
        return None

    def error_reply(self, status: int, category: str, message: str, **extra: Any) -> Reply:
        return Reply(status, error_body(category, message, **extra))

    def rate_limited(self, token: str | None, policy: str, wait_s: float, retry_after: bool) -> Reply:
        """HubSpot's 429, as seen in its answers: ``errorType`` RATE_LIMIT and ``policyName``
        (github.com/HubSpot/hubspot-api-python/issues/117), plus the ``category`` RATE_LIMITS the
        2019 changelog added (developers.hubspot.com/changelog/upcoming-changes-to-error-responses)."""
        message = f"You have reached your {policy.lower()} limit."
        body = error_body("RATE_LIMITS", message, errorType="RATE_LIMIT", policyName=policy)
        headers = self.limiter.headers(token) if token else {}
        if policy == "TEN_SECONDLY_ROLLING":
            headers["X-HubSpot-RateLimit-Remaining"] = "0"
        if retry_after:
            headers["Retry-After"] = str(max(1, math.ceil(wait_s)))
        return Reply(429, body, headers)

    # -- the WSGI side -------------------------------------------------------------------------

    def _wsgi(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        method, path = request.method.upper(), request.path
        matched = self._match(method, path)
        token = _bearer(request)
        route = matched[1] if matched else path
        with self._lock:
            self._calls[(method, route)] += 1
        try:
            reply = self._answer(request, token, Call(method, route, path, token), matched)
        except HubSpotError as exc:
            reply = Reply(exc.status, {**exc.body, "correlationId": str(uuid.uuid4())})
        except (KeyError, TypeError, ValueError) as exc:  # a body or parameter not of HubSpot's shape
            log.debug("HubSpot sandbox refused %s %s: %r", method, path, exc)
            reply = self.error_reply(400, "VALIDATION_ERROR", f"Invalid input: {exc!r}")
        except Exception:  # a sandbox bug: answered as HubSpot answers its own failures
            log.exception("HubSpot sandbox failed on %s %s", method, path)
            reply = self.error_reply(500, "INTERNAL_ERROR", "internal error")
        with self._lock:
            self._log.append(CallRecord(method, route, path, reply.status))
        return _response(reply)(environ, start_response)

    def _answer(
        self,
        request: Request,
        token: str | None,
        call: Call,
        matched: tuple[RouteHandler, str, dict[str, str]] | None,
    ) -> Reply:
        if matched is None:
            return self.error_reply(404, "OBJECT_NOT_FOUND", "resource not found")
        override = self.before_dispatch(call)
        if override is not None:
            return override
        if token is None or token not in self.tokens:
            reply = self.error_reply(401, "INVALID_AUTHENTICATION", _AUTH_MESSAGE)
            return Reply(401, reply.body, {"X-HubSpot-Auth-Failure": "401 Unauthorized"})
        policy, wait_s = self.limiter.admit(token)
        if policy is not None:
            return self.rate_limited(token, policy, wait_s, self.retry_after_on_429)
        handler, _, params = matched
        reply = handler(request, params)
        return Reply(reply.status, reply.body, {**self.limiter.headers(token), **reply.headers})

    def _match(self, method: str, path: str) -> tuple[RouteHandler, str, dict[str, str]] | None:
        for want, pattern, template, handler in self._routes:
            found = pattern.match(path)
            if want == method and found:
                params = found.groupdict()
                route = template
                for key in _TYPE_PARAMS:
                    if key in params:
                        route = route.replace("{" + key + "}", _type_or_raw(params[key]))
                return handler, route, params
        return None

    # -- routes --------------------------------------------------------------------------------

    def _table(self) -> list[tuple[str, str, RouteHandler]]:
        objects, props, lists = (
            "/crm/v3/objects/{objectType}",
            "/crm/v3/properties/{objectType}",
            "/crm/v3/lists",
        )
        v4 = "/crm/v4/objects/{fromObjectType}/{fromObjectId}/associations"
        st = self.store
        return [
            # Objects: https://developers.hubspot.com/docs/api-reference/latest/crm/understanding-the-crm
            ("POST", objects + "/batch/upsert", self._batch_upsert),
            ("POST", objects + "/batch/create", self._batch_create),
            ("POST", objects + "/batch/read", self._batch_read),
            ("POST", objects + "/batch/update", self._batch_update),
            ("POST", objects + "/search", lambda r, p: Reply(200, st.search(p["objectType"], _body(r)))),
            ("GET", objects, self._list_objects),
            ("POST", objects, self._create_object),
            ("GET", objects + "/{objectId}", self._get_object),
            ("PATCH", objects + "/{objectId}", self._update_object),
            # GDPR delete: https://developers.hubspot.com/docs/api-reference/crm-contacts-v3/basic/post-crm-v3-objects-contacts-gdpr-delete
            ("POST", "/crm/v3/objects/contacts/gdpr-delete", self._gdpr_delete),
            # Properties: https://developers.hubspot.com/docs/api-reference/latest/crm/properties/guide
            ("GET", props + "/groups", lambda r, p: Reply(200, {"results": st.groups(p["objectType"])})),
            ("POST", props + "/groups", lambda r, p: Reply(201, st.create_group(p["objectType"], _body(r)))),
            ("GET", props, lambda r, p: Reply(200, {"results": st.properties(p["objectType"])})),
            ("POST", props, lambda r, p: Reply(201, st.create_property(p["objectType"], _body(r)))),
            ("GET", props + "/{propertyName}", self._get_property),
            # Associations v4: https://developers.hubspot.com/docs/api-reference/latest/crm/associations/overview
            ("PUT", v4 + "/default/{toObjectType}/{toObjectId}", self._associate_default),
            (
                "POST",
                "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/associate/default",
                self._associate_batch,
            ),
            ("GET", v4 + "/{toObjectType}", self._list_associations),
            # Lists v3: https://developers.hubspot.com/docs/api-reference/latest/crm/lists/guide
            ("POST", lists, self._create_list),
            ("POST", lists + "/", self._create_list),  # hubspot-api-client v12 posts to the slash form
            ("GET", lists + "/{listId}", lambda r, p: Reply(200, {"list": st.get_list(p["listId"])})),
            (
                "GET",
                lists + "/object-type-id/{objectTypeId}/name/{listName}",
                lambda r, p: Reply(200, {"list": st.list_by_name(p["listName"], p["objectTypeId"])}),
            ),
            ("PUT", lists + "/{listId}/memberships/add", self._add_members),
            (
                "GET",
                lists + "/{listId}/memberships",
                lambda r, p: Reply(200, {"results": st.members(p["listId"])}),
            ),
        ]

    def _list_objects(self, request: Request, params: dict[str, str]) -> Reply:
        limit = min(max(int(request.args.get("limit", "10")), 1), 100)
        results, after = self.store.page(
            params["objectType"],
            limit=limit,
            after=request.args.get("after"),
            names=_names(request, "properties"),
            associations=_names(request, "associations"),
        )
        body: JSON = {"results": results}
        if after is not None:
            link = f"{request.host_url.rstrip('/')}{request.path}?after={after}"
            body["paging"] = {"next": {"after": after, "link": link}}
        return Reply(200, body)

    def _get_object(self, request: Request, params: dict[str, str]) -> Reply:
        found = self.store.read(
            params["objectType"],
            params["objectId"],
            id_property=request.args.get("idProperty"),
            names=_names(request, "properties"),
            associations=_names(request, "associations"),
        )
        if found is None:
            return self.error_reply(404, "OBJECT_NOT_FOUND", "resource not found")
        return Reply(200, found)

    def _create_object(self, request: Request, params: dict[str, str]) -> Reply:
        kind = object_type(params["objectType"])
        body = _body(request)
        links = self.store.links(kind, body)
        return Reply(201, self.store.create(kind, body.get("properties") or {}, associations=links))

    def _update_object(self, request: Request, params: dict[str, str]) -> Reply:
        props = _body(request).get("properties") or {}
        return Reply(200, self.store.update(params["objectType"], params["objectId"], props))

    def _gdpr_delete(self, request: Request, params: dict[str, str]) -> Reply:
        """``{"objectId", "idProperty"?}`` -> 204 with no body (the reference's "No content")."""
        body = _body(request)
        object_id = body.get("objectId")
        if not isinstance(object_id, str) or not object_id:
            raise HubSpotError(400, "VALIDATION_ERROR", "objectId is required")
        id_property = body.get("idProperty") or None
        self.store.purge("contacts", object_id, id_property=None if id_property is None else str(id_property))
        return Reply(204)

    def _batch_upsert(self, request: Request, params: dict[str, str]) -> Reply:
        started = datetime.now(UTC)
        results, errors = self.store.upsert_batch(params["objectType"], _inputs(request))
        return _batch_reply(results, errors, started)

    def _batch_update(self, request: Request, params: dict[str, str]) -> Reply:
        started = datetime.now(UTC)
        results, errors = self.store.update_batch(params["objectType"], _inputs(request))
        return _batch_reply(results, errors, started)

    def _batch_create(self, request: Request, params: dict[str, str]) -> Reply:
        started = datetime.now(UTC)
        results, errors = self.store.create_batch(params["objectType"], _inputs(request))
        return _batch_reply(results, errors, started, ok=201)

    def _batch_read(self, request: Request, params: dict[str, str]) -> Reply:
        started, body = datetime.now(UTC), _body(request)
        kind = object_type(params["objectType"])
        ids = [str(item.get("id", "")) for item in _inputs(request)]
        found, missing = self.store.read_batch(
            kind, ids, id_property=body.get("idProperty"), names=list(body.get("properties") or [])
        )
        errors = []
        if missing:  # the body HubSpot sends for ids that found nothing (as seen in its 207s)
            message = (
                f"Could not get some {kind.upper().rstrip('S')} objects, they may be deleted or not exist. "
                "Check that ids are valid."
            )
            errors.append(
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": message,
                    "context": {"ids": missing},
                }
            )
        return _batch_reply(found, errors, started)

    def _get_property(self, request: Request, params: dict[str, str]) -> Reply:
        found = self.store.property(params["objectType"], params["propertyName"])
        if found is None:
            message = f"Unable to find property {params['propertyName']}"
            return self.error_reply(404, "OBJECT_NOT_FOUND", message)
        return Reply(200, found)

    def _association(self, kind: str, from_id: str, to_kind: str, to_id: str) -> JSON:
        type_id = self.store.associate(kind, from_id, to_kind, to_id)
        return {
            "from": {"id": from_id},
            "to": {"id": to_id},
            "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id},
        }

    def _associate_default(self, request: Request, params: dict[str, str]) -> Reply:
        started = datetime.now(UTC)
        made = self._association(
            params["fromObjectType"], params["fromObjectId"], params["toObjectType"], params["toObjectId"]
        )
        return _batch_reply([made], [], started)

    def _associate_batch(self, request: Request, params: dict[str, str]) -> Reply:
        started = datetime.now(UTC)
        made = [
            self._association(
                params["fromObjectType"],
                str(item["from"]["id"]),
                params["toObjectType"],
                str(item["to"]["id"]),
            )
            for item in _inputs(request, ASSOCIATION_BATCH_LIMIT)
        ]
        return _batch_reply(made, [], started)

    def _list_associations(self, request: Request, params: dict[str, str]) -> Reply:
        pairs = self.store.associations(
            params["fromObjectType"], params["fromObjectId"], params["toObjectType"]
        )
        results = [
            {
                "toObjectId": to_id,
                "associationTypes": [
                    {"category": "HUBSPOT_DEFINED", "typeId": t, "label": None} for t in types
                ],
            }
            for to_id, types in pairs
        ]
        return Reply(200, {"results": results})

    def _create_list(self, request: Request, params: dict[str, str]) -> Reply:
        body = _body(request)
        made = self.store.create_list(
            str(body.get("name") or ""),
            str(body.get("objectTypeId") or ""),
            str(body.get("processingType") or ""),
        )
        return Reply(200, {"list": made})

    def _add_members(self, request: Request, params: dict[str, str]) -> Reply:
        ids = _json(request)
        if not isinstance(ids, list):
            raise HubSpotError(400, "VALIDATION_ERROR", "The body must be a JSON array of record ids")
        return Reply(200, self.store.add_members(params["listId"], ids))


def _compile(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")


def _type_or_raw(name: str) -> str:
    try:
        return object_type(name)
    except HubSpotError:
        return name


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _json(request: Request) -> Any:
    raw = request.get_data(cache=True)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise HubSpotError(400, "VALIDATION_ERROR", f"Invalid input JSON: {exc}") from exc


def _body(request: Request) -> JSON:
    data = _json(request)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise HubSpotError(400, "VALIDATION_ERROR", "The body must be a JSON object")
    return data


def _inputs(request: Request, limit: int = BATCH_LIMIT) -> list[JSON]:
    inputs = _body(request).get("inputs")
    if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
        raise HubSpotError(400, "VALIDATION_ERROR", "The body needs an inputs array of objects")
    if len(inputs) > limit:
        raise batch_limit_error(len(inputs), limit)
    return inputs


def _response(reply: Reply) -> Response:
    headers = {"X-HubSpot-Correlation-Id": str(uuid.uuid4()), **reply.headers}
    if isinstance(reply.body, dict) and "correlationId" in reply.body:
        headers["X-HubSpot-Correlation-Id"] = str(reply.body["correlationId"])
    if reply.body is None:
        return Response(b"", reply.status, headers)
    data = json.dumps(reply.body, separators=(",", ":"))
    return Response(data, reply.status, headers, content_type="application/json;charset=utf-8")
