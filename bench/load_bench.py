"""Inbound hook load: signed GitHub deliveries at a fixed rate through gunicorn into PostgreSQL.

Requirement (issue 8): at least 1,000 events/s sustained for 60 s, p99 under 200 ms, and every
event stored exactly once (count in = count stored).

The run makes a throw-away schema on the PostgreSQL server (dropped at the end), migrates it and
sets a GitHub hook secret with the CLI (``flywheel db upgrade``, ``flywheel init``, ``flywheel hooks
secret github``), then starts ``flywheel serve`` (gunicorn) on a free port with its rate-limit
counters in Redis. All request bodies are built and signed (X-Hub-Signature-256, as GitHub signs)
before the clock starts: ``issue_comment``/``created`` deliveries (and every tenth an
``issues``/``opened``), each with its own delivery id and comment or issue id, from a pool of
``--users`` community members, so early events create people and later ones find them.
``--retries`` of the deliveries are sent twice at the same instant, as a platform that retries
concurrently does: they must be answered and stored once.

The load is open-loop: request i is due at ``start + i / rate`` whether or not earlier answers have
come, and its latency runs from that due time to the end of the answer, so queueing in the client,
the network and the server is counted (no coordinated omission). The client is a lean one, as wrk
is: every request's bytes are built before the clock starts, each is written at its due time to a free
connection of a fixed pool of keep-alive connections (or waits in a FIFO queue for one, the wait
counted in its latency) and its answer is parsed no further than its status, headers and small JSON
body. It runs on asyncio (uvloop's loop when installed) in a process of its own, so it never competes
with this one's GIL and its CPU time is reported beside gunicorn's and PostgreSQL's.

    python -m bench.load_bench                              # 1,000/s for 60 s
    python -m bench.load_bench --rate 1500 --seconds 20 --workers 2
    python -m bench.load_bench --json                       # last stdout line: one JSON object

PostgreSQL: FLYWHEEL_TEST_DATABASE_URL (or ``--database``), default the local ``test`` database.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import hmac
import json
import multiprocessing
import os
import platform
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
import urllib.request
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench.figures import machine

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/13"  # a database of its own; its keys are removed after the run
WORKSPACE = "load"
_SCRIPT = Path(sys.executable).with_name("flywheel")
FLYWHEEL = [str(_SCRIPT)] if _SCRIPT.exists() else ["flywheel"]  # the CLI as an operator runs it

# -- the deliveries ---------------------------------------------------------------------------------


def _user(uid: int) -> dict[str, Any]:
    login = f"member-{uid}"
    api = f"https://api.github.com/users/{login}"
    return {
        "login": login,
        "id": 7_000_000 + uid,
        "node_id": f"MDQ6VXNlcj{7_000_000 + uid}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{7_000_000 + uid}?v=4",
        "gravatar_id": "",
        "url": api,
        "html_url": f"https://github.com/{login}",
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": "User",
        "site_admin": False,
    }


def _repository() -> dict[str, Any]:
    api = "https://api.github.com/repos/flywheel-demo/widgets"
    urls = {
        f"{name}_url": f"{api}/{name}{suffix}"
        for name, suffix in (
            ("forks", ""), ("keys", "{/key_id}"), ("collaborators", "{/collaborator}"), ("teams", ""),
            ("hooks", ""), ("issue_events", "{/number}"), ("events", ""), ("assignees", "{/user}"),
            ("branches", "{/branch}"), ("tags", ""), ("blobs", "{/sha}"), ("git_tags", "{/sha}"),
            ("git_refs", "{/sha}"), ("trees", "{/sha}"), ("statuses", "{sha}"), ("languages", ""),
            ("stargazers", ""), ("contributors", ""), ("subscribers", ""), ("subscription", ""),
            ("commits", "{/sha}"), ("git_commits", "{/sha}"), ("comments", "{/number}"),
            ("issue_comment", "{/number}"), ("contents", "{+path}"), ("compare", "{base}...{head}"),
            ("merges", ""), ("downloads", ""), ("issues", "{/number}"), ("pulls", "{/number}"),
            ("milestones", "{/number}"), ("notifications", "{?since,all,participating}"),
            ("labels", "{/name}"), ("releases", "{/id}"), ("deployments", ""),
        )
    }  # fmt: skip
    return {
        "id": 186853002,
        "node_id": "MDEwOlJlcG9zaXRvcnkxODY4NTMwMDI=",
        "name": "widgets",
        "full_name": "flywheel-demo/widgets",
        "private": False,
        "owner": _user(0) | {"login": "flywheel-demo", "type": "Organization"},
        "html_url": "https://github.com/flywheel-demo/widgets",
        "description": "Widgets, gadgets and the community around them",
        "fork": False,
        "url": api,
        **urls,
        "archive_url": f"{api}/{{archive_format}}{{/ref}}",
        "created_at": "2019-05-15T15:19:25Z",
        "updated_at": "2026-11-20T15:21:03Z",
        "pushed_at": "2026-11-20T15:20:57Z",
        "git_url": "git://github.com/flywheel-demo/widgets.git",
        "ssh_url": "git@github.com:flywheel-demo/widgets.git",
        "clone_url": "https://github.com/flywheel-demo/widgets.git",
        "homepage": None,
        "size": 1042,
        "stargazers_count": 318,
        "watchers_count": 318,
        "language": "Python",
        "has_issues": True,
        "forks_count": 41,
        "open_issues_count": 12,
        "license": None,
        "default_branch": "main",
        "topics": [],
        "visibility": "public",
    }


def _issue(number: int, author: dict[str, Any], at: str, body: str) -> dict[str, Any]:
    api = f"https://api.github.com/repos/flywheel-demo/widgets/issues/{number}"
    return {
        "url": api,
        "repository_url": "https://api.github.com/repos/flywheel-demo/widgets",
        "labels_url": f"{api}/labels{{/name}}",
        "comments_url": f"{api}/comments",
        "events_url": f"{api}/events",
        "html_url": f"https://github.com/flywheel-demo/widgets/issues/{number}",
        "id": 444_000_000 + number,
        "node_id": f"MDU6SXNzdWU0NDQ{number}",
        "number": number,
        "title": f"Widget {number} wobbles when spun quickly",
        "user": author,
        "labels": [{"id": 1362934389, "name": "bug", "color": "d73a4a", "default": True}],
        "state": "open",
        "locked": False,
        "assignee": None,
        "assignees": [],
        "milestone": None,
        "comments": 1,
        "created_at": at,
        "updated_at": at,
        "closed_at": None,
        "author_association": "CONTRIBUTOR",
        "body": body,
        "reactions": {"url": f"{api}/reactions", "total_count": 0, "+1": 0, "-1": 0, "heart": 0},
    }


@dataclass(frozen=True)
class Delivery:
    """One request as it goes on the wire, built and signed before the clock starts."""

    event: str
    delivery_id: str
    body: bytes
    headers: dict[str, str]


def build_deliveries(count: int, secret: str, *, users: int = 2_000, seed: int = 8) -> list[Delivery]:
    """``count`` distinct GitHub deliveries (each one activity), signed with ``secret``."""
    repository = _repository()
    people = [_user(u + 1) for u in range(users)]
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    key = secret.encode()
    out: list[Delivery] = []
    for i in range(count):
        author = people[(i * 7919 + seed) % users]  # every member recurs, in a scattered order
        at = (start + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        text = f"Load event {i}: the widget still wobbles at {i % 97} rpm; tried the fix from #{i % 500}."
        if i % 10 == 9:
            event = "issues"
            payload: dict[str, Any] = {
                "action": "opened",
                "issue": _issue(100_000 + i, author, at, text),
                "repository": repository,
                "sender": author,
            }
        else:
            event = "issue_comment"
            number = 1 + i % 500
            comment_id = 900_000_000 + i
            payload = {
                "action": "created",
                "issue": _issue(number, people[number % users], "2026-11-01T10:00:00Z", "It wobbles."),
                "comment": {
                    "url": f"https://api.github.com/repos/flywheel-demo/widgets/issues/comments/{comment_id}",
                    "html_url": f"https://github.com/flywheel-demo/widgets/issues/{number}#issuecomment-{comment_id}",
                    "issue_url": f"https://api.github.com/repos/flywheel-demo/widgets/issues/{number}",
                    "id": comment_id,
                    "node_id": f"MDEyOklzc3VlQ29tbWVudD{comment_id}",
                    "user": author,
                    "created_at": at,
                    "updated_at": at,
                    "author_association": "CONTRIBUTOR",
                    "body": text,
                    "reactions": {"total_count": i % 3, "+1": i % 3, "-1": 0, "heart": 0},
                    "performed_via_github_app": None,
                },
                "repository": repository,
                "sender": author,
            }
        body = orjson.dumps(payload)
        delivery_id = str(uuid.UUID(int=(seed << 64) + i))
        signature = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/load-bench",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id,
            "X-GitHub-Hook-ID": "292430182",
            "X-Hub-Signature-256": signature,
        }
        out.append(Delivery(event, delivery_id, body, headers))
    return out


def schedule(deliveries: list[Delivery], rate: float, retries: float) -> list[tuple[float, Delivery]]:
    """(seconds after start, delivery): one every 1/rate s; a ``retries`` share of them is sent a
    second time at the very same instant (a concurrent retry of the same delivery)."""
    plan: list[tuple[float, Delivery]] = []
    every = round(1 / retries) if retries > 0 else 0
    for i, delivery in enumerate(deliveries):
        at = i / rate
        plan.append((at, delivery))
        if every and i % every == every // 2:
            plan.append((at, delivery))
    return plan


# -- the open-loop client ---------------------------------------------------------------------------


@dataclass
class LoadResult:
    target_rate: float
    seconds: float
    scheduled: int = 0
    ok: int = 0
    statuses: Counter[str] = field(default_factory=Counter)  # stored / duplicate / ... from 2xx bodies
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    send_span_s: float = 0.0  # first due time to the last request handed to the client
    span_s: float = 0.0  # first due time to the last answer
    max_send_lag_ms: float = 0.0  # how late the generator itself handed a request over
    client_cpu_s: float = 0.0

    @property
    def achieved_rate(self) -> float:
        return self.ok / self.span_s if self.span_s else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))  # nearest rank
        return ordered[index]


#: A free connection idle this long is closed and opened again before the server's keep-alive
#: timeout can close it under a request being written (gunicorn's default keep-alive is 2 s).
IDLE_REOPEN_S = 1.5
_SWEEP_S = 0.1  # how often timeouts and idle connections are checked
#: Due times and answers are timed on this clock, not the loop's (uvloop's ticks in milliseconds).
_clock = time.perf_counter


def _wire(host: str, path: str, delivery: Delivery) -> bytes:
    """The whole HTTP/1.1 request, as it goes on the wire."""
    head = [f"POST {path} HTTP/1.1", f"Host: {host}"]
    head += [f"{name}: {value}" for name, value in delivery.headers.items()]
    head += [f"Content-Length: {len(delivery.body)}", "Connection: keep-alive", "", ""]
    return "\r\n".join(head).encode("latin-1") + delivery.body


def _dechunk(data: bytes) -> bytes | None:
    """A chunked body (trailers ignored), or None while it is not complete."""
    out, pos = bytearray(), 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(data[pos:eol].split(b";", 1)[0], 16)
        if size == 0:
            return bytes(out) if data.find(b"\r\n\r\n", eol) >= 0 or data.endswith(b"\r\n") else None
        if len(data) < eol + 2 + size + 2:
            return None
        out += data[eol + 2 : eol + 2 + size]
        pos = eol + 2 + size + 2


class _Conn(asyncio.Protocol):
    """One keep-alive connection: at most one request in flight, its answer parsed minimally (status
    line, headers up to the blank line, a Content-Length, chunked or read-to-close body)."""

    __slots__ = ("body_at", "chunked", "client", "close_after", "code", "dead", "due", "idle_since", "need",
                 "pending", "transport")  # fmt: skip

    def __init__(self, client: _Client) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.pending = b""  # an answer's first part, while the rest has not come
        self.due: float | None = None  # the in-flight request's due time
        self.need = -1  # the answer's end in ``pending`` once its head is read (-1: not yet)
        self.body_at = 0
        self.code = 0
        self.chunked = False
        self.close_after = False
        self.dead = False
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, due: float, wire: bytes) -> None:
        self.due = due
        self.transport.write(wire)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        if self.due is None:  # nothing asked: not HTTP as we speak it
            self.dead = True
            self.transport.close()  # type: ignore[union-attr]
            return
        if self.pending:
            data = self.pending + data
        if self.need < 0:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.pending = data
                return
            head = data[:end].lower()
            try:
                code = int(head[9:12])
            except ValueError:
                self._fail("bad answer")
                return
            if code < 200:  # 1xx: an interim answer, the real one follows
                self.pending = b""
                if len(data) > end + 4:
                    self.data_received(data[end + 4 :])
                return
            self.code = code
            self.body_at = end + 4
            self.close_after = b"\r\nconnection: close" in head or head.startswith(b"http/1.0")
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                eol = head.find(b"\r\n", at + 2)
                self.need = self.body_at + int(head[at + 17 : eol if eol > 0 else end])
            elif code in (204, 304):
                self.need = self.body_at
            elif b"\r\ntransfer-encoding: chunked" in head:
                self.chunked = True
                self.need = 1 << 62
            else:  # read to the close
                self.close_after = True
                self.need = 1 << 62
        if self.chunked:
            body = _dechunk(data[self.body_at :])
            if body is None:
                self.pending = data
                return
        elif len(data) < self.need:
            self.pending = data
            return
        else:
            body = data[self.body_at : self.need]
        self.pending = b""
        self._answered(body)

    def _answered(self, body: bytes) -> None:
        due, code = self.due, self.code
        self.due, self.need, self.chunked = None, -1, False
        self.client.answered(due, code, body)  # type: ignore[arg-type]
        if self.close_after or self.dead:
            self.dead = True
            self.transport.close()  # type: ignore[union-attr]
        else:
            self.client.release(self)

    def _fail(self, kind: str) -> None:
        due, self.due = self.due, None
        self.dead = True
        self.transport.abort()  # type: ignore[union-attr]
        if due is not None:
            self.client.failed(due, kind)

    def eof_received(self) -> bool | None:
        self.dead = True  # never hand this one another request
        self.client.drop_free(self)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.dead = True
        if self.due is not None:
            if self.need == 1 << 62 and not self.chunked:  # the body ran to the close
                self._answered(self.pending[self.body_at :])
            else:
                due, self.due = self.due, None
                self.client.failed(due, "ServerDisconnectedError")
        self.client.gone(self)


class _Client:
    """A fixed pool of keep-alive connections; a request due when none is free waits in a FIFO queue
    (its latency still runs from its due time)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, host: str, port: int, size: int,
                 timeout: float, result: LoadResult) -> None:  # fmt: skip
        self.loop, self.host, self.port, self.size, self.timeout = loop, host, port, size, timeout
        self.result = result
        self.free: deque[_Conn] = deque()  # oldest-idle first: requests go round the pool
        self.conns: set[_Conn] = set()
        self.queue: deque[tuple[float, bytes]] = deque()
        self.left = 0  # requests not yet answered or failed
        self.finished: asyncio.Future[None] = loop.create_future()
        self.last_done = 0.0
        self.warming = 0
        self.closing = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def _connect(self) -> _Conn:
        _, conn = await self.loop.create_connection(lambda: _Conn(self), self.host, self.port)
        self.conns.add(conn)
        return conn

    async def open(self) -> None:
        """Open the pool before the clock starts, one /healthz on each (as a platform's sender keeps
        its connections open)."""
        opened = await asyncio.gather(*(self._connect() for _ in range(self.size)), return_exceptions=True)
        conns = [c for c in opened if isinstance(c, _Conn)]
        if not conns:
            raise ConnectionError(f"cannot connect to {self.host}:{self.port}: {opened[0]!r}")
        for _ in range(self.size - len(conns)):
            self._reopen()
        self.warming = len(conns)
        warmed = self.finished
        health = f"GET /healthz HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode()
        for conn in conns:
            conn.send(0.0, health)
        await asyncio.wait([warmed], timeout=self.timeout)
        self.warming = 0
        for conn in [c for c in self.conns if c.due is not None]:  # no answer: open another instead
            conn.due, conn.dead = None, True
            conn.transport.abort()  # type: ignore[union-attr]
        self.finished = self.loop.create_future()
        self._sweep()

    def submit(self, due: float, wire: bytes) -> None:
        if self.free:
            self.free.popleft().send(due, wire)
        else:
            self.queue.append((due, wire))

    def release(self, conn: _Conn) -> None:
        if self.queue:
            due, wire = self.queue.popleft()
            conn.send(due, wire)
        else:
            conn.idle_since = _clock()
            self.free.append(conn)

    def _resolved(self) -> None:
        if self.warming:
            self.warming -= 1
            if not self.warming:
                self.finished.set_result(None)
            return
        self.left -= 1
        if not self.left and not self.finished.done():
            self.finished.set_result(None)

    def answered(self, due: float, code: int, body: bytes) -> None:
        if self.warming:
            self._resolved()
            return
        done = _clock()
        result = self.result
        if done > self.last_done:
            self.last_done = done
        result.latencies_ms.append((done - due) * 1000)
        if 200 <= code < 300:
            result.ok += 1
            try:
                parsed = orjson.loads(body)
            except orjson.JSONDecodeError:
                result.statuses["not json"] += 1
            else:
                status = parsed.get("status") if isinstance(parsed, dict) else None
                result.statuses[str(status)] += 1
        else:
            result.errors[f"http {code}"] += 1
        self._resolved()

    def failed(self, due: float, kind: str) -> None:
        if not self.warming:
            self.result.errors[kind] += 1
        self._resolved()

    def drop_free(self, conn: _Conn) -> None:
        if conn in self.free:
            self.free.remove(conn)

    def gone(self, conn: _Conn) -> None:
        """A connection closed (by either side): open another in its place."""
        self.drop_free(conn)
        if conn in self.conns:
            self.conns.discard(conn)
            if not self.closing:
                self._reopen()

    def _reopen(self) -> None:
        task = self.loop.create_task(self._reconnect())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reconnect(self) -> None:
        pause = 0.0
        while not self.closing:
            try:
                conn = await self._connect()
            except OSError:
                if self.queue:  # as a client that cannot connect fails the request waiting for it
                    due, _ = self.queue.popleft()
                    self.failed(due, "ClientConnectorError")
                pause = min(1.0, pause * 2 or 0.02)
                await asyncio.sleep(pause)
                continue
            if self.closing:
                conn.transport.close()
            else:
                self.release(conn)
            return

    def _sweep(self) -> None:
        """Time out requests (in flight or queued) older than ``timeout`` from their due time, and
        reopen connections idle too long."""
        if self.closing:
            return
        now = _clock()
        limit = now - self.timeout
        if not self.warming:
            for conn in [c for c in self.conns if c.due is not None and c.due < limit]:
                conn._fail("timeout")
            queue = self.queue
            while queue and queue[0][0] < limit:
                self.failed(queue.popleft()[0], "timeout")
        free = self.free
        while free and free[0].idle_since < now - IDLE_REOPEN_S:
            conn = free.popleft()
            conn.dead = True
            conn.transport.close()  # type: ignore[union-attr]
        self.loop.call_later(_SWEEP_S, self._sweep)

    def close(self) -> None:
        self.closing = True
        for conn in list(self.conns):
            if conn.transport is not None:
                conn.transport.close()
        for task in list(self._tasks):
            task.cancel()


async def _drive(
    base_url: str, plan: list[tuple[float, Delivery]], rate: float, connections: int, timeout: float
) -> LoadResult:
    result = LoadResult(target_rate=rate, seconds=plan[-1][0] + 1 / rate if plan else 0.0)
    result.scheduled = len(plan)
    loop = asyncio.get_running_loop()
    parts = urllib.parse.urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = f"{parts.path.rstrip('/')}/hooks/github?workspace={WORKSPACE}"
    wires: dict[int, bytes] = {}  # a delivery sent twice is built once
    for _, delivery in plan:
        if id(delivery) not in wires:
            wires[id(delivery)] = _wire(parts.netloc, path, delivery)
    dues = [at for at, _ in plan]
    queue = [wires[id(delivery)] for _, delivery in plan]
    del wires
    gc.collect()
    gc.freeze()  # the plan is never garbage: keep the collector off it during the run

    cpu0 = time.process_time()
    client = _Client(loop, host, port, connections, timeout, result)
    try:
        await client.open()
        client.left = len(plan)
        if not plan:
            client.finished.set_result(None)
        sent: asyncio.Future[float] = loop.create_future()
        start = _clock() + 0.05
        count, index, lag = len(plan), 0, 0.0

        def tick() -> None:
            nonlocal index, lag
            now = _clock()
            horizon = now + 0.0005
            while index < count:
                due = start + dues[index]
                if due > horizon:
                    loop.call_later(due - now, tick)
                    break
                if now - due > lag:
                    lag = now - due
                client.submit(due, queue[index])
                index += 1
            else:
                sent.set_result(now)

        loop.call_later(start - _clock(), tick)
        result.send_span_s = await sent - start
        result.max_send_lag_ms = lag * 1000
        await client.finished
    finally:
        client.close()
        gc.unfreeze()
    result.client_cpu_s = time.process_time() - cpu0
    result.span_s = max(client.last_done - start, result.send_span_s)
    return result


def _run_client(
    base_url: str, plan: list[tuple[float, Delivery]], rate: float, connections: int, timeout: float,
    event_loop: str,
) -> LoadResult:  # fmt: skip
    factory = None
    if event_loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(_drive(base_url, plan, rate, connections, timeout))


def _client_process(send: Any, *args: Any) -> None:
    try:
        outcome: Any = _run_client(*args)
    except BaseException:
        outcome = RuntimeError("load client failed:\n" + traceback.format_exc())
    send.send(outcome)
    send.close()


def client_loop(choice: str = "auto") -> str:
    """The client's event loop: ``uvloop`` when asked (or, for ``auto``, when installed), else asyncio's."""
    if choice == "auto":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            return "asyncio"
        return "uvloop"
    return choice


def drive(
    base_url: str,
    plan: list[tuple[float, Delivery]],
    rate: float,
    *,
    connections: int = 64,
    timeout: float = 30.0,
    event_loop: str = "auto",
    separate_process: bool = True,
) -> LoadResult:
    """Send ``plan`` open-loop to ``base_url`` and measure every answer (see the module doc).

    The client runs in a process of its own (forked, so the plan is not copied), with a GIL of its
    own and its CPU time counted apart from this process's; ``separate_process=False`` runs it here."""
    args = (base_url, plan, rate, connections, timeout, client_loop(event_loop))
    if not separate_process or "fork" not in multiprocessing.get_all_start_methods():
        return _run_client(*args)
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_client_process, args=(send, *args), name="load-bench-client")
    process.start()
    send.close()
    try:
        outcome = receive.recv()
    except EOFError:
        process.join(5)
        outcome = RuntimeError(f"the load client exited with code {process.exitcode}")
    finally:
        receive.close()
        process.join(30)
    if isinstance(outcome, BaseException):
        raise outcome
    result: LoadResult = outcome
    return result


# -- database and server ----------------------------------------------------------------------------


#: What each uvicorn worker logs once the app has started (its lifespan startup).
READY = "Application startup complete"


def postgres_url(explicit: str | None = None) -> str:
    url = explicit or os.environ.get("FLYWHEEL_TEST_DATABASE_URL", "").strip() or DEFAULT_PG
    from plugin.settings import load_settings

    return load_settings({"FLYWHEEL_DATABASE_URL": url}).database_url


class Stack:
    """A throw-away schema, the CLI set-up and a ``flywheel serve`` on a free port; ``close`` (or
    ``with``) stops the server and drops the schema."""

    def __init__(
        self, admin_url: str, *, workers: int, workdir: Path, rate_limit: str = "1000000 per second"
    ) -> None:
        from cryptography.fernet import Fernet
        from sqlalchemy.engine import make_url

        self.admin_url = admin_url
        self.schema = f"fw_load_{uuid.uuid4().hex[:10]}"
        self.workdir = workdir
        self.workers = workers
        self.url = (
            make_url(admin_url)
            .update_query_dict({"options": f"-csearch_path={self.schema}"})
            .render_as_string(hide_password=False)
        )
        self.env = {
            **os.environ,
            "FLYWHEEL_DATABASE_URL": self.url,
            "FLYWHEEL_SECRET_KEY": Fernet.generate_key().decode(),
            "FLYWHEEL_SECRET_KEY_FILE": str(workdir / "secret"),
            "FLYWHEEL_WORKSPACE": WORKSPACE,
            "FLYWHEEL_RATE_LIMIT_STORAGE": REDIS_URL,
            "FLYWHEEL_HOOKS_RATE_LIMIT": rate_limit,
            # As production runs it (docs/deploy.md): one JSON line a request instead of the access log.
            "FLYWHEEL_LOG_FORMAT": os.environ.get("FLYWHEEL_LOG_FORMAT", "json"),
        }
        self.port = 0
        self.server: subprocess.Popen[bytes] | None = None
        self.secret = ""
        self._schema_made = False

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _admin(self, sql: str) -> None:
        import psycopg

        plain = self.admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def _cli(self, *args: str) -> dict[str, Any]:
        done = subprocess.run(
            [*FLYWHEEL, *args, "--json"],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"flywheel {' '.join(args)} failed: {done.stderr.strip() or done.stdout}")
        data: dict[str, Any] = json.loads(done.stdout)
        return data

    def start(self) -> None:
        self._admin(f'CREATE SCHEMA "{self.schema}"')
        self._schema_made = True
        self._cli("db", "upgrade")
        self._cli("init")
        self.secret = str(self._cli("hooks", "secret", "github")["secret"])
        _flush_redis()
        self.port = _free_port()
        log = (self.workdir / "gunicorn.log").open("wb")
        self.server = subprocess.Popen(
            [
                *FLYWHEEL, "serve",
                "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            if self.server.poll() is not None:
                raise RuntimeError(f"flywheel serve exited: {(self.workdir / 'gunicorn.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("flywheel serve did not answer within 60 s")
            time.sleep(0.2)
        # Every worker ready before the clock starts: the first to boot would otherwise accept all
        # of the client's keep-alive connections and serve the run alone.
        while (self.workdir / "gunicorn.log").read_text(errors="replace").count(READY) < self.workers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"not every one of {self.workers} workers started within 60 s")
            time.sleep(0.2)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def server_pids(self) -> list[int]:
        """The gunicorn arbiter and its workers."""
        if self.server is None:
            return []
        pids = [self.server.pid]
        children = Path(f"/proc/{self.server.pid}/task/{self.server.pid}/children")
        if children.exists():
            pids += [int(p) for p in children.read_text().split()]
        return pids

    def counts(self) -> dict[str, int]:
        """Rows the run left: activities, inbound deliveries, members, identities."""
        import psycopg

        plain = self.url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(plain) as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM activities), "
                "(SELECT count(DISTINCT (source, source_activity_id)) FROM activities), "
                "(SELECT count(*) FROM inbound_deliveries), "
                "(SELECT count(*) FROM members), (SELECT count(*) FROM identities)"
            ).fetchone()
        assert row is not None
        keys = ("activities", "distinct_activities", "inbound_deliveries", "members", "identities")
        return dict(zip(keys, (int(v) for v in row), strict=True))

    def close(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()  # gunicorn's arbiter stops its workers on SIGTERM
            try:
                self.server.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, 9)
                self.server.wait(10)
        self.server = None
        if self._schema_made:
            self._admin(f'DROP SCHEMA "{self.schema}" CASCADE')
            self._schema_made = False
        _flush_redis()


def _flush_redis() -> None:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
    except Exception:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- CPU accounting -----------------------------------------------------------------------------------


def _ticks() -> int:
    return int(os.sysconf("SC_CLK_TCK"))


def process_cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of these processes (live ones only)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _ticks()


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def machine_cpu_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / _ticks(), sum(values) / _ticks()


# -- the run ------------------------------------------------------------------------------------------


def run(
    *,
    rate: float,
    seconds: float,
    workers: int,
    connections: int = 64,
    users: int = 2_000,
    retries: float = 0.01,
    database: str | None = None,
    log: Any = None,
    event_loop: str = "auto",
) -> dict[str, Any]:
    """The whole benchmark; returns its figures (see :func:`figures`)."""
    say = log or (lambda _msg: None)
    count = int(rate * seconds)
    with (
        tempfile.TemporaryDirectory(prefix="flywheel-load-bench-") as tmp,
        Stack(postgres_url(database), workers=workers, workdir=Path(tmp)) as stack,
    ):
        say(f"server: {stack.base_url}, {workers} worker(s), schema {stack.schema}; "
            f"client on {client_loop(event_loop)}, in a process of its own")  # fmt: skip
        built = time.perf_counter()
        deliveries = build_deliveries(count, stack.secret, users=users)
        plan = schedule(deliveries, rate, retries)
        mean_body = sum(len(d.body) for d in deliveries) / max(1, count)
        say(f"built and signed {count:,} deliveries ({mean_body / 1024:.1f} KiB each) in "
            f"{time.perf_counter() - built:.1f} s; {len(plan) - count:,} sent twice at once")  # fmt: skip
        server, pg = stack.server_pids(), postgres_pids()
        server_cpu0, pg_cpu0, machine0 = process_cpu_s(server), process_cpu_s(pg), machine_cpu_s()
        result = drive(stack.base_url, plan, rate, connections=connections, event_loop=event_loop)
        server_cpu = process_cpu_s(server) - server_cpu0
        pg_cpu = process_cpu_s(postgres_pids()) - pg_cpu0  # backends that exited are not counted
        machine1 = machine_cpu_s()
        busy, total = machine1[0] - machine0[0], machine1[1] - machine0[1]
        counts = stack.counts()
    return {
        "result": result,
        "events": count,
        "counts": counts,
        "workers": workers,
        "connections": connections,
        "users": users,
        "cpu_s": {
            "client": result.client_cpu_s,
            "gunicorn": server_cpu,
            "postgres": pg_cpu,
            "machine_busy": busy,
            "machine_total": total,
            "others": max(0.0, busy - result.client_cpu_s - server_cpu - pg_cpu),
        },
    }


def figures(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The figures in ``bench/run_all``'s format, with their bounds and whether they hold."""
    r: LoadResult = report["result"]
    counts = report["counts"]
    errors = sum(r.errors.values())
    span = r.span_s or 1.0
    cpu = report["cpu_s"]

    def fig(name: str, value: float, unit: str, bound: str | None, ok: bool | None) -> dict[str, Any]:
        return {"name": name, "value": value, "unit": unit, "bound": bound, "ok": ok}

    return [
        fig("target rate", r.target_rate, "events/s", None, None),
        fig("achieved rate", round(r.achieved_rate, 1), "events/s", ">= 1000",
            r.achieved_rate >= 1000),
        fig("events", report["events"], "events", None, None),
        fig("requests sent (incl. concurrent retries)", r.scheduled, "requests", None, None),
        fig("2xx answers", r.ok, "requests", f"== {r.scheduled}", r.ok == r.scheduled),
        fig("errors", errors, "requests", "== 0", errors == 0),
        fig("latency p50", round(r.percentile(50), 2), "ms", None, None),
        fig("latency p95", round(r.percentile(95), 2), "ms", None, None),
        fig("latency p99", round(r.percentile(99), 2), "ms", "< 200", r.percentile(99) < 200),
        fig("latency max", round(max(r.latencies_ms, default=float("nan")), 2), "ms", None, None),
        fig("activities stored", counts["activities"], "activities", f"== {report['events']}",
            counts["activities"] == report["events"]),
        fig("inbound deliveries recorded", counts["inbound_deliveries"], "deliveries",
            f"== {report['events']}", counts["inbound_deliveries"] == report["events"]),
        fig("client CPU", round(100 * cpu["client"] / span, 1), "% of one core", None, None),
        fig("gunicorn CPU", round(100 * cpu["gunicorn"] / span, 1), "% of one core", None, None),
        fig("PostgreSQL CPU", round(100 * cpu["postgres"] / span, 1), "% of one core", None, None),
        fig("other processes' CPU", round(100 * cpu["others"] / span, 1), "% of one core", None, None),
    ]  # fmt: skip


def _print(report: dict[str, Any], args: argparse.Namespace) -> None:
    r: LoadResult = report["result"]
    counts = report["counts"]
    cpu = report["cpu_s"]
    span = r.span_s or 1.0
    print(
        f"target {r.target_rate:,.0f} events/s for {args.seconds:g} s, {report['workers']} gunicorn "
        f"worker(s), {report['connections']} keep-alive connections, {report['users']:,} members"
    )
    print(
        f"  achieved      {r.achieved_rate:,.1f} events/s (2xx answers / {r.span_s:.2f} s from first due "
        f"time to last answer; sending took {r.send_span_s:.2f} s, worst send lag "
        f"{r.max_send_lag_ms:.1f} ms)"
    )
    print(
        f"  sent          {report['events']:,} events, {r.scheduled:,} requests "
        f"({r.scheduled - report['events']:,} concurrent retries)"
    )
    print(f"  2xx           {r.ok:,}  {dict(r.statuses)}")
    print(f"  errors        {sum(r.errors.values()):,}  {dict(r.errors) or ''}")
    print(
        f"  latency       p50 {r.percentile(50):.1f} ms, p95 {r.percentile(95):.1f} ms, "
        f"p99 {r.percentile(99):.1f} ms, max {max(r.latencies_ms, default=float('nan')):.1f} ms"
    )
    print(
        f"  stored        {counts['activities']:,} activities ({counts['distinct_activities']:,} distinct), "
        f"{counts['inbound_deliveries']:,} deliveries recorded, {counts['members']:,} members, "
        f"{counts['identities']:,} identities"
    )
    print(
        f"  CPU (% of one core over the run): client {100 * cpu['client'] / span:.0f}, gunicorn "
        f"{100 * cpu['gunicorn'] / span:.0f}, PostgreSQL {100 * cpu['postgres'] / span:.0f}, "
        f"everything else {100 * cpu['others'] / span:.0f}; machine busy "
        f"{100 * cpu['machine_busy'] / max(cpu['machine_total'], 1e-9):.0f}%"
    )
    print(
        f"  machine       {machine()}, Python {platform.python_version()}, "
        f"{datetime.now(UTC).isoformat(timespec='seconds')}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second (default 1000)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the run (default 60)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--connections", type=int, default=64, help="client keep-alive connections")
    parser.add_argument("--users", type=int, default=2_000, help="community members the events come from")
    parser.add_argument(
        "--retries", type=float, default=0.01, help="share of deliveries sent twice at once (default 0.01)"
    )
    parser.add_argument("--database", help="PostgreSQL URL (default FLYWHEEL_TEST_DATABASE_URL or local)")
    parser.add_argument(
        "--client-loop",
        choices=("auto", "uvloop", "asyncio"),
        default="auto",
        help="the client's event loop (default auto: uvloop when installed)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)
    report = run(
        rate=args.rate,
        seconds=args.seconds,
        workers=args.workers,
        connections=args.connections,
        users=args.users,
        retries=args.retries,
        database=args.database,
        event_loop=args.client_loop,
        log=lambda msg: print(msg, flush=True),
    )
    _print(report, args)
    figs = figures(report)
    if args.json:
        command = "python -m bench.load_bench " + shlex.join(sys.argv[1:] if argv is None else argv)
        print(
            json.dumps(
                {
                    "bench": "load",
                    "command": command.strip(),
                    "machine": machine(),
                    "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "figures": figs,
                }
            )
        )
    counts = report["counts"]
    if counts["activities"] != report["events"] or counts["inbound_deliveries"] != report["events"]:
        print(f"FAILED: {report['events']:,} events in, {counts['activities']:,} activities stored, "
              f"{counts['inbound_deliveries']:,} deliveries recorded", file=sys.stderr)  # fmt: skip
        return 1
    return 0 if all(f["ok"] is not False for f in figs) else 2


if __name__ == "__main__":
    sys.exit(main())
