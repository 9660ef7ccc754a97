"""``create_app``: one Flask app per settings, with its engine in ``app.extensions``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Flask, jsonify
from sqlalchemy import Engine
from werkzeug.exceptions import HTTPException

from plugin.db.base import utcnow
from plugin.db.engine import make_engine
from plugin.db.migrate import is_current, upgrade
from plugin.errors import ConfigError
from plugin.settings import Settings, load_settings


def problem(status: int, title: str, detail: str | None = None, **extra: Any) -> tuple[Any, int]:
    """An RFC 9457 problem-details response."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    response = jsonify(body)
    response.mimetype = "application/problem+json"
    return response, status


def create_app(
    settings: Settings | None = None, engine: Engine | None = None, clock: Callable[[], datetime] = utcnow
) -> Flask:
    """``clock`` gives the time signatures are checked against (tests pass the vectors' own time)."""
    settings = settings or load_settings()
    engine = engine or make_engine(settings)
    if not is_current(engine):
        if not settings.is_sqlite:
            raise ConfigError("the database schema is not up to date", hint="run `flywheel db upgrade`")
        upgrade(engine)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_hook_body
    app.extensions["flywheel.settings"] = settings
    app.extensions["flywheel.engine"] = engine
    app.extensions["flywheel.clock"] = clock

    from plugin.web.hooks import hooks_bp
    from plugin.web.panels import panels_bp
    from plugin.web.referrals import referrals_bp

    app.register_blueprint(hooks_bp)
    app.register_blueprint(panels_bp)
    app.register_blueprint(referrals_bp)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Any, int]:
        status = exc.code or 500
        if status == 413:
            return problem(
                413, "Payload too large", f"bodies over {settings.max_hook_body:,} bytes are refused"
            )
        return problem(status, exc.name, exc.description)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
