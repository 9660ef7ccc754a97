"""A panel in the CRM: its members (those on the panel, not the reserve, not who declined) on a
HubSpot static list or in a Salesforce Campaign named after the panel, added once each."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from connectors.errors import CrmError
from plugin.db.models import CrmLink, PanelMember
from plugin.services.crm_connections import crm_error, load_connection, open_adapter
from plugin.services.panels import get
from plugin.settings import Settings

IN_CRM = ("selected", "invited", "accepted", "completed")


def sync_panel(
    engine: Engine, settings: Settings, workspace_id: int, panel_id: int, kind: str | None = None
) -> dict[str, Any]:
    row = load_connection(engine, workspace_id, kind)
    with engine.connect() as conn:
        panel = get(conn, workspace_id, panel_id)
        pm, link = PanelMember, CrmLink
        members = conn.execute(
            select(pm.member_id, link.crm_id)
            .outerjoin(link, (link.member_id == pm.member_id) & (link.connection_id == row.id))
            .where(pm.panel_id == panel_id, pm.role == "selected", pm.status.in_(IN_CRM))
        ).all()
    ids = sorted({str(r.crm_id) for r in members if r.crm_id})
    name = f"Flywheel panel {panel_id}: {panel.name}"[:250]
    try:
        with open_adapter(settings, row) as adapter:
            list_id, added = adapter.add_to_list(name, ids) if ids else ("", 0)
    except CrmError as exc:
        raise crm_error(exc, row.kind) from None
    return {
        "crm": row.kind,
        "list": name,
        "list_id": list_id,
        "added": added,
        "already_there": len(ids) - added,
        "not_in_crm_yet": sum(1 for r in members if not r.crm_id),
    }
