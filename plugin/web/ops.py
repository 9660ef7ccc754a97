"""Operations endpoints and per-request instrumentation.

- ``GET /healthz``: liveness; the process answers (no database access).
- ``GET /readyz``: readiness; the database answers, its schema is at this Flywheel's migration head,
  and the Celery broker answers when one is configured. 503 names each failing check and what to
  do, as problem details.
- ``GET /metrics``: Prometheus text format; open unless ``FLYWHEEL_METRICS_TOKEN`` is set, then
  ``Authorization: Bearer <token>`` is required.

These three routes carry no ambient authority and change nothing: they are exempt from CSRF and
the rate limiter, and they are not part of the API (``/api/v1``), so the API's role matrix does not
cover them.

Every request also gets an id (``X-Request-ID``: the caller's, when it is a plain token of at most
128 characters, else a new one), echoed in the response, put on each log line written while it is
handled, and with ``FLYWHEEL_LOG_FORMAT=json`` one log line (``flywheel.request``) when answered.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from flask_limiter import Limiter
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from plugin.db.migrate import alembic_config, current_revision, head_revision
from plugin.logs import MASK, new_request_id, redact, request_id_var
from plugin.services import metrics
from plugin.web.context import engine as _engine
from plugin.web.context import now as _now
from plugin.web.context import settings as _settings
from plugin.web.hook_intake import OUTCOMES, metric_source
from plugin.web.problems import problem
from plugin.web.security import csrf

ops_bp = Blueprint("ops", __name__)
request_log = logging.getLogger("flywheel.request")

BROKER_TIMEOUT_S = 2.0
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
#: Path variables that are secrets in themselves (sign-in links, panel answers, embeds, referral
#: codes): masked in the request log line.
_SECRET_PATH_VARS = ("token", "code")


def register_ops(app: Flask, limiter: Limiter) -> None:
    """Register the blueprint, exempt from CSRF and rate limits, with its request hooks."""
    limiter.exempt(ops_bp)
    csrf.exempt(ops_bp)
    app.register_blueprint(ops_bp)


@ops_bp.record_once
def _first(state: Any) -> None:
    # Ahead of every other before_request (the rate limiter's included), so a refused request is
    # timed and has an id too.
    state.app.before_request_funcs.setdefault(None, []).insert(0, _start)


# -- the endpoints -----------------------------------------------------------------------------


@ops_bp.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@ops_bp.get("/readyz")
def readyz() -> Any:
    settings = _settings()
    checks: dict[str, dict[str, Any]] = {}
    checks["database"] = _check_database(_engine())
    if checks["database"]["ok"]:
        checks["schema"] = _check_schema(_engine())
    else:
        checks["schema"] = {"ok": False, "error": "not checked: the database does not answer"}
        checks["schema"]["hint"] = checks["database"]["hint"]
    if settings.broker_url:
        checks["broker"] = _check_broker(settings.broker_url)
    failing = [name for name, check in checks.items() if not check["ok"]]
    if not failing:
        return {"status": "ready", "checks": checks}
    detail = "; ".join(f"{name}: {checks[name]['error']} ({checks[name]['hint']})" for name in failing)
    return problem(503, "Not ready", detail, failing=failing, checks=checks)


@ops_bp.get("/metrics")
def prometheus() -> Any:
    token = _settings().metrics_token
    if token is not None:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, f"Bearer {token}".encode()):
            response, status = problem(
                401, "Metrics need a token", "send Authorization: Bearer <FLYWHEEL_METRICS_TOKEN>"
            )
            response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response, status
    body = metrics.exposition(_engine(), _now())
    return Response(body, status=200, content_type=metrics.CONTENT_TYPE_LATEST)


# -- readiness checks ------------------------------------------------------------------------------


def _failure(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines() or [type(cause).__name__]
    return redact(lines[0])[:300]


def _check_database(engine: Engine) -> dict[str, Any]:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1")).scalar_one()
    except (SQLAlchemyError, OSError) as exc:
        return {
            "ok": False,
            "error": f"the database does not answer: {_failure(exc)}",
            "hint": "check FLYWHEEL_DATABASE_URL and that the database server is running",
        }
    return {"ok": True}


def _head(engine: Engine) -> str | None:
    # The migration scripts do not change while the process runs: read them once per app.
    key = "flywheel.ops.head"
    if key not in current_app.extensions:
        current_app.extensions[key] = head_revision(engine)
    head: str | None = current_app.extensions[key]
    return head


def _known(engine: Engine, revision: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(alembic_config(engine)).get_revision(revision) is not None
    except (RevisionError, CommandError):
        return False


def _check_schema(engine: Engine) -> dict[str, Any]:
    head = _head(engine)
    try:
        current = current_revision(engine)
    except SQLAlchemyError as exc:
        return {
            "ok": False,
            "error": f"the schema version cannot be read: {_failure(exc)}",
            "hint": "run `flywheel db upgrade`",
        }
    if current == head:
        return {"ok": True, "revision": current}
    if current is None:
        return {
            "ok": False,
            "error": "the database has no Flywheel schema",
            "hint": "run `flywheel db upgrade`",
            "expected": head,
        }
    if not _known(engine, current):
        return {
            "ok": False,
            "error": f"the schema is at {current}, which this Flywheel does not know (a newer version?)",
            "hint": "deploy the Flywheel version that migrated this database, or a newer one",
            "revision": current,
            "expected": head,
        }
    return {
        "ok": False,
        "error": f"the schema is at {current}, not at this Flywheel's {head}",
        "hint": "run `flywheel db upgrade` (back the database up first)",
        "revision": current,
        "expected": head,
    }


def _ping_broker(url: str, timeout: float) -> None:
    scheme = url.split("://", 1)[0].lower()
    if scheme in ("redis", "rediss"):
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client = redis.Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )
        try:
            client.ping()
        finally:
            client.close()
    elif scheme in ("amqp", "amqps", "pyamqp"):
        from kombu.connection import Connection

        with Connection(url, connect_timeout=timeout) as conn:  # type: ignore[no-untyped-call]
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
    # memory:// is in-process: nothing to reach.


def _check_broker(url: str) -> dict[str, Any]:
    try:
        _ping_broker(url, BROKER_TIMEOUT_S)
    except Exception as exc:  # each client has its own error classes; any of them means "down"
        return {
            "ok": False,
            "error": f"the broker at {redact(url)} does not answer: {_failure(exc)}",
            "hint": "check FLYWHEEL_BROKER_URL and that Redis or RabbitMQ is running",
        }
    return {"ok": True}


# -- per-request instrumentation -------------------------------------------------------------------


def _start() -> None:
    g.flywheel_started = time.perf_counter()
    given = request.headers.get("X-Request-ID", "")
    g.flywheel_request_id = given if REQUEST_ID.match(given) else new_request_id()
    g.flywheel_request_token = request_id_var.set(g.flywheel_request_id)


def _group() -> str:
    """A bounded label for what answered: api, dashboard, hooks, ops, ... (unmatched: none)."""
    if request.url_rule is None:
        return "none"
    if request.path.startswith("/api/"):
        return "api"
    blueprint = request.blueprint
    if blueprint is None:
        return "app"
    return "dashboard" if blueprint.startswith("dashboard") or blueprint == "sign_in_link" else blueprint


def _hook_event(response: Response) -> tuple[str, str]:
    """(source, outcome) of a hook request: as the receiver noted them (plugin.web.hooks._respond),
    or for what Flask refused before it (a body too large, an unknown path), from the status."""
    noted = g.get("flywheel_hook_outcome")
    if noted is not None:
        return g.get("flywheel_hook_source") or "unknown", noted
    status = response.status_code
    source = (request.endpoint or "hooks.unknown").removeprefix("hooks.")
    name = str((request.view_args or {}).get("source", "")).lower()
    outcome = "error" if status >= 500 else OUTCOMES.get(status, "rejected")
    return metric_source(source, name, status), outcome


def _log_path() -> str:
    path = request.path
    for name in _SECRET_PATH_VARS:
        value = (request.view_args or {}).get(name)
        if isinstance(value, str) and value:
            path = path.replace(value, MASK)
    return path


@ops_bp.after_app_request
def _finish(response: Response) -> Response:
    started = g.get("flywheel_started")
    seconds = time.perf_counter() - started if started is not None else 0.0
    request_id = g.get("flywheel_request_id") or new_request_id()
    response.headers["X-Request-ID"] = request_id
    metrics.observe_request(_group(), response.status_code, seconds)
    if request.blueprint == "hooks":
        metrics.count_hook_event(*_hook_event(response))
    if _settings().log_format == "json":
        request_log.info(
            "%s %s %s",
            request.method,
            _log_path(),
            response.status_code,
            extra={
                "method": request.method,
                "path": _log_path(),
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 2),
                "request_id": request_id,
            },
        )
    return response


@ops_bp.teardown_app_request
def _forget(_exc: BaseException | None) -> None:
    token = g.pop("flywheel_request_token", None)
    if token is not None:
        try:
            request_id_var.reset(token)
        except ValueError:  # set in another context (a copied one): nothing of ours to undo
            request_id_var.set(None)
