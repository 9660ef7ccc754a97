"""The canonical activity record: what every source is mapped to before it is stored.

``parse_record`` turns a plain mapping (a JSONL line, a flattened CSV row, a generic webhook body)
into an :class:`ActivityRecord`, raising :class:`InvalidRecord` naming the first bad field. It is
hand-written rather than a schema library because it sits on the bulk-ingest hot path; the same
contract is published as JSON Schema in ``connectors/schema/activity.schema.json`` and a test keeps
the two in agreement.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from connectors.errors import InvalidRecord

#: Activity types Flywheel understands. Scoring gives each its own weight; unknown types are refused
#: so that a typo in an export does not silently become a zero-weight activity.
ACTIVITY_TYPES: frozenset[str] = frozenset(
    {
        "post",
        "reply",
        "answer",
        "answer_accepted",
        "reaction",
        "issue_opened",
        "issue_closed",
        "pr_opened",
        "pr_merged",
        "pr_review",
        "comment",
        "star",
        "fork",
        "release",
        "member_joined",
        "sponsorship",
        "event_registered",
        "event_attended",
        "review",
        "survey_response",
        "referral",
        "support_question",
        "feature_request",
        "purchase",
        "product_usage",
    }
)

LIFECYCLE_STAGES: frozenset[str] = frozenset(
    {
        "subscriber",
        "lead",
        "marketingqualifiedlead",
        "salesqualifiedlead",
        "opportunity",
        "customer",
        "evangelist",
        "other",
    }
)

MAX_ID = 255
MAX_TITLE = 500
MAX_TEXT = 2000  # "short text": longer bodies are cut, the full text stays in the source platform
MAX_URL = 2048
MAX_NAME = 255


class _NoProperties(Mapping[str, Any]):
    """The default ``properties``: empty and read-only (so no record can change another's), and,
    unlike ``MappingProxyType``, picklable, as records cross to and from parsing processes."""

    __slots__ = ()

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __reduce__(self) -> str:
        return "NO_PROPERTIES"  # unpickles to this module's singleton


NO_PROPERTIES: Mapping[str, Any] = _NoProperties()


# Records are NamedTuples rather than dataclasses: immutable all the same, but built, compared and
# pickled at C speed, which the bulk-ingest path (tens of thousands a second) feels.
class MemberRef(NamedTuple):
    """Who did it, as the source knows them. At least one of email, handle or source_user_id."""

    email: str | None = None
    name: str | None = None
    handle: str | None = None
    source_user_id: str | None = None
    locale: str | None = None
    lifecycle_stage: str | None = None
    title: str | None = None
    company: str | None = None
    #: Whether the source vouches for the email. ``None`` means "use the source's default"
    #: (see ``plugin.services.identity.EMAIL_TRUST``).
    email_verified: bool | None = None

    @property
    def key(self) -> str:
        """The source-local identity key: the platform's user id, else the handle, else the email."""
        return self.source_user_id or self.handle or self.email or ""


class ActivityRecord(NamedTuple):
    source: str
    id: str
    type: str
    occurred_at: datetime
    member: MemberRef
    channel: str | None = None
    title: str | None = None
    url: str | None = None
    text: str | None = None
    properties: Mapping[str, Any] = NO_PROPERTIES
    sentiment: float | None = None


def normalize_email(value: str) -> str:
    """Trim, lowercase and NFC-normalise an email address; raise ValueError when it is not one."""
    email = value.strip()
    if not email.isascii():  # ASCII text is already in NFC; skip the costly call on the hot path
        email = unicodedata.normalize("NFC", email)
    email = email.lower()
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain or " " in email or domain.startswith("."):
        raise ValueError("not an email address")
    return email


def parse_time(value: Any, field_name: str = "occurred_at") -> datetime:
    """ISO 8601 with an explicit zone (``Z`` or ``+02:00``) to an aware UTC datetime."""
    if type(value) is str:
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidRecord(field_name, f"not an ISO 8601 time: {value[:40]!r}") from None
    elif isinstance(value, datetime):
        parsed = value
    else:
        raise InvalidRecord(field_name, "must be an ISO 8601 string")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise InvalidRecord(field_name, "needs a time zone, e.g. 2026-01-31T09:00:00Z")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+02:00 falls before year 1 in UTC
        raise InvalidRecord(field_name, "is outside the years 1 to 9999 once moved to UTC") from None


_NUMBERS = (int, float)


def _opt_str(obj: Mapping[str, Any], key: str, field_name: str, limit: int) -> str | None:
    value = obj.get(key)
    if type(value) is str:  # the common case first: this runs ~15 times per record
        return value[:limit] if value else None
    if value is None:
        return None
    if isinstance(value, _NUMBERS) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidRecord(field_name, "must be a string")
    return value[:limit]


def _req_str(obj: Mapping[str, Any], key: str, limit: int) -> str:
    value = _opt_str(obj, key, key, limit)
    if value is None:
        raise InvalidRecord(key, "is required")
    return value


#: (key, field name in errors, length limit) of a member's plain string fields
_MEMBER_STRINGS = (
    ("email", "member.email", MAX_NAME),
    ("name", "member.name", MAX_NAME),
    ("handle", "member.handle", MAX_NAME),
    ("source_user_id", "member.source_user_id", MAX_ID),
    ("locale", "member.locale", 35),
    ("lifecycle_stage", "member.lifecycle_stage", 40),
    ("title", "member.title", MAX_NAME),
    ("company", "member.company", MAX_NAME),
)
_RECORD_STRINGS = (
    ("channel", "channel", MAX_NAME),
    ("title", "title", MAX_TITLE),
    ("url", "url", MAX_URL),
    ("text", "text", MAX_TEXT),
)


def _strings(obj: Mapping[str, Any], spec: tuple[tuple[str, str, int], ...]) -> list[str | None]:
    """Several optional string fields at once (one call per record part keeps the hot path lean)."""
    out: list[str | None] = []
    for key, field_name, limit in spec:
        value = obj.get(key)
        if type(value) is str:
            out.append(value[:limit] if value else None)
        elif value is None:
            out.append(None)
        else:
            out.append(_opt_str(obj, key, field_name, limit))
    return out


def parse_member(obj: Any) -> MemberRef:
    if type(obj) is not dict and not isinstance(obj, Mapping):
        raise InvalidRecord("member", "must be an object")
    email, name, handle, user_id, locale, stage, title, company = _strings(obj, _MEMBER_STRINGS)
    if email is not None:
        try:
            email = normalize_email(email)
        except ValueError:
            raise InvalidRecord("member.email", f"not an email address: {email[:60]!r}") from None
    if stage is not None:
        stage = stage.lower()
        if stage not in LIFECYCLE_STAGES:
            raise InvalidRecord("member.lifecycle_stage", f"unknown stage {stage!r}")
    verified = obj.get("email_verified")
    if verified is not None and not isinstance(verified, bool):
        raise InvalidRecord("member.email_verified", "must be true or false")
    if not (user_id or handle or email):
        raise InvalidRecord("member", "needs at least one of email, handle or source_user_id")
    return MemberRef(email, name, handle, user_id, locale, stage, title, company, verified)


def parse_record(obj: Any, *, default_source: str | None = None) -> ActivityRecord:
    """Validate one canonical record given as a mapping (a decoded JSON object)."""
    if type(obj) is not dict and not isinstance(obj, Mapping):
        raise InvalidRecord("record", "must be a JSON object")
    source = _opt_str(obj, "source", "source", 64) or default_source
    if not source:
        raise InvalidRecord("source", "is required")
    kind = _req_str(obj, "type", 64)
    if kind not in ACTIVITY_TYPES:
        raise InvalidRecord("type", f"unknown activity type {kind!r}")
    properties = obj.get("properties")
    if properties is None:
        properties = NO_PROPERTIES
    elif not isinstance(properties, dict):
        raise InvalidRecord("properties", "must be an object")
    sentiment = obj.get("sentiment")
    if sentiment is not None:
        if isinstance(sentiment, bool) or not isinstance(sentiment, _NUMBERS):
            raise InvalidRecord("sentiment", "must be a number from -1 to 1")
        if not -1.0 <= float(sentiment) <= 1.0:
            raise InvalidRecord("sentiment", "must be a number from -1 to 1")
        sentiment = float(sentiment)
    activity_id = _req_str(obj, "id", MAX_ID)
    occurred_at = parse_time(obj.get("occurred_at"))
    member = parse_member(obj.get("member"))
    channel, title, url, text = _strings(obj, _RECORD_STRINGS)
    return ActivityRecord(
        source.lower(),
        activity_id,
        kind,
        occurred_at,
        member,
        channel,
        title,
        url,
        text,
        properties,
        sentiment,
    )


def record_to_dict(record: ActivityRecord) -> dict[str, Any]:
    """The JSON form of a record, as accepted by :func:`parse_record` (round-trips)."""
    member = record.member._asdict()
    out: dict[str, Any] = {
        "source": record.source,
        "id": record.id,
        "type": record.type,
        "occurred_at": record.occurred_at.isoformat().replace("+00:00", "Z"),
        "member": {k: v for k, v in member.items() if v is not None},
    }
    for key in ("channel", "title", "url", "text", "sentiment"):
        value = getattr(record, key)
        if value is not None:
            out[key] = value
    if record.properties:
        out["properties"] = dict(record.properties)
    return out
