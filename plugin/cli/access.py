"""Who may use Flywheel: ``workspaces``, ``tokens`` (API) and ``users`` (dashboard sign-in)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import click
from rich.table import Table
from sqlalchemy import select

from plugin.cli.context import AppContext, handle_errors, json_option, pass_app, secret_input
from plugin.db.base import utcnow
from plugin.db.models import User, Workspace
from plugin.db.models.workspace import ROLES
from plugin.errors import ValidationFailed
from plugin.services.tokens import list_tokens, revoke_token
from plugin.services.users import MIN_PASSWORD, create_user
from plugin.services.workspaces import ensure_workspace, get_workspace, issue_token

role_option = click.option("--role", "-r", required=True, type=click.Choice(ROLES), help="What it may do.")
workspace_required = click.option("--workspace", "-w", required=True, help="The workspace's slug.")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@click.group()
def workspaces() -> None:
    """Workspaces: one community and its CRM each; nothing crosses between them."""


@workspaces.command("create")
@click.argument("name")
@click.option("--slug", help="Short id for commands and URLs (default: from the name).")
@json_option
@pass_app
@handle_errors
def workspaces_create(app: AppContext, name: str, slug: str | None, as_json: bool) -> None:
    """Create a workspace (or show the one with that slug)."""
    slug = slug or re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63]
    if not SLUG.match(slug):
        raise ValidationFailed(
            f"{slug!r} cannot be a workspace slug",
            fields={"slug": "lowercase letters, digits and dashes"},
            hint="pass --slug, e.g. --slug acme-community",
        )
    with app.session() as session:
        ws, created = ensure_workspace(session, slug, name)
        session.commit()
        data = {"id": ws.id, "slug": ws.slug, "name": ws.name, "created": created}
    if as_json:
        app.emit_json(data)
        return
    app.out.print(
        f"Workspace {data['slug']} ({data['name']})" + (" created" if created else " already exists")
    )
    app.out.print(f"Next: flywheel tokens create --workspace {data['slug']} --role admin")


@workspaces.command("list")
@json_option
@pass_app
@handle_errors
def workspaces_list(app: AppContext, as_json: bool) -> None:
    """The workspaces of this installation."""
    with app.session() as session:
        found = session.scalars(select(Workspace).order_by(Workspace.id))
        rows: list[dict[str, Any]] = [{"id": w.id, "slug": w.slug, "name": w.name} for w in found]
    if as_json:
        app.emit_json(rows)
        return
    table = Table("id", "slug", "name")
    for row in rows:
        table.add_row(str(row["id"]), row["slug"], row["name"])
    app.out.print(table)


@click.group()
def tokens() -> None:
    """API tokens: one workspace and one role each, shown once, stored hashed."""


@tokens.command("create")
@workspace_required
@role_option
@click.option("--name", default="API token", show_default=True, help="What the token is for.")
@click.option("--expires", "days", type=click.IntRange(1, 3650), help="Days until it stops working.")
@json_option
@pass_app
@handle_errors
def tokens_create(
    app: AppContext, workspace: str, role: str, name: str, days: int | None, as_json: bool
) -> None:
    """Create a token; the token itself is printed this once and never again."""
    expires = utcnow() + timedelta(days=days) if days else None
    with app.session() as session:
        issued = issue_token(session, get_workspace(session, workspace), role, name, expires_at=expires)
        session.commit()
    data = {
        "id": issued.id,
        "token": issued.token,
        "workspace": issued.workspace,
        "role": role,
        "expires_at": expires.isoformat() if expires else None,
    }
    if as_json:
        app.emit_json(data)
        return
    app.out.print(
        f"Token {issued.id} ({role} in {workspace}"
        + (f", expires {expires:%Y-%m-%d}" if expires else "")
        + ")"
    )
    app.out.print(f"[bold]{issued.token}[/bold]")
    app.out.print("Shown once: store it now. Use it as 'Authorization: Bearer <token>'.")


@tokens.command("list")
@workspace_required
@json_option
@pass_app
@handle_errors
def tokens_list(app: AppContext, workspace: str, as_json: bool) -> None:
    """A workspace's tokens (their prefixes only), with expiry, revocation and last use."""
    with app.session() as session:
        ws = get_workspace(session, workspace)
        rows = list_tokens(session.connection(), ws.id)
    out = [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()} for r in rows]
    if as_json:
        app.emit_json(out)
        return
    table = Table("id", "name", "role", "prefix", "expires", "revoked", "last used")
    for r in out:
        table.add_row(
            str(r["id"]), r["name"], r["role"], r["prefix"] + "…", r["expires_at"] or "never",
            r["revoked_at"] or "", r["last_used_at"] or "never",
        )  # fmt: skip
    app.out.print(table)


@tokens.command("revoke")
@click.argument("token_id", type=int)
@json_option
@pass_app
@handle_errors
def tokens_revoke(app: AppContext, token_id: int, as_json: bool) -> None:
    """Revoke a token: it stops working at once."""
    with app.session() as session:
        slug = revoke_token(session.connection(), token_id, utcnow())
        session.commit()
    if as_json:
        app.emit_json({"id": token_id, "workspace": slug, "revoked": True})
    else:
        app.out.print(f"Token {token_id} of {slug} revoked.")


@click.group()
def users() -> None:
    """People who sign in to the dashboard."""


@users.command("create")
@click.argument("email")
@workspace_required
@role_option
@click.option("--name", help="Shown in the dashboard.")
@click.option(
    "--password-env",
    metavar="VAR",
    help="Read the password from this environment variable (default: ask for it, hidden).",
)
@json_option
@pass_app
@handle_errors
def users_create(
    app: AppContext,
    email: str,
    workspace: str,
    role: str,
    name: str | None,
    password_env: str | None,
    as_json: bool,
) -> None:
    """Create a dashboard user. The password is never taken as an argument (it would stay in the
    shell history): it is asked for, or read from the variable --password-env names."""
    rule = f"at least {MIN_PASSWORD} characters"
    password = secret_input(password_env, "password", f"Password ({rule})", confirm=True, hint=rule)
    with app.session() as session:
        ws = get_workspace(session, workspace)
        user_id = create_user(session.connection(), ws.id, email, role, password, name)
        session.commit()
        stored = session.scalar(select(User.email).where(User.id == user_id))
    data = {"id": user_id, "email": stored, "workspace": workspace, "role": role}
    if as_json:
        app.emit_json(data)
    else:
        app.out.print(f"User {data['email']} ({role} in {workspace}) can now sign in at /dashboard.")
