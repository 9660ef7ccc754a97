"""Referral capture over the web: the public, localized form at an advocate's link (``/r/<code>``)
and ``POST /api/v1/referrals`` for a company's own forms (a bearer API token of the code's
workspace, role admin or marketer)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy import select, update

from plugin.db.models import ApiToken, ReferralInvite
from plugin.errors import NotFound, ValidationFailed
from plugin.services.program_rules import load_programs
from plugin.services.referral_form import CSP, best_language, form_page
from plugin.services.referrals import capture
from plugin.services.workspaces import hash_token
from plugin.web.app import problem
from plugin.web.context import engine as _engine
from plugin.web.context import now as _now
from plugin.web.context import settings as _settings

referrals_bp = Blueprint("referrals", __name__)
ROLES = ("admin", "marketer")
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


def _token_workspace(header: str | None) -> int | None:
    if not header or not header.startswith("Bearer "):
        return None
    t = ApiToken
    now = _now()
    with _engine().begin() as conn:
        row = conn.execute(
            select(t.id, t.workspace_id, t.role, t.expires_at, t.revoked_at).where(
                t.token_hash == hash_token(header.removeprefix("Bearer ").strip())
            )
        ).first()
        if row is None or row.revoked_at is not None or (row.expires_at and row.expires_at <= now):
            return None
        if row.role not in ROLES:
            return -1
        conn.execute(update(t).where(t.id == row.id).values(last_used_at=now))
        return int(row.workspace_id)


@referrals_bp.post("/api/v1/referrals")
def api_capture() -> Any:
    workspace_id = _token_workspace(request.headers.get("Authorization"))
    if workspace_id is None:
        return problem(401, "Unauthorized", "send an API token: Authorization: Bearer fw_...")
    if workspace_id < 0:
        return problem(403, "Forbidden", "this token's role may not record referrals (admin or marketer may)")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return problem(400, "Bad request", "send a JSON object with code, name, email and company")
    code = str(body.get("code") or "")
    with _engine().connect() as conn:
        owner = conn.execute(select(ReferralInvite.workspace_id).where(ReferralInvite.code == code)).scalar()
    if owner != workspace_id:  # another workspace's code reads as unknown
        return problem(404, "Not found", "no referral code like that in this workspace")
    values = {k: str(body.get(k) or "").strip() for k in ("name", "email", "company")}
    try:
        got = _capture(code, values)
    except ValidationFailed as exc:
        return problem(422, "Unprocessable content", exc.user_message, errors=exc.fields)
    return {"id": got.referral_id, "status": got.status, "held_reason": got.reason}, 201
