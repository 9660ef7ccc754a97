"""The one-line JSON every benchmark prints with ``--json``, and what goes into it.

The last line a benchmark writes to stdout with ``--json`` is one JSON object::

    {"bench": "ingest", "command": "python -m bench.ingest_bench --sizes 1000000 --json",
     "machine": "Intel(R) Xeon(R) ..., 2 cores", "date": "2026-12-02T10:31:07Z",
     "figures": [{"name": "...", "value": 52107.3, "unit": "activities/s",
                  "bound": ">= 50000", "ok": true}, ...],
     "details": {...}}

``bound`` is a comparison with the figure on its left (``"<= 60"``, ``">= 1000"``, ``"< 1000 ms"``,
``"== 0"``; anything after the number is only a reminder of the unit) or null when the issue sets
none, or when the run is not at the size the bound was set for. ``ok`` is the comparison's outcome,
null without a bound. ``details`` carries everything else the benchmark measured. ``bench/run_all``
reads this line (see bench/README.md).
"""

from __future__ import annotations

import math
import os
import platform
import re
import shlex
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

BOUND = re.compile(r"^\s*(<=|>=|==|<|>)\s*([-+]?[0-9][0-9_,]*(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)\s*(.*)$")


def machine() -> str:
    """``"<cpu model>, <n> cores"`` (logical CPUs this process may use)."""
    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "")
    except OSError:
        pass
    cpu = cpu or platform.processor() or platform.machine() or "unknown CPU"
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 0
    return f"{cpu}, {cores} cores"


def utc_now() -> str:
    """Now in UTC, ISO 8601 to the second: ``2026-12-02T10:31:07Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def command_line(module: str, argv: list[str] | None = None) -> str:
    """The command as a person would type it: ``python -m bench.x --flag value``."""
    args = sys.argv[1:] if argv is None else argv
    return shlex.join(["python", "-m", module, *args])


def parse_bound(bound: str) -> tuple[str, float]:
    """``">= 50,000 activities/s"`` -> (">=", 50000.0); ValueError when it is not a comparison."""
    match = BOUND.match(bound)
    if match is None:
        raise ValueError(f"a bound is '<op> <number> [unit]' with op one of <= >= < > ==, got {bound!r}")
    return match.group(1), float(match.group(2).replace(",", "").replace("_", ""))


def check(value: float | None, bound: str | None) -> bool | None:
    """Whether ``value`` meets ``bound``; None without a bound or without a value."""
    if bound is None or value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    op, limit = parse_bound(bound)
    return {
        "<=": value <= limit,
        ">=": value >= limit,
        "<": value < limit,
        ">": value > limit,
        "==": value == limit,
    }[op]


def figure(name: str, value: float | None, unit: str, bound: str | None = None) -> dict[str, Any]:
    """One figure; ``ok`` is computed from the bound."""
    if isinstance(value, float) and not math.isfinite(value):
        value = None
    return {"name": name, "value": value, "unit": unit, "bound": bound, "ok": check(value, bound)}


def report(
    bench: str,
    module: str,
    figures: list[dict[str, Any]],
    argv: list[str] | None = None,
    details: Any = None,
) -> dict[str, Any]:
    """The whole object; ``argv`` defaults to this process's arguments."""
    out: dict[str, Any] = {
        "bench": bench,
        "command": command_line(module, argv),
        "machine": machine(),
        "date": utc_now(),
        "figures": figures,
    }
    if details is not None:
        out["details"] = details
    return out


def emit(result: dict[str, Any]) -> None:
    """Print ``result`` as the last line of stdout (one line, no indentation) and flush."""
    sys.stdout.flush()
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_SERIALIZE_NUMPY).decode() + "\n")
    sys.stdout.flush()


def last_json_line(stdout: str) -> dict[str, Any] | None:
    """The object of the last non-empty stdout line, or None if that line is not one."""
    for line in reversed(stdout.splitlines()):
        if line.strip():
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                return None
            return value if isinstance(value, dict) and "figures" in value else None
    return None
