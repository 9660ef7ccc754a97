"""``/api/v1/tokens``: the workspace's API tokens: list, issue (the clear token shown once) and revoke."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import marshmallow as ma
from flask import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.db.base import table_of
from plugin.db.models import ApiToken, Workspace
from plugin.db.models.workspace import ROLES
from plugin.errors import NotFound
from plugin.services.tokens import revoke_token
from plugin.services.workspaces import issue_token
from plugin.web.api.core import PageArgs, blueprint, current, guarded, page_schema, paged
from plugin.web.api.webhooks import NO_CONTROLS, after_id, plain_text
from plugin.web.context import engine, now

blp = blueprint("tokens", "/tokens", "API tokens of the workspace: list, issue, revoke")
F = ma.fields


class ApiTokenItem(ma.Schema):
    id = F.Integer(required=True)
    name = F.String(required=True)
    role = F.String(required=True, metadata={"description": ", ".join(ROLES)})
    prefix = F.String(
        required=True, metadata={"description": "the token's first characters, to tell it apart"}
    )
    created_at = F.AwareDateTime(required=True)
    expires_at = F.AwareDateTime(required=True, allow_none=True)
    revoked_at = F.AwareDateTime(required=True, allow_none=True)
    last_used_at = F.AwareDateTime(required=True, allow_none=True)
    active = F.Boolean(required=True, metadata={"description": "neither revoked nor expired"})
    current = F.Boolean(required=True, metadata={"description": "the token this request was made with"})


class ApiTokenIssued(ApiTokenItem):
    token = F.String(
        required=True, metadata={"description": "the token (fw_...): shown this once, never again"}
    )


TokenPage = page_schema(ApiTokenItem, "ApiTokenPage")


def _item(row: dict[str, Any]) -> dict[str, Any]:
    when = now()
    expired = row["expires_at"] is not None and row["expires_at"] <= when
    return row | {
        "active": row["revoked_at"] is None and not expired,
        "current": row["id"] == current().token_id,
    }


def _rows(
    conn: Any, *, after: int | None = None, token_id: int | None = None, limit: int = 1
) -> list[dict[str, Any]]:
    t = table_of(ApiToken)
    stmt = select(
        t.c.id,
        t.c.name,
        t.c.role,
        t.c.prefix,
        t.c.created_at,
        t.c.expires_at,
        t.c.revoked_at,
        t.c.last_used_at,
    ).where(t.c.workspace_id == current().workspace_id)
    if after is not None:
        stmt = stmt.where(t.c.id > after)
    if token_id is not None:
        stmt = stmt.where(t.c.id == token_id)
    return [_item(dict(r._mapping)) for r in conn.execute(stmt.order_by(t.c.id).limit(limit))]


@blp.get("")
@guarded(blp, "tokens:manage", not_found=False)
@blp.arguments(PageArgs, location="query", unknown=ma.RAISE)
@blp.response(200, TokenPage)
@blp.alt_response(400, response="BAD_REQUEST")
def list_tokens(args: dict[str, Any]) -> dict[str, Any]:
    """The workspace's tokens by id, revoked and expired ones included. Only a prefix of each is
    kept: a lost token cannot be shown again, only revoked and replaced."""
    after = after_id(args["cursor"])
    with engine().connect() as conn:
        rows = _rows(conn, after=after, limit=args["limit"] + 1)
    return paged(rows, args["limit"], lambda r: [r["id"]])


class ApiTokenBody(ma.Schema):
    name = F.String(required=True, validate=[ma.validate.Length(1, 255), NO_CONTROLS, plain_text])
    role = F.String(required=True, validate=ma.validate.OneOf(ROLES))
    expires_days = F.Integer(
        allow_none=True,
        load_default=None,
        validate=ma.validate.Range(1, 3650),
        metadata={"description": "the token stops working after this many days; null: never"},
    )


@blp.post("")
@guarded(blp, "tokens:manage", not_found=False)
@blp.arguments(ApiTokenBody)
@blp.response(201, ApiTokenIssued)
def create_token(body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Issue a token of a role in this workspace. The answer holds the token in clear, the only
    time it exists: only its hash is kept."""
    when = now()
    expires = when + timedelta(days=body["expires_days"]) if body["expires_days"] else None
    with Session(engine()) as session:
        workspace = session.get(Workspace, current().workspace_id)
        if workspace is None:  # deleted under a live token
            raise NotFound("the workspace of this token no longer exists")
        issued = issue_token(session, workspace, body["role"], body["name"].strip() or body["name"], expires)
        session.commit()
        (row,) = _rows(session.connection(), token_id=issued.id)
    return row | {"token": issued.token}, 201


@blp.delete("/<int:token_id>")
@guarded(blp, "tokens:manage")
@blp.response(204)
def delete_token(token_id: int) -> Response:
    """Revoke a token: it stops working at once (a revoked token stays listed)."""
    with engine().begin() as conn:
        revoke_token(conn, token_id, now(), current().workspace_id)
    return Response(status=204)
