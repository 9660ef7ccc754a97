"""The accept and decline pages of panel invitations: ``GET /p/<token>`` shows a localized page
with one confirm button, ``POST`` records the answer. A GET never changes anything (mail scanners
open links); the signed token is the only credential and is never sent on as a referrer."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy import select

from plugin.db.models import Member, Panel, PanelMember
from plugin.errors import ValidationFailed
from plugin.services.panel_invites import Link, read_token
from plugin.services.panel_messages import page
from plugin.services.panels import respond
from plugin.services.program_rules import load_rules
from plugin.web.context import engine, now, settings

panels_bp = Blueprint("panel_links", __name__)
ANSWERED = {
    "accepted": "accepted",
    "completed": "accepted",
    "declined": "declined",
    "no_response": "expired",
    "disqualified": "expired",
}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def _html(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/html", headers=HEADERS)


def _context(token: str) -> tuple[Link | None, Any]:
    link = read_token(settings(), token, now())
    if link is None:
        return None, None
    with engine().connect() as conn:
        row = conn.execute(
            select(Panel.name, Panel.workspace_id, Member.locale, PanelMember.status, PanelMember.role)
            .join(PanelMember, PanelMember.panel_id == Panel.id)
            .join(Member, Member.id == PanelMember.member_id)
            .where(Panel.id == link.panel_id, PanelMember.member_id == link.member_id)
        ).first()
    return link, row


def _settled(link: Link | None, row: Any) -> Response | None:
    """The page for a link that cannot be answered (unknown, already answered, expired), or None."""
    if link is None or row is None:
        return _html(page(None, state="invalid", panel=""), 404)
    if row.status in ANSWERED:
        return _html(page(row.locale, state=ANSWERED[row.status], panel=row.name))
    if link.expired or row.role != "selected":
        return _html(page(row.locale, state="expired", panel=row.name), 410)
    return None


@panels_bp.get("/p/<token>")
def show(token: str) -> Response:
    link, row = _context(token)
    settled = _settled(link, row)
    if settled is not None or link is None:
        return settled or _html(page(None, state="invalid", panel=""), 404)
    return _html(page(row.locale, state=f"confirm_{link.action}", panel=row.name, action_url=request.path))


@panels_bp.post("/p/<token>")
def answer(token: str) -> Response:
    link, row = _context(token)
    settled = _settled(link, row)
    if settled is not None or link is None:
        return settled or _html(page(None, state="invalid", panel=""), 404)
    answer = "accepted" if link.action == "accept" else "declined"
    try:
        with engine().begin() as conn:
            respond(conn, row.workspace_id, link.panel_id, link.member_id, answer,
                    rules=load_rules(settings().programs_config))  # fmt: skip
    except ValidationFailed:  # another answer landed between the page and this press
        link, row = _context(token)
        return _settled(link, row) or _html(page(None, state="invalid", panel=""), 409)
    return _html(page(row.locale, state=answer, panel=row.name))
