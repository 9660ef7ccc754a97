"""The REST API under ``/api/v1``, its OpenAPI document at ``/api/openapi.json`` and docs at ``/api/docs``."""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter

from plugin.settings import Settings
from plugin.web.api.core import FlywheelApi, make_api
from plugin.web.security import limit_api


def register_api(app: Flask, limiter: Limiter, settings: Settings) -> FlywheelApi:
    from plugin.web.api import (
        activities,
        crm,
        docs,
        gdpr,
        members,
        organizations,
        panels,
        referrals,
        rewards,
        scores,
        tokens,
        webhooks,
    )

    api = make_api(app)
    for module in (
        members,
        organizations,
        activities,
        scores,
        webhooks,
        crm,
        tokens,
        referrals,
        rewards,
        panels,
        gdpr,
    ):
        api.register_blueprint(module.blp)
        limit_api(limiter, settings, [module.blp])
    app.register_blueprint(docs.docs_bp)
    return api
