"""The demo community generator: deterministic, valid, and shaped like a real community."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.records import parse_record, record_to_dict
from plugin.demo.community import (
    DemoConfig,
    DemoOrganization,
    DemoPerson,
    generate_activities,
    generate_people,
    window,
    write_jsonl,
)
from plugin.services.domains import is_company_domain

SMALL = DemoConfig(members=300, activities=5000)
ROOT = Path(__file__).resolve().parents[2]
World = tuple[list[DemoPerson], list[DemoOrganization], list[dict[str, Any]]]
PLATFORMS = {"github", "discourse", "slack", "events", "reviews", "surveys"}


def build(cfg: DemoConfig) -> World:
    people, orgs = generate_people(cfg)
    return people, orgs, list(generate_activities(cfg, people))


def digest(world: World) -> str:
    people, orgs, records = world
    blob = orjson.dumps([[repr(p) for p in people], [repr(o) for o in orgs], records])
    return hashlib.sha256(blob).hexdigest()


@pytest.fixture(scope="module")
def world() -> World:
    return build(SMALL)


@pytest.fixture(scope="module")
def people(world: World) -> list[DemoPerson]:
    return world[0]


@pytest.fixture(scope="module")
def records(world: World) -> list[dict[str, Any]]:
    return world[2]


# --- determinism -----------------------------------------------------------------------------------


def test_same_seed_gives_the_same_world(world: World) -> None:
    again = build(SMALL)
    assert again[0] == world[0]
    assert again[1] == world[1]
    assert again[2] == world[2]


FRESH_PROCESS = """
import hashlib, orjson
from plugin.demo.community import DemoConfig, generate_activities, generate_people
cfg = DemoConfig(members=300, activities=5000)
people, orgs = generate_people(cfg)
records = list(generate_activities(cfg, people))
print(hashlib.sha256(orjson.dumps([[repr(p) for p in people], [repr(o) for o in orgs], records])).hexdigest())
"""


def test_same_seed_gives_the_same_world_in_a_fresh_process(world: World) -> None:
    """No dependence on hash randomisation, import order or anything else process-wide."""
    assert DemoConfig(members=300, activities=5000) == SMALL
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert out.stdout.strip() == digest(world)


def test_a_different_seed_gives_a_different_world(world: World) -> None:
    other = build(DemoConfig(seed=SMALL.seed + 1, members=SMALL.members, activities=SMALL.activities))
    assert [p.name for p in other[0]] != [p.name for p in world[0]]
    assert other[2] != world[2]


# --- records ---------------------------------------------------------------------------------------


def test_every_record_parses_and_is_canonical(records: list[dict[str, Any]]) -> None:
    for record in records:
        assert record_to_dict(parse_record(record)) == record
    assert orjson.loads(orjson.dumps(records)) == records  # JSON-ready


def test_counts_are_near_the_config(world: World) -> None:
    people, orgs, records = world
    assert len(people) == SMALL.members
    assert 0.9 * SMALL.activities <= len(records) <= 1.1 * SMALL.activities
    assert 10 <= len(orgs) <= 30  # 6% of the people


def test_ids_are_unique_per_source_and_numbered(records: list[dict[str, Any]]) -> None:
    seen: Counter[str] = Counter()
    for record in records:
        seen[record["source"]] += 1
        assert record["id"] == f"{record['source']}-{seen[record['source']]}"


def test_timestamps_are_in_the_window_and_in_time_order(records: list[dict[str, Any]]) -> None:
    start, end = window(SMALL)
    assert (start, end) == (datetime(2025, 5, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))
    stamps = [r["occurred_at"] for r in records]
    assert all(s.endswith("Z") for s in stamps)
    moments = [parse_record(r).occurred_at for r in records]
    assert all(start <= m < end for m in moments)
    assert moments == sorted(moments)  # the generator yields in time order
    assert moments[-1] - moments[0] > (end - start) * 0.9  # spread over the whole window


def test_every_source_and_type_of_the_mix_appears(records: list[dict[str, Any]]) -> None:
    kinds = {(r["source"], r["type"]) for r in records}
    expected = {
        "github": {"issue_opened", "comment", "pr_opened", "pr_merged", "pr_review", "star", "fork"},
        "discourse": {
            "post",
            "reply",
            "answer",
            "answer_accepted",
            "reaction",
            "support_question",
            "feature_request",
        },
        "slack": {"post", "reply", "reaction", "member_joined"},
        "events": {"event_registered", "event_attended"},
        "reviews": {"review"},
        "surveys": {"survey_response"},
        "product": {"product_usage", "referral"},
        "billing": {"purchase"},
    }
    assert kinds == {(source, kind) for source, types in expected.items() for kind in types}


def test_properties_follow_the_conventions(records: list[dict[str, Any]]) -> None:
    for record in records:
        props = record.get("properties", {})
        if record["type"] == "survey_response":
            assert isinstance(props["nps"], int) and 0 <= props["nps"] <= 10
        elif record["type"] == "review":
            assert 1 <= props["rating"] <= 5 and props["platform"] in {"G2", "Capterra", "TrustRadius"}
        elif record["type"] in ("event_registered", "event_attended"):
            assert props["event_id"] and props["event_name"]
        elif record["type"] == "purchase":
            assert props["amount"] > 0 and len(props["currency"]) == 3
        elif record["type"] == "product_usage":
            assert props["feature"] and props["count"] >= 1
        elif record["type"] == "referral":
            assert "@" in props["referred_email"]


def test_follow_ups_come_after_what_they_follow(records: list[dict[str, Any]]) -> None:
    def who(record: dict[str, Any]) -> str:
        return str(record["member"]["source_user_id"])

    opened: dict[tuple[str, str], str] = {}
    registered: dict[tuple[str, str], str] = {}
    answered: dict[str, str] = {}
    for r in records:
        kind, props = r["type"], r.get("properties", {})
        if kind == "pr_opened":
            opened[(r["url"], who(r))] = r["occurred_at"]
        elif kind == "pr_merged":
            assert opened[(r["url"], who(r))] < r["occurred_at"]
        elif kind == "event_registered":
            registered[(props["event_id"], who(r))] = r["occurred_at"]
        elif kind == "event_attended":
            assert registered[(props["event_id"], who(r))] < r["occurred_at"]
        elif kind == "answer":
            answered[r["url"]] = who(r)
        elif kind == "answer_accepted":
            assert answered[r["url"]] == who(r)


# --- people ----------------------------------------------------------------------------------------

SCRIPTS = {
    "Hebrew": ("\u0590", "\u05ff"),
    "Arabic": ("\u0600", "\u06ff"),
    "CJK": ("\u4e00", "\u9fff"),
    "Cyrillic": ("\u0400", "\u04ff"),
}


def test_names_come_in_six_scripts(people: list[DemoPerson], records: list[dict[str, Any]]) -> None:
    for script, (low, high) in SCRIPTS.items():
        assert any(any(low <= ch <= high for ch in p.name) for p in people), script
    assert any(any(ch in "äöüÄÖÜß" for ch in p.name) for p in people)  # German
    assert any(p.name.isascii() for p in people)  # English
    locales = {p.locale for p in people}
    assert {"en-US", "en-GB", "de-DE", "he-IL", "ar-SA", "zh-CN", "ru-RU"} <= locales
    names = {p.name for p in people}
    assert {r["member"]["name"] for r in records} <= names  # records carry the names unchanged


def test_emails_are_ascii_unique_and_at_the_company_domain(people: list[DemoPerson]) -> None:
    assert len({p.email for p in people}) == len(people)
    for p in people:
        assert p.email.isascii() and p.email == p.email.lower() and p.email.count("@") == 1
        domain = p.email.rpartition("@")[2]
        if p.company is None:
            assert not is_company_domain(domain), p.email  # free mail
        else:
            assert domain == p.company_domain and is_company_domain(domain)


def test_organizations_and_lifecycle_stages(world: World) -> None:
    people, orgs, _ = world
    assert len({o.domain for o in orgs}) == len(orgs)
    assert min(o.size for o in orgs) >= 10 and max(o.size for o in orgs) <= 50_000
    assert 0.1 <= sum(o.customer for o in orgs) / len(orgs) <= 0.5
    assert len({o.industry for o in orgs}) >= 5
    customers = {o.domain for o in orgs if o.customer}
    for p in people:
        assert (p.lifecycle_stage == "customer") == (p.company_domain in customers)
        assert set(p.consents) == {"marketing", "research", "sales"}
    titles = {p.title for p in people}
    assert {"Student"} <= titles and titles & {"CTO", "VP Engineering", "Head of Data"}


def test_platforms_handles_and_shared_emails(people: list[DemoPerson], records: list[dict[str, Any]]) -> None:
    community = {"github", "discourse", "slack"}
    for p in people:
        assert 1 <= len(p.platforms) <= 3 and set(p.platforms) <= PLATFORMS
        assert set(p.handles) == set(p.platforms) & community
        assert set(p.platforms) <= set(p.user_ids)
    several = sum(len(set(p.platforms) & community) >= 2 for p in people) / len(people)
    assert 0.2 <= several <= 0.4
    # one email across the platforms that know emails: those identities can merge automatically
    sources_by_email: dict[str, set[str]] = defaultdict(set)
    for r in records:
        if "email" in r["member"] and r["source"] != "github":
            sources_by_email[r["member"]["email"]].add(r["source"])
    assert sum(len(s) >= 2 for s in sources_by_email.values()) >= 20
    assert any(len(s) >= 3 for s in sources_by_email.values())


def test_github_identities_rarely_carry_an_email(records: list[dict[str, Any]]) -> None:
    github = [r for r in records if r["source"] == "github"]
    assert all(r["member"]["handle"] and r["member"]["source_user_id"] for r in github)
    assert sum("email" in r["member"] for r in github) < 0.3 * len(github)


def test_merge_suggestion_material(people: list[DemoPerson]) -> None:
    assert any("github" in p.handles and p.handles["github"] == p.handles.get("discourse") for p in people)
    namesakes = Counter((p.name, p.company) for p in people if p.company)
    assert sum(n >= 2 for n in namesakes.values()) >= 2  # distinct people, same name, same company


def test_engagement_is_heavy_tailed_with_quiet_and_ramping_people(records: list[dict[str, Any]]) -> None:
    per_person: dict[str, list[str]] = defaultdict(list)
    for r in records:
        per_person[r["member"]["name"] + "/" + str(r["member"].get("email"))].append(r["occurred_at"])
    counts = sorted((len(v) for v in per_person.values()), reverse=True)
    assert counts[0] >= 20 * counts[len(counts) // 2]  # a few very active people
    assert sum(c <= 3 for c in counts) >= 0.3 * len(counts)  # many lurkers
    end = window(SMALL)[1]
    late = f"{end - timedelta(days=60):%Y-%m-%dT}"  # the last two months
    quiet = [v for v in per_person.values() if len(v) >= 15 and max(v) < late]
    assert quiet  # future churn signals


def test_write_jsonl(tmp_path: Path, records: list[dict[str, Any]]) -> None:
    path = tmp_path / "demo.jsonl"
    assert write_jsonl(iter(records[:500]), path) == 500
    lines = path.read_bytes().splitlines()
    assert [orjson.loads(line) for line in lines] == records[:500]


def test_the_generator_needs_neither_flask_nor_a_database() -> None:
    code = (
        "import sys, plugin.demo.community; "
        "print(sorted(m for m in ('flask', 'sqlalchemy', 'psycopg') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_default_config_counts() -> None:
    """The full demo (5,000 people, 200,000 activities); counts only, no timing."""
    cfg = DemoConfig()
    people, orgs = generate_people(cfg)
    assert len(people) == 5000 and 250 <= len(orgs) <= 350
    n = 0
    for n, record in enumerate(generate_activities(cfg, people), 1):
        if n % 97 == 0:
            parse_record(record)
    assert 180_000 <= n <= 220_000
