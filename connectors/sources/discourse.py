"""Discourse webhook deliveries (``X-Discourse-Event`` header + JSON body) to canonical activity records.

Discourse wraps the serialized object under its event *type* (``X-Discourse-Event-Type``): ``{"post": ...}``,
``{"topic": ...}``, ``{"user": ...}``, ``{"solved": ...}``, ``{"ping": "OK"}``
(discourse/discourse ``app/jobs/regular/emit_web_hook_event.rb``, ``build_webhook_body``).
Post fields are those of ``WebHookPostSerializer`` (id, user_id, username, name, created_at, post_number,
post_type, topic_id, topic_slug, topic_title, category_id, category_slug, raw, cooked, post_url,
topic_archetype...); users those of ``WebHookUserSerializer`` (id, username, name, email, created_at...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.errors import InvalidRecord, NoActivity
from connectors.records import (
    MAX_ID,
    MAX_TEXT,
    MAX_TITLE,
    MAX_URL,
    ActivityRecord,
    MemberRef,
    normalize_email,
)
from connectors.sources.payload import delivery as _delivery
from connectors.sources.payload import obj as _obj
from connectors.sources.payload import text as _text
from connectors.sources.payload import time as _time

SOURCE = "discourse"

#: Post.types in Discourse: 1 regular, 2 moderator_action, 3 small_action, 4 whisper.
_REGULAR_POST = 1

#: Events that are well formed but never activity, with the reason given back.
_SKIPPED = {
    "ping": "ping carries no activity",
    "topic_created": "topic_created is counted from the topic's first post (post_created, post_number 1)",
    "post_edited": "post_edited: edits are not new activity",
    "topic_edited": "topic_edited: edits are not new activity",
    "unaccepted_solution": "unaccepted_solution withdraws an answer; it is not new activity",
    # The like payload carries no time of the like itself, and parsers may not read the clock.
    "post_liked": "post_liked carries no time of the like, so it cannot be dated",
}


def _int(parent: Mapping[str, Any], key: str, path: str) -> int:
    value = parent.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**18:
        return value
    raise InvalidRecord(f"{path}.{key}", "is required" if value is None else "must be an integer")


def _opt_int(parent: Mapping[str, Any], key: str) -> int | None:
    value = parent.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _base(instance: str | None) -> str | None:
    """The ``X-Discourse-Instance`` base URL without a trailing slash, when it looks like one."""
    if isinstance(instance, str) and instance.startswith(("http://", "https://")) and len(instance) < 500:
        return instance.rstrip("/")
    return None


def _member(obj: Mapping[str, Any], id_key: str, path: str, what: str) -> MemberRef:
    user_id = _int(obj, id_key, path)
    if user_id <= 0:  # -1 is the system user, -2 discobot
        raise NoActivity(f"{what} by Discourse's own system account is not community activity")
    email = _text(obj, "email")
    try:
        email = normalize_email(email) if email else None
    except ValueError:
        email = None  # optional: a malformed address is dropped, not fatal
    return MemberRef(
        source_user_id=str(user_id),
        handle=_text(obj, "username"),
        name=_text(obj, "name"),
        email=email,
        locale=_text(obj, "locale", 35),
    )


def _post_record(
    kind: str,
    rid: str,
    post: Mapping[str, Any],
    path: str,
    what: str,
    instance: str | None,
    time_source: str | None = None,
) -> ActivityRecord:
    if post.get("topic_archetype") == "private_message":
        raise NoActivity(f"{what} in a private message is not community activity")
    post_type = post.get("post_type")
    if post_type is not None and post_type != _REGULAR_POST:
        raise NoActivity(f"{what} for a non-regular post (type {str(post_type)[:20]}) is not activity")
    if post.get("deleted_at") is not None or post.get("user_deleted") is True:
        raise NoActivity(f"{what} for a deleted post is not activity")
    member = _member(post, "user_id", path, what)
    post_id, topic_id = _int(post, "id", path), _opt_int(post, "topic_id")
    post_number = _opt_int(post, "post_number")
    base, post_url = _base(instance), _text(post, "post_url", MAX_URL)
    url = None
    if base and post_url and post_url.startswith("/"):
        url = base + post_url
    elif base and topic_id is not None:
        url = f"{base}/t/{_text(post, 'topic_slug', 200) or 'topic'}/{topic_id}/{post_number or 1}"
    category_id = _opt_int(post, "category_id")
    channel = _text(post, "category_slug") or (f"category:{category_id}" if category_id is not None else None)
    props = {
        "topic_id": topic_id,
        "post_id": post_id,
        "post_number": post_number,
        "reply_to_post_number": _opt_int(post, "reply_to_post_number"),
        "category_id": category_id,
        "instance": base,
        "time_source": time_source,
    }
    return ActivityRecord(
        source=SOURCE,
        id=rid,
        type=kind,
        occurred_at=_time(post, "created_at", path),
        member=member,
        channel=channel,
        title=_text(post, "topic_title", MAX_TITLE),
        url=url,
        text=_text(post, "raw", MAX_TEXT) or _text(post, "cooked", MAX_TEXT),
        properties={k: v for k, v in props.items() if v is not None},
    )


def _post_created(payload: Mapping[str, Any], instance: str | None) -> ActivityRecord:
    post = _obj(payload, "post", "payload")
    post_id = _int(post, "id", "payload.post")
    # A new topic fires topic_created and post_created for post_number 1 (config/initializers/
    # 012-web_hook_events.rb); the first post carries it, so topic_created is skipped.
    kind = "post" if _opt_int(post, "post_number") == 1 else "reply"
    return _post_record(kind, f"post:{post_id}", post, "payload.post", "post_created", instance)


def _accepted_solution(payload: Mapping[str, Any], instance: str | None) -> ActivityRecord:
    # discourse-solved: WebHook.enqueue_solved_hooks(:accepted_solution, post, ...) under type "solved";
    # the body is the accepted post, so its author is the member. Older senders used "post".
    key = "post" if isinstance(payload.get("post"), Mapping) and "solved" not in payload else "solved"
    post = _obj(payload, key, "payload")
    post_id = _int(post, "id", f"payload.{key}")
    # The payload has no acceptance time (nor who accepted); the answer's own created_at dates it.
    return _post_record(
        "answer_accepted",
        f"solution:{post_id}",
        post,
        f"payload.{key}",
        "accepted_solution",
        instance,
        time_source="post.created_at",
    )


def _user_created(payload: Mapping[str, Any], instance: str | None) -> ActivityRecord:
    user = _obj(payload, "user", "payload")
    if user.get("staged") is True:
        raise NoActivity("user_created for a staged user (created by incoming email) is not a member joining")
    member = _member(user, "id", "payload.user", "user_created")
    base, username = _base(instance), _text(user, "username")
    props = {"trust_level": _opt_int(user, "trust_level"), "instance": base}
    return ActivityRecord(
        source=SOURCE,
        id=f"user:{member.source_user_id}:joined",
        type="member_joined",
        occurred_at=_time(user, "created_at", "payload.user"),
        member=member,
        url=f"{base}/u/{username}"[:MAX_URL] if base and username else None,
        properties={k: v for k, v in props.items() if v is not None},
    )


_HANDLERS = {
    "post_created": _post_created,
    "accepted_solution": _accepted_solution,
    "user_created": _user_created,
}


def parse_discourse(
    event: str, payload: Mapping[str, Any], instance: str | None = None
) -> list[ActivityRecord]:
    """Map one delivery to records; NoActivity if it carries none, InvalidRecord if it is malformed."""
    event, payload = _delivery(event, payload, "X-Discourse-Event")
    if event in _SKIPPED:
        raise NoActivity(_SKIPPED[event])
    handler = _HANDLERS.get(event)
    if handler is None:
        raise NoActivity(f"{event[:60]} carries no community activity")
    record = handler(payload, instance)
    if len(record.id) > MAX_ID:  # ids are built from integers, so this only guards the contract
        raise InvalidRecord("id", f"longer than {MAX_ID} characters")
    return [record]
