"""Referral capture over the web: the public, localized form at an advocate's link (``/r/<code>``).
A company's own forms use ``POST /api/v1/referrals`` (``plugin/web/api/referrals.py``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy import select

from plugin.db.models import ReferralInvite
from plugin.errors import NotFound, ValidationFailed
from plugin.services.program_rules import load_programs
from plugin.services.referral_form import CSP, best_language, form_page
from plugin.services.referrals import capture
from plugin.web.context import engine as _engine
from plugin.web.context import now as _now
from plugin.web.context import settings as _settings

referrals_bp = Blueprint("referral_form", __name__)
HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def _html(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/html", headers=HEADERS)


def _code_known(code: str) -> bool:
    with _engine().connect() as conn:
        return conn.execute(select(ReferralInvite.id).where(ReferralInvite.code == code)).first() is not None


@referrals_bp.get("/r/<code>")
def form(code: str) -> Response:
    language = best_language(request.headers.get("Accept-Language"))
    if not _code_known(code):
        return _html(form_page(language, state="invalid"), 404)
    return _html(form_page(language, state="form"))


@referrals_bp.post("/r/<code>")
def submit(code: str) -> Response:
    language = best_language(request.headers.get("Accept-Language"))
    values = {k: (request.form.get(k) or "").strip()[:255] for k in ("name", "email", "company")}
    try:
        _capture(code, values)
    except NotFound:
        return _html(form_page(language, state="invalid"), 404)
    except ValidationFailed as exc:
        return _html(form_page(language, state="form", values=values, errors=exc.fields), 422)
    # Held or not, the visitor sees the same thanks: a check's reason is for the team, not them.
    return _html(form_page(language, state="thanks"))


def _capture(code: str, values: dict[str, str]) -> Any:
    with _engine().begin() as conn:
        policy = load_programs(_settings().programs_config)
        company = values.get("company") or None
        return capture(
            conn, code, name=values["name"], email=values["email"], company=company, policy=policy, now=_now()
        )
