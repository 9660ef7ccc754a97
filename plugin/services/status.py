"""Counts of what a workspace holds, for ``flywheel status`` and the demo's summary."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select

from plugin.db.models import Activity, Identity, Member, MergeLog, MergeSuggestion, Organization, Workspace
from plugin.db.models.identity_log import AUTO_EMAIL, MERGE


@dataclass
class WorkspaceStatus:
    workspace: str
    members: int = 0
    merged_members: int = 0
    identities: int = 0
    organizations: int = 0
    activities: int = 0
    merges: int = 0
    open_suggestions: int = 0
    identities_by_source: dict[str, int] = field(default_factory=dict)
    activities_by_source: dict[str, int] = field(default_factory=dict)
    activities_by_type: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _count(conn: Any, model: Any, workspace_id: int, *where: Any) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(model).where(model.workspace_id == workspace_id, *where)
        ).scalar_one()
    )


def workspace_status(engine: Engine, workspace: Workspace) -> WorkspaceStatus:
    wid = workspace.id
    status = WorkspaceStatus(workspace=workspace.slug)
    with engine.connect() as conn:
        status.members = _count(conn, Member, wid, Member.merged_into_id.is_(None))
        status.merged_members = _count(conn, Member, wid, Member.merged_into_id.is_not(None))
        status.identities = _count(conn, Identity, wid)
        status.organizations = _count(conn, Organization, wid)
        status.merges = _count(
            conn, MergeLog, wid, MergeLog.undone_at.is_(None), MergeLog.kind.in_((MERGE, AUTO_EMAIL))
        )
        status.open_suggestions = _count(conn, MergeSuggestion, wid, MergeSuggestion.status == "open")
        status.identities_by_source = {
            source: int(n)
            for source, n in conn.execute(
                select(Identity.source, func.count())
                .where(Identity.workspace_id == wid)
                .group_by(Identity.source)
                .order_by(Identity.source)
            )
        }
        status.activities_by_source = {
            source: int(n)
            for source, n in conn.execute(
                select(Activity.source, func.count())
                .where(Activity.workspace_id == wid)
                .group_by(Activity.source)
                .order_by(Activity.source)
            )
        }
        status.activities_by_type = {
            kind: int(n)
            for kind, n in conn.execute(
                select(Activity.type, func.count())
                .where(Activity.workspace_id == wid)
                .group_by(Activity.type)
                .order_by(func.count().desc())
            )
        }
        status.activities = sum(status.activities_by_source.values())
    return status
