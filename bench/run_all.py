"""Run every benchmark and rewrite the figures table in BENCHMARKS.md.

Each benchmark runs as a subprocess (``python -m bench.<module> ... --json``) from the repository
root; its last stdout line is the JSON object of bench/figures.py. The figures of every run go into
one table between ``<!-- run_all:start -->`` and ``<!-- run_all:end -->`` in BENCHMARKS.md (see
bench/report.py); nothing else in the file changes. A benchmark that fails, or whose module does not
exist, is shown as failed in the table with its exit code, and run_all then exits 1.

    bench/run_all                          # every benchmark at the sizes the issues name (long)
    bench/run_all --quick                  # the small sizes each benchmark offers (minutes)
    bench/run_all --quick --only ingest,cdnow,api
    bench/run_all --only crm --json        # the CRM runs; the collected results as JSON on stdout
    bench/run_all --list                   # the benchmarks and their commands
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.figures import last_json_line, machine, utc_now
from bench.report import MarkerError, format_ok, format_value, update_document

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = REPO_ROOT / "BENCHMARKS.md"


@dataclass(frozen=True)
class Bench:
    name: str  # the table's prefix; --only takes it or its group (the part before the first '-')
    module: str
    full: tuple[str, ...]  # arguments at the sizes the issues name
    quick: tuple[str, ...]  # the small sizes the benchmark offers

    @property
    def group(self) -> str:
        return self.name.split("-", 1)[0]

    def command(self, quick: bool) -> list[str]:
        return ["python", "-m", self.module, *(self.quick if quick else self.full), "--json"]


BENCHES: tuple[Bench, ...] = (
    Bench("ingest", "bench.ingest_bench", ("--sizes", "1000000"), ("--sizes", "20000,50000")),
    Bench("score", "bench.score_bench", (),
          ("--members", "20000", "--activities", "400000", "--changed", "2000")),
    Bench("deals", "bench.deals_bench", (), ("--deals", "10000")),
    Bench("cdnow", "bench.cdnow_bench", ("--repeat", "3"), ()),
    Bench("crm-hubspot", "bench.crm_bench", ("--crm", "hubspot"), ("--crm", "hubspot", "--members", "2000")),
    Bench("crm-salesforce-collections", "bench.crm_bench", ("--crm", "salesforce", "--path", "collections"),
          ("--crm", "salesforce", "--path", "collections", "--members", "2000")),
    Bench("crm-salesforce-bulk", "bench.crm_bench", ("--crm", "salesforce", "--path", "bulk"),
          ("--crm", "salesforce", "--path", "bulk", "--members", "2500")),
    Bench("webhook-sqlite", "bench.webhook_bench", ("--db", "sqlite", "--workers", "1"),
          ("--db", "sqlite", "--workers", "1", "--messages", "2000", "--live-seconds", "3")),
    Bench("webhook-postgres", "bench.webhook_bench", ("--db", "postgres", "--workers", "2"),
          ("--db", "postgres", "--workers", "2", "--messages", "2000", "--live-seconds", "3")),
    Bench("api", "bench.api_bench", ("--db", "postgres"),
          ("--db", "postgres", "--members", "1000", "--activities", "20000", "--seconds", "3",
           "--warmup", "1")),
    Bench("load", "bench.load_bench", (), ("--seconds", "5")),
)  # fmt: skip


def select(only: str | None) -> list[Bench]:
    """The benchmarks ``--only`` names (a name, or a group such as ``crm``), in table order."""
    if not only:
        return list(BENCHES)
    wanted = {w.strip() for w in only.split(",") if w.strip()}
    known = {b.name for b in BENCHES} | {b.group for b in BENCHES}
    unknown = sorted(wanted - known)
    if unknown:
        raise SystemExit(
            f"run_all: unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(b.name for b in BENCHES)}"
        )
    return [b for b in BENCHES if b.name in wanted or b.group in wanted]


def run_one(bench: Bench, quick: bool, timeout: float, status: Any) -> dict[str, Any]:
    """Run one benchmark; ``status(text)`` gets its latest stderr line as it runs."""
    shown = bench.command(quick)
    result: dict[str, Any] = {
        "name": bench.name,
        "command": shlex.join(shown),
        "machine": machine(),
        "date": utc_now(),
        "status": "failed",
        "exit_code": None,
        "error": None,
        "report": None,
        "seconds": 0.0,
    }
    if importlib.util.find_spec(bench.module) is None:
        result |= {"status": "missing", "error": f"{bench.module.replace('.', '/')}.py does not exist"}
        return result
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("COLUMNS", "150")
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, *shown[1:]],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: a timeout or Ctrl-C stops all of it
    )
    assert proc.stdout is not None and proc.stderr is not None
    tail: deque[str] = deque(maxlen=40)
    out: list[bytes] = []

    def read_err() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            text = raw.decode("utf-8", "replace").rstrip()
            if text.strip():
                tail.append(text)
                status(text.strip())

    readers = [
        threading.Thread(target=read_err, daemon=True),
        threading.Thread(target=lambda: out.append(proc.stdout.read() if proc.stdout else b""), daemon=True),
    ]
    for t in readers:
        t.start()
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        stop(proc)
        code = proc.returncode
        result["error"] = f"timed out after {timeout:.0f} s"
    except BaseException:
        stop(proc)
        raise
    for t in readers:
        t.join(10)
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["exit_code"] = code
    result["stderr_tail"] = list(tail)
    report = last_json_line(b"".join(out).decode("utf-8", "replace"))
    if report is not None:  # kept even on failure: a requirement not met is still a measurement
        result |= {"report": report, "date": report.get("date", result["date"])}
    if code == 0 and report is not None:
        result["status"] = "ok"
    elif code == 0:
        result["error"] = "no JSON line on stdout"
    elif result["error"] is None:
        last = next((t for t in reversed(tail) if t.strip()), "")
        result["error"] = last[:200]
    return result


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End the benchmark and whatever it started (its process group), politely first."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue


def summary(console: Console, results: list[dict[str, Any]]) -> None:
    table = Table(title="bench/run_all")
    for column in ("figure", "value", "bound", "ok"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for result in results:
        report = result.get("report")
        if result["status"] != "ok":
            why = result["status"]
            if result["exit_code"] is not None:
                why += f" (exit code {result['exit_code']})"
            error = escape(result.get("error") or "")
            table.add_row(
                f"{escape(result['name'])}: [red]{escape(why)}[/]: {error}", "", "", "[red]failed[/]"
            )
        if report is None:
            continue
        for fig in report["figures"]:
            ok = format_ok(fig.get("ok")).replace("**no**", "[red]no[/]").replace("yes", "[green]yes[/]")
            table.add_row(
                escape(f"{result['name']}: {fig['name']}"),
                escape(format_value(fig.get("value"), fig.get("unit") or "")),
                escape(fig.get("bound") or ""),
                ok,
            )
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run_all", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the smaller sizes each benchmark offers")
    parser.add_argument("--only", help="NAME[,NAME]: benchmarks, or groups (crm, webhook), to run")
    parser.add_argument("--json", action="store_true", help="print the collected results as JSON on stdout")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and their commands")
    parser.add_argument("--document", type=Path, default=DOCUMENT, help="the file to update (BENCHMARKS.md)")
    parser.add_argument("--no-write", action="store_true", help="run and show, but leave the file alone")
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="seconds allowed per benchmark")
    args = parser.parse_args(argv)
    chosen = select(args.only)
    err = Console(stderr=True)
    if not err.is_terminal:  # a log file: wide enough for a figure's name on one line
        err = Console(stderr=True, width=150)
    if args.list:
        for bench in chosen:
            print(f"{bench.name:28} {shlex.join(bench.command(args.quick))}")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    if args.document.exists() and not args.no_write:  # a broken marker pair stops us before any run
        update_document(args.document.read_text(encoding="utf-8"), [], [])

    results: list[dict[str, Any]] = []
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description:<28}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}", style="dim"),
        console=err,
    ) as progress:
        overall = progress.add_task(f"{len(chosen)} benchmark(s)", total=len(chosen), status="")
        for bench in chosen:
            task = progress.add_task(bench.name, total=1, status="starting")

            def status(text: str, task: Any = task) -> None:
                progress.update(task, status=escape(text[:90]))

            result = run_one(bench, args.quick, args.timeout, status)
            results.append(result)
            ok = result["status"] == "ok"
            why = escape(f"{result['status']}: {result.get('error') or ''}"[:120])
            done = f"{result['seconds']} s" if ok else f"[red]{why}[/]"
            progress.update(task, completed=1, status=done)
            progress.advance(overall)

    summary(err, results)
    if not args.no_write:
        try:
            text = args.document.read_text(encoding="utf-8") if args.document.exists() else "# Benchmarks\n"
            updated = update_document(text, results, [b.name for b in BENCHES])
        except MarkerError as exc:
            err.print(f"[red]{exc}[/]")
            return 2
        args.document.write_text(updated, encoding="utf-8")
        err.print(f"wrote the table in {args.document}")
    if args.json:
        sys.stdout.write(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode() + "\n")
    failed = [r["name"] for r in results if r["status"] != "ok"]
    if failed:
        err.print(f"[red]failed: {', '.join(failed)}[/]")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
