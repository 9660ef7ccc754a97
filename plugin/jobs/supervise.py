"""Keep a Celery worker (or beat) running: start it as a child process and start it again when it
dies of anything but being asked to stop.

Celery's worker can die of its broker: with the Redis transport (kombu 5.7), a Redis restart makes
the consumer's reconnect fail with ``AttributeError: 'NoneType' object has no attribute
'hostname'``, logged as "Unrecoverable error", and the process exits (seen in our fault test; the
same failure class is reported as kombu issue #582). A worker that quits when the broker blinks
would stop every job until a person noticed, so ``flywheel worker`` supervises its Celery process
itself, whatever the process manager around it does.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

log = logging.getLogger(__name__)
CHILD_ENV = "FLYWHEEL_SUPERVISED"
BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
HEALTHY_S = 60.0  # a child that ran this long starts the backoff over


def is_child() -> bool:
    return os.environ.get(CHILD_ENV) == "1"


def supervise(args: Sequence[str], what: str) -> int:
    """Run ``flywheel <args>`` as a child until SIGTERM or SIGINT (passed on to it, and awaited);
    restart it, with growing pauses, whenever it exits on its own. Returns the last exit code."""
    stop = threading.Event()
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _frame: object) -> None:
        stop.set()
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    failures = 0
    code = 0
    while not stop.is_set():
        started = time.monotonic()
        child = subprocess.Popen(  # noqa: S603 (our own command line: no outside input)
            [sys.executable, "-c", "from plugin.cli import main; main()", *args],
            env={**os.environ, CHILD_ENV: "1"},
        )
        code = child.wait()
        if stop.is_set():
            break
        failures = 0 if time.monotonic() - started > HEALTHY_S else failures + 1
        wait = BACKOFF_S[min(failures, len(BACKOFF_S)) - 1] if failures else BACKOFF_S[0]
        log.error("%s stopped on its own (exit %s); starting it again in %.0f s", what, code, wait)
        stop.wait(wait)
    return code
