"""One HTTP POST of a signed message, to the address the SSRF guard approved and nowhere else.

The host is resolved and checked by the guard at send time, and the connection is made to the
checked address itself (the Host header and, for HTTPS, the TLS server name and certificate check
still use the host name), so a DNS answer that changes between the check and the connect cannot
steer a delivery inside. Redirects are not followed, nothing is retried here (the outbox's policy
decides), and the whole attempt is bounded by the timeout. Connections are kept alive per
address, so a busy endpoint costs one TLS handshake, not one per message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)

from webhooks.guard import Guard, GuardError
from webhooks.redact import excerpt

EXCERPT_BYTES = 1024  # what is kept of a response body, before redaction
DRAIN_BYTES = 64 * 1024  # a longer answer closes the connection rather than being read to its end


@dataclass(frozen=True)
class Answer:
    """What one attempt got: a status, or None and why there was none."""

    status: int | None
    duration_ms: float
    error: str | None = None
    excerpt: str | None = None
    retry_after: str | None = None


class Sender:
    """Thread-safe; one per worker process. ``ca_certs`` adds trust roots (tests' local CAs)."""

    def __init__(
        self,
        guard: Guard,
        *,
        timeout_s: float,
        user_agent: str = "Flywheel-Webhooks",
        ca_certs: str | None = None,
        pool_size: int = 16,
        resolve_ttl_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.guard = guard
        self.timeout = urllib3.Timeout(total=timeout_s)
        self.timeout_s = timeout_s
        self.user_agent = user_agent
        self.ca_certs = ca_certs
        self.pool_size = pool_size
        self.resolve_ttl_s = resolve_ttl_s
        self.clock = clock
        self._pools: dict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = {}
        self._resolved: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def _address(self, url: str) -> str:
        now = self.clock()
        with self._lock:
            cached = self._resolved.get(url)
        if cached and now - cached[0] < self.resolve_ttl_s:
            return cached[1]
        address = self.guard.check(url)[0]
        with self._lock:
            self._resolved[url] = (now, address)
        return address

    def _pool(self, scheme: str, host: str, port: int, address: str) -> urllib3.HTTPConnectionPool:
        key = (scheme, host, port, address)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                common = {
                    "maxsize": self.pool_size,
                    "block": False,
                    "timeout": self.timeout,
                    "retries": False,
                }
                if scheme == "https":
                    pool = urllib3.HTTPSConnectionPool(
                        address,
                        port,
                        server_hostname=host,
                        assert_hostname=host,
                        cert_reqs="CERT_REQUIRED",
                        ca_certs=self.ca_certs,
                        **common,  # type: ignore[arg-type]
                    )
                else:
                    pool = urllib3.HTTPConnectionPool(address, port, **common)  # type: ignore[arg-type]
                self._pools[key] = pool
            return pool

    def send(self, url: str, headers: Mapping[str, str], body: bytes) -> Answer:
        started = time.perf_counter()

        def took() -> float:
            return round((time.perf_counter() - started) * 1000, 2)

        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            address = self._address(url)
        except GuardError as exc:
            return Answer(None, took(), error=f"refused by the SSRF guard: {exc.reason}"[:300])
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        default_port = port == (443 if parts.scheme == "https" else 80)
        sent = {
            **headers,
            "Host": host if default_port else f"{host}:{port}",
            "Content-Type": "application/json",
            "User-Agent": self.user_agent,
        }
        pool = self._pool(parts.scheme, host, port, address)
        try:
            response = pool.urlopen(
                "POST", path, body=body, headers=sent, redirect=False, retries=False, preload_content=False
            )
        except NewConnectionError:  # before the timeouts: in urllib3 2 it is a ConnectTimeoutError too
            return Answer(None, took(), error=f"could not connect to {host}:{port}")
        except (ConnectTimeoutError, ReadTimeoutError):
            return Answer(None, took(), error=f"no answer within {self.timeout_s:g} s")
        except SSLError as exc:
            return Answer(None, took(), error=f"TLS failed: {_first_line(exc)}")
        except HTTPError as exc:
            return Answer(None, took(), error=f"connection failed: {_first_line(exc)}")
        # Read what the receiver answers against the same deadline, one socket read at a time, so
        # a receiver that drips its answer cannot hold the thread past about twice the timeout.
        deadline = started + self.timeout_s
        head = b""
        complete = False
        try:
            head = response.read1(EXCERPT_BYTES)
            complete = response.length_remaining == 0
            drained = 0
            while not complete and drained < DRAIN_BYTES and time.perf_counter() < deadline:
                chunk = response.read1(8192)
                if not chunk:
                    complete = True
                    break
                drained += len(chunk)
                complete = response.length_remaining == 0
        except (ReadTimeoutError, HTTPError):
            complete = False
        if not complete:  # an answer not read to its end cannot share the connection
            response.close()
        response.release_conn()
        return Answer(
            response.status,
            took(),
            excerpt=excerpt(head),
            retry_after=response.headers.get("Retry-After"),
        )

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
