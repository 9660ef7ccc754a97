"""The REST API under ``/api/v1``, its OpenAPI document at ``/api/openapi.json`` and docs at ``/api/docs``."""

from __future__ import annotations

from flask import Flask

from plugin.web.api.core import FlywheelApi, make_api


def register_api(app: Flask) -> FlywheelApi:
    from plugin.web.api import docs, members

    api = make_api(app)
    for module in (members,):
        api.register_blueprint(module.blp)
    app.register_blueprint(docs.docs_bp)
    return api
