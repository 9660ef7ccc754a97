"""CRM connections (never their credentials) and the latest sync and pull runs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from plugin.db.models import CrmConnection, CrmLink, CrmSyncRun
from plugin.web.context import engine
from plugin.web.dashboard.blueprints import pages_bp
from plugin.web.dashboard.common import page, require, user
from plugin.web.dashboard.reads import CRM_NAMES


@pages_bp.get("/crm")
@require("connections:manage")
def crm() -> Any:
    c, r, link = CrmConnection, CrmSyncRun, CrmLink
    ws = user().workspace_id
    with engine().connect() as conn:
        linked = dict(
            conn.execute(
                select(link.connection_id, func.count())
                .join(c, c.id == link.connection_id)
                .where(c.workspace_id == ws, link.crm_id.is_not(None))
                .group_by(link.connection_id)
            ).all()
        )
        connections = [
            {**dict(x._mapping), "name": CRM_NAMES.get(x.kind, x.kind), "linked": int(linked.get(x.id, 0)),
             "address": x.base_url if (x.base_url or "").startswith("https://") else None}
            for x in conn.execute(
                select(c.id, c.kind, c.base_url, c.created_at, c.checked_at, c.lock_holder,
                       c.lock_expires_at).where(c.workspace_id == ws).order_by(c.id)
            )
        ]  # fmt: skip
        runs = [
            {**dict(x._mapping), "name": CRM_NAMES.get(x.kind, x.kind)}
            for x in conn.execute(
                select(r.id, c.kind, r.direction, r.dry_run, r.status, r.started_at, r.finished_at, r.counts,
                       r.calls, r.error)
                .join(c, c.id == r.connection_id)
                .where(c.workspace_id == ws)
                .order_by(r.id.desc())
                .limit(50)
            )
        ]  # fmt: skip
    return page("crm.html", connections=connections, runs=runs)
