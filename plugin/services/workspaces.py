"""Workspaces and API tokens (shown once, stored as SHA-256)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.db.models import ApiToken, Workspace
from plugin.db.models.workspace import ROLES
from plugin.errors import NotFound, ValidationFailed

TOKEN_PREFIX = "fw_"  # noqa: S105 (a visible prefix so leaked tokens are recognisable, not a secret)


def get_workspace(session: Session, slug: str) -> Workspace:
    workspace = session.scalar(select(Workspace).where(Workspace.slug == slug))
    if workspace is None:
        raise NotFound(f"no workspace {slug!r}", hint="create it with `flywheel init --workspace SLUG`")
    return workspace


def ensure_workspace(session: Session, slug: str, name: str | None = None) -> tuple[Workspace, bool]:
    workspace = session.scalar(select(Workspace).where(Workspace.slug == slug))
    if workspace is not None:
        return workspace, False
    workspace = Workspace(slug=slug, name=name or slug)
    session.add(workspace)
    session.flush()
    return workspace, True


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    id: int
    token: str  # the only time the clear token exists
    role: str
    workspace: str


def issue_token(
    session: Session, workspace: Workspace, role: str, name: str, expires_at: datetime | None = None
) -> IssuedToken:
    if role not in ROLES:
        raise ValidationFailed(f"unknown role {role!r}", fields={"role": f"one of {', '.join(ROLES)}"})
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        workspace_id=workspace.id,
        name=name,
        role=role,
        prefix=token[:10],
        token_hash=hash_token(token),
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return IssuedToken(id=row.id, token=token, role=role, workspace=workspace.slug)
