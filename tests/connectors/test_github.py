"""GitHub webhook parser: real octokit example payloads in, canonical records (or a reason) out."""

from __future__ import annotations

import contextlib
import copy
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.errors import InvalidRecord, NoActivity
from connectors.records import ACTIVITY_TYPES, ActivityRecord, parse_record, record_to_dict
from connectors.sources.github import GITHUB_EVENTS, infer_github_event, parse_github
from tests.connectors.strategies import json_like

DATA = Path(os.environ.get("FLYWHEEL_GITHUB_WEBHOOKS", "/work/shared/data/github-webhooks"))
FILES = sorted(DATA.glob("*/*.json"))
pytestmark = pytest.mark.skipif(not FILES, reason=f"GitHub example payloads not found in {DATA}")


def load(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def parse(name: str, delivery_id: str | None = None) -> ActivityRecord:
    records = parse_github(name.split("/")[0], load(name), delivery_id)
    assert len(records) == 1
    return check(records[0])


def check(record: ActivityRecord) -> ActivityRecord:
    """A record must be a valid canonical record: it survives the JSON round trip unchanged."""
    assert record.source == "github"
    assert record.type in ACTIVITY_TYPES
    assert record.occurred_at.tzinfo is not None and record.occurred_at.utcoffset().total_seconds() == 0
    assert record.member.email_verified is None
    json.dumps(record.properties)
    assert parse_record(record_to_dict(record)) == record
    return record


def no_activity(event: str, payload: Any) -> str:
    with pytest.raises(NoActivity) as caught:
        parse_github(event, payload)
    return caught.value.reason


def invalid(event: str, payload: Any) -> str:
    with pytest.raises(InvalidRecord) as caught:
        parse_github(event, payload)
    return caught.value.field


# -- every shared example file -------------------------------------------------------------------------


def test_every_example_yields_records_or_a_reason() -> None:
    produced, skipped = {}, {}
    for path in FILES:
        event = path.parent.name
        try:
            produced[path] = [check(r) for r in parse_github(event, json.loads(path.read_text()))]
        except NoActivity as exc:
            assert exc.reason and len(exc.reason) < 200
            skipped[path] = exc.reason
    assert len(produced) + len(skipped) == len(FILES) == 114
    assert len(produced) >= 25
    kinds = {r.type for records in produced.values() for r in records}
    assert kinds == {
        "issue_opened",
        "comment",
        "pr_opened",
        "pr_review",
        "post",
        "reply",
        "answer_accepted",
        "star",
        "fork",
        "release",
        "member_joined",
        "sponsorship",
    }


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_infer_event_from_shape(path: Path) -> None:
    assert infer_github_event(json.loads(path.read_text())) == path.parent.name


def test_events_cover_the_example_folders() -> None:
    assert {p.parent.name for p in FILES} <= GITHUB_EVENTS


@pytest.mark.parametrize("payload", [{}, {"action": "opened"}, {"zenith": 1}])
def test_infer_event_refuses_unknown_shapes(payload: dict[str, Any]) -> None:
    with pytest.raises(InvalidRecord) as caught:
        infer_github_event(payload)
    assert caught.value.field == "event"


# -- key mappings --------------------------------------------------------------------------------------


def test_issue_opened() -> None:
    record = parse("issues/opened.payload.json", delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert record.type == "issue_opened"
    assert record.id == "issue:444500041"
    assert record.member.source_user_id == "21031067"
    assert record.member.handle == "Codertocat"
    assert record.member.email is None
    assert record.occurred_at == datetime(2019, 5, 15, 15, 20, 18, tzinfo=UTC)
    assert record.url == "https://github.com/Codertocat/Hello-World/issues/1"
    assert record.title == "Spelling error in the README file"
    assert record.text == "It looks like you accidently spelled 'commit' with two 't's."
    assert record.channel == "Codertocat/Hello-World"
    assert record.properties["number"] == 1
    assert record.properties["labels"] == ["bug"]
    assert record.properties["delivery_id"] == "72d3162e-cc78-11e3-81ab-4c9367dc0958"


def test_delivery_id_is_kept_out_of_the_record_id() -> None:
    first = parse("issues/opened.payload.json", delivery_id="one")
    retry = parse("issues/opened.payload.json", delivery_id="two")
    assert first.id == retry.id
    assert (first.properties["delivery_id"], retry.properties["delivery_id"]) == ("one", "two")
    assert "delivery_id" not in parse("issues/opened.payload.json").properties


def test_issue_closed_is_credited_to_who_closed_it() -> None:
    payload = load("issues/opened.payload.json")
    payload["action"] = "closed"
    payload["issue"]["closed_at"] = "2019-05-16T08:00:00Z"
    payload["sender"] = {"login": "maintainer", "id": 777, "type": "User"}
    record = check(parse_github("issues", payload)[0])
    assert (record.type, record.id) == ("issue_closed", "issue:444500041:closed")
    assert (record.member.source_user_id, record.member.handle) == ("777", "maintainer")
    assert record.occurred_at == datetime(2019, 5, 16, 8, 0, tzinfo=UTC)
    assert record.properties["issue_author"] == "Codertocat"


def test_transferred_issue_opened_is_not_new() -> None:
    assert "transfer" in no_activity("issues", load("issues/opened.with-transfer.payload.json"))


def test_issue_comment() -> None:
    record = parse("issue_comment/created.payload.json")
    assert (record.type, record.id) == ("comment", "comment:492700400")
    assert record.member.handle == "Codertocat"
    assert record.title == "Spelling error in the README file"
    assert record.text == "You are totally right! I'll get this fixed right away."
    assert record.occurred_at == datetime(2019, 5, 15, 15, 20, 21, tzinfo=UTC)
    assert record.properties["number"] == 1


def test_pull_request_opened_with_null_body() -> None:
    record = parse("pull_request/opened.with-null-body.json")
    assert (record.type, record.id, record.text) == ("pr_opened", "pr:279147437:opened", None)
    assert record.occurred_at == datetime(2019, 5, 15, 15, 20, 33, tzinfo=UTC)
    assert record.properties["draft"] is False


def test_merged_pull_request_is_credited_to_its_author() -> None:
    payload = load("pull_request/closed.payload.json")  # the example is closed unmerged: make it merged
    payload["pull_request"].update(
        merged=True,
        merged_at="2019-05-15T16:00:00Z",
        merged_by={"login": "octomerger", "id": 99, "type": "User"},
    )
    payload["sender"] = payload["pull_request"]["merged_by"]
    record = check(parse_github("pull_request", payload, "d-1")[0])
    assert (record.type, record.id) == ("pr_merged", "pr:279147437:merged")
    assert (record.member.source_user_id, record.member.handle) == ("21031067", "Codertocat")
    assert record.occurred_at == datetime(2019, 5, 15, 16, 0, tzinfo=UTC)
    assert record.properties["merged_by"] == "octomerger"
    assert record.url == "https://github.com/Codertocat/Hello-World/pull/2"


def test_closed_unmerged_pull_request_is_no_activity() -> None:
    assert no_activity("pull_request", load("pull_request/closed.payload.json")) == (
        "pull_request.closed without a merge is not community activity"
    )


def test_review_and_review_comment() -> None:
    review = parse("pull_request_review/submitted.payload.json")
    assert (review.type, review.id) == ("pr_review", "review:237895671")
    assert review.occurred_at == datetime(2019, 5, 15, 15, 20, 38, tzinfo=UTC)
    assert review.properties["state"] == "commented"
    comment = parse("pull_request_review_comment/created.payload.json")
    assert (comment.type, comment.id) == ("comment", "review_comment:284312630")
    assert comment.text == "Maybe you should use more emoji on this line."
    assert comment.properties["path"] == "README.md"


def test_discussion_and_discussion_comment() -> None:
    post = parse("discussion/created.payload.json")
    assert (post.type, post.id, post.title) == ("post", "discussion:3299614", "TEST edit")
    assert post.properties["number"] == 4
    reply = parse("discussion_comment/created.payload.json")
    assert (reply.type, reply.id, reply.text) == ("reply", "discussion_comment:550062", "ANSWER")
    assert reply.occurred_at == datetime(2021, 3, 30, 20, 21, 30, tzinfo=UTC)


def test_answered_discussion_credits_the_answer_author() -> None:
    payload = load("discussion/answered.payload.json")
    record = parse("discussion/answered.payload.json")
    assert payload["sender"]["login"] == "Codertocat"
    assert (record.type, record.id) == ("answer_accepted", "answer:550561:accepted")
    assert (record.member.source_user_id, record.member.handle) == ("1253226", "dan2wik")
    assert record.occurred_at == datetime(2021, 3, 30, 23, 17, 18, tzinfo=UTC)  # 19:17:18-04:00
    assert record.properties["accepted_by"] == "Codertocat"
    assert record.properties["self_answer"] is False
    assert record.url.endswith("#discussioncomment-550561")


def test_star_and_watch_share_one_id() -> None:
    star = parse("star/created.payload.json")
    watch = parse("watch/started.payload.json")
    assert star.type == watch.type == "star"
    assert star.id == watch.id == "star:186853002:21031067"
    assert star.occurred_at == datetime(2019, 5, 15, 15, 20, 40, tzinfo=UTC)
    assert star.properties["time_source"] == "starred_at"
    assert watch.properties["time_source"] == "repository.updated_at"
    assert "un-starring" in no_activity("star", load("star/deleted.payload.json"))


def test_fork() -> None:
    record = parse("fork/payload.json")
    assert (record.type, record.id) == ("fork", "fork:186853261")
    assert record.member.handle == "Octocoders"
    assert record.occurred_at == datetime(2019, 5, 15, 15, 20, 42, tzinfo=UTC)
    assert record.url == "https://github.com/Octocoders/Hello-World"
    assert record.channel == "Codertocat/Hello-World"


def test_release_published_only() -> None:
    record = parse("release/published.payload.json")
    assert (record.type, record.id, record.title) == ("release", "release:17372790", "0.0.1")
    assert record.occurred_at == datetime(2019, 5, 15, 15, 20, 53, tzinfo=UTC)
    for name in ("release/created.payload.json", "release/released.json", "release/prereleased.payload.json"):
        assert "release.published" in no_activity("release", load(name))
    draft = load("release/published.payload.json")
    draft["release"]["draft"] = True
    assert "draft" in no_activity("release", draft)


def test_member_added_credits_the_new_collaborator() -> None:
    record = parse("member/added.payload.json")
    assert (record.type, record.id) == ("member_joined", "member:186853002:39652351")
    assert record.member.handle == "hacktocat"
    assert record.properties["time_source"] == "repository.updated_at"
    assert no_activity("member", load("member/edited.payload.json")).startswith("member.edited")


def test_sponsorship() -> None:
    record = parse("sponsorship/created.payload.json")
    assert (record.type, record.id) == ("sponsorship", "sponsorship:MDExOlNwb25zb3JzaGlwMQ==")
    assert (record.member.source_user_id, record.member.handle) == ("2", "monalisa")
    assert record.occurred_at == datetime(2019, 12, 20, 19, 24, 46, tzinfo=UTC)
    assert record.channel == "sponsors/octocat"
    assert record.properties["monthly_price_in_cents"] == 500
    reason = no_activity("sponsorship", load("sponsorship/downgraded.payload.json"))
    assert reason.startswith("sponsorship.pending_tier_change")


@pytest.mark.parametrize("name", ["ping/payload.json", "ping/with-app_id.payload.json"])
def test_ping(name: str) -> None:
    assert no_activity("ping", load(name)) == "ping carries no activity"


@pytest.mark.parametrize(
    ("name", "action"),
    [
        ("issues/labeled.payload.json", "labeled"),
        ("issues/assigned.payload.json", "assigned"),
        ("pull_request/synchronize.payload.json", "synchronize"),
    ],
)
def test_maintenance_actions(name: str, action: str) -> None:
    event = name.split("/")[0]
    reason = no_activity(event, load(name))
    assert reason == f"{event}.{action} is a maintenance action, not community activity"


def test_bots_are_not_members() -> None:
    payload = load("issues/opened.payload.json")
    payload["issue"]["user"].update(type="Bot", login="dependabot[bot]")
    assert "bot account dependabot[bot]" in no_activity("issues", payload)


def test_email_is_normalised_or_dropped() -> None:
    payload = load("issues/opened.payload.json")
    payload["issue"]["user"]["email"] = " Coder@Example.COM "
    assert parse_github("issues", payload)[0].member.email == "coder@example.com"
    payload["issue"]["user"]["email"] = "not-an-email"
    assert parse_github("issues", payload)[0].member.email is None


def test_long_body_is_cut() -> None:
    payload = load("issues/opened.payload.json")
    payload["issue"]["body"] = "x" * 5000
    assert len(check(parse_github("issues", payload)[0]).text or "") == 2000


def test_unknown_event_is_no_activity() -> None:
    assert no_activity("push", {"ref": "refs/heads/main"}) == "push events are not read by Flywheel"


def test_invalid_payloads_name_the_field() -> None:
    opened = load("issues/opened.payload.json")
    assert invalid("", opened) == "event"
    assert invalid("issues", ["not", "an", "object"]) == "payload"
    assert invalid("issues", {k: v for k, v in opened.items() if k != "action"}) == "payload.action"
    assert invalid("issues", {**opened, "issue": None}) == "payload.issue"
    broken = copy.deepcopy(opened)
    del broken["issue"]["user"]["id"]
    assert invalid("issues", broken) == "payload.issue.user.id"
    broken = copy.deepcopy(opened)
    broken["issue"]["created_at"] = "2019-05-15T15:20:18"  # no zone
    assert invalid("issues", broken) == "payload.issue.created_at"
    broken = copy.deepcopy(opened)
    broken["issue"]["id"] = True
    assert invalid("issues", broken) == "payload.issue.id"
    broken = copy.deepcopy(opened)
    broken["issue"]["created_at"] = "0001-01-01T00:00:00+01:00"  # before year 1 in UTC
    assert invalid("issues", broken) == "payload.issue.created_at"


def test_time_fallbacks() -> None:
    release = load("release/published.payload.json")
    release["release"]["published_at"] = None
    assert parse_github("release", release)[0].occurred_at == datetime(2019, 5, 15, 15, 19, 25, tzinfo=UTC)
    answered = load("discussion/answered.payload.json")
    answered["discussion"]["answer_chosen_at"] = None
    answer_created = datetime(2021, 3, 30, 23, 16, 42, tzinfo=UTC)
    assert parse_github("discussion", answered)[0].occurred_at == answer_created


def test_discussion_category_and_pull_request_comments() -> None:
    post = parse("discussion/created.payload.json")
    assert (post.properties["category"], post.properties["answerable"]) == ("General", False)
    payload = load("issue_comment/created.payload.json")
    payload["issue"]["pull_request"] = {"url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1"}
    assert parse_github("issue_comment", payload)[0].properties["is_pull_request"] is True
    assert "is_pull_request" not in parse("issue_comment/created.payload.json").properties


def test_payload_is_not_mutated() -> None:
    payload = load("discussion/answered.payload.json")
    before = copy.deepcopy(payload)
    parse_github("discussion", payload)
    assert payload == before


# -- fuzzing: only records, NoActivity or InvalidRecord ever come out ----------------------------------

KEYS = st.sampled_from(
    [
        "action",
        "id",
        "user",
        "login",
        "type",
        "created_at",
        "issue",
        "comment",
        "sender",
        "repository",
        "pull_request",
        "merged",
        "answer",
        "discussion",
        "release",
        "forkee",
        "sponsorship",
        "starred_at",
        "updated_at",
        "email",
        "body",
        "labels",
        "reactions",
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
            "opened",
            "closed",
            "created",
            "2019-05-15T15:20:18Z",
            "Bot",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
        ]
    )
)
JSON = json_like(SCALARS, KEYS, key_chars=6, max_entries=4)
EXAMPLES = [(p.parent.name, json.loads(p.read_text())) for p in FILES]


@st.composite
def mutated_examples(draw: st.DrawFn) -> tuple[str, Any]:
    event, payload = draw(st.sampled_from(EXAMPLES))
    doc = copy.deepcopy(payload)
    for _ in range(draw(st.integers(1, 3))):
        node = doc
        while (inner := sorted(k for k, v in node.items() if isinstance(v, dict))) and draw(st.booleans()):
            node = node[draw(st.sampled_from(inner))]
        key = draw(st.sampled_from(sorted(node)) if node else KEYS)
        if draw(st.booleans()):
            node.pop(key, None)
        else:
            node[key] = draw(JSON)
    return event, doc


def outcome(event: Any, payload: Any) -> None:
    try:
        records = parse_github(event, payload, "fuzz")
    except (NoActivity, InvalidRecord):
        return
    assert isinstance(records, list) and records
    for record in records:
        check(record)


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(GITHUB_EVENTS)) | st.text(max_size=10), st.dictionaries(KEYS, JSON, max_size=6))
def test_fuzz_arbitrary_payloads(event: str, payload: dict[str, Any]) -> None:
    outcome(event, payload)
    with contextlib.suppress(InvalidRecord):
        assert infer_github_event(payload) in GITHUB_EVENTS


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_examples())
def test_fuzz_mutated_examples(example: tuple[str, Any]) -> None:
    outcome(*example)
