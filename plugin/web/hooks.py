"""Inbound webhook receivers on Flask: verify, de-duplicate, parse, store.

The rules are in ``plugin/web/hook_intake.py``, shared with the asynchronous receiver that
``flywheel serve`` runs (``plugin/web/hooks_asgi.py``); this blueprint answers them on Flask's
development server and test client. The activities and the delivery id are written in one
transaction, the delivery id with INSERT ... ON CONFLICT DO NOTHING: a delivery already recorded (a
platform's retry, even one arriving at the same moment) rolls it back and is answered 200
"duplicate" with nothing stored, and a delivery that failed to store is not recorded, so its retry
stores it. Deliveries arriving together are written in one transaction (``DeliveryWriter``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from plugin.services.ingest import DeliveryWriter
from plugin.web.context import engine as _engine
from plugin.web.hook_intake import HookAnswer, HookIntake, HookRequest

hooks_bp = Blueprint("hooks", __name__, url_prefix="/hooks")


def _intake() -> HookIntake:
    found: HookIntake = current_app.extensions["flywheel.hook_intake"]
    return found


def _writer() -> DeliveryWriter:
    writer = current_app.extensions.get("flywheel.delivery_writer")
    if writer is None:
        writer = current_app.extensions.setdefault("flywheel.delivery_writer", DeliveryWriter(_engine()))
    return writer  # type: ignore[no-any-return]


def _respond(answer: HookAnswer) -> Response:
    g.flywheel_hook_outcome = answer.outcome  # for the metrics (plugin/web/ops.py)
    g.flywheel_hook_source = answer.source
    response = jsonify(answer.body)
    response.status_code = answer.status
    response.mimetype = answer.content_type
    response.headers.update(answer.headers)
    return response


@hooks_bp.before_request
def _guard() -> Response | None:
    """Per sending address, this process's budget (``FLYWHEEL_HOOKS_RATE_LIMIT``): 429 beyond it."""
    refused = _intake().admit(
        (request.endpoint or "hooks.").removeprefix("hooks."), request.remote_addr or ""
    )
    return None if refused is None else _respond(refused)


def _handle(route: str, name: str = "") -> Response:
    intake = _intake()
    req = HookRequest(
        route,
        {key.lower(): value for key, value in request.headers.items()},
        request.get_data(cache=True),  # 413 beyond MAX_CONTENT_LENGTH (Flask)
        request.remote_addr or "",
        request.args.get("workspace"),
        name,
    )
    checked = intake.check(req)
    if isinstance(checked, HookAnswer):
        return _respond(checked)
    _writer().store(checked.workspace_id, checked.delivery)
    return _respond(intake.stored(checked))


@hooks_bp.post("/github")
def github() -> Any:
    return _handle("github")


@hooks_bp.post("/discourse")
def discourse() -> Any:
    return _handle("discourse")


@hooks_bp.post("/slack")
def slack() -> Any:
    return _handle("slack")


@hooks_bp.post("/generic/<source>")
def generic(source: str) -> Any:
    return _handle("generic", source)
