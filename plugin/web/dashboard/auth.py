"""Signing in and out. The session holds only the user's id; each request reads the user again
(a disabled user or a changed role takes effect at once). Signing in starts a new session (with
a new CSRF token); signing out clears it. Every unsafe request needs the form's CSRF token."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, request, session, url_for
from sqlalchemy import select

from plugin.db.models import User as UserRow
from plugin.errors import AuthError
from plugin.services.tokens import user_principal
from plugin.services.users import sign_in as check_password
from plugin.web.context import engine, now
from plugin.web.dashboard.blueprints import pages_bp, public_bp
from plugin.web.dashboard.common import UNSAFE, User, page
from plugin.web.security import csrf

SESSION_KEY = "dashboard_user"
MAX_PASSWORD = 1024  # longer is refused unread: hashing megabytes would be a denial of service


def _csrf() -> None:
    if request.method in UNSAFE:
        csrf.protect()


public_bp.before_request(_csrf)
pages_bp.before_request(_csrf)


@pages_bp.before_request
def _signed_in() -> Any:
    user_id = session.get(SESSION_KEY)
    found: User | None = None
    if isinstance(user_id, int):
        with engine().connect() as conn:
            principal = user_principal(conn, user_id)
            if principal is not None:
                row = conn.execute(select(UserRow.email, UserRow.name).where(UserRow.id == user_id)).one()
                found = User(principal, row.email, row.name)
    if found is None:
        session.pop(SESSION_KEY, None)
        if request.method == "GET":
            return redirect(url_for("dashboard_public.sign_in", next=request.full_path.rstrip("?")))
        abort(401)
    g.dashboard_user = found
    return None


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a dashboard path of this site, never another site."""
    if target and target.startswith("/dashboard") and "\\" not in target and not target.startswith("//"):
        return target
    return url_for("dashboard.overview")


@public_bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Any:
    if request.method == "GET":
        if isinstance(session.get(SESSION_KEY), int):
            return redirect(safe_next(request.args.get("next")))
        return page("sign_in.html", next=safe_next(request.args.get("next")), email="")
    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    target = safe_next(request.form.get("next"))
    try:
        if not email or not password or len(password) > MAX_PASSWORD:
            raise AuthError("wrong email or password, or the account is locked")
        with engine().connect() as conn:
            try:
                user_id = check_password(conn, email, password, now())
            except AuthError:
                conn.commit()  # a failed attempt counts toward the lockout
                raise
            conn.commit()
    except AuthError as exc:
        return page("sign_in.html", 401, next=target, email=email, error=exc.user_message, hint=exc.hint)
    session.clear()  # a new session: nothing from before signing in carries over
    session[SESSION_KEY] = user_id
    session.permanent = True
    return redirect(target)


@public_bp.post("/sign-out")
def sign_out() -> Any:
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("dashboard_public.sign_in"))
