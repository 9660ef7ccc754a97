"""Slack Events API parser: fixture bodies in ``payloads/slack/<event type>/`` (see the README there)."""

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
from connectors.sources.slack import parse_slack, slack_challenge
from tests.connectors.strategies import json_like

PAYLOADS = Path(__file__).parent / "payloads" / "slack"
FILES = sorted(PAYLOADS.glob("*/*.json"))


def load(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


def check(record: ActivityRecord) -> ActivityRecord:
    """A record must be a valid canonical record: it survives the JSON round trip unchanged."""
    assert record.source == "slack"
    assert record.type in ACTIVITY_TYPES
    assert record.occurred_at.utcoffset() is not None and record.occurred_at.utcoffset().total_seconds() == 0
    assert record.member.email is None and record.member.email_verified is None
    json.dumps(record.properties)
    assert parse_record(record_to_dict(record)) == record
    return record


def parse(name_or_body: str | dict[str, Any]) -> ActivityRecord:
    body = load(name_or_body) if isinstance(name_or_body, str) else name_or_body
    records = parse_slack(body)
    assert len(records) == 1
    return check(records[0])


def no_activity(body: Any) -> str:
    with pytest.raises(NoActivity) as caught:
        parse_slack(body)
    return caught.value.reason


def invalid(body: Any) -> str:
    with pytest.raises(InvalidRecord) as caught:
        parse_slack(body)
    return caught.value.field


def test_every_fixture_yields_records_or_a_reason() -> None:
    produced = []
    for path in FILES:
        try:
            produced += [check(r).type for r in parse_slack(json.loads(path.read_text()))]
        except NoActivity as exc:
            assert exc.reason
    assert sorted(produced) == ["member_joined", "post", "post", "reaction", "reaction", "reply", "reply"]


def test_plain_message_is_a_post() -> None:
    record = parse("message/plain.json")
    assert (record.type, record.id) == ("post", "T0FLYWHEEL:C0COMMUNITY:1768210205.004200")
    assert record.member.source_user_id == "U0ADA00001"
    assert record.member.handle is None and record.member.name is None
    assert record.occurred_at == datetime(2026, 1, 12, 9, 30, 5, 4200, tzinfo=UTC)
    assert record.channel == "C0COMMUNITY"
    assert record.text == "Has anyone wired the CRM sync to HubSpot yet?"
    assert record.properties == {
        "event_id": "Ev0MSG000001",
        "ts": "1768210205.004200",
        "channel_type": "channel",
    }


def test_thread_parent_is_a_post_and_reply_is_a_reply() -> None:
    assert parse("message/thread_parent.json").type == "post"
    reply = parse("message/thread_reply.json")
    assert (reply.type, reply.id) == ("reply", "T0FLYWHEEL:C0COMMUNITY:1768210391.118900")
    assert reply.member.source_user_id == "U0GRACE0001"
    assert reply.properties["thread_ts"] == "1768210205.004200"
    broadcast = parse("message/thread_broadcast.json")
    assert (broadcast.type, broadcast.properties["subtype"]) == ("reply", "thread_broadcast")


def test_retried_event_gets_the_same_id() -> None:
    body = load("message/plain.json")
    retry = copy.deepcopy(body)
    retry["event_id"] = "Ev0RETRY0001"
    assert parse(body).id == parse(retry).id


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("message/bot_message.json", "message from a bot is not community activity"),
        ("message/message_changed.json", "message_changed: edits are not new activity"),
        ("message/message_deleted.json", "message_deleted: deletions are not activity"),
        ("message/channel_join.json", "channel_join is counted from member_joined_channel"),
        ("message/direct_message.json", "message in a private conversation (im) is not community activity"),
        ("app_mention/mention.json", "app_mention events carry no community activity"),
        ("url_verification/challenge.json", "url_verification is a handshake, not activity"),
    ],
)
def test_not_community_activity(name: str, expected: str) -> None:
    assert no_activity(load(name)) == expected


def test_other_subtypes_and_app_messages() -> None:
    body = load("message/plain.json")
    body["event"]["subtype"] = "channel_topic"
    assert no_activity(body) == "message subtype channel_topic is not community activity"
    body = load("message/plain.json")
    body["event"]["bot_id"] = "B0APP000001"  # an app posting as a user: no subtype, but a bot_id
    assert no_activity(body) == "message from an app or bot is not community activity"
    assert no_activity({"type": "app_rate_limited", "team_id": "T0FLYWHEEL"}) == (
        "app_rate_limited bodies carry no community activity"
    )


def test_reaction_is_credited_to_the_reacting_user() -> None:
    record = parse("reaction_added/message_item.json")
    assert record.type == "reaction"
    assert record.id == "T0FLYWHEEL:C0COMMUNITY:1768210391.118900:reaction:U0LINUS0001:thumbsup"
    assert record.member.source_user_id == "U0LINUS0001"
    assert record.occurred_at == datetime(2026, 1, 12, 9, 42, 30, 600, tzinfo=UTC)
    assert record.channel == "C0COMMUNITY"
    assert record.properties == {
        "reaction": "thumbsup",
        "item_user": "U0GRACE0001",
        "item_ts": "1768210391.118900",
        "event_id": "Ev0REACT0001",
    }


def test_reaction_id_is_stable_across_event_ids() -> None:
    body = load("reaction_added/message_item.json")
    again = copy.deepcopy(body)
    again.update(event_id="Ev0OTHER0001", event_time=1768299999)
    again["event"]["event_ts"] = "1768299999.000001"  # removed and added again later: still one reaction
    assert parse(body).id == parse(again).id


def test_reaction_to_a_file() -> None:
    record = parse("reaction_added/file_item.json")
    assert record.id == "T0FLYWHEEL:file:F0SPEC00001:reaction:U0LINUS0001:eyes"
    assert record.channel is None


def test_member_joined_channel_without_event_ts_uses_event_time() -> None:
    record = parse("member_joined_channel/joined.json")
    assert (record.type, record.id) == ("member_joined", "T0FLYWHEEL:C0COMMUNITY:joined:U0LINUS0001")
    assert record.member.source_user_id == "U0LINUS0001"
    assert record.occurred_at == datetime(2026, 1, 12, 9, 40, tzinfo=UTC)  # event_time 1768210800
    assert record.properties == {"inviter": "U0ADA00001", "channel_type": "C", "event_id": "Ev0JOIN00001"}


def test_our_own_bot_joining_is_not_a_member() -> None:
    body = load("member_joined_channel/joined.json")
    body["event"]["user"] = "U0FLYBOT01"  # the bot user named in the envelope's authorizations
    assert no_activity(body) == "member_joined_channel for this app's own bot user is not community activity"


def test_challenge() -> None:
    assert slack_challenge(load("url_verification/challenge.json")) == "fw-challenge-7f3c9a1e5b2d4c68a0e1"
    assert slack_challenge(load("message/plain.json")) is None
    assert slack_challenge({"type": "url_verification"}) is None
    assert slack_challenge({"type": "url_verification", "challenge": 42}) is None
    assert slack_challenge([]) is None  # type: ignore[arg-type]


def test_invalid_bodies_name_the_field() -> None:
    body = load("message/plain.json")
    assert invalid("text") == "envelope"
    assert invalid({"event": {}}) == "envelope.type"
    assert invalid({"type": "event_callback", "team_id": "T1"}) == "envelope.event"
    no_type = {"type": "event_callback", "team_id": "T1", "event": {"user": "U1"}}
    assert invalid(no_type) == "envelope.event.type"
    for mutate, field in [
        (lambda b: b.pop("team_id"), "envelope.team_id"),
        (lambda b: b["event"].pop("user"), "envelope.event.user"),
        (lambda b: b["event"].update(channel=7), "envelope.event.channel"),
        (lambda b: b["event"].update(ts="yesterday"), "envelope.event.ts"),
        (lambda b: b["event"].update(subtype=["x"]), "envelope.event.subtype"),
    ]:
        broken = copy.deepcopy(body)
        mutate(broken)
        assert invalid(broken) == field
    joined = load("member_joined_channel/joined.json")
    joined["event_time"] = "later"
    assert invalid(joined) == "envelope.event_time"
    reaction = load("reaction_added/message_item.json")
    reaction["event"]["item"] = {"type": "file_comment"}
    assert invalid(reaction) == "envelope.event.item.type"


@given(st.integers(0, 10**10), st.integers(0, 999_999))
def test_ts_keeps_microseconds(seconds: int, micros: int) -> None:
    body = load("message/plain.json")
    body["event"]["ts"] = f"{seconds}.{micros:06d}"
    record = parse_slack(body)[0]
    assert record.occurred_at == datetime.fromtimestamp(seconds, UTC).replace(microsecond=micros)


# -- fuzzing: only records, NoActivity or InvalidRecord ever come out ----------------------------------

KEYS = st.sampled_from(
    [
        "type",
        "team_id",
        "event",
        "event_id",
        "event_time",
        "user",
        "channel",
        "ts",
        "text",
        "thread_ts",
        "subtype",
        "bot_id",
        "item",
        "reaction",
        "event_ts",
        "channel_type",
        "file",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "event_callback",
            "message",
            "reaction_added",
            "member_joined_channel",
            "1768210205.004200",
            "99999999999.999999",
            "im",
            "thread_broadcast",
        ]
    )
)
JSON = json_like(SCALARS, KEYS)
EXAMPLES = [json.loads(p.read_text()) for p in FILES]


@st.composite
def mutated_fixtures(draw: st.DrawFn) -> Any:
    doc = copy.deepcopy(draw(st.sampled_from(EXAMPLES)))
    for _ in range(draw(st.integers(1, 3))):
        node = doc["event"] if isinstance(doc.get("event"), dict) and draw(st.booleans()) else doc
        if isinstance(node.get("item"), dict) and draw(st.booleans()):
            node = node["item"]
        key = draw(st.sampled_from(sorted(node)) if node else KEYS)
        if draw(st.booleans()):
            node.pop(key, None)
        else:
            node[key] = draw(JSON)
    return doc


def outcome(body: Any) -> None:
    slack_challenge(body)
    try:
        records = parse_slack(body)
    except (NoActivity, InvalidRecord):
        return
    assert isinstance(records, list) and records
    for record in records:
        check(record)


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(KEYS, JSON, max_size=6))
def test_fuzz_arbitrary_bodies(body: dict[str, Any]) -> None:
    outcome(body)


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_fixtures())
def test_fuzz_mutated_fixtures(body: Any) -> None:
    outcome(body)
