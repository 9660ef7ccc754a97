"""``flywheel webhooks``: endpoints, their deliveries, replays, and the delivery worker."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from rich.markup import escape
from rich.table import Table
from sqlalchemy import func, select

from plugin.cli.context import (
    AppContext,
    handle_errors,
    json_option,
    pass_app,
    stop_on_signals,
    workspace_option,
)
from plugin.db.base import utcnow
from plugin.db.models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from plugin.errors import ValidationFailed
from plugin.services.webhook_endpoints import (
    add_endpoint,
    get_endpoint,
    list_endpoints,
    notices,
    rotate_secret,
    set_enabled,
)
from plugin.services.webhook_outbox import Event, deliveries, emit, prune, recover, replay
from plugin.services.webhook_worker import Worker
from webhooks.events import ping

KEEP_IT = "keep it now: it is shown only this once (give it to the receiver to verify signatures)"


@click.group()
def webhooks() -> None:
    """Outgoing webhooks: where referral, reward, panel and score events are sent."""


def _endpoint_dict(row: WebhookEndpoint, by_status: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "id": row.id,
        "url": row.url,
        "events": row.event_types or ["*"],
        "rate_limit": row.rate_limit,
        "enabled": row.enabled,
        "disabled_reason": row.disabled_reason,
        "failing_since": row.failing_since.isoformat() if row.failing_since else None,
        "rotating_until": row.previous_secret_until.isoformat()
        if row.previous_secret_until and row.previous_secret_until > utcnow()
        else None,
        "description": row.description,
        "deliveries": by_status or {},
    }


@webhooks.command("add")
@click.argument("url")
@click.option("--events", default=None, help="Comma-separated event types (default: every type).")
@click.option("--rate", type=float, default=None, help="At most this many messages per second.")
@click.option("--description", default=None)
@workspace_option
@json_option
@pass_app
@handle_errors
def add(
    app: AppContext,
    url: str,
    events: str | None,
    rate: float | None,
    description: str | None,
    workspace: str | None,
    as_json: bool,
) -> None:
    """Register an endpoint; prints its signing secret once."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
        created = add_endpoint(
            session, app.settings, ws.id, url, events=events, rate=rate, description=description
        )
        session.commit()
        data = _endpoint_dict(created.endpoint) | {"secret": created.secret}
    if as_json:
        app.emit_json(data)
        return
    app.out.print(f"endpoint {data['id']}: {escape(url)} for {', '.join(data['events'])}")
    app.out.print(f"signing secret: {created.secret}")
    app.out.print(KEEP_IT)
    app.out.print(f"next: `flywheel webhooks test {data['id']}` sends it a ping")


@webhooks.command("list")
@workspace_option
@json_option
@pass_app
@handle_errors
def list_(app: AppContext, workspace: str | None, as_json: bool) -> None:
    """Endpoints with their state and deliveries by status."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
        rows = list_endpoints(session, ws.id)
        d = WebhookDelivery
        counted: dict[int, dict[str, int]] = {}
        for endpoint_id, status, n in session.execute(
            select(d.endpoint_id, d.status, func.count())
            .where(d.endpoint_id.in_([r.id for r in rows]))
            .group_by(d.endpoint_id, d.status)
        ):
            counted.setdefault(endpoint_id, {})[status] = n
        data = [_endpoint_dict(r, counted.get(r.id)) for r in rows]
    if as_json:
        app.emit_json({"endpoints": data})
        return
    if not data:
        app.out.print("no endpoints yet: `flywheel webhooks add https://… --events referral.invitation`")
        return
    table = Table("id", "url", "events", "state", "deliveries")
    for e in data:
        state = "enabled" if e["enabled"] else f"disabled: {e['disabled_reason'] or 'by hand'}"
        if e["failing_since"]:
            state += f" (failing since {e['failing_since'][:16]})"
        shown = ", ".join(f"{k} {v:,}" for k, v in sorted(e["deliveries"].items()))
        table.add_row(str(e["id"]), escape(e["url"]), ", ".join(e["events"]), escape(state), shown or "-")
    app.out.print(table)


@webhooks.command("rotate-secret")
@click.argument("endpoint_id", type=int)
@workspace_option
@json_option
@pass_app
@handle_errors
def rotate(app: AppContext, endpoint_id: int, workspace: str | None, as_json: bool) -> None:
    """A new secret; the old one keeps signing beside it for 24 hours."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
        created = rotate_secret(session, app.settings, ws.id, endpoint_id)
        session.commit()
        until = created.endpoint.previous_secret_until
    if as_json:
        app.emit_json({"id": endpoint_id, "secret": created.secret, "old_secret_until": until})
        return
    app.out.print(f"new signing secret: {created.secret}")
    app.out.print(KEEP_IT)
    app.out.print(f"messages carry both signatures until {until:%Y-%m-%d %H:%M} UTC" if until else "")


def _toggle(app: AppContext, endpoint_id: int, workspace: str | None, as_json: bool, enabled: bool) -> None:
    with app.session() as session:
        ws = app.workspace(session, workspace)
        moved = set_enabled(
            session, ws.id, endpoint_id, enabled, "enabled by hand" if enabled else "disabled by hand"
        )
        session.commit()
    if as_json:
        app.emit_json({"id": endpoint_id, "enabled": enabled, "deliveries_moved": moved})
    elif enabled:
        app.out.print(f"endpoint {endpoint_id} enabled; {moved:,} waiting message(s) are due now")
    else:
        app.out.print(
            f"endpoint {endpoint_id} disabled; {moved:,} pending message(s) wait until it is enabled"
        )


@webhooks.command("disable")
@click.argument("endpoint_id", type=int)
@workspace_option
@json_option
@pass_app
@handle_errors
def disable(app: AppContext, endpoint_id: int, workspace: str | None, as_json: bool) -> None:
    """Stop sending to an endpoint; its messages wait."""
    _toggle(app, endpoint_id, workspace, as_json, False)


@webhooks.command("enable")
@click.argument("endpoint_id", type=int)
@workspace_option
@json_option
@pass_app
@handle_errors
def enable(app: AppContext, endpoint_id: int, workspace: str | None, as_json: bool) -> None:
    """Send to an endpoint again, starting with the messages that waited."""
    _toggle(app, endpoint_id, workspace, as_json, True)


@webhooks.command("deliveries")
@click.option("--endpoint", "endpoint_id", type=int, default=None)
@click.option("--failed", is_flag=True, help="Only messages that ran out of attempts.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50)
@workspace_option
@json_option
@pass_app
@handle_errors
def deliveries_(
    app: AppContext, endpoint_id: int | None, failed: bool, limit: int, workspace: str | None, as_json: bool
) -> None:
    """The latest deliveries, newest first."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
        rows = deliveries(session.connection(), ws.id, endpoint_id=endpoint_id, failed=failed, limit=limit)
    if as_json:
        app.emit_json({"deliveries": rows})
        return
    if not rows:
        app.out.print("no deliveries match")
        return
    table = Table("message", "event", "endpoint", "status", "attempts", "last answer", "created")
    for r in rows:
        answer = r["last_error"] or (str(r["last_status"]) if r["last_status"] else "-")
        table.add_row(
            r["msg_id"],
            r["event_type"],
            str(r["endpoint_id"]),
            r["status"],
            str(r["attempts"]),
            escape(answer[:60]),
            f"{r['created_at']:%Y-%m-%d %H:%M:%S}",
        )
    app.out.print(table)


@webhooks.command("replay")
@click.argument("msg_id")
@click.option("--endpoint", "endpoint_id", type=int, default=None, help="Only to this endpoint.")
@workspace_option
@json_option
@pass_app
@handle_errors
def replay_(
    app: AppContext, msg_id: str, endpoint_id: int | None, workspace: str | None, as_json: bool
) -> None:
    """Send a message again with its original webhook-id (the worker sends it)."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
        moved = replay(session.connection(), ws.id, msg_id, endpoint_id)
        session.commit()
    if as_json:
        app.emit_json({"msg_id": msg_id, "deliveries_queued": moved})
        return
    app.out.print(f"{msg_id} is due again on {moved} endpoint(s); `flywheel webhooks deliver` sends it")


_RELATIVE = re.compile(r"^(\d+)\s*([smhd])$")


def parse_since(text: str) -> datetime:
    """An ISO date or time (UTC unless it says otherwise), or a span back from now: 90m, 24h, 7d."""
    match = _RELATIVE.match(text.strip())
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        return utcnow() - timedelta(**{unit: int(match.group(1))})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed(
            f"{text!r} is not a time", fields={"since": "e.g. 2026-12-01, 2026-12-01T08:00Z or 24h"}
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@webhooks.command("recover")
@click.argument("endpoint_id", type=int)
@click.option("--since", required=True, help="ISO time, or a span like 24h or 7d.")
@workspace_option
@json_option
@pass_app
@handle_errors
def recover_(app: AppContext, endpoint_id: int, since: str, workspace: str | None, as_json: bool) -> None:
    """Resend every message that failed to an endpoint since a time, with their original ids."""
    when = parse_since(since)
    with app.session() as session:
        ws = app.workspace(session, workspace)
        moved = recover(session.connection(), ws.id, endpoint_id, when)
        session.commit()
    if as_json:
        app.emit_json({"endpoint": endpoint_id, "since": when.isoformat(), "deliveries_queued": moved})
        return
    app.out.print(f"{moved:,} failed message(s) since {when:%Y-%m-%d %H:%M} UTC are due again")


@webhooks.command("deliver")
@click.option("--once", is_flag=True, help="Send what is due now, then stop.")
@click.option("--threads", type=click.IntRange(1, 256), default=16, help="Concurrent sends.")
@json_option
@pass_app
@handle_errors
def deliver(app: AppContext, once: bool, threads: int, as_json: bool) -> None:
    """The delivery worker: runs until stopped (Ctrl-C or SIGTERM finish what is in flight)."""
    stop = stop_on_signals()
    worker = Worker(app.engine, app.settings, threads=threads)
    with app.progress("delivering webhooks") as update:

        def show(tally: Counter[str]) -> None:
            update(tally["delivered"], sum(tally.values()))

        tally = worker.run(once=once, stop=stop, progress=None if as_json else show)
    worker.close()
    if as_json:
        app.emit_json({"outcomes": dict(tally)})
        return
    shown = ", ".join(f"{k} {v:,}" for k, v in sorted(tally.items())) or "nothing was due"
    app.out.print(f"attempts: {shown}")


@webhooks.command("test")
@click.argument("endpoint_id", type=int)
@workspace_option
@json_option
@pass_app
@handle_errors
def test(app: AppContext, endpoint_id: int, workspace: str | None, as_json: bool) -> None:
    """Send a signed ping to an endpoint now and show its answer."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
        endpoint = get_endpoint(session, ws.id, endpoint_id)
        if not endpoint.enabled:
            raise ValidationFailed(
                f"endpoint {endpoint_id} is disabled", hint=f"`flywheel webhooks enable {endpoint_id}` first"
            )
        conn = session.connection()
        payload = ping(workspace=ws.slug, occurred_at=utcnow(), endpoint_id=endpoint_id)
        (msg_id,) = emit(conn, ws.id, [Event("ping", payload)], endpoint_id=endpoint_id)
        session.commit()
        delivery_id = session.execute(
            select(WebhookDelivery.id)
            .join(WebhookMessage, WebhookMessage.id == WebhookDelivery.message_id)
            .where(WebhookMessage.msg_id == msg_id, WebhookDelivery.endpoint_id == endpoint_id)
        ).scalar_one()
    worker = Worker(app.engine, app.settings, threads=1)
    outcome = worker.send_one(delivery_id)
    worker.close()
    answer = outcome.answer if outcome else None
    data = {
        "msg_id": msg_id,
        "status": answer.status if answer else None,
        "error": answer.error if answer else "already sent by a running worker",
        "duration_ms": answer.duration_ms if answer else None,
        "response": answer.excerpt if answer else None,
        "outcome": outcome.decision.kind if outcome else None,
    }
    if as_json:
        app.emit_json(data)
        return
    if answer and answer.status and 200 <= answer.status < 300:
        app.out.print(f"ping {msg_id} delivered: {answer.status} in {answer.duration_ms:.0f} ms")
    else:
        app.out.print(f"ping {msg_id} not delivered: {escape(str(data['error'] or data['status']))}")
        app.out.print(
            "it will be retried on the usual schedule; `flywheel webhooks deliveries` shows attempts"
        )


@webhooks.command("prune")
@click.option(
    "--older-than", default=None, help="A span such as 30d (default: FLYWHEEL_WEBHOOK_RETENTION_DAYS)."
)
@json_option
@pass_app
@handle_errors
def prune_(app: AppContext, older_than: str | None, as_json: bool) -> None:
    """Forget delivered messages older than the retention (failed and waiting ones are kept).
    The worker does this by itself every ten minutes."""
    cutoff = (
        parse_since(older_than)
        if older_than
        else utcnow() - timedelta(days=app.settings.webhook_retention_days)
    )
    total = 0
    with app.progress("pruning") as update:
        while True:
            with app.engine.begin() as conn:
                pruned = prune(conn, cutoff)
            total += pruned
            update(total, total)
            if not pruned:
                break
    if as_json:
        app.emit_json({"pruned": total, "before": cutoff.isoformat()})
        return
    app.out.print(f"forgot {total:,} delivered message(s) created before {cutoff:%Y-%m-%d %H:%M} UTC")


@webhooks.command("notices")
@workspace_option
@json_option
@pass_app
@handle_errors
def notices_(app: AppContext, workspace: str | None, as_json: bool) -> None:
    """What happened to endpoints: disabled after failures or 410 Gone, rotated, re-enabled."""
    with app.session() as session:
        ws = app.workspace(session, workspace)
        rows: list[dict[str, Any]] = [
            {"at": n.created_at.isoformat(), "endpoint": n.endpoint_id, "kind": n.kind, "text": n.text}
            for n in notices(session, ws.id)
        ]
    if as_json:
        app.emit_json({"notices": rows})
        return
    for n in rows or [{"at": "", "endpoint": "", "kind": "", "text": "no notices"}]:
        app.out.print(f"{n['at'][:16]} endpoint {n['endpoint']} {n['kind']}: {escape(str(n['text']))}")
