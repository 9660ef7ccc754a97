"""The table bench/run_all writes into BENCHMARKS.md (pure functions; no benchmark runs here)."""

from __future__ import annotations

from typing import Any

import pytest

from bench.figures import check, figure, last_json_line, parse_bound
from bench.report import END, START, MarkerError, existing_rows, update_document

ORDER = ["ingest", "cdnow", "api", "load"]
DOC = """# Benchmarks

Every figure here comes from a script in `bench/`.

## Bulk ingest

Hand-written history | with a pipe, kept as it is.

| a | b |
|---|---|
| 1 | 2 |

## Appended by someone else

Last words.
"""


def ok_result(
    name: str, value: float, bound: str | None = None, date: str = "2026-12-02T10:00:00Z"
) -> dict[str, Any]:
    return {
        "name": name,
        "status": "ok",
        "exit_code": 0,
        "command": f"python -m bench.{name}_bench --json",
        "report": {
            "bench": name,
            "command": f"python -m bench.{name}_bench --quick-ish --json",
            "machine": "Test CPU, 2 cores",
            "date": date,
            "figures": [figure(f"{name} rate", value, "things/s", bound)],
        },
    }


def failed_result(name: str, code: int | None, status: str = "failed") -> dict[str, Any]:
    return {
        "name": name,
        "status": status,
        "exit_code": code,
        "command": f"python -m bench.{name}_bench --json",
        "machine": "Test CPU, 2 cores",
        "date": "2026-12-02T11:00:00Z",
        "error": "boom",
        "report": None,
    }


def outside(document: str) -> str:
    start, end = document.index(START), document.index(END) + len(END)
    return document[:start] + document[end:]


def test_markers_inserted_once_after_the_intro() -> None:
    once = update_document(DOC, [ok_result("ingest", 52_107.0, ">= 50000")], ORDER)
    assert once.count(START) == 1 and once.count(END) == 1
    assert (
        once.index("Every figure here") < once.index(START) < once.index(END) < once.index("## Bulk ingest")
    )
    twice = update_document(once, [ok_result("ingest", 60_000.0, ">= 50000")], ORDER)
    assert twice.count(START) == 1 and twice.count(END) == 1
    assert "| ingest: ingest rate | 52,107 things/s | >= 50000 | yes |" in once
    assert "60,000 things/s" in twice and "52,107" not in twice


def test_rerun_replaces_only_the_table() -> None:
    once = update_document(DOC, [ok_result("ingest", 52_107.0)], ORDER)
    assert outside(once).replace("\n", "") == DOC.replace("\n", "")  # only blank lines around the block
    # someone appends a section and edits the history between runs: both survive the next run
    edited = once.replace("Last words.\n", "Last words.\n\n## Load\n\nNew section.\n").replace(
        "Hand-written history", "Edited history"
    )
    again = update_document(edited, [ok_result("ingest", 61_000.0)], ORDER)
    assert outside(again) == outside(edited)
    assert again.endswith("## Load\n\nNew section.\n")


def test_a_partial_run_keeps_the_other_benchmarks_rows_in_order() -> None:
    both = update_document(DOC, [ok_result("api", 300.0), ok_result("ingest", 50_500.0, ">= 50000")], ORDER)
    assert both.index("| ingest:") < both.index("| api:")  # the table's order, not the run's
    only_api = update_document(both, [ok_result("api", 280.0)], ORDER)
    assert "50,500 things/s" in only_api and "280" in only_api and "300" not in only_api.split(START)[1]
    assert set(existing_rows(only_api)) == {"ingest", "api"}


def test_a_failed_bench_appears_as_failed_with_its_exit_code() -> None:
    document = update_document(DOC, [ok_result("cdnow", 0.7677), failed_result("api", 3)], ORDER)
    row = next(r for r in existing_rows(document)["api"])
    assert "**failed** (exit code 3): boom" in row
    assert row.split("|")[4].strip() == "**failed**"  # the ok column
    assert "`python -m bench.api_bench --json`" in row and "Test CPU, 2 cores" in row
    missing = update_document(document, [failed_result("load", None, status="missing")], ORDER)
    assert "load: **missing**: boom" in existing_rows(missing)["load"][0]
    # a later successful run replaces the failure
    fixed = update_document(missing, [ok_result("api", 250.0)], ORDER)
    assert "failed" not in "".join(existing_rows(fixed)["api"])


def test_a_bench_failing_after_measuring_keeps_its_figures_under_the_failure() -> None:
    result = ok_result("load", 640.0, ">= 1000") | {"status": "failed", "exit_code": 1, "error": "FAILED"}
    rows = existing_rows(update_document(DOC, [result], ORDER))["load"]
    assert len(rows) == 2
    assert "load: **failed** (exit code 1): FAILED" in rows[0]
    assert "| load: load rate | 640 things/s | >= 1000 | **no** |" in rows[1]


def test_a_figure_over_its_bound_is_marked_and_pipes_are_escaped() -> None:
    result = ok_result("ingest", 41_000.0, ">= 50000")
    result["report"]["figures"][0]["name"] = "rate | odd name"
    document = update_document(DOC, [result], ORDER)
    row = existing_rows(document)["ingest"][0]
    assert "rate \\| odd name" in row and "| **no** |" in row


def test_broken_markers_are_refused() -> None:
    with pytest.raises(MarkerError):
        update_document(DOC + START + "\n", [ok_result("ingest", 1.0)], ORDER)
    with pytest.raises(MarkerError):
        update_document(END + "\n" + DOC + START + "\n", [ok_result("ingest", 1.0)], ORDER)


def test_a_document_without_headings_gets_the_table_at_its_end() -> None:
    document = update_document("# Benchmarks\n\nIntro.\n", [ok_result("ingest", 1.0)], ORDER)
    assert document.startswith("# Benchmarks\n\nIntro.\n\n" + START)
    assert document.endswith(END + "\n")


def test_bounds_and_the_json_line() -> None:
    assert parse_bound(">= 50,000 activities/s") == (">=", 50_000.0)
    assert check(59.8, "<= 60 s") is True and check(60.1, "<= 60") is False
    assert check(999.0, "< 1000 ms") is True and check(0, "== 0") is True
    assert check(1.0, None) is None and figure("x", None, "s", "<= 1")["ok"] is None
    with pytest.raises(ValueError):
        parse_bound("about 60 s")
    line = '{"bench": "x", "figures": []}'
    assert last_json_line(f"human text\n{line}\n\n") == {"bench": "x", "figures": []}
    assert last_json_line(f"{line}\nhuman text after\n") is None
