"""The published JSON Schema, the examples and ``parse_record`` agree with each other."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from connectors.errors import InvalidRecord
from connectors.records import ACTIVITY_TYPES, LIFECYCLE_STAGES, parse_record, record_to_dict

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "connectors" / "schema"
SCHEMA = json.loads((SCHEMA_DIR / "activity.schema.json").read_text(encoding="utf-8"))
VALIDATOR = Draft202012Validator(SCHEMA)
EXAMPLES = [
    json.loads(line)
    for line in (SCHEMA_DIR / "examples" / "activities.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
]
MEMBER_FIELDS = (
    "email",
    "name",
    "handle",
    "source_user_id",
    "locale",
    "lifecycle_stage",
    "title",
    "company",
    "email_verified",
)


def schema_errors(record: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(record)]


def unflatten(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row of the examples file back to the JSON form (what the CSV import does)."""
    record: dict[str, Any] = {}
    member: dict[str, Any] = {}
    for column, cell in row.items():
        if cell == "":
            continue
        if column == "member_email_verified":
            member["email_verified"] = {"true": True, "false": False}[cell]
        elif column.startswith("member_"):
            member[column.removeprefix("member_")] = cell
        elif column == "properties":
            record["properties"] = json.loads(cell)
        elif column == "sentiment":
            record["sentiment"] = float(cell)
        else:
            record[column] = cell
    record["member"] = member
    return record


# ---------------------------------------------------------------------------------------------------
# the schema and the examples


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_schema_enums_match_the_code() -> None:
    assert set(SCHEMA["properties"]["type"]["enum"]) == ACTIVITY_TYPES
    stages = SCHEMA["$defs"]["member"]["properties"]["lifecycle_stage"]["enum"]
    assert {s for s in stages if s} == LIFECYCLE_STAGES


def test_every_field_has_a_title_and_a_description() -> None:
    member = SCHEMA["$defs"]["member"]["properties"]
    for name, spec in [*SCHEMA["properties"].items(), *member.items()]:
        if "$ref" in spec:
            spec = SCHEMA["$defs"][spec["$ref"].rsplit("/", 1)[1]]
        assert spec.get("title") and spec.get("description"), name


@pytest.mark.parametrize("record", EXAMPLES, ids=[f"{r['source']}:{r['id']}" for r in EXAMPLES])
def test_example_validates_and_parses(record: dict[str, Any]) -> None:
    assert schema_errors(record) == []
    parsed = parse_record(record)
    assert record_to_dict(parsed)["id"] == record["id"]
    conventions = SCHEMA["$defs"]["conventional_properties"]["$defs"]
    if record["type"] in conventions:  # the examples follow the documented property conventions too
        sub = Draft202012Validator(
            {"$ref": f"#/$defs/conventional_properties/$defs/{record['type']}", "$defs": SCHEMA["$defs"]}
        )
        assert list(sub.iter_errors(record.get("properties", {}))) == []


def test_examples_cover_every_type_and_several_scripts() -> None:
    assert {r["type"] for r in EXAMPLES} == ACTIVITY_TYPES
    names = "".join(r["member"].get("name", "") for r in EXAMPLES)
    for low, high in [("\u0590", "\u05ff"), ("\u0600", "\u06ff"), ("\u4e00", "\u9fff"), ("\u0400", "\u04ff")]:
        assert any(low <= ch <= high for ch in names), (low, high)
    assert any(ch in "äöüßéè" for ch in names)


def test_names_in_the_examples_survive_parsing_unchanged() -> None:
    for record in EXAMPLES:
        name = record["member"].get("name")
        if name is not None:
            parsed = parse_record(record)
            assert parsed.member.name == name
            assert record_to_dict(parsed)["member"]["name"] == name
            line = json.dumps(record_to_dict(parsed), ensure_ascii=False)
            assert json.loads(line)["member"]["name"] == name


def test_csv_example_is_the_jsonl_example_flattened() -> None:
    with (SCHEMA_DIR / "examples" / "activities.csv").open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == [
            "source",
            "id",
            "type",
            "occurred_at",
            *(f"member_{k}" for k in MEMBER_FIELDS),
            "channel",
            "title",
            "url",
            "text",
            "properties",
            "sentiment",
        ]
        rows = [unflatten(row) for row in reader]
    assert len(rows) == len(EXAMPLES)
    for row, record in zip(rows, EXAMPLES, strict=True):
        assert schema_errors(row) == []
        assert parse_record(row) == parse_record(record)


# ---------------------------------------------------------------------------------------------------
# agreement on hand-picked records

GOOD = {
    "source": "discourse",
    "id": "post-1",
    "type": "reply",
    "occurred_at": "2026-01-31T09:00:00Z",
    "member": {"email": "noa@example.com"},
}


def with_(path: str, value: Any) -> dict[str, Any]:
    """GOOD with one field replaced (``member.email``) or removed (value ``...``)."""
    record = json.loads(json.dumps(GOOD))
    target = record
    *parents, leaf = path.split(".")
    for key in parents:
        target = target[key]
    if value is ...:
        target.pop(leaf, None)
    else:
        target[leaf] = value
    return record


BAD = {
    "not an object": ["post", 1],
    "missing source": with_("source", ...),
    "empty source": with_("source", ""),
    "boolean source": with_("source", True),
    "missing id": with_("id", ...),
    "empty id": with_("id", ""),
    "null id": with_("id", None),
    "missing type": with_("type", ...),
    "unknown type": with_("type", "like"),
    "type in capitals": with_("type", "Reply"),
    "missing time": with_("occurred_at", ...),
    "naive time": with_("occurred_at", "2026-01-31T09:00:00"),
    "date only": with_("occurred_at", "2026-01-31"),
    "time as epoch number": with_("occurred_at", 1769850000),
    "not a time": with_("occurred_at", "yesterday"),
    "month 13": with_("occurred_at", "2026-13-01T09:00:00Z"),
    "31 April": with_("occurred_at", "2026-04-31T09:00:00Z"),
    "hour 24": with_("occurred_at", "2026-01-31T24:00:00Z"),
    "offset 24 hours": with_("occurred_at", "2026-01-31T09:00:00+24:00"),
    "year 0": with_("occurred_at", "0000-01-31T09:00:00Z"),
    "missing member": with_("member", ...),
    "member is a string": with_("member", "noa@example.com"),
    "member without a key": with_("member", {"name": "Noa Cohen", "locale": "he-IL"}),
    "member keys all empty": with_("member", {"email": "", "handle": "", "source_user_id": None}),
    "email without @": with_("member.email", "noa.example.com"),
    "email with a space": with_("member.email", "noa cohen@example.com"),
    "email without local part": with_("member.email", "@example.com"),
    "email without a dot in the domain": with_("member.email", "noa@localhost"),
    "email domain starting with a dot": with_("member.email", "noa@.example.com"),
    "email only spaces": with_("member.email", "   "),
    "email as a number": with_("member.email", 42),
    "name as a boolean": with_("member.name", False),
    "handle as an object": with_("member.handle", {"login": "noa"}),
    "unknown lifecycle stage": with_("member.lifecycle_stage", "vip"),
    "email_verified as text": with_("member.email_verified", "yes"),
    "email_verified as 1": with_("member.email_verified", 1),
    "properties as a list": with_("properties", [1, 2]),
    "properties as text": with_("properties", '{"nps": 9}'),
    "sentiment 2": with_("sentiment", 2),
    "sentiment -1.5": with_("sentiment", -1.5),
    "sentiment as text": with_("sentiment", "0.5"),
    "sentiment as boolean": with_("sentiment", True),
    "channel as a list": with_("channel", ["#help"]),
}

ALSO_GOOD = {
    "as given": GOOD,
    "numeric id": with_("id", 90817),
    "numeric source_user_id only": with_("member", {"source_user_id": 5812234}),
    "handle 0": with_("member", {"handle": 0}),
    "handle only": with_("member", {"handle": "noac"}),
    "email with capitals and spaces": with_("member.email", "  Noa.Cohen@Example.COM "),
    "email with a second @": with_("member.email", '"noa@home"@example.com'),
    "non-ASCII email": with_("member.email", "jürgen@müller.de"),
    "empty email beside a handle": with_("member", {"email": "", "handle": "noac"}),
    "offset time": with_("occurred_at", "2026-01-31T11:00:00+02:00"),
    "negative offset": with_("occurred_at", "2026-01-31T04:30:00-04:30"),
    "fractional seconds": with_("occurred_at", "2026-01-31T09:00:00.123456789Z"),
    "no seconds": with_("occurred_at", "2026-01-31T09:00Z"),
    "space separator": with_("occurred_at", "2026-01-31 09:00:00Z"),
    "leap day in a leap year": with_("occurred_at", "2028-02-29T09:00:00Z"),
    "nulls everywhere optional": {
        **GOOD,
        "channel": None,
        "title": None,
        "url": None,
        "text": None,
        "properties": None,
        "sentiment": None,
        "member": {"email": "noa@example.com", "name": None, "email_verified": None},
    },
    "empty strings": {**GOOD, "channel": "", "title": "", "member": {"handle": "n", "lifecycle_stage": ""}},
    "sentiment bounds": with_("sentiment", -1),
    "sentiment 1.0": with_("sentiment", 1.0),
    "unknown extra fields are ignored": {**GOOD, "extra": {"x": 1}, "member": {"email": "a@b.co", "x": 2}},
    "very long title is cut, not refused": with_("title", "x" * 5000),
    "numeric channel": with_("channel", 7),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_record_is_refused_by_both(name: str) -> None:
    record = BAD[name]
    with pytest.raises(InvalidRecord):
        parse_record(record)
    assert schema_errors(record), f"schema accepts {name}"


@pytest.mark.parametrize("name", list(ALSO_GOOD))
def test_lenient_record_is_accepted_by_both(name: str) -> None:
    record = ALSO_GOOD[name]
    assert schema_errors(record) == []
    parse_record(record)


@pytest.mark.parametrize(
    "record",
    [
        with_("occurred_at", "2026-01-31T09:00:00+0200"),  # basic-format offset
        with_("occurred_at", "20260131T090000Z"),  # basic format
        with_("member.lifecycle_stage", "Customer"),  # parse_record lowercases it
    ],
)
def test_schema_is_stricter_on_these_canonical_forms(record: dict[str, Any]) -> None:
    """Documented in the schema's $comment: parse_record takes these, the schema wants the canonical form."""
    parse_record(record)
    assert schema_errors(record)


# ---------------------------------------------------------------------------------------------------
# generated records

ZONES = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))])
TEXT = st.text(max_size=30)
OPTIONAL_TEXT = st.none() | TEXT | st.integers(-(10**6), 10**6)
LONG_TEXT = st.builds(lambda ch, n: ch * n, st.characters(codec="utf-8"), st.integers(400, 2100))  # gets cut


@st.composite
def times(draw: st.DrawFn) -> str:
    moment = draw(st.datetimes(datetime(1970, 1, 1), datetime(2100, 1, 1), timezones=ZONES))
    spec = draw(st.sampled_from(["minutes", "seconds", "milliseconds", "microseconds"]))
    text = moment.isoformat(timespec=spec)
    if draw(st.booleans()):
        text = text.replace("+00:00", "Z")
    return text


@st.composite
def members(draw: st.DrawFn) -> dict[str, Any]:
    member: dict[str, Any] = {}
    keys = draw(st.sets(st.sampled_from(["email", "handle", "source_user_id"]), min_size=1))
    if "email" in keys:
        member["email"] = draw(st.emails())
    if "handle" in keys:
        member["handle"] = draw(st.text(min_size=1, max_size=40))
    if "source_user_id" in keys:
        member["source_user_id"] = draw(st.text(min_size=1, max_size=30) | LONG_TEXT | st.integers(0, 10**12))
    for key in ("name", "locale", "title", "company"):
        if draw(st.booleans()):
            member[key] = draw(OPTIONAL_TEXT)
    if draw(st.booleans()):
        member["lifecycle_stage"] = draw(st.sampled_from(sorted(LIFECYCLE_STAGES)))
    if draw(st.booleans()):
        member["email_verified"] = draw(st.none() | st.booleans())
    return member


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=5,
)


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = {
        "source": draw(st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ_-0123456789", min_size=1, max_size=70)),
        "id": draw(st.text(min_size=1, max_size=30) | LONG_TEXT | st.integers(0, 10**15)),
        "type": draw(st.sampled_from(sorted(ACTIVITY_TYPES))),
        "occurred_at": draw(times()),
        "member": draw(members()),
    }
    for key in ("channel", "title", "url", "text"):
        if draw(st.booleans()):
            record[key] = draw(OPTIONAL_TEXT | LONG_TEXT)
    if draw(st.booleans()):
        record["properties"] = draw(st.none() | st.dictionaries(TEXT, JSON_VALUES, max_size=4))
    if draw(st.booleans()):
        record["sentiment"] = draw(st.none() | st.floats(-1, 1) | st.integers(-1, 1))
    return record


@settings(max_examples=100, deadline=None)
@given(records())
def test_generated_records_round_trip_and_agree(record: dict[str, Any]) -> None:
    assert schema_errors(record) == []  # what the strategy makes is valid by the schema...
    parsed = parse_record(record)  # ...and by parse_record
    out = record_to_dict(parsed)
    assert schema_errors(out) == []
    assert parse_record(out) == parsed
    assert record_to_dict(parse_record(out)) == out
    assert json.loads(json.dumps(out)) == out  # JSON-ready
    assert out["occurred_at"].endswith("Z")
    assert parsed.occurred_at == datetime.fromisoformat(record["occurred_at"]).astimezone(UTC)


FIELDS = [
    "source",
    "id",
    "type",
    "occurred_at",
    "channel",
    "title",
    "url",
    "text",
    "properties",
    "sentiment",
    "member",
    *(f"member.{key}" for key in MEMBER_FIELDS),
]
ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(-3, 3, allow_nan=False),
    st.text(max_size=6),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from(
        [
            "",
            " ",
            "a@b.co",
            " A@B.CO ",
            "a@b",
            "@b.co",
            "a b@c.d",
            "\t@b.co",
            "x\n",
            "reply",
            "customer",
            "2026-01-31T09:00:00Z",
            "2026-01-31T09:00:00",
            "2026-02-30T09:00:00Z",
        ]
    ),
)


@settings(max_examples=150, deadline=None)
@given(records(), st.sampled_from(FIELDS), ODD_VALUES)
def test_schema_and_parser_agree_on_mutated_records(record: dict[str, Any], path: str, value: Any) -> None:
    """One field of a valid record replaced by an odd value: both accept it or both refuse it."""
    if path.startswith("member."):
        record["member"][path.removeprefix("member.")] = value
    else:
        record[path] = value
    try:
        parse_record(record)
    except InvalidRecord:
        parsed = False
    else:
        parsed = True
    assert parsed == (schema_errors(record) == []), record
