"""``/dashboard/link/<token>``: a one-time sign-in link from ``flywheel dashboard`` opens the
dashboard signed in, once; a spent, stale or forged link goes to the sign-in page."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, session, url_for

from plugin.services.sign_in_links import spend
from plugin.web.context import engine, now, settings
from plugin.web.dashboard.auth import SESSION_KEY

link_bp = Blueprint("sign_in_link", __name__)


@link_bp.get("/dashboard/link/<token>")
def follow(token: str) -> Any:
    when = now()
    with engine().begin() as conn:
        user_id = spend(conn, settings(), token, when)
    session.clear()
    if user_id is None:
        return redirect(url_for("dashboard_public.sign_in"))
    session[SESSION_KEY] = user_id
    session.permanent = True
    return redirect(url_for("dashboard.overview"))
