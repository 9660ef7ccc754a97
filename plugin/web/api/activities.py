"""``/api/v1/activities``: what members did, newest first, by member, type, source and time."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from plugin.db.ids import MAX_ID
from plugin.services.activity_search import ActivityQuery, search
from plugin.web.api.core import PageArgs, blueprint, current, decode_cursor, guarded, page_schema, paged
from plugin.web.api.query_args import aware_datetime, text
from plugin.web.context import engine

blp = blueprint("activities", "/activities", "Activities: what members did, on which platform, when")
F = ma.fields


class ActivityRecord(ma.Schema):
    id = F.Integer(required=True)
    member_id = F.Integer(required=True)
    source = F.String(required=True, metadata={"description": "the platform, e.g. discourse"})
    type = F.String(required=True, metadata={"description": "e.g. post, answer, event_attended"})
    channel = F.String(allow_none=True, required=True)
    occurred_at = F.AwareDateTime(required=True)
    title = F.String(allow_none=True, required=True)
    url = F.String(allow_none=True, required=True)


class ActivityArgs(PageArgs):
    member_id = F.Integer(
        validate=ma.validate.Range(1, MAX_ID),
        metadata={"description": "one member's activities (a merged member's: those of its survivor)"},
    )
    type = text(64)
    source = text(64)
    since = aware_datetime(metadata={"description": "occurred at or after"})
    until = aware_datetime(metadata={"description": "occurred before"})


ActivityPage = page_schema(ActivityRecord, "ActivityPage")


@blp.get("")
@guarded(blp, "activities:read")
@blp.arguments(ActivityArgs, location="query")
@blp.response(200, ActivityPage)
def list_activities(args: dict[str, Any]) -> dict[str, Any]:
    """Activities of the workspace, newest recorded first (by id), with filters. 404 when
    ``member_id`` names no member of this workspace."""
    limit, cursor = args.pop("limit"), args.pop("cursor")
    after = decode_cursor(cursor, [int], wide=True)
    with engine().connect() as conn:
        rows = search(conn, current().workspace_id, ActivityQuery(**args), limit, after)
    return paged(rows, limit, lambda r: [r["id"]])
