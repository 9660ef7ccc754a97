"""The interactive API docs (Swagger UI, served from the installed swagger-ui-bundle: no CDN, so
the page works on a closed network), at ``/api/docs``."""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from flask import Blueprint, Response, send_from_directory

docs_bp = Blueprint("api_docs", __name__)
ASSETS = Path(swagger_ui_bundle.swagger_ui_path)
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Flywheel API</title>
<link rel="stylesheet" href="/api/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/api/docs/assets/swagger-ui-bundle.js"></script>
<script src="/api/docs/start.js"></script></body></html>
"""
START = "window.ui = SwaggerUIBundle({url: '/api/openapi.json', dom_id: '#swagger-ui'});\n"
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"


@docs_bp.get("/api/docs")
def page() -> Response:
    return Response(PAGE, mimetype="text/html", headers={"Content-Security-Policy": CSP})


@docs_bp.get("/api/docs/start.js")
def start() -> Response:
    return Response(START, mimetype="text/javascript")


@docs_bp.get("/api/docs/assets/<path:name>")
def assets(name: str) -> Response:
    return send_from_directory(ASSETS, name, max_age=86_400)
