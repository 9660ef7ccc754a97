"""Scoring at scale: full rescore of N members / M activities, then an incremental rescore.

Generates its own SQLite database (members, organizations, identities, activities with a
long-tailed spread of activity per member over 18 months, surveys, reviews, purchases and some
hand-raising posts), then runs ``run_scoring`` in fresh subprocesses and prints wall time and peak
memory (VmHWM) of: a full run (BG/NBD fit included), a second full run over stored scores, and an
incremental run after new activity from ``--changed`` members.

    python -m bench.score_bench                      # 1,000,000 members, 20,000,000 activities
    python -m bench.score_bench --members 100000 --activities 2000000 --json   # + one JSON line
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.figures import emit, figure, report

NOW = datetime(2026, 11, 1, tzinfo=UTC)
NOW_US = int(NOW.timestamp()) * 1_000_000
DAY_US = 86_400_000_000
SPAN_DAYS = 540
TYPES = {  # type: share of activities
    "reaction": 0.25, "reply": 0.15, "post": 0.1, "comment": 0.1, "product_usage": 0.12, "answer": 0.05,
    "answer_accepted": 0.01, "star": 0.03, "issue_opened": 0.03, "pr_opened": 0.02, "pr_merged": 0.01,
    "event_registered": 0.03, "event_attended": 0.02, "support_question": 0.03, "survey_response": 0.02,
    "review": 0.005, "referral": 0.005, "purchase": 0.01, "feature_request": 0.01,
}  # fmt: skip
TITLES = ["Engineer", "Senior Engineer", "Engineering Manager", "Director of IT", "VP Engineering", "CTO",
          "Student", None, "Developer Advocate", "Head of Data"]  # fmt: skip
TARGETS = {"full_s": 60.0, "full_peak_mib": 4096.0, "incremental_s": 2.0}


def _peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def generate(db: Path, members: int, activities: int, seed: int) -> float:
    """Build the database through the project's migrations, then bulk rows with plain sqlite3."""
    from sqlalchemy import create_engine

    from plugin.db.migrate import upgrade

    started = time.perf_counter()
    upgrade(create_engine(f"sqlite:///{db}"))
    rng = np.random.default_rng(seed)
    con = sqlite3.connect(db)
    con.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-262144;")
    stamp = NOW_US
    con.execute("INSERT INTO workspaces (id, slug, name, created_at) VALUES (1, 'bench', 'Bench', ?)",
                (NOW.isoformat(),))  # fmt: skip
    n_orgs = max(members // 20, 1)
    con.executemany(
        "INSERT INTO organizations (id, workspace_id, name, domain, size, industry, created_at, updated_at) "
        "VALUES (?, 1, ?, ?, ?, ?, ?, ?)",
        ((i, f"Org {i}", f"org{i}.example.com", int(rng.integers(5, 20000)),
          ("software", "retail", "fintech", "education")[i % 4], NOW.isoformat(), NOW.isoformat())
         for i in range(1, n_orgs + 1)),
    )  # fmt: skip
    org = rng.integers(1, n_orgs + 1, members)
    customer_org = rng.random(n_orgs + 1) < 0.1  # a tenth of the accounts are customers
    stage = np.where(customer_org[org] & (rng.random(members) < 0.5), "customer", "lead")
    con.executemany(
        "INSERT INTO members (id, workspace_id, display_name, primary_email, lifecycle_stage, title, "
        "organization_id, created_at, updated_at) VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?)",
        ((i + 1, f"Member {i}", f"m{i}@org{org[i]}.example.com", str(stage[i]), TITLES[i % len(TITLES)],
          int(org[i]), NOW.isoformat(), NOW.isoformat()) for i in range(members)),
    )  # fmt: skip
    con.executemany(
        "INSERT INTO identities (id, workspace_id, member_id, source, source_user_id, email, verified, "
        "created_at) VALUES (?, 1, ?, 'bench', ?, ?, 1, ?)",
        ((i + 1, i + 1, str(i), f"m{i}@org{org[i]}.example.com", NOW.isoformat()) for i in range(members)),
    )  # fmt: skip
    con.commit()
    indexes = con.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'activities' AND sql IS NOT NULL"
    ).fetchall()
    for (sql,) in indexes:  # rebuilt after the load, as the migrations define them
        con.execute("DROP INDEX " + sql.split()[2])
    names = list(TYPES)
    shares = np.array(list(TYPES.values()))
    shares /= shares.sum()
    weight = rng.pareto(1.2, members) + 0.2  # long tail: a few members do much of the activity
    weight /= weight.sum()
    chunk = 1_000_000
    for start in range(0, activities, chunk):
        n = min(chunk, activities - start)
        member = rng.choice(members, n, p=weight) + 1
        kind = rng.choice(len(names), n, p=shares)
        # Only people at customer accounts buy; elsewhere a purchase becomes a product-usage event.
        kind = np.where(
            (kind == names.index("purchase")) & ~customer_org[org[member - 1]],
            names.index("product_usage"),
            kind,
        )
        at = NOW_US - (rng.random(n) ** 1.5 * SPAN_DAYS * DAY_US).astype(np.int64)
        nps = rng.integers(0, 11, n)
        sentiment = np.round(rng.uniform(-1, 1, n), 2)
        props = [
            f'{{"nps": {nps[j]}}}' if names[k] == "survey_response" else
            f'{{"rating": {1 + nps[j] // 2}}}' if names[k] == "review" else
            f'{{"amount": {500 * (1 + nps[j])}, "currency": "USD"}}' if names[k] == "purchase" else "{}"
            for j, k in enumerate(kind.tolist())
        ]  # fmt: skip
        values = [  # as ingest stores them (plugin.services.columns.value_of)
            float(nps[j]) if names[k] == "survey_response" else
            float(1 + nps[j] // 2) if names[k] == "review" else
            float(500 * (1 + nps[j])) if names[k] == "purchase" else None
            for j, k in enumerate(kind.tolist())
        ]  # fmt: skip
        texts = np.where(rng.random(n) < 0.05, "What does enterprise pricing look like?", None)
        con.executemany(
            "INSERT INTO activities (id, workspace_id, source, source_activity_id, type, occurred_at, "
            "ingested_at, member_id, identity_id, text, properties, sentiment, value) "
            "VALUES (?, 1, 'bench', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            zip(range(start + 1, start + n + 1), map(str, range(start, start + n)),
                (names[k] for k in kind.tolist()), at.tolist(), [stamp] * n, member.tolist(), member.tolist(),
                texts.tolist(), props, np.where(kind == names.index("review"), sentiment, np.nan).tolist(),
                values, strict=True),
        )  # fmt: skip
        con.commit()
        print(f"  generated {start + n:,} activities", file=sys.stderr)
    con.execute("UPDATE activities SET sentiment = NULL WHERE sentiment != sentiment")
    for (sql,) in indexes:
        con.execute(sql)
    con.execute("ANALYZE")
    con.commit()
    con.close()
    return time.perf_counter() - started


def add_changes(db: Path, changed: int, seed: int) -> None:
    """New activity today from ``changed`` distinct members, as an ingest would store it."""
    rng = np.random.default_rng(seed + 1)
    con = sqlite3.connect(db)
    top = con.execute("SELECT max(id), max(member_id) FROM activities").fetchone()
    who = rng.choice(top[1], changed, replace=False) + 1
    con.executemany(
        "INSERT INTO activities (id, workspace_id, source, source_activity_id, type, occurred_at, "
        "ingested_at, member_id, identity_id, properties) "
        "VALUES (?, 1, 'bench', ?, 'post', ?, ?, ?, ?, '{}')",
        ((top[0] + 1 + i, f"new-{top[0] + i}", NOW_US - 3_600_000_000, NOW_US, int(m), int(m))
         for i, m in enumerate(who)),
    )  # fmt: skip
    con.commit()
    con.close()


def child(db: Path, full: bool) -> None:
    from plugin.db.engine import make_engine
    from plugin.db.migrate import upgrade
    from plugin.services.score_config import load_scoring_config
    from plugin.services.score_run import run_scoring
    from plugin.settings import Settings

    engine = make_engine(Settings(database_url=f"sqlite:///{db}"))
    upgrade(engine)  # a database kept from an earlier version gains the newer tables (as the CLI does)
    cfg = load_scoring_config()
    started = time.perf_counter()
    report = run_scoring(engine, 1, cfg, full=full, clock=lambda: NOW)
    seconds = time.perf_counter() - started
    import resource

    helper_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the reading helper
    out = {"seconds": seconds, "peak_mib": _peak_mib(), "helper_peak_mib": helper_mib,
           "peak_total_mib": _peak_mib() + helper_mib, "mode": report.mode,
           "members_scored": report.members_scored, "scored": report.scored,
           "events": dict(report.events)}  # fmt: skip
    print(json.dumps(out))


def run_child(db: Path, full: bool) -> dict[str, Any]:
    args = [sys.executable, "-m", "bench.score_bench", "--child", str(db)] + (["--full"] if full else [])
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"scoring subprocess failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.score_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--activities", type=int, default=20_000_000)
    parser.add_argument("--changed", type=int, default=10_000, help="members with new activity")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--db", type=Path, default=None, help="reuse or keep this database file")
    parser.add_argument("--json", action="store_true", help="also one JSON line on stdout (bench/figures.py)")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--full", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    if args.child:
        child(args.child, args.full)
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="flywheel-score-bench-"))
    db = args.db or workdir / "bench.db"
    gen_s = None
    if not db.exists():
        print(f"generating {args.members:,} members, {args.activities:,} activities ...", file=sys.stderr)
        gen_s = generate(db, args.members, args.activities, args.seed)
    figures: dict[str, Any] = {"members": args.members, "activities": args.activities, "generate_s": gen_s}
    print("full run ...", file=sys.stderr)
    figures["full"] = run_child(db, full=True)
    print("second full run (scores stored) ...", file=sys.stderr)
    figures["full_again"] = run_child(db, full=True)
    add_changes(db, args.changed, args.seed)
    print(f"incremental run ({args.changed:,} members changed) ...", file=sys.stderr)
    figures["incremental"] = run_child(db, full=False)
    figures["machine"] = {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                          "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
                          "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M")}  # fmt: skip
    human = sys.stderr if args.json else sys.stdout  # with --json, stdout carries the JSON line alone
    for key in ("full", "full_again", "incremental"):
        f = figures[key]
        print(f"{key:12} {f['mode']:12} {f['members_scored']:>10,} members  {f['seconds']:7.2f} s  "
              f"peak {f['peak_mib']:7.0f} MiB (+{f['helper_peak_mib']:.0f} MiB helper)  "
              f"events {sum(f['events'].values()):,}", file=human)  # fmt: skip
    print(f"targets: full <= {TARGETS['full_s']:.0f} s and <= {TARGETS['full_peak_mib']:.0f} MiB; "
          f"incremental <= {TARGETS['incremental_s']:.0f} s", file=human)  # fmt: skip
    if not args.db:
        print(f"(database kept in {db}; pass --db to reuse it)", file=sys.stderr)
    if args.json:
        at_scale = (args.members, args.activities, args.changed) == (1_000_000, 20_000_000, 10_000)
        emit(report("score", "bench.score_bench", figures_of(figures, args, at_scale), argv, figures))
    return 0


def figures_of(figures: dict[str, Any], args: argparse.Namespace, at_scale: bool) -> list[dict[str, Any]]:
    """The figures of ``--json``; the targets are checked only at the size the issue sets them for."""

    def bound(key: str) -> str | None:
        return f"<= {TARGETS[key]:g}" if at_scale else None

    size = f"{args.members:,} members / {args.activities:,} activities"
    full, again, incremental = figures["full"], figures["full_again"], figures["incremental"]
    return [
        figure(f"{size}: full run", round(full["seconds"], 2), "s", bound("full_s")),
        figure(
            f"{size}: full run, peak memory", round(full["peak_total_mib"]), "MiB", bound("full_peak_mib")
        ),
        figure(f"{size}: full run over stored scores", round(again["seconds"], 2), "s", bound("full_s")),
        figure(
            f"{size}: full run over stored scores, peak memory",
            round(again["peak_total_mib"]),
            "MiB",
            bound("full_peak_mib"),
        ),
        figure(
            f"{size}: incremental, {args.changed:,} changed",
            round(incremental["seconds"], 2),
            "s",
            bound("incremental_s"),
        ),
        figure(f"{size}: incremental, peak memory", round(incremental["peak_total_mib"]), "MiB"),
    ]


if __name__ == "__main__":
    raise SystemExit(main())
