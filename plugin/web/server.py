"""Production serving with gunicorn; each worker builds its own app (and database pool) after fork.

Workers run an event loop (uvicorn's, on uvloop and httptools) with ``FlywheelASGI``: the webhook
receivers are answered on the loop, and every other request goes to the Flask app on a pool of
``THREADS`` threads (a thread waiting on the database leaves the others serving). A platform's
sender keeps its connection open between deliveries (HTTP keep-alive, ``KEEPALIVE`` seconds).
``GUNICORN_CMD_ARGS`` (gunicorn's own variable, e.g. ``--keep-alive 30 --timeout 120``) overrides
these defaults.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from typing import Any, ClassVar

from gunicorn.app.base import BaseApplication
from uvicorn_worker import UvicornWorker

from plugin.settings import Settings

#: Threads per worker for the Flask app: enough to overlap database round trips; each holds at
#: most one pooled connection, within SQLAlchemy's default pool (5 + 10 overflow), beside the hook
#: receivers' one writer.
THREADS = 12
#: Seconds an idle keep-alive connection stays open (gunicorn's default is 2).
KEEPALIVE = 15


# gunicorn ships no type hints, so its base class is Any to mypy.
class FlywheelServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        extra = os.environ.get("GUNICORN_CMD_ARGS")
        if extra:
            parsed = self.cfg.parser().parse_args(shlex.split(extra))
            for key, value in vars(parsed).items():
                if value is not None and key in self.cfg.settings:
                    self.cfg.set(key.lower(), value)

    def load(self) -> Any:
        from plugin.web.app import create_app
        from plugin.web.hooks_asgi import FlywheelASGI

        return FlywheelASGI(create_app(self.settings), THREADS)


class FlywheelWorker(UvicornWorker):  # type: ignore[misc]
    """uvicorn under gunicorn. The sender's address is the socket's: X-Forwarded-For is read only
    behind ``FLYWHEEL_TRUSTED_PROXIES`` proxies, by the app itself (ProxyFix, ``FlywheelASGI``)."""

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        "loop": "auto",
        "http": "auto",
        "proxy_headers": False,
        "server_header": False,
    }


def run_gunicorn(settings: Settings, host: str, port: int, workers: int) -> None:
    # The workers share one listening socket, and libuv accepts every waiting connection at once: a
    # sender opening its keep-alive connections together would have them all on one worker. One
    # accept at a time (libuv's own switch for multi-process servers) spreads them.
    os.environ.setdefault("UV_TCP_SINGLE_ACCEPT", "1")
    FlywheelServer(
        settings,
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "worker_class": "plugin.web.server.FlywheelWorker",
            "keepalive": KEEPALIVE,
            "preload_app": False,
            "accesslog": "-",
            "timeout": 60,
            "graceful_timeout": 20,
            **ops_options(settings),
        },
    ).run()


def metrics_dir() -> tuple[str, bool]:
    """The directory the workers share their Prometheus counts in: ``PROMETHEUS_MULTIPROC_DIR``
    when set (the operator empties it before each start), else a fresh temporary one, set in the
    environment the workers inherit. Returns it and whether it was made here."""
    from plugin.services.metrics import MULTIPROC_ENV

    if os.environ.get(MULTIPROC_ENV):
        chosen = os.environ[MULTIPROC_ENV]
        os.makedirs(chosen, exist_ok=True)  # a folder that is gone would fail every worker's counting
        return chosen, False
    made = tempfile.mkdtemp(prefix="flywheel-metrics-")
    os.environ[MULTIPROC_ENV] = made
    return made, True


def ops_options(settings: Settings) -> dict[str, Any]:
    """gunicorn options for metrics and logs: every worker counts into one multiprocess directory
    (a dead worker's live gauges dropped, a directory made here removed at exit); with JSON logs the
    app's one JSON line per request (``flywheel.request``) replaces gunicorn's access log."""
    from plugin.services.metrics import child_exit

    directory, made = metrics_dir()
    options: dict[str, Any] = {"child_exit": child_exit}
    if made:
        options["on_exit"] = lambda _server: shutil.rmtree(directory, ignore_errors=True)
    if settings.log_format == "json":
        options["accesslog"] = None
    return options
