"""API latency: p50/p95/p99 and throughput of the main read endpoints under `flywheel serve`.

The bench builds a demo community (``plugin.services.demo``: the same generator and the same ingest,
suggestions, organizations, consents and scoring stages as ``flywheel demo``, at a small size) in a
fresh database: a new PostgreSQL database on the local server, dropped at the end, or a temporary
SQLite file with ``--db sqlite``. It issues an admin API token, starts ``flywheel serve`` (gunicorn,
``--workers`` processes) with ``FLYWHEEL_API_RATE_LIMIT`` raised out of the way, then, endpoint by
endpoint, runs a closed loop: ``--clients`` threads, each sending its next request as soon as the last
one answered, for ``--seconds`` (after ``--warmup`` seconds not counted). Latency is the time from
sending a request to having read its whole body; throughput is answers per second of the window.

Endpoints (docs/api.md): member search (``GET /members?q=``, names drawn from the data), member
detail (``GET /members/{id}``), timeline (``GET /members/{id}/timeline``), ranked scores (``GET
/scores/{advocate|lead|churn}``) and organizations (``GET /organizations``, by id or by churn).

    python -m bench.api_bench                                   # PostgreSQL, 5,000 members
    python -m bench.api_bench --db sqlite --members 1000 --activities 20000 --seconds 3
    python -m bench.api_bench --clients 16 --workers 4 --json   # + one JSON line on stdout
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from bench.figures import emit, figure, report

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
REPO_ROOT = Path(__file__).resolve().parent.parent
RATE_LIMIT = "100000000 per minute"  # the bench measures the API, not the per-token limiter
PAGE = 50
STAGES = ("ingest", "suggestions", "organizations", "consents", "scores")  # of flywheel demo's stages


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    """A fresh database URL for the run; a PostgreSQL database is dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'api-bench.db'}"
        return
    import psycopg

    name = f"flywheel_api_bench_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield "postgresql+psycopg://" + PG_ADMIN.removeprefix("postgresql://").rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def build(env: dict[str, str], members: int, activities: int, seed: int) -> dict[str, Any]:
    """The demo community's data stages, then an admin token; what the clients will ask for."""
    from sqlalchemy import func, select

    from plugin.db.engine import make_engine, make_sessionmaker
    from plugin.db.migrate import upgrade
    from plugin.db.models import Activity, Member, Organization
    from plugin.demo.community import DemoConfig
    from plugin.services import demo
    from plugin.services.workspaces import ensure_workspace, issue_token
    from plugin.settings import load_settings

    settings = load_settings(env)
    engine = make_engine(settings)
    upgrade(engine)
    with make_sessionmaker(engine)() as session:
        workspace, _ = ensure_workspace(session, "bench", "API bench")
        token = issue_token(session, workspace, "admin", "api bench").token
        session.commit()
        workspace_id = workspace.id
    run = demo.DemoRun(
        config=DemoConfig(seed=seed, members=members, activities=activities),
        workspace_id=workspace_id,
        engine=engine,
        progress=lambda *_: None,
        settings=settings,
    )
    timings: dict[str, float] = {}
    for name, stage in demo.STAGES:
        if name not in STAGES:
            continue
        started = time.perf_counter()
        stage(run)
        timings[name] = round(time.perf_counter() - started, 2)
        _log(f"  {name}: {timings[name]} s")
    with engine.connect() as conn:
        active = conn.execute(
            select(Activity.member_id, func.count())
            .where(Activity.workspace_id == workspace_id)
            .group_by(Activity.member_id)
        ).all()
        names = conn.scalars(
            select(Member.display_name).where(
                Member.workspace_id == workspace_id, Member.merged_into_id.is_(None)
            )
        ).all()
        counts = {
            "members": conn.scalar(
                select(func.count()).select_from(Member).where(Member.workspace_id == workspace_id)
            ),
            "activities": sum(n for _, n in active),
            "organizations": conn.scalar(
                select(func.count())
                .select_from(Organization)
                .where(Organization.workspace_id == workspace_id)
            ),
        }
    engine.dispose()
    words = sorted({w[:4].lower() for name in names if name for w in name.split() if len(w) >= 4})
    return {
        "token": token,
        "member_ids": [m for m, _ in active],
        "words": words or ["a"],
        "counts": counts,
        "timings": timings,
    }


def endpoints(data: dict[str, Any]) -> list[tuple[str, Callable[[random.Random], str]]]:
    """(name, a function giving the next path) for each measured endpoint."""
    ids, words = data["member_ids"], data["words"]
    return [
        ("member search", lambda r: f"/api/v1/members?q={quote(r.choice(words))}&limit={PAGE}"),
        ("member detail", lambda r: f"/api/v1/members/{r.choice(ids)}"),
        ("timeline", lambda r: f"/api/v1/members/{r.choice(ids)}/timeline?limit={PAGE}"),
        ("scores lists", lambda r: f"/api/v1/scores/{r.choice(('advocate', 'lead', 'churn'))}?limit={PAGE}"),
        ("organizations", lambda r: f"/api/v1/organizations?limit={PAGE}" + r.choice(("", "&sort=churn"))),
    ]


@contextmanager
def server(env: dict[str, str], port: int, workers: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``flywheel serve`` (gunicorn) in its own process group; stopped (the whole group) on exit."""
    flywheel = Path(sys.executable).with_name("flywheel")
    command = [str(flywheel)] if flywheel.exists() else [shutil.which("flywheel") or "flywheel"]
    command += ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            command,
            env={**os.environ, **env},
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,  # gunicorn's access log: one line per request
            stderr=err,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def wait_ready(proc: subprocess.Popen[bytes], port: int, token: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"flywheel serve exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/v1/members?limit=1", headers={"Authorization": f"Bearer {token}"})
            status = conn.getresponse().status
            conn.close()
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"flywheel serve did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def closed_loop(
    port: int, token: str, path: Callable[[random.Random], str], clients: int, warmup: float, seconds: float
) -> dict[str, Any]:
    """``clients`` threads, each one request at a time, for warmup + seconds; the window's answers."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    start = time.perf_counter()
    window = (start + warmup, start + warmup + seconds)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[dict[str, int]] = [{} for _ in range(clients)]

    def client(i: int) -> None:
        rng = random.Random(i)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            sent = time.perf_counter()
            if sent >= window[1]:
                break
            try:
                conn.request("GET", path(rng), headers=headers)
                response = conn.getresponse()
                response.read()
                status: int | str = response.status
            except Exception as exc:  # counted as an error of its kind, never lost
                conn.close()  # the next request reconnects
                status = type(exc).__name__
            done = time.perf_counter()
            if window[0] <= sent and done <= window[1]:
                if status == 200:
                    latencies[i].append(done - sent)
                else:
                    errors[i][str(status)] = errors[i].get(str(status), 0) + 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ms = np.array([x for per in latencies for x in per]) * 1000
    failed: dict[str, int] = {}
    for per in errors:
        for key, n in per.items():
            failed[key] = failed.get(key, 0) + n
    return {
        "requests": int(ms.size),
        "per_s": ms.size / seconds,
        "p50_ms": float(np.percentile(ms, 50)) if ms.size else float("nan"),
        "p95_ms": float(np.percentile(ms, 95)) if ms.size else float("nan"),
        "p99_ms": float(np.percentile(ms, 99)) if ms.size else float("nan"),
        "max_ms": float(ms.max()) if ms.size else float("nan"),
        "errors": failed,
    }


def figures_of(results: dict[str, dict[str, Any]], clients: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, r in results.items():
        at = f"{name}, {clients} clients"
        out += [
            figure(f"{at}: p50", round(r["p50_ms"], 1), "ms"),
            figure(f"{at}: p95", round(r["p95_ms"], 1), "ms"),
            figure(f"{at}: p99", round(r["p99_ms"], 1), "ms"),
            figure(f"{at}: throughput", round(r["per_s"], 1), "requests/s"),
        ]
    errors = sum(sum(r["errors"].values()) for r in results.values())
    out.append(figure("answers other than 200", errors, "", "== 0"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.api_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--members", type=int, default=5_000, help="demo community size (people)")
    parser.add_argument("--activities", type=int, default=200_000, help="demo community size (activities)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (closed loop)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per endpoint")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds per endpoint before measuring")
    parser.add_argument("--json", action="store_true", help="also one JSON line on stdout (bench/figures.py)")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    # a plain `kill` still stops the server and drops the database (the finally blocks run)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))

    from cryptography.fernet import Fernet

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="flywheel-api-bench-") as tmp:
        workdir = Path(tmp)
        with database(args.db, workdir) as url:
            env = {
                "FLYWHEEL_DATABASE_URL": url,
                "FLYWHEEL_SECRET_KEY": Fernet.generate_key().decode(),
                "FLYWHEEL_SECRET_KEY_FILE": str(workdir / "secret"),
                "FLYWHEEL_API_RATE_LIMIT": RATE_LIMIT,
            }
            _log(f"building a demo community ({args.members:,} people, {args.activities:,} activities) ...")
            started = time.perf_counter()
            data = build(env, args.members, args.activities, args.seed)
            build_s = time.perf_counter() - started
            port = _free_port()
            log = workdir / "serve.log"
            _log(f"starting flywheel serve ({args.workers} workers) on port {port} ...")
            with server(env, port, args.workers, log) as proc:
                wait_ready(proc, port, data["token"], log)
                for name, path in endpoints(data):
                    _log(f"{name}: {args.clients} clients for {args.warmup:g} + {args.seconds:g} s ...")
                    results[name] = closed_loop(
                        port, data["token"], path, args.clients, args.warmup, args.seconds
                    )

    out = sys.stderr if args.json else sys.stdout  # with --json, stdout carries the JSON line alone
    counts = data["counts"]
    print(
        f"API latency, {args.db}, flywheel serve with {args.workers} gunicorn workers, {args.clients} "
        f"clients (closed loop), {args.seconds:g} s per endpoint; community of {counts['members']:,} "
        f"members, {counts['activities']:,} activities, {counts['organizations']:,} organizations "
        f"(built in {build_s:.1f} s)",
        file=out,
    )
    print(
        f"  {'endpoint':16} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}  errors",
        file=out,
    )
    for name, r in results.items():
        print(
            f"  {name:16} {r['per_s']:8.1f} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f} {r['p99_ms']:8.1f} "
            f"{r['max_ms']:8.1f}  {r['errors'] or ''}",
            file=out,
        )
    if args.json:
        details = {
            "database": args.db,
            "workers": args.workers,
            "clients": args.clients,
            "seconds": args.seconds,
            "warmup": args.warmup,
            "community": counts,
            "build_seconds": round(build_s, 2),
            "build_timings": data["timings"],
            "endpoints": results,
        }
        emit(report("api", "bench.api_bench", figures_of(results, args.clients), argv, details))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
