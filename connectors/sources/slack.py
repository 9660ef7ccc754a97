"""Slack Events API request bodies to canonical activity records.

The envelope (``type: "event_callback"``, ``team_id``, ``event_id``, ``event_time``, ``event``) and the
``message``, ``reaction_added`` and ``member_joined_channel`` event shapes follow Slack's reference pages
(docs.slack.dev/reference/events/message, .../reaction_added, .../member_joined_channel, and
.../url_verification). Slack events carry user ids only: no email, no name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.errors import InvalidRecord, NoActivity
from connectors.records import MAX_ID, MAX_NAME, MAX_TEXT, ActivityRecord, MemberRef

SOURCE = "slack"

#: Message subtypes that are a person writing; every other subtype is housekeeping or an app.
_PERSON_SUBTYPES = frozenset({None, "thread_broadcast", "file_share", "me_message"})

_SUBTYPE_REASONS = {
    "bot_message": "message from a bot is not community activity",
    "message_changed": "message_changed: edits are not new activity",
    "message_deleted": "message_deleted: deletions are not activity",
    "message_replied": "message_replied only updates the thread parent; the reply itself is counted",
    "channel_join": "channel_join is counted from member_joined_channel",
}

#: Conversations that are private to a few people, not the community (channel_type of message events).
_PRIVATE_CHANNEL_TYPES = frozenset({"im", "mpim", "app_home"})

_TS = re.compile(r"[0-9]{1,11}(?:\.[0-9]{1,6})?")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _str(parent: Mapping[str, Any], key: str, path: str, limit: int = 64) -> str:
    value = parent.get(key)
    if isinstance(value, str) and value.strip() and len(value) <= limit:
        return value.strip()
    raise InvalidRecord(f"{path}.{key}", "is required" if value is None else "must be a short string")


def _short(value: Any) -> str | None:
    """An optional short string field (ids, ts, channel types), else None."""
    return value if isinstance(value, str) and value and len(value) <= 64 else None


def _ts(value: Any, field: str) -> datetime:
    """A Slack ``ts``/``event_ts`` ("1355517523.000005") or ``event_time`` (int seconds) to aware UTC."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**11:
        return _EPOCH + timedelta(seconds=value)
    if isinstance(value, str) and _TS.fullmatch(value):
        seconds, _, fraction = value.partition(".")
        return _EPOCH + timedelta(seconds=int(seconds), microseconds=int(fraction.ljust(6, "0")))
    raise InvalidRecord(field, "is required" if value is None else "must be Unix seconds (1355517523.000005)")


def _when(event: Mapping[str, Any], envelope: Mapping[str, Any], key: str) -> datetime:
    """The event's own timestamp, else the envelope's ``event_time`` (some events have no event_ts)."""
    if event.get(key) is not None:
        return _ts(event.get(key), f"envelope.event.{key}")
    return _ts(envelope.get("event_time"), "envelope.event_time")


def _record(
    kind: str,
    rid: str,
    when: datetime,
    user: str,
    channel: str | None,
    envelope: Mapping[str, Any],
    text: str | None = None,
    **props: Any,
) -> ActivityRecord:
    if len(rid) > MAX_ID:
        raise InvalidRecord("id", f"longer than {MAX_ID} characters")
    event_id = envelope.get("event_id")
    props["event_id"] = event_id[:MAX_NAME] if isinstance(event_id, str) else None
    return ActivityRecord(
        source=SOURCE,
        id=rid,
        type=kind,
        occurred_at=when,
        member=MemberRef(source_user_id=user),
        channel=channel,
        text=text,
        properties={k: v for k, v in props.items() if v is not None},
    )


def _message(event: Mapping[str, Any], envelope: Mapping[str, Any], team: str) -> ActivityRecord:
    subtype = event.get("subtype")
    if subtype is not None and not isinstance(subtype, str):
        raise InvalidRecord("envelope.event.subtype", "must be a string")
    if subtype not in _PERSON_SUBTYPES:
        name = str(subtype)[:60]
        raise NoActivity(_SUBTYPE_REASONS.get(name, f"message subtype {name} is not community activity"))
    if event.get("bot_id") is not None or event.get("bot_profile") is not None:
        raise NoActivity("message from an app or bot is not community activity")
    if event.get("hidden") is True:
        raise NoActivity("hidden message is not community activity")
    channel_type = _short(event.get("channel_type"))
    if channel_type in _PRIVATE_CHANNEL_TYPES:
        raise NoActivity(f"message in a private conversation ({channel_type}) is not community activity")
    user = _str(event, "user", "envelope.event")
    channel = _str(event, "channel", "envelope.event")
    ts = _str(event, "ts", "envelope.event")
    when = _ts(ts, "envelope.event.ts")
    thread_ts = _short(event.get("thread_ts"))
    # A thread's parent has thread_ts == ts; a reply has the parent's ts in thread_ts.
    kind = "reply" if thread_ts and thread_ts != ts else "post"
    text = event.get("text")
    return _record(
        kind,
        f"{team}:{channel}:{ts}",
        when,
        user,
        channel,
        envelope,
        text=text[:MAX_TEXT] if isinstance(text, str) and text else None,
        ts=ts,
        thread_ts=thread_ts if kind == "reply" else None,
        subtype=subtype,
        channel_type=channel_type,
    )


def _reaction(event: Mapping[str, Any], envelope: Mapping[str, Any], team: str) -> ActivityRecord:
    user = _str(event, "user", "envelope.event")  # the member who reacted (item_user wrote the item)
    reaction = _str(event, "reaction", "envelope.event", limit=100)
    item = event.get("item")
    if not isinstance(item, Mapping):
        raise InvalidRecord("envelope.event.item", "must be an object")
    if item.get("type") == "message":
        channel: str | None = _str(item, "channel", "envelope.event.item")
        target = f"{channel}:{_str(item, 'ts', 'envelope.event.item')}"
    elif isinstance(item.get("file"), str):
        channel, target = None, f"file:{_str(item, 'file', 'envelope.event.item')}"
    else:
        raise InvalidRecord("envelope.event.item.type", "must be a message or carry a file id")
    # Derived from Slack's ids (not event_id) so a remove/re-add or a later API pull gives the same id.
    rid = f"{team}:{target}:reaction:{user}:{reaction}"
    return _record(
        "reaction",
        rid,
        _when(event, envelope, "event_ts"),
        user,
        channel,
        envelope,
        reaction=reaction,
        item_ts=_short(item.get("ts")),
        item_user=_short(event.get("item_user")),
    )


def _joined(event: Mapping[str, Any], envelope: Mapping[str, Any], team: str) -> ActivityRecord:
    user = _str(event, "user", "envelope.event")
    channel = _str(event, "channel", "envelope.event")
    auths = envelope.get("authorizations")
    if isinstance(auths, list) and any(
        isinstance(a, Mapping) and a.get("is_bot") is True and a.get("user_id") == user for a in auths
    ):
        raise NoActivity("member_joined_channel for this app's own bot user is not community activity")
    return _record(
        "member_joined",
        f"{team}:{channel}:joined:{user}",
        _when(event, envelope, "event_ts"),
        user,
        channel,
        envelope,
        inviter=_short(event.get("inviter")),
        channel_type=_short(event.get("channel_type")),
    )


_HANDLERS = {"message": _message, "reaction_added": _reaction, "member_joined_channel": _joined}


def slack_challenge(envelope: Mapping[str, Any]) -> str | None:
    """The ``challenge`` to echo back for a ``url_verification`` body, else None."""
    if isinstance(envelope, Mapping) and envelope.get("type") == "url_verification":
        challenge = envelope.get("challenge")
        return challenge if isinstance(challenge, str) and challenge else None
    return None


def parse_slack(envelope: Mapping[str, Any]) -> list[ActivityRecord]:
    """Map one Events API body to records; NoActivity if it carries none, InvalidRecord if malformed."""
    if not isinstance(envelope, Mapping):
        raise InvalidRecord("envelope", "must be a JSON object")
    kind = envelope.get("type")
    if not isinstance(kind, str) or not kind:
        raise InvalidRecord("envelope.type", "is required")
    if kind == "url_verification":
        raise NoActivity("url_verification is a handshake, not activity")
    if kind != "event_callback":
        raise NoActivity(f"{kind[:60]} bodies carry no community activity")
    event = envelope.get("event")
    if not isinstance(event, Mapping):
        raise InvalidRecord("envelope.event", "is required" if event is None else "must be an object")
    etype = event.get("type")
    if not isinstance(etype, str) or not etype:
        raise InvalidRecord("envelope.event.type", "is required")
    handler = _HANDLERS.get(etype)
    if handler is None:
        raise NoActivity(f"{etype[:60]} events carry no community activity")
    return [handler(event, envelope, _str(envelope, "team_id", "envelope"))]
