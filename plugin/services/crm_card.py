"""What a CRM record shows of a member: the HubSpot CRM card's data, and the signed, expiring page
a CRM frames (Salesforce Visualforce or Lightning, or any CRM that shows a URL in an iframe).

Both show the same: the member's advocate level, lead grade (and whether the lead is hot) and churn
band, each with its top reasons in words, the last few activities, and a link to the page.

HubSpot facts used here, with their sources:

* A classic (legacy public app) CRM card's data fetch is a GET to the card's target URL with the
  default query parameters ``userId``, ``userEmail``, ``associatedObjectId``,
  ``associatedObjectType`` and ``portalId``, plus the record properties the card asks for (e.g.
  ``email``) -- https://developers.hubspot.com/beta-docs/guides/api/crm/extensions/crm-cards
  (the "Data request" table). ``associatedObjectType`` is upper case (``CONTACT``, ``COMPANY``,
  ``DEAL``, ``TICKET``) as HubSpot's own legacy card converter sends it:
  https://github.com/HubSpot/ui-extensions-examples/blob/main/legacy-card-converter/src/app/cards/utils/queryParams.ts
* The answer is ``{"results": [...]}``: up to five objects, each with ``objectId`` (a number),
  ``title``, ``link`` (null when there is none) and ``properties`` of ``label``/``dataType``/``value``
  -- the same guide's response table; the top-level ``primaryAction``/``secondaryActions``/
  ``settingsAction`` and a STATUS property's ``optionType`` are as in the converter's response types
  (``types/response/CardResponse.ts``, ``CardObject.ts``, ``CardAction.ts``, ``utils/propertyUtils.ts``
  in the repository above). An IFRAME action is ``{type: "IFRAME", width, height, uri, label}``.
* ``dataType`` is one of BOOLEAN, CURRENCY, DATE, DATETIME, EMAIL, LINK, NUMERIC, STRING, STATUS;
  a STATUS option's type one of DEFAULT, SUCCESS, WARNING, DANGER, INFO (the CRM cards API's
  ``CardDisplayProperty`` and ``DisplayOption``, e.g. the generated reference
  https://github.com/paragonsean/openapi-directory/tree/main/APIs/hubapi.com/crm/v3/java-client/docs).
  A DATE value is ``yyyy-mm-dd`` as in https://developers.hubspot.com/docs/api-reference/crm-public-app-crm-cards-v3/sampleresponse/get-crm-v3-extensions-cards-dev-sample-response
* Requests are signed with ``X-HubSpot-Signature-v3``: base64 of HMAC-SHA256, keyed with the app's
  client secret, over ``method + URI + body + timestamp`` (UTF-8), the timestamp being the
  ``X-HubSpot-Request-Timestamp`` header; a request whose timestamp is older than 5 minutes is
  refused -- https://developers.hubspot.com/docs/apps/developer-platform/build-apps/authentication/request-validation
  and https://developers.hubspot.com/changelog/introducing-version-3-of-webhook-signatures .
  The timestamp is in milliseconds (HubSpot's Python client divides it by 1000 before comparing:
  https://github.com/HubSpot/hubspot-api-python/blob/master/hubspot/utils/signature.py). The URI is
  the full URL called, with these percent-encodings decoded first: %3A %2F %3F %40 %21 %24 %27 %28
  %29 %2A %2C %3B (``:/?@!$'()*,;``) -- the request-validation page above; the stored copy we read
  showed its steps but not its table, so the list is taken from a public implementation of it and
  matches it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session

from plugin.db.models import Activity, CrmConnection, CrmLink, Erasure
from plugin.errors import ConfigError, NotFound, ValidationFailed
from plugin.services.members import find_member, member_scores
from plugin.services.secrets import derived_key
from plugin.settings import Settings

#: HubSpot refuses nothing older; neither do we accept a timestamp further than this in the future.
MAX_SKEW = timedelta(minutes=5)
#: How long the page link in a CRM card works: the card is fetched again on every record view.
CARD_LINK_TTL = timedelta(days=1)
RECENT = 5  # activities on the page
CARD_RESULTS = 5  # HubSpot shows up to five objects: the member, then the latest activities
TOP_REASONS = 3
KINDS = ("advocate", "lead", "churn")

_DECODED = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip
_ENCODED = re.compile("|".join(_DECODED), re.IGNORECASE)


# --- HubSpot's v3 request signature ----------------------------------------------------------


def signed_uri(uri: str) -> str:
    """The URI as HubSpot signs it: the listed percent-encodings decoded, nothing else."""
    return _ENCODED.sub(lambda m: _DECODED[m.group(0).upper()], uri)


def v3_signature(client_secret: str, method: str, uri: str, body: str, timestamp: str) -> str:
    source = f"{method}{signed_uri(uri)}{body}{timestamp}"
    digest = hmac.new(client_secret.encode(), source.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def check_v3(
    client_secret: str, *, method: str, uri: str, body: str, timestamp: str, signature: str, now: datetime
) -> str | None:
    """None when HubSpot signed this request; else why not: ``stale`` (timestamp more than 5
    minutes away from ``now``, or not a timestamp) or ``invalid`` (the signature does not match)."""
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 16:
        return "stale"
    age = now.timestamp() * 1000 - int(timestamp)
    if abs(age) > MAX_SKEW.total_seconds() * 1000:
        return "stale"
    expected = v3_signature(client_secret, method, uri, body, timestamp)
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        return "invalid"
    return None


# --- what the card and the page show -------------------------------------------------------


@dataclass(frozen=True)
class Signal:
    kind: str  # advocate | lead | churn
    label: str
    score: float
    hot: bool
    reasons: list[str]
    as_of: str


@dataclass(frozen=True)
class ActivityLine:
    id: int
    source: str
    type: str
    occurred_at: datetime
    title: str | None
    url: str | None


@dataclass(frozen=True)
class MemberCard:
    workspace_id: int
    member_id: int
    name: str | None
    email: str | None
    signals: list[Signal]
    activities: list[ActivityLine]

    @property
    def title(self) -> str:
        return self.name or self.email or f"member {self.member_id}"


def _erased(session: Session, workspace_id: int, member_id: int) -> bool:
    return (
        session.scalar(
            select(Erasure.id).where(Erasure.workspace_id == workspace_id, Erasure.member_id == member_id)
        )
        is not None
    )


def _signal(kind: str, stored: dict[str, Any]) -> Signal:
    reasons = [str(r) for r in stored["reasons"]][:TOP_REASONS]
    label, score, hot = str(stored["label"]), float(stored["score"]), bool(stored["hot"])
    return Signal(kind, label, score, hot, reasons, str(stored["as_of"]))


def member_card(conn: Connection, workspace_id: int, member_id: int) -> MemberCard | None:
    """The member's signals and latest activities (None: no such member here, or erased). A merged
    member shows the member it was merged into."""
    with Session(bind=conn) as session:
        try:
            member = find_member(session, workspace_id, str(member_id))
        except NotFound:
            return None
        if _erased(session, workspace_id, member.id):
            return None
        scores = member_scores(session, member.id)
        recent = session.scalars(
            select(Activity)
            .where(Activity.member_id == member.id)
            .order_by(Activity.occurred_at.desc(), Activity.id.desc())
            .limit(RECENT)
        ).all()
        return MemberCard(
            workspace_id=workspace_id,
            member_id=member.id,
            name=member.display_name,
            email=member.primary_email,
            signals=[_signal(kind, scores[kind]) for kind in KINDS if kind in scores],
            activities=[
                ActivityLine(int(a.id), a.source, a.type, a.occurred_at, a.title, a.url) for a in recent
            ],
        )


def find_contact(
    conn: Connection, row: CrmConnection, *, email: str | None, object_id: str | None, object_type: str | None
) -> int | None:
    """The member a HubSpot contact record is: by its email, else by the CRM link to this connection's
    contact ``object_id``. Records of other types (companies, deals, tickets) are no member."""
    if object_type and object_type.strip().upper() not in ("CONTACT", "CONTACTS", "0-1"):
        return None
    with Session(bind=conn) as session:
        if email and "@" in email:
            try:
                return find_member(session, row.workspace_id, email.strip()).id
            except NotFound:
                pass
        if object_id and object_id.strip():
            linked = session.scalar(
                select(CrmLink.member_id).where(
                    CrmLink.connection_id == row.id,
                    CrmLink.crm_object == "contact",
                    CrmLink.crm_id == object_id.strip(),
                )
            )
            if linked is not None:
                try:
                    return find_member(session, row.workspace_id, str(linked)).id
                except NotFound:
                    return None
    return None


_LEVEL_STATUS = {"champion": "SUCCESS", "advocate": "SUCCESS", "contributor": "INFO"}
_CHURN_STATUS = {"high": "DANGER", "medium": "WARNING", "low": "SUCCESS"}


def signal_value(signal: Signal) -> str:
    """A signal's label and score, as the card and the page show it."""
    if signal.kind == "churn":
        return f"{signal.label} ({signal.score:.0%})"
    if signal.kind == "lead":
        return f"{signal.label}{' · hot' if signal.hot else ''} ({signal.score:.0f}/100)"
    return f"{signal.label} ({signal.score:.0f}/100)"


SIGNAL_TITLES = {"advocate": "Advocate level", "lead": "Lead grade", "churn": "Churn risk"}


def _properties(card: MemberCard) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for s in card.signals:
        if s.kind == "churn":
            option = _CHURN_STATUS.get(s.label, "DEFAULT")
        elif s.kind == "lead":
            option = "WARNING" if s.hot else ("INFO" if s.label.startswith("A") else "DEFAULT")
        else:
            option = _LEVEL_STATUS.get(s.label, "DEFAULT")
        title = SIGNAL_TITLES[s.kind]
        out.append({"label": title, "dataType": "STATUS", "value": signal_value(s), "optionType": option})
        if s.kind == "lead":
            out.append({"label": "Hot lead", "dataType": "BOOLEAN", "value": s.hot})
        if s.reasons:
            out.append({"label": f"{SIGNAL_TITLES[s.kind]}: why", "dataType": "STRING",
                        "value": "; ".join(s.reasons)})  # fmt: skip
    if card.email:
        out.append({"label": "Community email", "dataType": "EMAIL", "value": card.email})
    return out


def activity_words(a: ActivityLine) -> str:
    return f"{a.type.replace('_', ' ')} on {a.source}"


def hubspot_card(card: MemberCard | None, page_url: str | None) -> dict[str, Any]:
    """The data fetch response: the member with their signals, then their latest activities; with
    no member, no results (HubSpot then shows the card empty)."""
    if card is None:
        return {"results": []}
    results: list[dict[str, Any]] = [
        {"objectId": card.member_id, "title": card.title, "link": page_url, "properties": _properties(card)}
    ]
    for a in card.activities[: CARD_RESULTS - 1]:
        results.append(
            {
                "objectId": a.id,
                "title": a.title or activity_words(a),
                "link": a.url if safe_link(a.url) else None,
                "properties": [
                    {"label": "Activity", "dataType": "STRING", "value": activity_words(a)},
                    {"label": "Date", "dataType": "DATE", "value": a.occurred_at.date().isoformat()},
                ],
            }
        )
    out: dict[str, Any] = {"results": results}
    if page_url:
        out["primaryAction"] = {
            "type": "IFRAME",
            "width": 890,
            "height": 748,
            "uri": page_url,
            "label": "Open in Flywheel",
        }
    return out


def safe_link(url: str | None) -> bool:
    return bool(url) and str(url).lower().startswith(("https://", "http://"))


# --- the signed, expiring embed page link ----------------------------------------------------


def _signer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(derived_key(settings, "crm-embed"), salt="flywheel-crm-embed")


def embed_token(settings: Settings, workspace_id: int, member_id: int, expires: datetime) -> str:
    return str(_signer(settings).dumps({"w": workspace_id, "m": member_id, "e": int(expires.timestamp())}))


@dataclass(frozen=True)
class EmbedLink:
    workspace_id: int
    member_id: int
    expires: int  # epoch seconds
    expired: bool


def read_embed_token(settings: Settings, token: str, now: datetime) -> EmbedLink | None:
    """The link's meaning, or None when this installation did not sign it for the embed page."""
    try:
        data = _signer(settings).loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), int) for k in ("w", "m", "e")):
        return None
    return EmbedLink(data["w"], data["m"], data["e"], now.timestamp() > data["e"])


def embed_url(settings: Settings, base: str, workspace_id: int, member_id: int, expires: datetime) -> str:
    return f"{base.rstrip('/')}/embed/member/{embed_token(settings, workspace_id, member_id, expires)}"


@dataclass(frozen=True)
class MadeLink:
    member_id: int
    url: str
    expires_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"member_id": self.member_id, "url": self.url, "expires_at": self.expires_at.isoformat()}


def make_embed_link(
    engine: Engine, settings: Settings, workspace_id: int, ref: str, *, days: int, now: datetime
) -> MadeLink:
    """A link to the member's embed page (by id or email) that works for ``days`` days."""
    if not 1 <= days <= 365:
        raise ValidationFailed("a link works 1 to 365 days", fields={"days": "1-365"})
    if not settings.public_url:
        raise ConfigError(
            "embed links need the address people reach Flywheel at",
            hint="set FLYWHEEL_PUBLIC_URL, e.g. https://flywheel.example.com",
        )
    with Session(engine) as session:
        member = find_member(session, workspace_id, ref)
        if _erased(session, workspace_id, member.id):
            raise NotFound(f"member {ref!r} was erased")
    expires = now + timedelta(days=days)
    url = embed_url(settings, settings.public_url, workspace_id, member.id, expires)
    return MadeLink(member.id, url, expires)
