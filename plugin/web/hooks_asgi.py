"""What ``flywheel serve`` runs: an ASGI app that receives webhooks on its event loop and hands every
other request to the Flask app.

``POST /hooks/github|discourse|slack|generic/<name>`` is the one path a platform may call a thousand
times a second. Through Flask on threaded workers it cost about 2 ms of CPU a request (the server's
threads, Flask's request machinery); here it is read, checked and answered on the event loop with
the same rules (``plugin/web/hook_intake.py``), and stored by one writer thread per process that
commits whatever has queued meanwhile in one transaction (``DeliveryQueue``). Each hook request
still gets what Flask's gives every request: a request id (``X-Request-ID``), the request metrics,
the JSON request log line and the security headers. Everything else (the API, the dashboard, other
methods and paths under ``/hooks``) goes to Flask unchanged, through a2wsgi's thread pool.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any
from urllib.parse import parse_qs

import orjson
from a2wsgi import WSGIMiddleware
from flask import Flask

from plugin.logs import new_request_id, request_id_var
from plugin.services import metrics
from plugin.services.delivery_queue import DeliveryQueue
from plugin.web.hook_intake import HookAnswer, HookIntake, HookRequest, Pending
from plugin.web.ops import REQUEST_ID, request_log
from plugin.web.problems import problem_body
from plugin.web.security import static_headers

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger(__name__)
_FIXED = {"/hooks/github": "github", "/hooks/discourse": "discourse", "/hooks/slack": "slack"}
_GENERIC = "/hooks/generic/"
#: Hook requests a keep-alive connection carries before it is closed (nginx's default is 1,000;
#: fewer here, so that a sender's connections spread over the workers within a second or two: at
#: 1,000 deliveries a second on two workers, 100 left the p99 over 200 ms in two runs of five, 25 in
#: none of three). Opening a connection again costs a sender a TCP handshake.
KEEPALIVE_REQUESTS = 25
MAX_TRACKED = 10_000


def hook_route(path: str) -> tuple[str, str] | None:
    """(route, generic name) of a receiver's path, as Flask's routes match them; None otherwise."""
    route = _FIXED.get(path)
    if route is not None:
        return route, ""
    if path.startswith(_GENERIC):
        name = path[len(_GENERIC) :]
        if name and "/" not in name:
            return "generic", name
    return None


class FlywheelASGI:
    def __init__(self, flask_app: Flask, threads: int) -> None:
        self.flask = flask_app
        self.intake: HookIntake = flask_app.extensions["flywheel.hook_intake"]
        self.settings = self.intake.settings
        self.wsgi = WSGIMiddleware(flask_app, workers=threads)  # type: ignore[arg-type]
        self._queue: DeliveryQueue | None = None
        self._served: dict[tuple[str, int], int] = {}  # hook requests answered per connection

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            found = hook_route(scope["path"])
            if found is not None:
                await self._hook(found[0], found[1], scope, receive, send)
                return
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self.wsgi(scope, receive, send)  # type: ignore[arg-type]

    # -- the hook path ---------------------------------------------------------------------------

    async def _hook(self, route: str, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers = _headers(scope)
        given = headers.get("x-request-id", "")
        request_id = given if REQUEST_ID.match(given) else new_request_id()
        token = request_id_var.set(request_id)
        try:
            answer = await self._answer(route, name, scope, headers, receive)
        except SenderGone:
            metrics.count_hook_event(route, "disconnected")  # nobody to answer
            return
        except Exception:
            log.exception("a webhook delivery could not be stored")
            detail = "the delivery was not stored; the platform's retry will store it"
            answer = HookAnswer(500, problem_body(500, "Internal Server Error", detail), route, "error")
        finally:
            request_id_var.reset(token)
        body = orjson.dumps(answer.body)
        if self._spent(scope):
            answer.headers["Connection"] = "close"
        out = [
            (b"content-type", answer.content_type.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode()),
            *((k.encode(), v.encode()) for k, v in static_headers(self._secure(scope, headers)).items()),
            *((k.lower().encode(), v.encode()) for k, v in answer.headers.items()),
        ]
        await send({"type": "http.response.start", "status": answer.status, "headers": out})
        await send({"type": "http.response.body", "body": body})
        seconds = time.perf_counter() - started
        metrics.observe_request("hooks", answer.status, seconds)
        metrics.count_hook_event(answer.source, answer.outcome)
        if self.settings.log_format == "json":
            path = scope["path"]
            request_log.info(
                "POST %s %s",
                path,
                answer.status,
                extra={
                    "method": "POST",
                    "path": path,
                    "status": answer.status,
                    "duration_ms": round(seconds * 1000, 2),
                    "request_id": request_id,
                },
            )

    def _spent(self, scope: Scope) -> bool:
        """Whether this connection has carried its share of deliveries and is to be closed after
        this answer, as nginx closes a keep-alive connection after ``keepalive_requests``. The
        workers share the listening socket, and a sender's connections, opened together, can all
        land on one worker; closed now and then, they are opened again on whichever worker accepts
        first, so a busy worker sheds them."""
        client = scope.get("client")
        if not client:
            return False
        key = (client[0], client[1])
        seen = self._served.get(key, 0) + 1
        if seen >= KEEPALIVE_REQUESTS:
            self._served.pop(key, None)
            return True
        if len(self._served) >= MAX_TRACKED and key not in self._served:
            self._served.clear()  # connections closed otherwise are forgotten here
        self._served[key] = seen
        return False

    async def _answer(
        self, route: str, name: str, scope: Scope, headers: dict[str, str], receive: Receive
    ) -> HookAnswer:
        address = self._address(scope, headers)
        refused = self.intake.admit(route, address)
        if refused is not None:
            return refused
        body = await self._body(headers, receive)
        if body is None:
            return self.intake.too_large(route)
        workspace = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("workspace", [None])[0]
        checked = self.intake.check(HookRequest(route, headers, body, address, workspace, name))
        if isinstance(checked, HookAnswer):
            return checked
        await self._store(checked)
        return self.intake.stored(checked)

    async def _body(self, headers: dict[str, str], receive: Receive) -> bytes | None:
        """The whole body, or None when it is larger than ``FLYWHEEL_MAX_HOOK_BODY``."""
        limit = self.settings.max_hook_body
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise SenderGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _forwarded(self, headers: dict[str, str], name: str) -> str | None:
        """Behind ``FLYWHEEL_TRUSTED_PROXIES`` proxies, what they say in header ``name``, as
        Werkzeug's ProxyFix reads it (the Nth entry from the right); None otherwise."""
        hops = self.settings.trusted_proxies
        if not hops:
            return None
        values = [part.strip() for part in headers.get(name, "").split(",")]
        if len(values) < hops:
            return None  # fewer hops than configured: not a request through the proxies
        return values[-hops] or None

    def _address(self, scope: Scope, headers: dict[str, str]) -> str:
        client = scope.get("client")
        return self._forwarded(headers, "x-forwarded-for") or (client[0] if client else "")

    def _secure(self, scope: Scope, headers: dict[str, str]) -> bool:
        return (self._forwarded(headers, "x-forwarded-proto") or scope.get("scheme")) == "https"

    async def _store(self, pending: Pending) -> None:
        loop = asyncio.get_running_loop()
        if self._queue is None:

            def notify(results: Sequence[tuple[Any, BaseException | None]]) -> None:
                loop.call_soon_threadsafe(_settle, results)

            self._queue = DeliveryQueue(self.intake.engine, notify)
        done: asyncio.Future[None] = loop.create_future()
        self._queue.submit(pending.workspace_id, pending.delivery, done)
        await done

    # -- lifespan --------------------------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # What the worker built at start (the app, its routes, the ORM's mappings) lives as
                # long as the worker: kept out of the collector's full passes, which otherwise
                # walk it again and again under load and show as latency spikes.
                gc.collect()
                gc.freeze()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._queue is not None:  # what is queued is written before the worker exits
                    await asyncio.get_running_loop().run_in_executor(None, self._queue.close)
                await send({"type": "lifespan.shutdown.complete"})
                return


class SenderGone(Exception):
    """The sender closed the connection before its whole body arrived."""


def _headers(scope: Scope) -> dict[str, str]:
    """Lower-case names; a field sent on several lines is one comma-joined value (RFC 9110 5.3)."""
    headers: dict[str, str] = {}
    for key, value in scope["headers"]:
        name, text = key.decode("latin-1").lower(), value.decode("latin-1")
        headers[name] = f"{headers[name]}, {text}" if name in headers else text
    return headers


def _settle(results: Sequence[tuple[Any, BaseException | None]]) -> None:
    for future, error in results:
        if future.done():  # the request was cancelled (its sender went away)
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
