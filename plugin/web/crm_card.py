"""Flywheel's signals inside the CRM record.

``GET /crm/hubspot/card``: the data fetch URL of a HubSpot classic CRM card. Only requests signed by
the HubSpot app (``X-HubSpot-Signature-v3``, checked with the app's client secret) from the portal a
workspace connected with ``flywheel crm card hubspot`` are answered; the facts and their sources are
in :mod:`plugin.services.crm_card`.

``GET /embed/member/<token>``: the same signals as a server-rendered page for a CRM to frame
(Salesforce Visualforce or Lightning, HubSpot's iframe action). The signed, expiring token is the only
credential; the page runs no script, sends no referrer, and only the origins in
FLYWHEEL_CRM_FRAME_ANCESTORS may frame it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

from flask import Blueprint, Response, jsonify, request

from plugin.errors import ConfigError
from plugin.services.crm_card import (
    CARD_LINK_TTL,
    SIGNAL_TITLES,
    MemberCard,
    activity_words,
    check_v3,
    embed_url,
    find_contact,
    hubspot_card,
    member_card,
    read_embed_token,
    safe_link,
    signal_value,
)
from plugin.services.crm_connections import hubspot_card_app
from plugin.web.context import engine, now, settings
from plugin.web.problems import problem

crm_card_bp = Blueprint("crm_card", __name__)

SIGNATURE = "X-HubSpot-Signature-v3"
TIMESTAMP = "X-HubSpot-Request-Timestamp"


def _base_url() -> str:
    """Where people reach this Flywheel: FLYWHEEL_PUBLIC_URL, else the address this request came to."""
    return settings().public_url or request.host_url.rstrip("/")


def _called_uri() -> str:
    """The full URL HubSpot called, as it was sent (the query not decoded): the address it was
    configured with (FLYWHEEL_PUBLIC_URL behind a proxy) and the request's raw path and query."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if not raw:
        query = request.query_string.decode("latin-1")
        raw = request.environ.get("SCRIPT_NAME", "") + request.environ.get("PATH_INFO", "")
        raw += f"?{query}" if query else ""
    if raw.startswith(("http://", "https://")):  # an absolute request target
        return str(raw)
    return _base_url() + str(raw)


@crm_card_bp.get("/crm/hubspot/card")
def hubspot_card_data() -> Any:
    signature = request.headers.get(SIGNATURE, "")
    timestamp = request.headers.get(TIMESTAMP, "")
    if not signature or not timestamp:
        return problem(401, "Unauthorized", f"HubSpot signs its requests ({SIGNATURE}, {TIMESTAMP})")
    try:
        app = hubspot_card_app(engine(), settings(), request.args.get("portalId", "").strip())
    except ConfigError:
        unreadable = "the card's client secret cannot be read; set it with `flywheel crm card hubspot`"
        return problem(503, "Service Unavailable", unreadable)
    if app is None:  # the same answer as a bad signature: portal ids are not to be probed
        return problem(401, "Unauthorized", "the request is not signed for a portal this Flywheel serves")
    why = check_v3(
        app.client_secret,
        method=request.method,
        uri=_called_uri(),
        body=request.get_data(as_text=True),
        timestamp=timestamp,
        signature=signature,
        now=now(),
    )
    if why == "stale":
        return problem(401, "Unauthorized", "the request timestamp is more than 5 minutes away")
    if why is not None:
        return problem(401, "Unauthorized", "the request signature does not match")
    args = request.args
    with engine().connect() as conn:
        member_id = find_contact(
            conn,
            app.connection,
            email=args.get("email"),
            object_id=args.get("associatedObjectId"),
            object_type=args.get("associatedObjectType"),
        )
        card = member_card(conn, app.connection.workspace_id, member_id) if member_id else None
    link = None
    if card is not None:
        link = embed_url(settings(), _base_url(), card.workspace_id, card.member_id, now() + CARD_LINK_TTL)
    response = jsonify(hubspot_card(card, link))
    response.headers["Cache-Control"] = "no-store"
    return response


def _headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
        f"form-action 'none'; frame-ancestors {settings().crm_frame_ancestors}",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }


STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans Hebrew",
"Noto Sans Arabic",sans-serif;margin:0;padding:16px;color:#1f2933;background:#fff}
h1{font-size:20px;margin:0 0 2px}h2{font-size:13px;margin:0 0 4px;color:#52606d;text-transform:uppercase}
.email{color:#52606d;margin:0 0 12px}.signals{display:grid;gap:10px;
grid-template-columns:repeat(auto-fit,minmax(220px,1fr))}.signal{border:1px solid #d9e2ec;
border-radius:6px;padding:10px}.value{font-size:16px;font-weight:600;margin:0 0 4px}
ul,ol{margin:0;padding-inline-start:18px}li{margin:2px 0}.hot{color:#b44d12}
.high{color:#ab091e}.medium{color:#b44d12}.low{color:#207227}section{margin-top:14px}
footer{margin-top:16px;color:#7b8794;font-size:12px}
"""


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )


def render_member(card: MemberCard, expires: datetime) -> str:
    """The member's page: names and free text carry ``dir="auto"``, so a Hebrew or Arabic name reads
    right to left and a Latin one left to right, whatever the page around it."""
    parts = [f'<header>\n<h1 class="name" dir="auto">{escape(card.title)}</h1>\n']
    if card.email and card.email != card.title:
        parts.append(f'<p class="email" dir="ltr">{escape(card.email)}</p>\n')
    parts.append("</header>\n")
    if card.signals:
        parts.append('<section class="signals">\n')
        for s in card.signals:
            tone = " hot" if s.hot else (f" {escape(s.label)}" if s.kind == "churn" else "")
            reasons = "".join(f'<li dir="auto">{escape(r)}</li>' for r in s.reasons)
            parts.append(
                f'<div class="signal {escape(s.kind)}">\n<h2>{escape(SIGNAL_TITLES[s.kind])}</h2>\n'
                f'<p class="value{tone}">{escape(signal_value(s))}</p>\n'
                + (f"<ul>{reasons}</ul>\n" if reasons else "")
                + "</div>\n"
            )
        parts.append("</section>\n")
    else:
        parts.append("<p>Not scored yet.</p>\n")
    if card.activities:
        parts.append("<section>\n<h2>Last activities</h2>\n<ol>\n")
        for a in card.activities:
            when = a.occurred_at.astimezone(UTC)
            text = f'<span dir="auto">{escape(a.title)}</span>' if a.title else ""
            if safe_link(a.url):
                label = text or "open"
                text = f'<a href="{escape(str(a.url))}" target="_blank" rel="noopener noreferrer">{label}</a>'
            parts.append(
                f'<li><time datetime="{when.isoformat()}">{when:%Y-%m-%d}</time> · '
                f"{escape(activity_words(a))}{': ' + text if text else ''}</li>\n"
            )
        parts.append("</ol>\n</section>\n")
    scored = f"scores as of {card.signals[0].as_of[:10]} · " if card.signals else ""
    parts.append(f"<footer>Flywheel · {scored}this link works until {expires:%Y-%m-%d %H:%M} UTC</footer>\n")
    return _page(f"{card.title} · Flywheel", "".join(parts))


def _notice(message: str, status: int) -> Response:
    body = f"<p>{escape(message)}</p>\n"
    return Response(_page("Flywheel", body), status=status, mimetype="text/html", headers=_headers())


@crm_card_bp.get("/embed/member/<token>")
def embed_member(token: str) -> Response:
    link = read_embed_token(settings(), token, now())
    if link is None:
        return _notice("This link is not valid.", 404)
    if link.expired:
        return _notice("This link has expired; open the record again for a fresh one.", 410)
    with engine().connect() as conn:
        card = member_card(conn, link.workspace_id, link.member_id)
    if card is None:
        return _notice("This member is no longer in Flywheel.", 404)
    expires = datetime.fromtimestamp(link.expires, tz=UTC)
    return Response(render_member(card, expires), mimetype="text/html", headers=_headers())
