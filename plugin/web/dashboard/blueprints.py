"""The dashboard's two blueprints, both under ``/dashboard``: ``public`` (sign-in, sign-out and
the static files, reachable signed out; its POSTs are rate limited) and ``pages`` (everything
else; a signed-in user is required)."""

from __future__ import annotations

from flask import Blueprint

public_bp = Blueprint(
    "dashboard_public",
    __name__,
    url_prefix="/dashboard",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
pages_bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder="templates")
