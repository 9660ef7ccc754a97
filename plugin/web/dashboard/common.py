"""What every dashboard page shares: who is signed in, the permission check, the navigation,
formatting helpers for the templates, and error pages (HTML, not the API's problem details)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from typing import Any, TypeVar

from flask import Response, abort, g, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from plugin.errors import FlywheelError
from plugin.services.roles import allowed
from plugin.services.tokens import Principal
from plugin.web.dashboard.blueprints import pages_bp, public_bp

F = TypeVar("F", bound=Callable[..., Any])
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class User:
    principal: Principal
    email: str
    name: str | None

    @property
    def workspace_id(self) -> int:
        return self.principal.workspace_id

    @property
    def role(self) -> str:
        return self.principal.role


def user() -> User:
    found: User = g.dashboard_user
    return found


def may(permission: str) -> bool:
    who: User | None = g.get("dashboard_user")
    return who is not None and allowed(who.role, permission)


def require(permission: str) -> Callable[[F], F]:
    """The view answers 403 to a role without ``permission``."""
    allowed("admin", permission)  # a typo fails when the module loads

    def decorate(func: F) -> F:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not may(permission):
                abort(403)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


#: (endpoint, label, permission) of the navigation, in order.
NAV = (
    ("dashboard.overview", "Overview", "members:read"),
    ("dashboard.advocates", "Advocates", "scores:read"),
    ("dashboard.leads", "Leads", "scores:read"),
    ("dashboard.churn", "Churn", "scores:read"),
    ("dashboard.members", "Members", "members:read"),
    ("dashboard.panels", "Panels", "panels:read"),
    ("dashboard.programs", "Referrals and rewards", "referrals:read"),
    ("dashboard.webhooks", "Webhooks", "webhooks:manage"),
    ("dashboard.crm", "CRM", "connections:manage"),
)


def nav() -> list[dict[str, Any]]:
    here = request.endpoint or ""
    section = getattr(g, "dashboard_section", None) or here
    return [
        {"url": url_for(endpoint), "label": label, "current": endpoint == section}
        for endpoint, label, permission in NAV
        if may(permission)
    ]


def when(value: datetime | str | None) -> str:
    """A UTC time as people read it: 2026-06-01 12:00 UTC."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    try:
        return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return value


def num(value: float | int | None, places: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{places}f}"


def score(kind: str, value: float | None) -> str:
    """A score as shown: churn risk is a probability (a percentage), the others points of 100."""
    if value is None:
        return "—"
    return f"{value * 100:.0f}%" if kind == "churn" else f"{value:.1f}"


def _context() -> dict[str, Any]:
    who: User | None = g.get("dashboard_user")
    return {
        "me": who,
        "nav": nav() if who else [],
        "may": may,
        "when": when,
        "num": num,
        "score": score,
    }


pages_bp.context_processor(_context)
public_bp.context_processor(_context)


def page(template: str, code: int = 200, /, **values: Any) -> tuple[str, int]:
    return render_template(f"dashboard/{template}", **values), code


TITLES = {
    400: "The request could not be used",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed here",
    413: "Too large",
    429: "Too many attempts",
}


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    detail = error.description or ""
    if status == 400 and "CSRF" in detail:
        detail = "The form expired or did not come from this site. Reload the page and try again."
    elif status == 403:
        detail = f"Your role ({user().role if g.get('dashboard_user') else 'signed out'}) may not do this."
    elif status == 429:
        detail = "Too many attempts from your address. Wait a minute and try again."
    body, _ = page("error.html", status, status=status, title=TITLES.get(status, error.name), detail=detail)
    response = Response(body, status=status, mimetype="text/html")
    for key, value in error.get_headers():
        if key.lower() != "content-type":
            response.headers[key] = value
    return response


def _flywheel_error(exc: FlywheelError) -> tuple[str, int]:
    status = exc.http_status if exc.http_status < 500 else 500
    return page("error.html", status, status=status, title=TITLES.get(status, "Something went wrong"),
                detail=exc.user_message, hint=exc.hint)  # fmt: skip


def _no_store(response: Response) -> Response:
    """Pages show personal data: never kept by a browser's or proxy's cache."""
    if request.endpoint != "dashboard_public.static":
        response.headers["Cache-Control"] = "no-store"
    return response


for _bp in (pages_bp, public_bp):
    _bp.register_error_handler(HTTPException, _http_error)
    _bp.register_error_handler(FlywheelError, _flywheel_error)
    _bp.after_request(_no_store)
