"""What every blueprint reads from the app: its engine, settings and clock (tests pass a fixed one)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flask import current_app
from sqlalchemy import Engine

from plugin.settings import Settings


def engine() -> Engine:
    found: Engine = current_app.extensions["flywheel.engine"]
    return found


def settings() -> Settings:
    found: Settings = current_app.extensions["flywheel.settings"]
    return found


def now() -> datetime:
    clock: Callable[[], datetime] = current_app.extensions["flywheel.clock"]
    return clock()
