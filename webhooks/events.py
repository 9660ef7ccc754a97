"""The outgoing events, version 1: their types, and one builder per type that makes a payload
which matches its published JSON Schema (``webhooks/schema/<type>.v1.json``).

Every payload is a Standard Webhooks envelope, ``{"type", "version", "timestamp", "workspace",
"data"}``, and every ``data`` carries the same four parts, so a receiver's mapping is the same for
every event: ``member`` (or null), ``crm`` (the member's ids in the CRMs), ``reasons`` (plain
sentences a person can read) and ``links`` (name to absolute URL); the event's own fields come
beside them. The builders check their input and raise :class:`EventError` rather than send a
payload a receiver would refuse: a naive datetime, a float for money, an unknown CRM.

Money is a :class:`~decimal.Decimal` in and a decimal string out (``"49.90"``): a float would
round, and a JSON number may be read as a float by the receiver. Times are UTC with ``Z``.
The body is :func:`body`'s bytes: compact UTF-8 JSON with sorted keys, names in any script kept
as they are, the same payload always the same bytes (they are what is signed).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import orjson

EVENT_TYPES: tuple[str, ...] = (
    "referral.invitation",
    "referral.converted",
    "reward.granted",
    "focus_group.invitation",
    "focus_group.reminder",
    "advocate.promoted",
    "lead.signal",
    "churn.risk_raised",
    "ping",
)
SCHEMA_VERSION = 1
# The consent a member must have in force for their email to be put in an event (the emitter
# checks it and passes MemberRef.email only then); a ping is about no one.
EMAIL_CONSENT: Mapping[str, str | None] = {
    "referral.invitation": "marketing",
    "referral.converted": "marketing",
    "reward.granted": "marketing",
    "focus_group.invitation": "research",
    "focus_group.reminder": "research",
    "advocate.promoted": "marketing",
    "lead.signal": "sales",
    "churn.risk_raised": "sales",
    "ping": None,
}
CRMS = ("hubspot", "salesforce")
CHURN_BANDS = ("low", "medium", "high")
REWARD_KINDS = ("points", "money")
# pending: waits for a person's approval; approved: the receiver should fulfil it;
# fulfilled: already given (points recorded by Flywheel), the receiver only tells the member.
REWARD_STATUSES = ("pending", "approved", "fulfilled")
# The member's text an invitation or reminder may carry (written in the member's language).
MESSAGE_FIELDS = ("locale", "direction", "subject", "text")
MESSAGE_DIRECTIONS = ("ltr", "rtl")
_LINK_NAME = re.compile(r"[a-z][a-z0-9_]*")
_CURRENCY = re.compile(r"[A-Z]{3}")
PING_MESSAGE = "A test event from Flywheel: check its signature and answer with a 2xx status."


class EventError(ValueError):
    """An unknown event type, or input that would make a payload its schema refuses."""


@dataclass(frozen=True)
class MemberRef:
    """The person an event is about. ``email`` goes into the payload only when it is not None,
    and the caller decides that by the member's consent: pass it only when the member's consent
    for the event's purpose (:data:`EMAIL_CONSENT`) is in force; otherwise leave it None and the
    receiver looks the person up by ``id`` or the CRM ids. The payload never says why it is absent."""

    id: int
    name: str | None
    locale: str | None
    email: str | None = None

    def __post_init__(self) -> None:
        _int(self.id, "member.id")
        for value, what in ((self.name, "name"), (self.locale, "locale"), (self.email, "email")):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise EventError(f"member.{what} must be a non-empty string or None")
        if self.email is not None and "@" not in self.email:
            raise EventError("member.email must be an email address")

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name, "locale": self.locale}
        if self.email is not None:
            out["email"] = self.email
        return out


@dataclass(frozen=True)
class Prospect:
    """The person a referral brought in. ``email`` follows the same rule as the member's: given
    only when the prospect agreed to it, and then it is in the payload; None leaves it out."""

    name: str | None
    company: str | None
    email: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": _opt_text(self.name, "prospect.name"),
            "company": _opt_text(self.company, "prospect.company"),
        }
        if self.email is not None:
            if "@" not in _text(self.email, "prospect.email"):
                raise EventError("prospect.email must be an email address")
            out["email"] = self.email
        return out


@dataclass(frozen=True)
class Deal:
    """The CRM deal that converted a referral; ``amount`` and ``currency`` go together."""

    crm_id: str
    amount: Decimal | None
    currency: str | None
    closed_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        if (self.amount is None) != (self.currency is None):
            raise EventError("deal.amount and deal.currency must be given together")
        return {
            "crm_id": _text(self.crm_id, "deal.crm_id"),
            "amount": None if self.amount is None else _money(self.amount, "deal.amount"),
            "currency": None if self.currency is None else _currency(self.currency, "deal.currency"),
            "closed_at": None if self.closed_at is None else _utc(self.closed_at, "deal.closed_at"),
        }


def envelope(
    event_type: str, *, workspace: str, occurred_at: datetime, data: dict[str, Any]
) -> dict[str, Any]:
    """The Standard Webhooks envelope around ``data``."""
    if event_type not in EVENT_TYPES:
        raise EventError(f"unknown event type {event_type!r}; known: {', '.join(EVENT_TYPES)}")
    if not isinstance(workspace, str) or not workspace.strip() or len(workspace) > 64:
        raise EventError("workspace must be the workspace's slug (1 to 64 characters)")
    if not isinstance(data, Mapping):
        raise EventError("data must be an object")
    return {
        "type": event_type,
        "version": SCHEMA_VERSION,
        "timestamp": _utc(occurred_at, "occurred_at"),
        "workspace": workspace,
        "data": dict(data),
    }


def referral_invitation(
    *,
    workspace: str,
    occurred_at: datetime,
    member: MemberRef,
    code: str,
    referral_url: str,
    campaign: str | None,
    reasons: Sequence[str] = (),
    crm: Mapping[str, str] | None = None,
    links: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Invite ``member`` to refer others: their code, their personal link and the campaign."""
    referral = {
        "code": _text(code, "code"),
        "url": _url(referral_url, "referral_url"),
        "campaign": _opt_text(campaign, "campaign"),
    }
    data = _data(member, reasons, crm, links, referral=referral)
    return envelope("referral.invitation", workspace=workspace, occurred_at=occurred_at, data=data)


def referral_converted(
    *,
    workspace: str,
    occurred_at: datetime,
    member: MemberRef,
    code: str,
    campaign: str | None,
    prospect: Prospect,
    deal: Deal,
    reasons: Sequence[str] = (),
    crm: Mapping[str, str] | None = None,
    links: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``member``'s referral became a customer: who came, and the deal that made it count."""
    referral = {"code": _text(code, "code"), "campaign": _opt_text(campaign, "campaign")}
    data = _data(
        member, reasons, crm, links, referral=referral, prospect=prospect.as_dict(), deal=deal.as_dict()
    )
    return envelope("referral.converted", workspace=workspace, occurred_at=occurred_at, data=data)


def reward_granted(
    *,
    workspace: str,
    occurred_at: datetime,
    member: MemberRef,
    reward_id: int,
    kind: str,
    amount: Decimal,
    currency: str | None,
    reason: str,
    status: str,
    idempotency_key: str,
    reasons: Sequence[str] = (),
    crm: Mapping[str, str] | None = None,
    links: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A reward for ``member``: points (no currency) or money (an ISO 4217 currency). The
    ``idempotency_key`` is the grant's own, the same however often it is sent: pass it to the
    rewards provider so a repeat never pays twice."""
    if kind not in REWARD_KINDS:
        raise EventError(f"reward kind must be one of {', '.join(REWARD_KINDS)}")
    if status not in REWARD_STATUSES:
        raise EventError(f"reward status must be one of {', '.join(REWARD_STATUSES)}")
    if (kind == "money") != (currency is not None):
        raise EventError("a money reward needs a currency and a points reward has none")
    value = _money(amount, "amount")
    if Decimal(value) == 0:
        raise EventError("a reward amount must be more than zero")
    if len(_text(idempotency_key, "idempotency_key")) > 255:
        raise EventError("idempotency_key must be at most 255 characters")
    reward = {
        "id": _int(reward_id, "reward_id"),
        "kind": kind,
        "amount": value,
        "currency": None if currency is None else _currency(currency, "currency"),
        "reason": _text(reason, "reason"),
        "status": status,
        "idempotency_key": idempotency_key,
    }
    data = _data(member, reasons, crm, links, reward=reward)
    return envelope("reward.granted", workspace=workspace, occurred_at=occurred_at, data=data)


def focus_group_invitation(
    *,
    workspace: str,
    occurred_at: datetime,
    member: MemberRef,
    panel_id: int,
    panel_name: str,
    accept_url: str,
    decline_url: str,
    expires_at: datetime,
    reasons: Sequence[str] = (),
    crm: Mapping[str, str] | None = None,
    links: Mapping[str, str] | None = None,
    message: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Invite ``member`` to a research panel; the two personal links work until ``expires_at``.
    ``message``, when given, is the invitation written for the member (see :func:`_message`)."""
    data = _panel_data(member, panel_id, panel_name, accept_url, decline_url, expires_at, reasons, crm, links)
    if message is not None:
        data["message"] = _message(message)
    return envelope("focus_group.invitation", workspace=workspace, occurred_at=occurred_at, data=data)


def focus_group_reminder(
    *,
    workspace: str,
    occurred_at: datetime,
    member: MemberRef,
    panel_id: int,
    panel_name: str,
    accept_url: str,
    decline_url: str,
    expires_at: datetime,
    deadline: datetime,
    reasons: Sequence[str] = (),
    crm: Mapping[str, str] | None = None,
    links: Mapping[str, str] | None = None,
    message: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Remind ``member`` of an unanswered invitation: answer by ``deadline`` (at the latest when
    the links expire) to keep a seat. ``message`` as for :func:`focus_group_invitation`."""
    data = _panel_data(member, panel_id, panel_name, accept_url, decline_url, expires_at, reasons, crm, links)
    data["deadline"] = _utc(deadline, "deadline")
    if deadline > expires_at:
        raise EventError("the deadline must not be after the links expire")
    if message is not None:
        data["message"] = _message(message)
    return envelope("focus_group.reminder", workspace=workspace, occurred_at=occurred_at, data=data)


def advocate_promoted(
    *,
    workspace: str,
    occurred_at: datetime,
    member: MemberRef,
    score: float,
    level: str,
    previous_level: str | None,
    reasons: Sequence[str],
    crm: Mapping[str, str],
    links: Mapping[str, str],
) -> dict[str, Any]:
    """``member`` reached a higher advocate level (score 0-100)."""
    value = {
        "value": _score(score, 100.0, "score"),
        "level": _text(level, "level"),
        "previous_level": _opt_text(previous_level, "previous_level"),
    }
    data = _data(member, reasons, crm, links, score=value)
    return envelope("advocate.promoted", workspace=workspace, occurred_at=occurred_at, data=data)


def lead_signal(
    *,
    workspace: str,
    occurred_at: datetime,
    member: MemberRef,
    score: float,
    grade: str | None,
    hot: bool,
    triggers: Sequence[Mapping[str, Any]],
    reasons: Sequence[str],
    crm: Mapping[str, str],
    links: Mapping[str, str],
) -> dict[str, Any]:
    """``member`` raised a hand: the lead score (0-100), its grade (A1 best to C3), and the
    activities (``activity_id``, ``type``, ``title``, ``url``, ``occurred_at``) that did it."""
    if not isinstance(hot, bool):
        raise EventError("hot must be true or false")
    value = {"value": _score(score, 100.0, "score"), "grade": _opt_text(grade, "grade"), "hot": hot}
    data = _data(member, reasons, crm, links, score=value, triggers=[_trigger(t) for t in triggers])
    return envelope("lead.signal", workspace=workspace, occurred_at=occurred_at, data=data)


def churn_risk_raised(
    *,
    workspace: str,
    occurred_at: datetime,
    member: MemberRef | None,
    organization: Mapping[str, Any] | None,
    score: float,
    band: str,
    previous_band: str | None,
    reasons: Sequence[str],
    crm: Mapping[str, str],
    links: Mapping[str, str],
) -> dict[str, Any]:
    """A member's or (``member`` None) an organization's churn risk rose to ``band``."""
    if (member is None) == (organization is None):
        raise EventError("a churn event is about exactly one of a member or an organization")
    if band not in CHURN_BANDS or previous_band not in (None, *CHURN_BANDS):
        raise EventError(f"band and previous_band must be one of {', '.join(CHURN_BANDS)}")
    risk = {"probability": _score(score, 1.0, "score"), "band": band, "previous_band": previous_band}
    org = None if organization is None else _organization(organization)
    data = _data(member, reasons, crm, links, organization=org, risk=risk)
    return envelope("churn.risk_raised", workspace=workspace, occurred_at=occurred_at, data=data)


def ping(*, workspace: str, occurred_at: datetime, endpoint_id: int) -> dict[str, Any]:
    """The test event ``flywheel webhooks test`` sends: about no one."""
    data = _data(None, (), {}, {}, endpoint_id=_int(endpoint_id, "endpoint_id"), message=PING_MESSAGE)
    return envelope("ping", workspace=workspace, occurred_at=occurred_at, data=data)


def body(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes to send (and sign): compact UTF-8 JSON, keys sorted, non-ASCII unescaped."""
    try:
        return orjson.dumps(dict(payload), option=orjson.OPT_SORT_KEYS)
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise EventError(f"the payload is not plain JSON: {exc}") from None


def _data(
    member: MemberRef | None,
    reasons: Sequence[str],
    crm: Mapping[str, str] | None,
    links: Mapping[str, str] | None,
    **own: Any,
) -> dict[str, Any]:
    if member is not None and not isinstance(member, MemberRef):
        raise EventError("member must be a MemberRef")
    if isinstance(reasons, str):
        raise EventError("reasons must be a list of sentences, not one string")
    return {
        "member": None if member is None else member.as_dict(),
        "crm": _crm(crm or {}),
        "reasons": [_text(r, "a reason") for r in reasons],
        "links": _links(links or {}),
        **own,
    }


def _panel_data(
    member: MemberRef,
    panel_id: int,
    panel_name: str,
    accept_url: str,
    decline_url: str,
    expires_at: datetime,
    reasons: Sequence[str],
    crm: Mapping[str, str] | None,
    links: Mapping[str, str] | None,
) -> dict[str, Any]:
    return _data(
        member,
        reasons,
        crm,
        links,
        panel={"id": _int(panel_id, "panel_id"), "name": _text(panel_name, "panel_name")},
        accept_url=_url(accept_url, "accept_url"),
        decline_url=_url(decline_url, "decline_url"),
        expires_at=_utc(expires_at, "expires_at"),
    )


def _message(message: Mapping[str, str]) -> dict[str, str]:
    """The text written for the member, ready to send: ``locale`` (the language it is written in),
    ``direction`` (``ltr`` or ``rtl``, for the email body's ``dir``), ``subject`` (one line, it
    becomes an email header) and ``text`` (plain text)."""
    if not isinstance(message, Mapping):
        raise EventError("message must be an object with locale, direction, subject and text")
    unknown = set(message) - set(MESSAGE_FIELDS)
    if unknown:
        raise EventError(f"message has unknown fields: {', '.join(sorted(map(str, unknown)))}")
    out = {key: _text(message.get(key), f"message.{key}") for key in MESSAGE_FIELDS}
    if out["direction"] not in MESSAGE_DIRECTIONS:
        raise EventError(f"message.direction must be one of {', '.join(MESSAGE_DIRECTIONS)}")
    if "\n" in out["subject"] or "\r" in out["subject"]:
        raise EventError("message.subject must be one line")
    return out


def _trigger(trigger: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(trigger) - {"activity_id", "type", "title", "url", "occurred_at"}
    if unknown:
        raise EventError(f"a trigger has unknown fields: {', '.join(sorted(unknown))}")
    when = trigger.get("occurred_at")
    if isinstance(when, str):
        try:
            when = datetime.fromisoformat(when)
        except ValueError:
            raise EventError("trigger.occurred_at must be an ISO 8601 time with a zone") from None
    url = trigger.get("url")
    return {
        "activity_id": _int(trigger.get("activity_id"), "trigger.activity_id"),
        "type": _text(trigger.get("type"), "trigger.type"),
        "title": _opt_text(trigger.get("title"), "trigger.title"),
        "url": None if url is None else _url(url, "trigger.url"),
        "occurred_at": _utc(when, "trigger.occurred_at"),
    }


def _organization(org: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(org) - {"id", "name", "domain"}
    if unknown:
        raise EventError(f"organization has unknown fields: {', '.join(sorted(unknown))}")
    return {
        "id": _int(org.get("id"), "organization.id"),
        "name": _opt_text(org.get("name"), "organization.name"),
        "domain": _opt_text(org.get("domain"), "organization.domain"),
    }


def _crm(crm: Mapping[str, str]) -> dict[str, str]:
    unknown = set(crm) - set(CRMS)
    if unknown:
        raise EventError(f"unknown CRM {', '.join(sorted(unknown))}; known: {', '.join(CRMS)}")
    return {name: _text(crm_id, f"crm.{name}") for name, crm_id in crm.items()}


def _links(links: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for name, url in links.items():
        if not isinstance(name, str) or not _LINK_NAME.fullmatch(name):
            raise EventError(f"link name {name!r} must be lowercase letters, digits and _")
        out[name] = _url(url, f"links.{name}")
    return out


def _utc(when: object, what: str) -> str:
    if not isinstance(when, datetime):
        raise EventError(f"{what} must be a datetime")
    if when.tzinfo is None or when.utcoffset() is None:
        raise EventError(f"{what} must be timezone-aware (a naive datetime is ambiguous)")
    return when.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def _money(amount: object, what: str) -> str:
    if not isinstance(amount, Decimal):
        raise EventError(f"{what} must be a decimal.Decimal (money is never a float)")
    if not amount.is_finite() or amount < 0:
        raise EventError(f"{what} must be a finite amount of at least zero")
    return format(abs(amount), "f")  # abs: Decimal("-0") is "0"


def _currency(code: object, what: str) -> str:
    if not isinstance(code, str) or not _CURRENCY.fullmatch(code):
        raise EventError(f"{what} must be an ISO 4217 code such as EUR")
    return code


def _score(value: object, top: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise EventError(f"{what} must be a number")
    if not 0 <= value <= top:
        raise EventError(f"{what} must be between 0 and {top:g}")
    return round(float(value), 4 if top <= 1 else 2)


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise EventError(f"{what} must be a positive integer")
    return value


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise EventError(f"{what} must be a non-empty string")
    return value


def _opt_text(value: object, what: str) -> str | None:
    return None if value is None else _text(value, what)


def _url(value: object, what: str) -> str:
    text = _text(value, what)
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname or any(c.isspace() for c in text):
        raise EventError(f"{what} must be an absolute http(s) URL")
    return text
