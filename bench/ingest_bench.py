"""Bulk-ingest benchmark: JSONL into SQLite through the exact code path of ``flywheel ingest``.

Requirement: at least 50,000 activities per second on the 2-core reference machine, with memory flat
as the file grows (up to a 1M-activity file).

For each size the parent process generates a deterministic demo file (``plugin.demo``: fixed seed,
one member per 20 activities by default) and times that separately. Then a **fresh Python
subprocess** (so its peak RSS belongs to that run alone, not to the generator or an earlier size):

1. opens a fresh SQLite file (``FLYWHEEL_DATABASE_URL``), runs the migrations and creates the
   workspace, as the CLI's first run does;
2. pass 1: ``ingest_paths(..., suggest=False)``, timed, then ``refresh_suggestions`` timed on its own
   (the CLI runs both: ``suggest=True``);
3. pass 2: the same file again into the same database (every record a duplicate), timed the same way.

RSS is read from ``VmHWM`` (peak, KiB) and sampled from ``/proc/self/statm`` on every
progress callback (every 5,000 items), so the table shows both the peak and how much the process
grew over the second half of the file.

    python -m bench.ingest_bench                          # 250k, 500k, 1M (minutes; the real figures)
    python -m bench.ingest_bench --sizes 20000,50000      # a quick check
    python -m bench.ingest_bench --members 5000 --json    # a fixed member count; JSON line on stdout
    python -m bench.ingest_bench --markdown               # a table to paste into BENCHMARKS.md
    python -m bench.ingest_bench --sizes 50000 --profile  # cProfile pass 1 (both threads); top functions
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from rich import box
from rich.console import Console
from rich.table import Table

from bench.figures import emit, figure
from bench.figures import report as bench_report

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SIZES = (250_000, 500_000, 1_000_000)
DEFAULT_MEMBERS = "/20"
SEED = 7
TARGET_RATE = 50_000  # activities per second, from the product requirement
BOUND_SIZE = 1_000_000  # the file size the requirement names
WORKSPACE = "default"
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
RESULT_MARK = "BENCH-RESULT "  # the child's one line of results on stdout


# -- figures ---------------------------------------------------------------------------------------


@dataclass
class PassFigures:
    """One ``ingest_paths`` call plus its suggestions pass."""

    seconds: float
    suggest_seconds: float
    read: int
    stored: int
    duplicates: int
    skipped: int
    invalid: int
    members_created: int
    identities_created: int
    auto_merges: int
    organizations_created: int
    suggestions: int
    peak_rss_kib: int  # VmHWM after this pass (the process's peak so far)
    rss_half_kib: int  # resident set when half the file had been read
    rss_end_kib: int  # resident set when the whole file had been read
    sqlite_peak_kib: int = -1  # SQLite's own allocations (page caches...), high-water during the pass

    @property
    def rate(self) -> float:
        """Records handled per second of ingest (suggestions excluded): stored ones, or for an
        all-duplicates pass the records read."""
        done = self.stored if self.stored else self.read
        return done / self.seconds if self.seconds else 0.0

    @property
    def rate_with_suggestions(self) -> float:
        done = self.stored if self.stored else self.read
        total = self.seconds + self.suggest_seconds
        return done / total if total else 0.0


@dataclass
class RunFigures:
    size: int
    members: int
    generate_seconds: float
    file_bytes: int
    setup_seconds: float = 0.0  # migrations + workspace in the child
    baseline_rss_kib: int = 0  # VmHWM in the child after imports, migrations and workspace
    db_bytes: int = 0  # main file + WAL after pass 1 (engine disposed)
    db_bytes_after_second: int = 0
    first: PassFigures | None = None
    second: PassFigures | None = None
    profile: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("first", "second"):
            figures = getattr(self, name)
            if figures is not None:
                data[name]["rate"] = round(figures.rate, 1)
                data[name]["rate_with_suggestions"] = round(figures.rate_with_suggestions, 1)
        return data


# -- the child: one run in a fresh interpreter -----------------------------------------------------


def _rss_now_kib() -> int:
    with open("/proc/self/statm", "rb") as fh:
        return int(fh.read().split()[1]) * PAGE_KIB


def _peak_rss_kib() -> int:
    """Peak RSS of this process image: VmHWM, not ``ru_maxrss``, which Linux carries over ``exec``
    from the parent (here the parent that generated the data, so it would overstate our peak)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _sqlite_memory_kib(reset: bool = False) -> int:
    """High-water of SQLite's own allocations in this process (``sqlite3_status64``), -1 if unknown.

    SQLite allocates outside Python's heap: the page cache (``cache_size``, 64 MiB per connection
    here) grows with the database until full, which RSS alone cannot tell from a Python leak."""
    import _sqlite3
    import ctypes

    try:
        status = ctypes.CDLL(_sqlite3.__file__).sqlite3_status64
    except (OSError, AttributeError):
        return -1
    current, highest = ctypes.c_int64(), ctypes.c_int64()
    if status(0, ctypes.byref(current), ctypes.byref(highest), int(reset)) != 0:  # SQLITE_STATUS_MEMORY_USED
        return -1
    return highest.value // 1024


def _db_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())


def _one_pass(engine: Any, workspace_id: int, path: Path, profile_to: Path | None) -> PassFigures:
    from plugin.services.ingest_files import ingest_paths
    from plugin.services.suggestions import refresh_suggestions

    samples: list[tuple[int, int]] = []  # (bytes done, RSS KiB)

    def progress(done: int, _total: int) -> None:
        samples.append((done, _rss_now_kib()))

    _sqlite_memory_kib(reset=True)
    profilers = _start_profiling() if profile_to is not None else None
    started = time.perf_counter()
    report = ingest_paths(engine, workspace_id, [path], "jsonl", progress=progress, suggest=False)
    seconds = time.perf_counter() - started
    if profilers is not None and profile_to is not None:
        _stop_profiling(profilers, profile_to)
    sqlite_peak = _sqlite_memory_kib()
    started = time.perf_counter()
    report.suggestions = refresh_suggestions(engine, workspace_id)
    suggest_seconds = time.perf_counter() - started

    total = path.stat().st_size
    half = next((rss for done, rss in samples if done >= total // 2), 0)
    end = samples[-1][1] if samples else 0
    return PassFigures(
        seconds=seconds,
        suggest_seconds=suggest_seconds,
        read=report.read,
        stored=report.stored,
        duplicates=report.duplicates,
        skipped=report.skipped,
        invalid=report.invalid,
        members_created=report.members_created,
        identities_created=report.identities_created,
        auto_merges=report.auto_merges,
        organizations_created=report.organizations_created,
        suggestions=report.suggestions,
        peak_rss_kib=_peak_rss_kib(),
        rss_half_kib=half,
        rss_end_kib=end,
        sqlite_peak_kib=sqlite_peak,
    )


def _profile_files(prefix: Path) -> tuple[Path, Path]:
    """Where the main thread's (reading, parsing) and the writer thread's (resolving, inserting)
    profiles go: ``ingest_paths`` stores batches on a background thread, which a plain cProfile of
    the caller would not see (its GIL waits would show up inside the reader instead)."""
    return prefix.with_suffix(".main.prof"), prefix.with_suffix(".writer.prof")


def _start_profiling() -> list[Any]:
    import cProfile
    import threading

    profilers: list[cProfile.Profile] = []

    def start_in_new_thread(*_: object) -> None:  # the first profile event of each new thread
        sys.setprofile(None)
        profiler = cProfile.Profile()
        profilers.append(profiler)
        profiler.enable()  # replaces this thread's profile function with cProfile's own

    main = cProfile.Profile()
    profilers.append(main)
    threading.setprofile(start_in_new_thread)
    main.enable()
    return profilers


def _stop_profiling(profilers: list[Any], prefix: Path) -> None:
    import pstats
    import threading

    main, *others = profilers
    main.disable()
    threading.setprofile(None)
    main_file, writer_file = _profile_files(prefix)
    main.dump_stats(str(main_file))
    if others:  # the writer has exited (ingest_paths shuts it down), so its stats are complete
        stats = pstats.Stats(others[0])
        for extra in others[1:]:
            stats.add(extra)
        stats.dump_stats(str(writer_file))


def _top_of_profile(prefix: Path, limit: int = 25) -> str:
    import io
    import pstats

    out = io.StringIO()
    for label, path in zip(
        ("MAIN THREAD (read + parse)", "WRITER THREAD (resolve + insert)"),
        _profile_files(prefix),
        strict=True,
    ):
        if not path.exists():
            continue
        out.write(f"==== {label}: {path.name}\n")
        stats = pstats.Stats(str(path), stream=out)
        stats.strip_dirs().sort_stats("tottime").print_stats(limit)
        stats.sort_stats("cumulative").print_stats(limit)
    return out.getvalue()


def child_main(path: Path, db: Path, profile_to: Path | None) -> None:
    """Run in the subprocess: set up a fresh database, ingest twice, print one line of results."""
    from plugin.db.engine import make_engine, make_sessionmaker
    from plugin.db.migrate import upgrade
    from plugin.services.workspaces import ensure_workspace
    from plugin.settings import load_settings

    settings = load_settings()  # FLYWHEEL_DATABASE_URL is set by the parent
    started = time.perf_counter()
    engine = make_engine(settings)
    upgrade(engine)
    with make_sessionmaker(engine)() as session:
        workspace, _ = ensure_workspace(session, WORKSPACE, "Default workspace")
        session.commit()
        workspace_id = workspace.id
    setup_seconds = time.perf_counter() - started
    baseline = _peak_rss_kib()

    first = _one_pass(engine, workspace_id, path, profile_to)
    engine.dispose()  # closes the pool: SQLite checkpoints the WAL, so the size is the data's
    db_first = _db_bytes(db)
    second = _one_pass(engine, workspace_id, path, None)
    engine.dispose()
    result = {
        "setup_seconds": setup_seconds,
        "baseline_rss_kib": baseline,
        "db_bytes": db_first,
        "db_bytes_after_second": _db_bytes(db),
        "first": asdict(first),
        "second": asdict(second),
        "profile": _top_of_profile(profile_to) if profile_to is not None else None,
    }
    sys.stdout.write(RESULT_MARK + orjson.dumps(result).decode() + "\n")
    sys.stdout.flush()


# -- the parent: generate, spawn, report -----------------------------------------------------------


def members_for(size: int, rule: str) -> int:
    """``/K``: one member per K activities; a plain number: that many members for every size."""
    rule = rule.strip()
    if rule.startswith("/"):
        return max(10, size // int(rule[1:]))
    return int(rule)


def generate(path: Path, size: int, members: int) -> float:
    from plugin.demo.community import DemoConfig, generate_activities, generate_people, write_jsonl

    started = time.perf_counter()
    cfg = DemoConfig(seed=SEED, members=members, activities=size)
    people, _organizations = generate_people(cfg)
    write_jsonl(generate_activities(cfg, people), path)
    return time.perf_counter() - started


def run_child(path: Path, db: Path, workdir: Path, profile_to: Path | None, timeout: float) -> dict[str, Any]:
    env = dict(os.environ)
    env["FLYWHEEL_DATABASE_URL"] = f"sqlite:///{db}"
    env["FLYWHEEL_SECRET_KEY_FILE"] = str(workdir / ".flywheel-secret")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "bench.ingest_bench", "--child", str(path), str(db)]
    if profile_to is not None:
        command += ["--profile-to", str(profile_to)]
    # subprocess.run kills the child if we are interrupted or it times out: nothing is left running.
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the ingest subprocess failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            result: dict[str, Any] = orjson.loads(line.removeprefix(RESULT_MARK))
            return result
    raise RuntimeError(
        f"the ingest subprocess printed no result:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    )


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        if names:
            cpu = names[0]
    except OSError:
        pass
    import sqlalchemy

    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            mem_kib = int(fh.readline().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kib = 0
    return {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu or platform.machine(),
        "cpu_count": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _mib(kib: int) -> str:
    return f"{kib / 1024:,.0f}" if kib >= 0 else "n/a"


def _bytes_mib(n: int) -> str:
    return f"{n / 1024 / 1024:,.1f}"


def _rows(run: RunFigures) -> list[tuple[str, str, str]]:
    """(section, metric, value) for one run, in display order."""
    p, q = run.first, run.second
    assert p is not None and q is not None
    return [
        ("input", "members (generated)", f"{run.members:,}"),
        ("input", "file MiB", _bytes_mib(run.file_bytes)),
        ("input", "generate s (not in any figure)", f"{run.generate_seconds:.1f}"),
        ("pass 1", "ingest s", f"{p.seconds:.2f}"),
        ("pass 1", "activities/s", f"{p.rate:,.0f}"),
        ("pass 1", "suggestions s", f"{p.suggest_seconds:.2f}"),
        ("pass 1", "activities/s incl. suggestions", f"{p.rate_with_suggestions:,.0f}"),
        ("pass 1", "peak RSS MiB", _mib(p.peak_rss_kib)),
        ("pass 1", "RSS at 50% / 100% of file MiB", f"{_mib(p.rss_half_kib)} / {_mib(p.rss_end_kib)}"),
        ("pass 1", "SQLite's own memory, peak MiB", _mib(p.sqlite_peak_kib)),
        ("pass 1", "DB MiB", _bytes_mib(run.db_bytes)),
        ("pass 1", "stored", f"{p.stored:,}"),
        ("pass 1", "duplicates", f"{p.duplicates:,}"),
        ("pass 1", "skipped / invalid", f"{p.skipped:,} / {p.invalid:,}"),
        ("pass 1", "members created", f"{p.members_created:,}"),
        ("pass 1", "identities created", f"{p.identities_created:,}"),
        ("pass 1", "auto merges", f"{p.auto_merges:,}"),
        ("pass 1", "organizations created", f"{p.organizations_created:,}"),
        ("pass 1", "suggestions opened", f"{p.suggestions:,}"),
        ("pass 2", "ingest s", f"{q.seconds:.2f}"),
        ("pass 2", "records/s", f"{q.rate:,.0f}"),
        ("pass 2", "suggestions s", f"{q.suggest_seconds:.2f}"),
        ("pass 2", "stored / duplicates", f"{q.stored:,} / {q.duplicates:,}"),
        ("pass 2", "peak RSS MiB", _mib(q.peak_rss_kib)),
        ("pass 2", "RSS at 50% / 100% of file MiB", f"{_mib(q.rss_half_kib)} / {_mib(q.rss_end_kib)}"),
        ("pass 2", "SQLite's own memory, peak MiB", _mib(q.sqlite_peak_kib)),
        ("pass 2", "DB MiB", _bytes_mib(run.db_bytes_after_second)),
        ("child", "setup s (migrations, workspace)", f"{run.setup_seconds:.2f}"),
        ("child", "baseline RSS MiB (before ingest)", _mib(run.baseline_rss_kib)),
    ]


def render(
    console: Console, info: dict[str, Any], runs: list[RunFigures], target: int, markdown: bool
) -> None:
    console.print(
        f"flywheel bulk ingest, JSONL -> SQLite, {info['date_utc']}\n"
        f"{info['cpu']} ({info['cpu_count']} CPUs, {info['memory_gib']} GiB), {info['os']}\n"
        f"Python {info['python']}, SQLite {info['sqlite']}, SQLAlchemy {info['sqlalchemy']}; "
        f"load average at start {info['load_average']}",
        markup=False,
        highlight=False,
    )
    table = Table(box=box.MARKDOWN if markdown else box.SIMPLE_HEAD, show_edge=markdown)
    table.add_column("")
    table.add_column("metric")
    for run in runs:
        table.add_column(f"{run.size:,} activities", justify="right")
    per_run = [_rows(run) for run in runs]
    if not per_run:
        return
    for i, (section, metric, _) in enumerate(per_run[0]):
        values = [rows[i][2] for rows in per_run]
        if metric == "activities/s" and section == "pass 1" and not markdown:
            values = [
                f"[{'green' if r.first and r.first.rate >= target else 'red'}]{v}[/]"
                for v, r in zip(values, runs, strict=True)
            ]
        shown = section if i == 0 or per_run[0][i - 1][0] != section else ""
        last_of_section = i + 1 < len(per_run[0]) and per_run[0][i + 1][0] != section
        table.add_row(shown, metric, *values, end_section=last_of_section)
    console.print(table)
    console.print(
        "pass 1: a fresh database; pass 2: the same file again into it (every record a duplicate). "
        "activities/s = stored / seconds of ingest_paths(suggest=False); 'incl. suggestions' adds the "
        "refresh_suggestions pass that `flywheel ingest` runs after it. Peak RSS: the ingest subprocess's "
        "VmHWM; it includes SQLite's page cache (up to 64 MiB per connection), shown on its own. "
        f"Target: {target:,} activities/s.",
        markup=False,
        highlight=False,
    )
    for run in runs:
        if run.profile:
            console.print(
                f"\ncProfile of pass 1, {run.size:,} activities (by tottime, then cumulative)",
                markup=False,
                highlight=False,
            )
            console.print(run.profile, markup=False, highlight=False)


def parse_sizes(text: str) -> list[int]:
    sizes = [int(part.replace("_", "").strip()) for part in text.split(",") if part.strip()]
    if not sizes or min(sizes) <= 0:
        raise argparse.ArgumentTypeError("sizes are positive whole numbers, e.g. 250000,500000,1000000")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=list(DEFAULT_SIZES),
        help="activities per run, comma-separated (default 250000,500000,1000000)",
    )
    parser.add_argument(
        "--members",
        default=DEFAULT_MEMBERS,
        help="'/K' for one member per K activities (default /20), or a fixed number",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where files and databases go (default: a new temp dir under /tmp)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the workdir (files and databases)")
    parser.add_argument(
        "--json", action="store_true", help="the table to stderr; one JSON line on stdout (bench/figures.py)"
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown (BENCHMARKS.md)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run pass 1 under cProfile (slower: the rate is then not the figure)",
    )
    parser.add_argument("--target", type=int, default=TARGET_RATE, help="activities/s to meet (colours)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds allowed per ingest subprocess")
    parser.add_argument("--child", nargs=2, metavar=("FILE", "DB"), type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv

    if args.child:
        child_main(args.child[0], args.child[1], args.profile_to)
        return 0

    # a plain `kill` also ends the ingest subprocess and removes the workdir (via the finally below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    log = Console(stderr=True)
    # with --json, stdout carries the JSON alone; piped to a file, the table is not wrapped at 80 columns
    out = Console(stderr=args.json)
    if not out.is_terminal:
        out = Console(stderr=args.json, width=150)
    info = machine()
    created = args.workdir is None
    workdir: Path = Path(tempfile.mkdtemp(prefix="flywheel-bench-", dir="/tmp")) if created else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    runs: list[RunFigures] = []
    try:
        for size in args.sizes:
            members = members_for(size, args.members)
            path = workdir / f"activities-{size}.jsonl"
            db = workdir / f"ingest-{size}.db"
            for stale in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
                stale.unlink(missing_ok=True)
            log.print(
                f"{size:,} activities, {members:,} members: generating {path.name} ...", highlight=False
            )
            gen_seconds = generate(path, size, members)
            run = RunFigures(
                size=size, members=members, generate_seconds=gen_seconds, file_bytes=path.stat().st_size
            )
            log.print(
                f"  generated in {gen_seconds:.1f} s ({_bytes_mib(run.file_bytes)} MiB); "
                "ingesting in a fresh subprocess ...",
                highlight=False,
            )
            profile_to = workdir / f"ingest-{size}" if args.profile else None
            result = run_child(path, db, workdir, profile_to, args.timeout)
            run.setup_seconds = result["setup_seconds"]
            run.baseline_rss_kib = result["baseline_rss_kib"]
            run.db_bytes = result["db_bytes"]
            run.db_bytes_after_second = result["db_bytes_after_second"]
            run.first = PassFigures(**result["first"])
            run.second = PassFigures(**result["second"])
            run.profile = result["profile"]
            log.print(
                f"  pass 1: {run.first.seconds:.2f} s, {run.first.rate:,.0f} act/s; "
                f"pass 2: {run.second.seconds:.2f} s",
                highlight=False,
            )
            runs.append(run)
            if not args.keep:  # large files go as soon as they are measured
                profiles = _profile_files(profile_to) if profile_to is not None else ()
                for leftover in (path, db, Path(f"{db}-wal"), Path(f"{db}-shm"), *profiles):
                    leftover.unlink(missing_ok=True)
    finally:
        if args.keep:
            log.print(f"kept {workdir}", highlight=False)
        elif created:
            shutil.rmtree(workdir, ignore_errors=True)

    render(out, info, runs, args.target, args.markdown)
    if args.json:
        payload = {
            "machine": info,
            "seed": SEED,
            "members_rule": args.members,
            "target_rate": args.target,
            "runs": [r.as_dict() for r in runs],
        }
        emit(bench_report("ingest", "bench.ingest_bench", figures_of(runs, args.target), argv, payload))
    return 0


def figures_of(runs: list[RunFigures], target: int) -> list[dict[str, Any]]:
    """The figures of ``--json``: the target rate is checked at the 1M-activity file it was set for."""
    out: list[dict[str, Any]] = []
    for run in runs:
        p, q = run.first, run.second
        assert p is not None and q is not None
        at = f"{run.size:,} activities, {run.members:,} members"
        bound = f">= {target}" if run.size >= BOUND_SIZE else None
        out += [
            figure(f"{at}: pass 1", round(p.rate), "activities/s", bound),
            figure(f"{at}: pass 1 incl. suggestions", round(p.rate_with_suggestions), "activities/s"),
            figure(f"{at}: pass 2 (all duplicates)", round(q.rate), "records/s"),
            figure(f"{at}: peak RSS", round(p.peak_rss_kib / 1024), "MiB"),
            figure(
                f"{at}: RSS growth, 50% to 100% of the file",
                round((p.rss_end_kib - p.rss_half_kib) / 1024),
                "MiB",
            ),
        ]
    return out


if __name__ == "__main__":
    raise SystemExit(main())
