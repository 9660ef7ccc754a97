"""A fast local webhook receiver for tests and bench/: HTTP/1.1 with keep-alive on asyncio, that
checks every Standard Webhooks signature, answers 2xx, fails a share of requests at random, and
lets another share time out; it remembers what it saw.

In a thread: ``with Receiver(secret, fail_rate=0.2) as r: ... r.url``. As a process (bench/):
``python -m tests.fakes.webhook_receiver --port 0 --secret whsec_...`` prints its port, then
serves ``GET /stats`` as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import random
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Seen:
    """What the receiver saw: per message id, the bodies' hashes and the answers given."""

    requests: int = 0
    bad_signatures: int = 0
    answers: Counter[int] = field(default_factory=Counter)
    timed_out: int = 0
    bodies: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    accepted: dict[str, float] = field(default_factory=dict)  # msg id -> first 2xx time
    arrivals: dict[str, float] = field(default_factory=dict)  # msg id -> first arrival time
    headers: list[dict[str, str]] = field(default_factory=list)  # the first few, for inspection

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "bad_signatures": self.bad_signatures,
            "answers": dict(self.answers),
            "timed_out": self.timed_out,
            "distinct_ids": len(self.bodies),
            "accepted_ids": len(self.accepted),
            "ids_with_differing_bodies": sum(1 for b in self.bodies.values() if len(b) > 1),
        }


def _keys(secrets: list[str]) -> list[bytes]:
    return [base64.b64decode(s.removeprefix("whsec_")) for s in secrets]


def verify(keys: list[bytes], headers: dict[str, str], body: bytes) -> bool:
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    signed = f"{msg_id}.{stamp}.".encode() + body
    offered = {
        p.split(",", 1)[1] for p in headers.get("webhook-signature", "").split() if p.startswith("v1,")
    }
    return any(
        base64.b64encode(hmac.new(k, signed, hashlib.sha256).digest()).decode() in offered for k in keys
    )


class Receiver:
    def __init__(
        self,
        secrets: Sequence[str] | str = (),
        *,
        fail_rate: float = 0.0,
        timeout_rate: float = 0.0,
        hang_s: float = 2.0,
        status: int = 200,
        seed: int = 7,
        port: int = 0,
    ) -> None:
        self.keys = _keys([secrets] if isinstance(secrets, str) else list(secrets))
        self.fail_rate = fail_rate
        self.timeout_rate = timeout_rate
        self.hang_s = hang_s
        self.status = status
        self.extra_headers: dict[str, str] = {}
        # Answers for the next requests, in order: (status, headers, body); then the defaults.
        self.script: list[tuple[int, dict[str, str], bytes]] = []
        self.raw: list[tuple[dict[str, str], bytes]] = []  # every request as received
        self.rng = random.Random(seed)
        self.seen = Seen()
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._stop: asyncio.Event

    def trust(self, *secrets: str) -> None:
        """Verify with these secrets from now on (an endpoint's secret is known once it is added)."""
        self.keys = _keys(list(secrets))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {
                    k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:] if ":" in x)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if method == "GET" and path == "/stats":
                    self._write(writer, 200, json.dumps(self.seen.stats()).encode())
                else:
                    await self._hook(writer, headers, body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            with contextlib.suppress(RuntimeError):
                writer.close()

    async def _hook(self, writer: asyncio.StreamWriter, headers: dict[str, str], body: bytes) -> None:
        seen = self.seen
        seen.requests += 1
        now = time.monotonic()
        msg_id = headers.get("webhook-id", "")
        if len(seen.headers) < 20:
            seen.headers.append(headers)
        seen.bodies[msg_id].add(hashlib.sha256(body).hexdigest())
        seen.arrivals.setdefault(msg_id, now)
        self.raw.append((headers, body))
        if not verify(self.keys, headers, body):
            seen.bad_signatures += 1
            self._write(writer, 401, b'{"error":"bad signature"}')
            seen.answers[401] += 1
            return
        if self.script:
            status, extra, answer = self.script.pop(0)
            seen.answers[status] += 1
            if 200 <= status < 300:
                seen.accepted.setdefault(msg_id, now)
            self._write(writer, status, answer, extra)
            return
        roll = self.rng.random()
        if roll < self.timeout_rate:
            seen.timed_out += 1
            await asyncio.sleep(self.hang_s)  # the sender has given up by now: not delivered
            self._write(writer, 200, b"late")
            return
        status = 500 if roll < self.timeout_rate + self.fail_rate else self.status
        seen.answers[status] += 1
        if 200 <= status < 300:
            seen.accepted.setdefault(msg_id, now)
        self._write(writer, status, b'{"ok":true}' if status < 300 else b'{"error":"try later"}')

    def _write(
        self, writer: asyncio.StreamWriter, status: int, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        extra = "".join(f"{k}: {v}\r\n" for k, v in {**self.extra_headers, **(headers or {})}.items())
        head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        writer.write(f"{head}{extra}\r\n".encode() + body)

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        self._server.close()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def __enter__(self) -> Receiver:
        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self._main())
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread:
            self._thread.join(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--secret", action="append", required=True)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    args = parser.parse_args()
    receiver = Receiver(args.secret, fail_rate=args.fail_rate, port=args.port)
    with receiver:
        print(receiver.port, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    sys.exit(0)


if __name__ == "__main__":
    main()
