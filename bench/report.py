"""The table ``bench/run_all`` keeps in BENCHMARKS.md: pure functions from results to Markdown.

The table sits between ``<!-- run_all:start -->`` and ``<!-- run_all:end -->``; nothing outside
the markers is ever changed. On the first run the markers go after the title and its introduction
(before the first ``## `` heading). A run of some benchmarks (``--only``) replaces their rows and
keeps the rows of the others as they were.

A benchmark that failed gets a row saying so (with its exit code), followed by its figures when it
printed them before exiting non-zero. A result, per benchmark run, is a dict::

    {"name": "ingest", "status": "ok" | "failed" | "missing", "exit_code": int | None,
     "command": "python -m bench.ingest_bench --sizes 1000000 --json", "machine": "...",
     "date": "...", "error": "..." | None, "report": <the bench's JSON line> | None}
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

START = "<!-- run_all:start -->"
END = "<!-- run_all:end -->"
COLUMNS = ("figure", "value", "bound", "ok", "command", "machine", "date")
INTRO = (
    "## Latest figures (`bench/run_all`)\n\n"
    "Written by `bench/run_all` (bench/README.md); a run replaces the rows of the benchmarks it ran. "
    "`ok` is the figure against its bound; a bound that depends on the size is checked only at the "
    "size its issue names (not in `--quick` runs)."
)


class MarkerError(ValueError):
    """The document has one marker without the other, or them out of order or repeated."""


def cell(text: object) -> str:
    """Text safe inside one Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


def code(text: str) -> str:
    return f"`{cell(text)}`" if text else ""


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, int) or (float(value).is_integer() and abs(value) >= 100):
        text = f"{int(value):,}"
    elif abs(value) >= 100:
        text = f"{value:,.1f}"
    else:
        text = f"{value:.4g}" if abs(value) < 1 else f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{text} {unit}".strip() if unit and unit != "%" else f"{text}{unit}"


def format_ok(ok: bool | None) -> str:
    return {True: "yes", False: "**no**", None: ""}[ok]


def rows_for(result: dict[str, Any]) -> list[str]:
    """The table lines of one benchmark run: one per figure, or one saying it failed."""
    name = result["name"]
    report = result.get("report")
    out = []
    if result.get("status") != "ok" or report is None:
        status = result.get("status") or "failed"
        code_text = result.get("exit_code")
        why = f"**{status}**" + (f" (exit code {code_text})" if code_text is not None else "")
        if result.get("error"):
            why += f": {result['error']}"
        cells = [f"{name}: {why}", "", "", "**failed**", code(result.get("command", "")),
                 result.get("machine", ""), result.get("date", "")]  # fmt: skip
        out.append(line(cells))
        if report is None:
            return out
        # a benchmark that exits non-zero after measuring (a requirement not met) keeps its figures
    for fig in report.get("figures", []):
        cells = [
            f"{name}: {fig['name']}",
            format_value(fig.get("value"), fig.get("unit") or ""),
            fig.get("bound") or "",
            format_ok(fig.get("ok")),
            code(report.get("command", result.get("command", ""))),
            report.get("machine", result.get("machine", "")),
            report.get("date", result.get("date", "")),
        ]
        out.append(line(cells))
    if len(out) == 0:
        out.append(line([f"{name}: (no figures)", "", "", "", code(report.get("command", "")),
                         report.get("machine", ""), report.get("date", "")]))  # fmt: skip
    return out


def line(cells: Sequence[object]) -> str:
    return "| " + " | ".join(cell(c) for c in cells) + " |"


def bench_of(row: str) -> str:
    """The benchmark a table line belongs to: its first cell up to the first colon."""
    first = row.strip().removeprefix("|").split("|", 1)[0]
    return first.split(":", 1)[0].strip()


def find_block(document: str) -> tuple[int, int] | None:
    """(start of the start marker, end of the end marker), None when neither is there."""
    starts, ends = document.count(START), document.count(END)
    if starts == 0 and ends == 0:
        return None
    if starts != 1 or ends != 1 or document.index(START) > document.index(END):
        raise MarkerError(
            f"BENCHMARKS.md must hold {START} once, then {END} once (found {starts} and {ends}); "
            "fix the markers by hand, nothing was written"
        )
    return document.index(START), document.index(END) + len(END)


def existing_rows(document: str) -> dict[str, list[str]]:
    """The table lines now between the markers, by benchmark (header and separator left out)."""
    block = find_block(document)
    if block is None:
        return {}
    rows: dict[str, list[str]] = {}
    lines = [ln for ln in document[block[0] : block[1]].splitlines() if ln.startswith("|")]
    for row in lines[2:]:  # after the header and the |---| line
        rows.setdefault(bench_of(row), []).append(row)
    return rows


def render_block(rows: dict[str, list[str]], order: Iterable[str]) -> str:
    """The whole block, markers included: benchmarks in ``order``, then any others as found."""
    names = list(order)
    names += [n for n in rows if n not in names]
    body = [line(COLUMNS), "|" + "|".join("---" for _ in COLUMNS) + "|"]
    for name in names:
        body += rows.get(name, [])
    return f"{START}\n{INTRO}\n\n" + "\n".join(body) + f"\n{END}"


def insert_at(document: str) -> int:
    """Where the block goes the first time: before the first ``## `` heading (after the title and
    introduction), or at the end when there is none."""
    offset = 0
    for text in document.splitlines(keepends=True):
        if text.startswith("## "):
            return offset
        offset += len(text)
    return len(document)


def update_document(document: str, results: Sequence[dict[str, Any]], order: Iterable[str]) -> str:
    """``document`` with the block rewritten: rows of the ``results`` replace their benchmarks' rows;
    the rows of benchmarks not in ``results`` stay. Everything outside the markers is unchanged."""
    rows = existing_rows(document)
    for result in results:
        rows[result["name"]] = rows_for(result)
    block = render_block(rows, order)
    found = find_block(document)
    if found is not None:
        return document[: found[0]] + block + document[found[1] :]
    at = insert_at(document)
    before, after = document[:at], document[at:]
    if before and not before.endswith("\n"):
        before += "\n"
    if before and not before.endswith("\n\n"):
        before += "\n"
    return before + block + ("\n\n" + after if after else "\n")
