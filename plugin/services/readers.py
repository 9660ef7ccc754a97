"""Read activity files, streaming: each yields ``(line, outcome)`` for every item it finds.

An outcome is a list of canonical records, a :class:`NoActivity` (well formed, nothing to store)
or an :class:`InvalidRecord` (bad item, with the field at fault). Memory stays flat whatever the
file size: nothing is read ahead beyond one line (or one JSON document for ``.json`` files).

Formats:

* ``jsonl``: one canonical record per line (``connectors/schema/activity.schema.json``).
* ``csv``: the same fields flattened, member fields prefixed ``member_``, ``properties`` as JSON.
* ``github`` / ``discourse`` / ``slack``: the platforms' own webhook payloads, either one payload
  per ``.json`` file, or JSONL lines of envelopes ``{"event": ..., "payload": {...}}`` (GitHub also
  takes ``"delivery"``, Discourse ``"instance"``; Slack lines are Events API bodies as sent).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from connectors.errors import InvalidRecord, NoActivity
from connectors.records import ActivityRecord, parse_record
from connectors.sources.discourse import parse_discourse
from connectors.sources.github import GITHUB_EVENTS, infer_github_event, parse_github
from connectors.sources.slack import parse_slack

Outcome = list[ActivityRecord] | NoActivity | InvalidRecord
Item = tuple[int, Outcome]
FORMATS = ("jsonl", "csv", "github", "discourse", "slack")
MEMBER_PREFIX = "member_"


def detect_format(path: Path, requested: str | None) -> str:
    if requested:
        if requested not in FORMATS:
            raise ValueError(f"unknown format {requested!r}; use one of {', '.join(FORMATS)}")
        return requested
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if suffix == ".json" and path.parent.name in GITHUB_EVENTS:
        return "github"  # the layout of GitHub's published example payloads: <event>/<action>.json
    raise ValueError(f"cannot tell the format of {path.name}; pass --format {'|'.join(FORMATS)}")


def _canonical(obj: Any) -> Outcome:
    try:
        return [parse_record(obj)]
    except InvalidRecord as exc:
        return exc


def _json_lines(handle: io.BufferedReader) -> Iterator[tuple[int, Any]]:
    """(line number, decoded object or InvalidRecord) for each non-blank line."""
    for line_no, raw in enumerate(handle, start=1):
        if not raw.strip():
            continue
        try:
            yield line_no, orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            yield line_no, InvalidRecord("line", f"not valid JSON ({exc.msg})")


def read_jsonl(handle: io.BufferedReader) -> Iterator[Item]:
    for line_no, obj in _json_lines(handle):
        yield line_no, obj if isinstance(obj, InvalidRecord) else _canonical(obj)


def _unflatten(row: Mapping[str, str | None]) -> dict[str, Any] | InvalidRecord:
    record: dict[str, Any] = {}
    member: dict[str, Any] = {}
    for key, value in row.items():
        if key is None or value is None or value == "":
            continue
        if key.startswith(MEMBER_PREFIX):
            member[key.removeprefix(MEMBER_PREFIX)] = value
        else:
            record[key] = value
    if "email_verified" in member:
        flag = str(member["email_verified"]).strip().lower()
        if flag not in ("true", "false", "1", "0", "yes", "no"):
            return InvalidRecord("member_email_verified", "must be true or false")
        member["email_verified"] = flag in ("true", "1", "yes")
    if "properties" in record:
        try:
            record["properties"] = orjson.loads(record["properties"])
        except orjson.JSONDecodeError:
            return InvalidRecord("properties", 'must be a JSON object, e.g. {"nps": 9}')
    if "sentiment" in record:
        try:
            record["sentiment"] = float(record["sentiment"])
        except ValueError:
            return InvalidRecord("sentiment", "must be a number from -1 to 1")
    record["member"] = member
    return record


def _decoded_lines(handle: io.BufferedReader) -> Iterator[str]:
    """UTF-8 text line by line (a BOM dropped), so a bad byte is met exactly at its own line."""
    for index, raw in enumerate(handle):
        yield (raw.removeprefix(b"\xef\xbb\xbf") if index == 0 else raw).decode("utf-8")


def read_csv(handle: io.BufferedReader) -> Iterator[Item]:
    reader = csv.DictReader(_decoded_lines(handle))
    try:
        if not reader.fieldnames or "type" not in reader.fieldnames:
            yield 1, InvalidRecord("header", "the first row must name the columns (source, id, type, ...)")
            return
        for row in reader:
            flat = _unflatten(row)
            yield reader.line_num, flat if isinstance(flat, InvalidRecord) else _canonical(flat)
    except UnicodeDecodeError:
        yield (
            reader.line_num + 1,
            InvalidRecord(
                "file",
                "is not UTF-8 from this line on; save it as UTF-8 and ingest again "
                "(rows before it are stored)",
            ),
        )
    except csv.Error as exc:
        yield (
            reader.line_num,
            InvalidRecord("file", f"CSV cannot be read from here on ({exc}); rows before it are stored"),
        )


def _platform(parse: Callable[[Mapping[str, Any]], list[ActivityRecord]], obj: Any) -> Outcome:
    try:
        if not isinstance(obj, Mapping):
            raise InvalidRecord("payload", "must be a JSON object")
        return parse(obj)
    except (InvalidRecord, NoActivity) as exc:
        return exc


def _github(obj: Mapping[str, Any], event_hint: str | None) -> list[ActivityRecord]:
    if "payload" in obj and ("event" in obj or "X-GitHub-Event" in obj):
        event = obj.get("event") or obj.get("X-GitHub-Event")
        if not isinstance(event, str):
            raise InvalidRecord("event", 'must name the X-GitHub-Event, e.g. "issues"')
        payload, delivery = obj["payload"], obj.get("delivery")
        if not isinstance(payload, Mapping):
            raise InvalidRecord("payload", "must be a JSON object")
        return parse_github(event, payload, delivery if isinstance(delivery, str) else None)
    return parse_github(event_hint or infer_github_event(obj), obj)


def _discourse(obj: Mapping[str, Any]) -> list[ActivityRecord]:
    event, payload, instance = obj.get("event"), obj.get("payload"), obj.get("instance")
    if not isinstance(event, str) or not isinstance(payload, Mapping):
        raise InvalidRecord("event", 'Discourse items are {"event": "post_created", "payload": {...}}')
    return parse_discourse(event, payload, instance if isinstance(instance, str) else None)


def _platform_parser(fmt: str, path: Path) -> Callable[[Mapping[str, Any]], list[ActivityRecord]]:
    if fmt == "github":
        hint = path.parent.name if path.parent.name in GITHUB_EVENTS else None
        return lambda obj: _github(obj, hint)
    if fmt == "discourse":
        return _discourse
    return parse_slack


def read_platform(handle: io.BufferedReader, fmt: str, path: Path) -> Iterator[Item]:
    parse = _platform_parser(fmt, path)
    if path.suffix.lower() == ".json":
        try:
            obj = orjson.loads(handle.read())
        except orjson.JSONDecodeError as exc:
            yield 1, InvalidRecord("file", f"not valid JSON ({exc.msg})")
            return
        items = obj if isinstance(obj, list) else [obj]
        for index, item in enumerate(items, start=1):
            yield index, _platform(parse, item)
        return
    for line_no, obj in _json_lines(handle):
        yield line_no, obj if isinstance(obj, InvalidRecord) else _platform(parse, obj)


def read_file(handle: io.BufferedReader, fmt: str, path: Path) -> Iterator[Item]:
    if fmt == "jsonl":
        return read_jsonl(handle)
    if fmt == "csv":
        return read_csv(handle)
    return read_platform(handle, fmt, path)


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files named, and the files under folders named (sorted, hidden ones left out)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
                and p.suffix.lower() in (".json", ".jsonl", ".ndjson", ".csv")
            )
        else:
            found.append(path)
    return found
