"""``create_app``: one Flask app per settings, with its engine in ``app.extensions``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Flask, request
from sqlalchemy import Engine
from werkzeug.routing import IntegerConverter

from plugin.db.base import utcnow
from plugin.db.engine import make_engine
from plugin.db.ids import MAX_ID
from plugin.db.migrate import is_current, upgrade
from plugin.errors import ConfigError
from plugin.logs import configure_logging
from plugin.settings import Settings, load_settings
from plugin.web.problems import problem
from plugin.web.security import secure_app

__all__ = ["create_app", "problem"]


class StoredInt(IntegerConverter):
    """``<int:...>`` path ids, bounded to what a database column can hold: a larger number is a
    path that matches nothing (404), not a query the driver cannot bind (500)."""

    def __init__(
        self, url_map: Any, fixed_digits: int = 0, min: int | None = None, max: int | None = None
    ) -> None:
        super().__init__(url_map, fixed_digits, min, max if max is not None else MAX_ID)


def create_app(
    settings: Settings | None = None, engine: Engine | None = None, clock: Callable[[], datetime] = utcnow
) -> Flask:
    """``clock`` gives the time signatures are checked against (tests pass the vectors' own time)."""
    settings = settings or load_settings()
    configure_logging(settings)
    engine = engine or make_engine(settings)
    if not is_current(engine):
        if not settings.is_sqlite:
            raise ConfigError("the database schema is not up to date", hint="run `flywheel db upgrade`")
        upgrade(engine)
    app = Flask(__name__)
    app.url_map.converters["int"] = StoredInt  # before any route: ids beyond a column are not found
    app.config["MAX_CONTENT_LENGTH"] = settings.max_hook_body
    app.extensions["flywheel.settings"] = settings
    app.extensions["flywheel.engine"] = engine
    app.extensions["flywheel.clock"] = clock

    from plugin.web.api import register_api
    from plugin.web.crm_card import crm_card_bp
    from plugin.web.dashboard import register_dashboard
    from plugin.web.hook_intake import HookIntake
    from plugin.web.hooks import hooks_bp
    from plugin.web.ops import register_ops
    from plugin.web.panels import panels_bp
    from plugin.web.referrals import referrals_bp
    from plugin.web.sign_in_link import link_bp

    limiter = secure_app(app, settings)
    limiter.request_filter(lambda: request.blueprint == "hooks")  # their own guard: hook_guard.py
    app.extensions["flywheel.hook_intake"] = HookIntake(engine, settings, clock)
    app.register_blueprint(hooks_bp)
    app.register_blueprint(panels_bp)
    app.register_blueprint(referrals_bp)
    register_dashboard(app, limiter, settings)
    app.register_blueprint(link_bp)
    app.register_blueprint(crm_card_bp)
    register_api(app, limiter, settings)  # also answers every HTTP error of the app as problem details
    register_ops(app, limiter)  # /healthz, /readyz, /metrics; request ids, timings, request log

    return app
