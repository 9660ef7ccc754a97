"""Webhook endpoints with their delivery log, notices, and a replay button per delivery."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from sqlalchemy.orm import Session

from plugin.db.ids import parse_id
from plugin.errors import FlywheelError
from plugin.services.webhook_endpoints import list_endpoints, notices
from plugin.services.webhook_outbox import deliveries, replay
from plugin.web.context import engine
from plugin.web.dashboard.blueprints import pages_bp
from plugin.web.dashboard.common import page, require, user


def _endpoint_arg(value: str | None) -> int | None:
    return parse_id(value)


@pages_bp.get("/webhooks")
@require("webhooks:manage")
def webhooks() -> Any:
    ws = user().workspace_id
    endpoint_id = _endpoint_arg(request.args.get("endpoint_id"))
    failed = request.args.get("failed") == "1"
    with Session(engine()) as session:
        endpoints = [
            {"id": e.id, "url": e.url, "description": e.description, "events": e.event_types,
             "enabled": e.enabled, "disabled_reason": e.disabled_reason, "failing_since": e.failing_since,
             "rate": e.rate_limit, "created_at": e.created_at}
            for e in list_endpoints(session, ws)
        ]  # fmt: skip
        log = deliveries(session.connection(), ws, endpoint_id=endpoint_id, failed=failed, limit=100)
        notes = [
            {"at": n.created_at, "endpoint": n.endpoint_id, "kind": n.kind.replace("_", " "), "text": n.text}
            for n in notices(session, ws)
        ]
    return page("webhooks.html", endpoints=endpoints, log=log, notes=notes, endpoint_id=endpoint_id,
                failed=failed)  # fmt: skip


@pages_bp.post("/webhooks/replay")
@require("webhooks:manage")
def replay_delivery() -> Any:
    msg_id = request.form.get("msg_id", "")[:40]
    endpoint_id = _endpoint_arg(request.form.get("endpoint"))
    try:
        with engine().begin() as conn:
            moved = replay(conn, user().workspace_id, msg_id, endpoint_id)
    except FlywheelError as exc:
        flash(f"Not replayed: {exc.user_message}." + (f" {exc.hint}." if exc.hint else ""), "error")
    else:
        flash(f"Message {msg_id} is queued again ({moved} delivery), with its original id.", "success")
    return redirect(url_for(".webhooks", endpoint_id=request.form.get("back_endpoint") or None))
