"""Production serving with gunicorn; each worker builds its own app (and database pool) after fork."""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from plugin.settings import Settings


# gunicorn ships no type hints, so its base class is Any to mypy.
class FlywheelServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        from plugin.web.app import create_app

        return create_app(self.settings)


def run_gunicorn(settings: Settings, host: str, port: int, workers: int) -> None:
    FlywheelServer(
        settings,
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "preload_app": False,
            "accesslog": "-",
            "timeout": 60,
            "graceful_timeout": 20,
        },
    ).run()
