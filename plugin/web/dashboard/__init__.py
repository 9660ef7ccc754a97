"""The dashboard: server-rendered pages for marketers, researchers, sales and admins (Jinja2,
inline SVG charts, one CSS file; no script and no build step). People sign in with an email and
a password; every form carries a CSRF token; each role sees only the pages and buttons it may use.

Pages: overview (community health and the latest crossings), advocates, leads, churn, members and
a member's profile, panels (build, preview, draw, manifest), referrals and rewards, webhooks
(delivery log, replay) and CRM connections (sync runs)."""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter

from plugin.settings import Settings
from plugin.web.dashboard import (  # noqa: F401  (each module adds its views to the blueprints)
    auth,
    crm,
    members,
    overview,
    panels,
    programs,
    scores,
    webhooks,
)
from plugin.web.dashboard.blueprints import pages_bp, public_bp

__all__ = ["register_dashboard"]


def register_dashboard(app: Flask, limiter: Limiter, settings: Settings) -> None:
    limiter.limit(settings.signin_rate_limit, methods=["POST"])(public_bp)
    app.register_blueprint(public_bp)
    app.register_blueprint(pages_bp)
