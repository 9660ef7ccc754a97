"""The delivery worker: claims due deliveries, signs and sends them on a pool of threads, and
records the outcomes, as a pipeline (claims keep coming while earlier sends are in flight, so one
slow receiver holds a thread, not the whole worker).

Run as many as needed, in as many processes or machines: claims never overlap, and a worker killed
at any moment loses nothing (its claims fall due again when their lease ends).
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from plugin import __version__
from plugin.errors import ConfigError
from plugin.services.webhook_claims import Job, claim, load_jobs
from plugin.services.webhook_endpoints import guard_for, live_secrets, policy_for
from plugin.services.webhook_outbox import prune
from plugin.services.webhook_results import Outcome, record
from plugin.settings import Settings
from webhooks.policy import Decision, RetryPolicy
from webhooks.signing import signed_headers
from webhooks.transport import Answer, Sender

log = logging.getLogger(__name__)
PRUNE_EVERY_S = 600.0
HELD_S = 300.0  # a message that cannot be signed is looked at again after this long
BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)  # waits after database errors, the last one repeated
T = TypeVar("T")
UNSIGNABLE = (
    "the endpoint's secret cannot be decrypted (FLYWHEEL_SECRET_KEY changed): restore the key, "
    "or run `flywheel webhooks rotate-secret ID` and give the receiver the new secret"
)


def worker_name() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        threads: int = 16,
        batch: int = 200,
        sender: Sender | None = None,
        policy: RetryPolicy | None = None,
        idle_s: float = 0.1,
        name: str | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.threads = max(1, threads)
        self.batch = max(1, batch)
        self.policy = policy or policy_for(settings)
        self.sender = sender or Sender(
            guard_for(settings),
            timeout_s=self.policy.timeout_s,
            user_agent=f"Flywheel-Webhooks/{__version__}",
            ca_certs=settings.webhook_ca_bundle,
            pool_size=self.threads,
        )
        self.idle_s = idle_s
        self.name = name or worker_name()
        # A claim waits for at most one send ahead of it on its thread, then takes its own; a send
        # (connect, request, the answer read against the same deadline) takes at most two timeouts.
        self.lease_s = 5 * self.policy.timeout_s + 5
        self._secrets: dict[tuple[Any, ...], tuple[str, ...]] = {}
        self._next_prune = time.monotonic() + PRUNE_EVERY_S
        self._failures = 0

    def _live(self, row: Any) -> tuple[str, ...]:
        now = datetime.now(UTC)
        rotating = bool(row.previous_secret_until and row.previous_secret_until > now)
        key = (row.secret_encrypted, row.previous_secret_encrypted if rotating else None)
        if key not in self._secrets:
            try:
                self._secrets[key] = live_secrets(self.settings, row, now)
            except ConfigError:  # the key changed: this endpoint's messages wait, the others go
                return ()
        return self._secrets[key]

    def claim(self, limit: int, delivery_id: int | None = None) -> list[Job]:
        with self.engine.begin() as conn:
            claimed = claim(conn, self.name, limit, self.lease_s, datetime.now(UTC), delivery_id=delivery_id)
            if not claimed:
                return []
            return load_jobs(conn, claimed, self._live)

    def attempt(self, job: Job) -> Outcome:
        at = datetime.now(UTC)
        if not job.secrets:  # nothing can be sent: the message waits, its attempts untouched
            return Outcome(job, Answer(None, 0.0, error=UNSIGNABLE), Decision("held", HELD_S, UNSIGNABLE), at)
        try:
            headers = signed_headers(job.secrets, job.msg_id, int(at.timestamp()), job.body)
            answer = self.sender.send(job.url, headers, job.body)
        except Exception as exc:  # a bug must cost one attempt, not the worker
            log.exception("webhook attempt failed unexpectedly")
            answer = Answer(None, 0.0, error=f"internal error: {type(exc).__name__}")
        decision = self.policy.decide(
            job.claimed.attempt, answer.status, retry_after=answer.retry_after, error=answer.error
        )
        return Outcome(job, answer, decision, at)

    def send_one(self, delivery_id: int) -> Outcome | None:
        """Send one delivery now (``webhooks test``); None if it is not pending."""
        jobs = self.claim(1, delivery_id)
        if not jobs:
            return None
        outcome = self.attempt(jobs[0])
        self.record([outcome])
        return outcome

    def record(self, outcomes: list[Outcome]) -> Counter[str]:
        with self.engine.begin() as conn:
            return record(conn, self.name, outcomes, datetime.now(UTC))

    def run(
        self,
        *,
        once: bool = False,
        stop: threading.Event | None = None,
        progress: Callable[[Counter[str]], None] | None = None,
    ) -> Counter[str]:
        """Deliver until ``stop`` is set (or, with ``once``, until nothing is due), then finish
        what is in flight and record it. Returns the outcomes by kind."""
        stop = stop or threading.Event()
        tally: Counter[str] = Counter()
        capacity = self.threads * 2
        results: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        inflight = 0

        def attempt(job: Job) -> None:
            results.put(self.attempt(job))

        unrecorded: list[Outcome] = []  # sent, but the database refused the record: tried again
        with ThreadPoolExecutor(self.threads, thread_name_prefix="webhook") as pool:
            while True:
                room = capacity - inflight
                if not stop.is_set() and not unrecorded and (room >= max(1, capacity // 4) or not inflight):
                    for job in self._guarded(partial(self.claim, min(room, self.batch)), stop) or []:
                        pool.submit(attempt, job)
                        inflight += 1
                self._guarded(self._maybe_prune, stop)
                if not inflight and not unrecorded:
                    if stop.is_set() or once:
                        break
                    stop.wait(self.idle_s)
                    continue
                done = _collect(results, inflight) if inflight else []
                inflight -= len(done)
                batch = unrecorded + done
                if batch:
                    counted = self._guarded(partial(self.record, batch), stop)
                    if counted is None:
                        unrecorded = batch
                        if stop.is_set() and not inflight:
                            log.error(
                                "%d webhook outcomes not recorded; sent again after the lease", len(batch)
                            )
                            break
                        continue
                    unrecorded = []
                    tally += counted
                    if progress:
                        progress(tally)
        return tally

    def _guarded(self, step: Callable[[], T], stop: threading.Event) -> T | None:
        """Run a database step; on a database error, log it, wait (longer each time) and say None,
        so a restart of the database or a lock costs a pause, not the worker."""
        try:
            out = step()
        except (SQLAlchemyError, OSError):
            wait = BACKOFF_S[min(self._failures, len(BACKOFF_S) - 1)]
            self._failures += 1
            log.exception("webhook worker: database step failed; trying again in %.0f s", wait)
            stop.wait(wait)
            return None
        self._failures = 0
        return out

    def _maybe_prune(self) -> None:
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_EVERY_S
        cutoff = datetime.now(UTC) - timedelta(days=self.settings.webhook_retention_days)
        with self.engine.begin() as conn:
            pruned = prune(conn, cutoff)
        if pruned:
            log.info("pruned %d delivered webhook messages older than %s", pruned, cutoff)

    def close(self) -> None:
        self.sender.close()


def _collect(results: queue.SimpleQueue[Outcome], inflight: int, window_s: float = 0.03) -> list[Outcome]:
    """Outcomes as they come: wait for the first, then gather more for a moment (fewer, larger
    commits), stopping once half of what is in flight is back, so claiming resumes early."""
    try:
        done = [results.get(timeout=0.5)]
    except queue.Empty:
        return []
    deadline = time.monotonic() + window_s
    while len(done) < max(1, inflight // 2):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            done.append(results.get(timeout=left))
        except queue.Empty:
            break
    return done
