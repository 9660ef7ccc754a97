"""What every response and every session gets: security headers, signed http-only session cookies,
CSRF protection for the dashboard's forms (flask-wtf), and rate limits (flask-limiter) on the API
(per token) and on sign-in (per client address); inbound hooks have their own per-process guard
(plugin/web/hook_guard.py).

The API and the hooks authenticate each request by a token or a signature, never by a cookie, so
they need no CSRF token; the public referral and panel forms carry no ambient authority either
(a forged submission can do nothing a visitor could not do directly)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from flask import Blueprint, Flask, Response, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from plugin.services.secrets import derived_key
from plugin.settings import Settings

DEFAULT_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
csrf = CSRFProtect()


HSTS = "max-age=31536000; includeSubDomains"


def token_key() -> str:
    """Rate-limit key of an API call: its token as the API reads it (hashed, never kept in clear),
    else its address."""
    header = request.headers.get("Authorization", "")
    token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    if token:
        return "token:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    return "addr:" + get_remote_address()


def secure_app(app: Flask, settings: Settings) -> Limiter:
    if settings.trusted_proxies:
        # Behind N reverse proxies: the client address (rate limits) and scheme (HSTS, cookies)
        # come from their X-Forwarded-* headers, and only from that many hops.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    app.secret_key = derived_key(settings, "flask-session")
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="flywheel_session",
        PERMANENT_SESSION_LIFETIME=12 * 3600,
        # Views opt in: the dashboard's blueprint calls csrf.protect() before each unsafe request.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=12 * 3600,
        WTF_CSRF_SSL_STRICT=settings.cookie_secure,
    )
    csrf.init_app(app)
    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri=settings.rate_limit_storage,
        headers_enabled=True,
        key_prefix="flywheel",
        # A limit store that is down must not take the product down with it.
        swallow_errors=True,
        in_memory_fallback_enabled=True,
    )
    app.extensions["flywheel.limiter"] = limiter
    app.after_request(_headers)
    return limiter


def limit_api(limiter: Limiter, settings: Settings, blueprints: Iterable[Blueprint]) -> None:
    """One budget per token across every API blueprint (a per-blueprint limit would give a token
    the budget once per route)."""
    shared = limiter.shared_limit(settings.api_rate_limit, scope="api", key_func=token_key)
    for bp in blueprints:
        shared(bp)


def static_headers(secure: bool) -> dict[str, str]:
    """The security headers of a response that is not a page (JSON): the same on every one."""
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
    }
    if secure:
        headers["Strict-Transport-Security"] = HSTS
    return headers


def _headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    csp = headers.get("Content-Security-Policy")
    if csp is None and response.mimetype == "text/html":
        headers["Content-Security-Policy"] = DEFAULT_CSP
        csp = DEFAULT_CSP
    if csp is None or "frame-ancestors" not in csp:
        headers.setdefault("X-Frame-Options", "DENY")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", HSTS)
    return response
