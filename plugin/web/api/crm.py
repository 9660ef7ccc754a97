"""``/api/v1/crm``: the workspace's CRM connections (never their credentials) and sync runs."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from sqlalchemy import Row, func, select

from plugin.db.base import table_of
from plugin.db.ids import MAX_ID
from plugin.db.models import CrmConnection, CrmSyncRun
from plugin.errors import NotFound
from plugin.services.crm_connections import KINDS, SANDBOX
from plugin.web.api.core import PageArgs, blueprint, current, guarded, page_schema, paged
from plugin.web.api.webhooks import after_id
from plugin.web.context import engine, now

blp = blueprint("crm", "/crm", "CRM connections and their sync runs")
F = ma.fields
DIRECTIONS = ("push", "pull")


class CrmLease(ma.Schema):
    held = F.Boolean(required=True, metadata={"description": "a sync or pull holds the connection now"})
    holder = F.String(required=True, allow_none=True, metadata={"description": "host:pid:run of the holder"})
    expires_at = F.AwareDateTime(required=True, allow_none=True)


class CrmSyncRunItem(ma.Schema):
    id = F.Integer(required=True)
    connection_id = F.Integer(required=True)
    kind = F.String(required=True, metadata={"description": "hubspot or salesforce"})
    direction = F.String(required=True, metadata={"description": "push (sync) or pull"})
    dry_run = F.Boolean(required=True)
    status = F.String(required=True, metadata={"description": "running, done or failed"})
    started_at = F.AwareDateTime(required=True)
    finished_at = F.AwareDateTime(required=True, allow_none=True)
    counts = F.Dict(
        keys=F.String(), values=F.Integer(), required=True, metadata={"description": "records by outcome"}
    )
    calls = F.Dict(
        keys=F.String(), values=F.Integer(), required=True, metadata={"description": "API calls by operation"}
    )
    error = F.String(required=True, allow_none=True)


class CrmConnectionItem(ma.Schema):
    id = F.Integer(required=True)
    kind = F.String(required=True, metadata={"description": "hubspot or salesforce"})
    base_url = F.String(
        required=True,
        allow_none=True,
        metadata={"description": "the API host or Salesforce instance; null: the CRM's default"},
    )
    sandbox = F.Boolean(
        required=True, metadata={"description": "a test-mode connection to the local sandbox"}
    )
    field_mapping = F.Dict(
        keys=F.String(),
        values=F.String(allow_none=True),
        required=True,
        metadata={"description": "fields sent under another name than the default (null: not sent)"},
    )
    created_at = F.AwareDateTime(required=True)
    checked_at = F.AwareDateTime(required=True, allow_none=True)
    lease = F.Nested(CrmLease, required=True)
    last_run = F.Nested(CrmSyncRunItem, required=True, allow_none=True)


def _run_columns() -> list[Any]:
    r, c = table_of(CrmSyncRun), table_of(CrmConnection)
    return [
        r.c.id,
        r.c.connection_id,
        c.c.kind,
        r.c.direction,
        r.c.dry_run,
        r.c.status,
        r.c.started_at,
        r.c.finished_at,
        r.c.counts,
        r.c.calls,
        r.c.error,
    ]


def _run(row: Row[Any]) -> dict[str, Any]:
    out = dict(row._mapping)
    out["counts"] = out["counts"] or {}
    out["calls"] = out["calls"] or {}
    return out


def _connection(row: Any, last: dict[str, Any] | None) -> dict[str, Any]:
    """A connection as shown: the columns that say what it is and how it is doing, never the
    credentials (not even encrypted), and no sandbox state path."""
    sandbox = (row.base_url or "").startswith(SANDBOX)
    held = row.lock_holder is not None and row.lock_expires_at is not None and row.lock_expires_at > now()
    return {
        "id": row.id,
        "kind": row.kind,
        "base_url": None if sandbox else row.base_url,
        "sandbox": sandbox,
        "field_mapping": dict((row.settings or {}).get("fields") or {}),
        "created_at": row.created_at,
        "checked_at": row.checked_at,
        "lease": {
            "held": held,
            "holder": row.lock_holder if held else None,
            "expires_at": row.lock_expires_at if held else None,
        },
        "last_run": last,
    }


def _connections(connection_id: int | None = None) -> list[dict[str, Any]]:
    c, r = table_of(CrmConnection), table_of(CrmSyncRun)
    stmt = select(
        c.c.id,
        c.c.kind,
        c.c.base_url,
        c.c.settings,
        c.c.created_at,
        c.c.checked_at,
        c.c.lock_holder,
        c.c.lock_expires_at,
    ).where(c.c.workspace_id == current().workspace_id)
    if connection_id is not None:
        stmt = stmt.where(c.c.id == connection_id)
    with engine().connect() as conn:
        rows = conn.execute(stmt.order_by(c.c.id)).all()
        last: dict[int, dict[str, Any]] = {}
        if rows:
            newest = (
                select(func.max(r.c.id))
                .where(r.c.connection_id.in_([row.id for row in rows]))
                .group_by(r.c.connection_id)
            )
            runs = conn.execute(
                select(*_run_columns()).join(c, c.c.id == r.c.connection_id).where(r.c.id.in_(newest))
            )
            last = {run.connection_id: _run(run) for run in runs}
    return [_connection(row, last.get(row.id)) for row in rows]


@blp.get("/connections")
@guarded(blp, "connections:manage", not_found=False)
@blp.response(200, CrmConnectionItem(many=True))
def list_connections() -> list[dict[str, Any]]:
    """The workspace's CRM connections (at most one per kind), with the lease that keeps two syncs
    from overlapping and the last run. Credentials are never shown."""
    return _connections()


@blp.get("/connections/<int:connection_id>")
@guarded(blp, "connections:manage")
@blp.response(200, CrmConnectionItem)
def get_connection(connection_id: int) -> dict[str, Any]:
    """One CRM connection (no credentials)."""
    found = _connections(connection_id)
    if not found:
        raise NotFound(f"no CRM connection {connection_id}")
    return found[0]


class CrmSyncRunArgs(PageArgs):
    connection_id = F.Integer(validate=ma.validate.Range(1, MAX_ID))
    direction = F.String(validate=ma.validate.OneOf(DIRECTIONS))
    kind = F.String(validate=ma.validate.OneOf(KINDS))


RunPage = page_schema(CrmSyncRunItem, "CrmSyncRunPage")


@blp.get("/sync-runs")
@guarded(blp, "connections:manage", not_found=False)
@blp.arguments(CrmSyncRunArgs, location="query", unknown=ma.RAISE)
@blp.response(200, RunPage)
@blp.alt_response(400, response="BAD_REQUEST")
def list_runs(args: dict[str, Any]) -> dict[str, Any]:
    """Sync (push) and pull runs, newest first, with their counts by outcome and API calls by
    operation as recorded (a failed run keeps what it did before failing)."""
    after = after_id(args["cursor"])
    r, c = table_of(CrmSyncRun), table_of(CrmConnection)
    stmt = (
        select(*_run_columns())
        .join(c, c.c.id == r.c.connection_id)
        .where(c.c.workspace_id == current().workspace_id)
    )
    for name, column in (
        ("connection_id", r.c.connection_id),
        ("direction", r.c.direction),
        ("kind", c.c.kind),
    ):
        if args.get(name) is not None:
            stmt = stmt.where(column == args[name])
    if after is not None:
        stmt = stmt.where(r.c.id < after)
    with engine().connect() as conn:
        rows = [_run(row) for row in conn.execute(stmt.order_by(r.c.id.desc()).limit(args["limit"] + 1))]
    return paged(rows, args["limit"], lambda x: [x["id"]])
