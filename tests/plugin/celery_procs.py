"""Real Celery workers and a beat for tests, as separate processes on this machine's Redis.

``FLYWHEEL_TEST_BROKER_URL`` names the broker (default redis://127.0.0.1:6379/13; the database is
emptied first). Without a broker the tests skip, saying so; with ``FLYWHEEL_REQUIRE_BROKER=1`` (CI)
they fail instead.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from plugin.settings import Settings

BROKER = os.environ.get("FLYWHEEL_TEST_BROKER_URL", "redis://127.0.0.1:6379/12")


def broker_or_skip() -> str:
    import redis

    try:
        client = redis.Redis.from_url(BROKER, socket_connect_timeout=2)
        client.flushdb()
        client.close()
    except redis.RedisError as exc:
        if os.environ.get("FLYWHEEL_REQUIRE_BROKER") == "1":
            pytest.fail(f"FLYWHEEL_REQUIRE_BROKER=1 but the broker {BROKER} is not reachable: {exc}")
        pytest.skip(f"no Redis broker at {BROKER} ({exc}); start one with `redis-server --daemonize yes`")
    return BROKER


def job_env(settings: Settings, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "FLYWHEEL_DATABASE_URL": settings.database_url,
        "FLYWHEEL_SECRET_KEY": settings.secret_key or "",
        "FLYWHEEL_SECRET_KEY_FILE": str(tmp_path / "secret"),
        "FLYWHEEL_BROKER_URL": BROKER,
        "FLYWHEEL_TICK_SECONDS": "0.3",
        "FLYWHEEL_JOB_LEASE_SECONDS": "3",
        "FLYWHEEL_JOB_REQUEUE_SECONDS": "2",
        "FLYWHEEL_CRM_LEASE_SECONDS": "3",
        **extra,
    }


class Procs:
    """The worker and beat processes of one test; each in its own process group, so that a kill
    takes the Celery parent and its pool children at once, as a machine's crash would."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{args[0]}-{len(self.started)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-c", "from plugin.cli import main; main()", *args],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.started.append(proc)
        return proc

    def worker(self, concurrency: int = 2) -> subprocess.Popen[bytes]:
        return self.start("worker", "--concurrency", str(concurrency))

    def beat(self) -> subprocess.Popen[bytes]:
        return self.start("beat")

    @staticmethod
    def kill(proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL to the whole process group: no task gets to finish or give its message back."""
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(20)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    self.kill(proc)

    def handled(self, task: str) -> list[str]:
        """The worker's log lines of finished tasks of one name."""
        return [line for line in self.output().splitlines() if task in line and " succeeded in " in line]

    def output(self, tail: int | None = None) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-(tail or 0) :] for p in sorted(self.logs.glob("*.log"))
        )


@contextmanager
def celery(settings: Settings, tmp_path: Path, **extra: str) -> Iterator[Procs]:
    broker_or_skip()
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    procs = Procs(job_env(settings, tmp_path, **extra), logs)
    try:
        yield procs
    finally:
        procs.stop_all()


def wait_for(what: Callable[[], bool], seconds: float, procs: Procs, why: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if what():
            return
        time.sleep(0.2)
    raise AssertionError(
        f"{why} (after {seconds:g} s)\n--- worker and beat output ---\n{procs.output(tail=4000)}"
    )
