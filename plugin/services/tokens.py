"""API tokens: who a bearer token is (workspace and role), listing and revocation.

Tokens are issued by ``workspaces.issue_token`` (shown once, only their SHA-256 is stored)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from plugin.db.models import ApiToken, User, Workspace
from plugin.errors import NotFound
from plugin.services.workspaces import TOKEN_PREFIX, hash_token

LAST_USED_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    """Who is calling: one workspace and one role, from an API token or a dashboard user."""

    workspace_id: int
    role: str
    actor: str  # for audit lines: "token:12" or "user:3"
    token_id: int | None = None
    user_id: int | None = None


def authenticate(conn: Connection, token: str, now: datetime) -> Principal | None:
    """The principal behind a clear token, or None for an unknown, expired or revoked one."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    t = ApiToken
    row = conn.execute(
        select(t.id, t.workspace_id, t.role, t.expires_at, t.revoked_at, t.last_used_at).where(
            t.token_hash == hash_token(token)
        )
    ).first()
    if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        return None
    if row.last_used_at is None or row.last_used_at < now - LAST_USED_EVERY:
        # Once a minute at most: a write per call would serialise every API call on SQLite.
        conn.execute(update(t).where(t.id == row.id).values(last_used_at=now))
    return Principal(int(row.workspace_id), row.role, f"token:{row.id}", token_id=int(row.id))


def user_principal(conn: Connection, user_id: int) -> Principal | None:
    """The principal of a signed-in dashboard user, re-read on each request so that disabling a
    user or changing their role takes effect at once."""
    row = conn.execute(
        select(User.id, User.workspace_id, User.role, User.disabled_at).where(User.id == user_id)
    ).first()
    if row is None or row.disabled_at is not None:
        return None
    return Principal(int(row.workspace_id), row.role, f"user:{row.id}", user_id=int(row.id))


def list_tokens(conn: Connection, workspace_id: int) -> list[dict[str, Any]]:
    t = ApiToken
    rows = conn.execute(
        select(t.id, t.name, t.role, t.prefix, t.created_at, t.expires_at, t.revoked_at, t.last_used_at)
        .where(t.workspace_id == workspace_id)
        .order_by(t.id)
    )
    return [dict(r._mapping) for r in rows]


def revoke_token(conn: Connection, token_id: int, now: datetime, workspace_id: int | None = None) -> str:
    """Revoke a token (at once; a revoked token stays listed). Returns its workspace's slug."""
    query = select(ApiToken.id, Workspace.slug).join(Workspace, Workspace.id == ApiToken.workspace_id)
    query = query.where(ApiToken.id == token_id)
    if workspace_id is not None:
        query = query.where(ApiToken.workspace_id == workspace_id)
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"no API token {token_id}", hint="`flywheel tokens list` shows the ids")
    conn.execute(
        update(ApiToken).where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None)).values(revoked_at=now)
    )
    return str(row.slug)
