"""Discourse webhook parser: fixture bodies in ``payloads/discourse/<event>/`` (see the README there)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.errors import InvalidRecord, NoActivity
from connectors.records import ACTIVITY_TYPES, ActivityRecord, parse_record, record_to_dict
from connectors.sources.discourse import parse_discourse
from tests.connectors.strategies import json_like

PAYLOADS = Path(__file__).parent / "payloads" / "discourse"
FILES = sorted(PAYLOADS.glob("*/*.json"))
INSTANCE = "https://forum.example.com"


def load(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


def check(record: ActivityRecord) -> ActivityRecord:
    """A record must be a valid canonical record: it survives the JSON round trip unchanged."""
    assert record.source == "discourse"
    assert record.type in ACTIVITY_TYPES
    assert record.occurred_at.utcoffset() is not None and record.occurred_at.utcoffset().total_seconds() == 0
    assert record.member.email_verified is None
    json.dumps(record.properties)
    assert parse_record(record_to_dict(record)) == record
    return record


def parse(event: str, payload: Any, instance: str | None = INSTANCE) -> ActivityRecord:
    records = parse_discourse(event, payload, instance)
    assert len(records) == 1
    return check(records[0])


def no_activity(event: str, payload: Any) -> str:
    with pytest.raises(NoActivity) as caught:
        parse_discourse(event, payload, INSTANCE)
    return caught.value.reason


def invalid(event: str, payload: Any) -> str:
    with pytest.raises(InvalidRecord) as caught:
        parse_discourse(event, payload, INSTANCE)
    return caught.value.field


def test_every_fixture_yields_records_or_a_reason() -> None:
    outcomes: dict[str, Any] = {}
    for path in FILES:
        name = f"{path.parent.name}/{path.name}"
        try:
            records = parse_discourse(path.parent.name, json.loads(path.read_text()))
            outcomes[name] = [check(r).type for r in records]
        except NoActivity as exc:
            outcomes[name] = exc.reason
    assert outcomes == {
        "accepted_solution/reply.json": ["answer_accepted"],
        "ping/ping.json": "ping carries no activity",
        "post_created/first_post.json": ["post"],
        "post_created/reply.json": ["reply"],
        "post_edited/reply.json": "post_edited: edits are not new activity",
        "topic_created/topic.json": (
            "topic_created is counted from the topic's first post (post_created, post_number 1)"
        ),
        "user_created/user.json": ["member_joined"],
    }


def test_first_post_of_a_topic_is_a_post() -> None:
    record = parse("post_created", load("post_created/first_post.json"))
    assert (record.type, record.id) == ("post", "post:4821")
    member = record.member
    assert (member.source_user_id, member.handle, member.name) == ("58", "ada", "Ada Lovelace")
    assert record.member.email is None
    assert record.occurred_at == datetime(2026, 1, 12, 9, 30, 5, 123000, tzinfo=UTC)
    assert record.channel == "support"
    assert record.title == "Rotating the webhook secret"
    assert record.url == "https://forum.example.com/t/rotating-the-webhook-secret/377/1"
    assert record.text == "How do I rotate the webhook secret?"
    assert record.properties == {
        "topic_id": 377,
        "post_id": 4821,
        "post_number": 1,
        "category_id": 5,
        "instance": INSTANCE,
    }


def test_later_post_is_a_reply() -> None:
    record = parse("post_created", load("post_created/reply.json"))
    assert (record.type, record.id) == ("reply", "post:4830")
    assert (record.member.source_user_id, record.member.handle) == ("63", "grace")
    assert record.properties["reply_to_post_number"] == 1
    assert record.url == "https://forum.example.com/t/rotating-the-webhook-secret/377/2"


def test_topic_created_is_not_counted_twice() -> None:
    reason = no_activity("topic_created", load("topic_created/topic.json"))
    assert "post_created" in reason  # the first post carries the new topic


@pytest.mark.parametrize(
    ("event", "name"),
    [("post_edited", "post_edited/reply.json"), ("topic_edited", "topic_created/topic.json")],
)
def test_edits_are_not_activity(event: str, name: str) -> None:
    assert no_activity(event, load(name)) == f"{event}: edits are not new activity"


def test_accepted_solution_credits_the_answer_author() -> None:
    record = parse("accepted_solution", load("accepted_solution/reply.json"))
    assert (record.type, record.id) == ("answer_accepted", "solution:4830")
    assert (record.member.source_user_id, record.member.handle) == ("63", "grace")  # not the asker (58)
    assert record.occurred_at == datetime(2026, 1, 12, 10, 2, 44, 870000, tzinfo=UTC)
    assert record.properties["time_source"] == "post.created_at"
    assert record.title == "Rotating the webhook secret"


def test_accepted_solution_also_read_from_a_post_wrapper() -> None:
    body = {"post": load("accepted_solution/reply.json")["solved"]}
    assert parse("accepted_solution", body).id == "solution:4830"


def test_user_created_is_a_member_joining() -> None:
    record = parse("user_created", load("user_created/user.json"))
    assert (record.type, record.id) == ("member_joined", "user:71:joined")
    assert record.member.source_user_id == "71"
    assert (record.member.handle, record.member.name) == ("linus_t", "Linus T")
    assert record.member.email == "linus.t@example.com"
    assert record.member.email_verified is None
    assert record.member.locale == "en"
    assert record.occurred_at == datetime(2026, 1, 13, 7, 45, 12, 400000, tzinfo=UTC)
    assert record.url == "https://forum.example.com/u/linus_t"
    assert record.properties == {"trust_level": 0, "instance": INSTANCE}


def test_user_created_edge_cases() -> None:
    user = load("user_created/user.json")
    staged = copy.deepcopy(user)
    staged["user"]["staged"] = True
    assert "staged" in no_activity("user_created", staged)
    bad_email = copy.deepcopy(user)
    bad_email["user"]["email"] = "nobody"
    assert parse("user_created", bad_email).member.email is None


def test_ping() -> None:
    assert no_activity("ping", load("ping/ping.json")) == "ping carries no activity"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"topic_archetype": "private_message"}, "private message"),
        ({"post_type": 3}, "non-regular post"),
        ({"user_id": -1, "username": "system"}, "system account"),
        ({"deleted_at": "2026-01-12T11:00:00.000Z"}, "deleted post"),
    ],
)
def test_posts_that_are_not_community_activity(change: dict[str, Any], expected: str) -> None:
    body = load("post_created/reply.json")
    body["post"].update(change)
    assert expected in no_activity("post_created", body)


def test_urls_depend_on_the_instance_header() -> None:
    body = load("post_created/reply.json")
    assert parse("post_created", body, instance=None).url is None
    assert parse("post_created", body, instance="https://forum.example.com/").url == (
        "https://forum.example.com/t/rotating-the-webhook-secret/377/2"
    )
    del body["post"]["post_url"]  # older Discourse versions: built from slug, topic id and post number
    assert parse("post_created", body).url == "https://forum.example.com/t/rotating-the-webhook-secret/377/2"
    assert parse("post_created", body, instance="not a url").url is None


def test_same_post_same_id_whatever_the_delivery() -> None:
    body = load("post_created/reply.json")
    assert parse("post_created", body, None).id == parse("post_created", copy.deepcopy(body)).id


def test_channel_falls_back_to_the_category_id() -> None:
    body = load("post_created/reply.json")
    del body["post"]["category_slug"]
    assert parse("post_created", body).channel == "category:5"


def test_long_raw_is_cut() -> None:
    body = load("post_created/reply.json")
    body["post"]["raw"] = "y" * 4000
    assert parse("post_created", body).text == "y" * 2000


def test_unknown_and_skipped_events() -> None:
    reason = no_activity("category_created", {"category": {"id": 1}})
    assert reason == "category_created carries no community activity"
    assert "cannot be dated" in no_activity("post_liked", {"like": {}})


def test_invalid_payloads_name_the_field() -> None:
    body = load("post_created/reply.json")
    assert invalid(" ", body) == "event"
    assert invalid("post_created", "post") == "payload"
    assert invalid("post_created", {"topic": {}}) == "payload.post"
    assert invalid("post_created", {"post": []}) == "payload.post"
    for key, field in [
        ("user_id", "payload.post.user_id"),
        ("id", "payload.post.id"),
        ("created_at", "payload.post.created_at"),
    ]:
        broken = copy.deepcopy(body)
        broken["post"][key] = "soon" if key == "created_at" else None
        assert invalid("post_created", broken) == field
    user = {"user": {"id": "71", "created_at": "2026-01-13T07:45:12Z"}}
    assert invalid("user_created", user) == "payload.user.id"
    assert invalid("accepted_solution", {"solved": None}) == "payload.solved"
    assert invalid("accepted_solution", {}) == "payload.solved"


# -- fuzzing: only records, NoActivity or InvalidRecord ever come out ----------------------------------

EVENTS = st.sampled_from(
    [
        "post_created",
        "accepted_solution",
        "user_created",
        "topic_created",
        "ping",
        "post_edited",
        "user_updated",
    ]
) | st.text(max_size=8)
KEYS = st.sampled_from(
    [
        "post",
        "solved",
        "user",
        "topic",
        "id",
        "user_id",
        "username",
        "name",
        "email",
        "created_at",
        "post_number",
        "post_type",
        "topic_archetype",
        "raw",
        "post_url",
        "category_id",
        "category_slug",
        "staged",
        "locale",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["2026-01-12T09:30:05.123Z", "/t/x/1/1", "private_message", "a@b.co"])
)
JSON = json_like(SCALARS, KEYS)
EXAMPLES = [(p.parent.name, json.loads(p.read_text())) for p in FILES]


@st.composite
def mutated_fixtures(draw: st.DrawFn) -> tuple[str, Any]:
    event, body = draw(st.sampled_from(EXAMPLES))
    doc = copy.deepcopy(body)
    inner = next((v for v in doc.values() if isinstance(v, dict)), doc)
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(inner)) if inner else KEYS)
        if draw(st.booleans()):
            inner.pop(key, None)
        else:
            inner[key] = draw(JSON)
    return event, doc


def outcome(event: Any, payload: Any, instance: Any) -> None:
    try:
        records = parse_discourse(event, payload, instance)
    except (NoActivity, InvalidRecord):
        return
    assert isinstance(records, list) and records
    for record in records:
        check(record)


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EVENTS, st.dictionaries(KEYS, JSON, max_size=5), st.none() | st.just(INSTANCE) | st.text(max_size=10))
def test_fuzz_arbitrary_payloads(event: str, payload: dict[str, Any], instance: str | None) -> None:
    outcome(event, payload, instance)


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_fixtures())
def test_fuzz_mutated_fixtures(example: tuple[str, Any]) -> None:
    outcome(*example, INSTANCE)
