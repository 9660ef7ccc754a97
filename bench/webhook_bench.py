"""Outgoing webhook delivery: signed deliveries per second from the outbox to a local receiver,
and the delay from enqueue to first attempt under a steady load.

Phase 1 (drain): N messages are enqueued, then W worker processes deliver them; the figure is
messages delivered per second of wall time. Phase 2 (live): the workers run while messages are
enqueued at a steady rate (one transaction per 50 ms); the figure is p50/p99 of first attempt
minus enqueue, read from the attempt log. The receiver verifies every signature and runs in its
own process, as a real one is elsewhere.

    python -m bench.webhook_bench                                  # SQLite, one worker
    python -m bench.webhook_bench --db postgres --workers 2        # the local PostgreSQL
    python -m bench.webhook_bench --messages 50000 --json   # + one JSON line
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.figures import emit, figure, report

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_BENCH_DB = "flywheel_webhook_bench"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _database(kind: str, workdir: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}"
    import psycopg

    with psycopg.connect(PG_ADMIN.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_BENCH_DB}")
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + PG_BENCH_DB


def _env(url: str, workdir: Path) -> dict[str, str]:
    from cryptography.fernet import Fernet

    return {
        "FLYWHEEL_DATABASE_URL": url,
        "FLYWHEEL_SECRET_KEY": Fernet.generate_key().decode(),
        "FLYWHEEL_SECRET_KEY_FILE": str(workdir / "secret"),
        "FLYWHEEL_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "FLYWHEEL_WEBHOOK_ALLOW_HTTP": "1",
    }


def work(env: dict[str, str], threads: int, stop: Any, counts: Any) -> None:
    """In a child: one worker until ``stop`` is set."""
    os.environ.update(env)
    from plugin.db.engine import make_engine
    from plugin.services.webhook_worker import Worker
    from plugin.settings import load_settings

    settings = load_settings()
    worker = Worker(make_engine(settings), settings, threads=threads)
    event = threading.Event()
    threading.Thread(target=lambda: (stop.wait(), event.set()), daemon=True).start()
    tally = worker.run(stop=event)
    counts.put(dict(tally))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--live-rate", type=int, default=500, help="messages per second in phase 2")
    parser.add_argument("--live-seconds", type=float, default=10.0)
    parser.add_argument("--json", action="store_true", help="also one JSON line on stdout (bench/figures.py)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="flywheel-webhook-bench-") as tmp:
        workdir = Path(tmp)
        url = _database(args.db, workdir)
        env = _env(url, workdir)
        os.environ.update(env)
        from plugin.db.engine import make_engine, make_sessionmaker
        from plugin.db.migrate import upgrade
        from plugin.services.webhook_endpoints import add_endpoint
        from plugin.services.workspaces import ensure_workspace
        from plugin.settings import load_settings

        settings = load_settings()
        engine = make_engine(settings)
        upgrade(engine)
        port = _free_port()
        with make_sessionmaker(engine)() as session:
            workspace, _ = ensure_workspace(session, "bench", "Bench")
            created = add_endpoint(
                session, settings, workspace.id, f"http://127.0.0.1:{port}/hook", events="advocate.promoted"
            )
            session.commit()
            workspace_id, secret = workspace.id, created.secret
        receiver = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.webhook_receiver", "--port", str(port), "--secret", secret],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert receiver.stdout is not None
        receiver.stdout.readline()
        try:
            result = _measure(args, engine, workspace_id, env, port)
        finally:
            receiver.terminate()
            receiver.wait(10)
    _report(args, result)


def _measure(args: Any, engine: Any, workspace_id: int, env: dict[str, str], port: int) -> dict[str, Any]:
    from plugin.services.webhook_outbox import Event, emit
    from webhooks.events import MemberRef, advocate_promoted

    def events(n: int, offset: int) -> list[Event]:
        now = datetime.now(UTC)
        return [
            Event(
                "advocate.promoted",
                advocate_promoted(
                    workspace="bench",
                    occurred_at=now,
                    member=MemberRef(offset + i + 1, f"Member {offset + i + 1}", "en"),
                    score=91.5,
                    level="champion",
                    previous_level="advocate",
                    reasons=["Answered 14 questions in the last 30 days", "Wrote 2 reviews"],
                    crm={"hubspot": str(1000 + offset + i)},
                    links={},
                ),
            )
            for i in range(n)
        ]

    started = time.perf_counter()
    for start in range(0, args.messages, 1000):
        with engine.begin() as conn:
            emit(conn, workspace_id, events(min(1000, args.messages - start), start))
    enqueue_s = time.perf_counter() - started

    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    counts: Any = ctx.Queue()
    workers = [ctx.Process(target=work, args=(env, args.threads, stop, counts)) for _ in range(args.workers)]
    started = time.perf_counter()
    for p in workers:
        p.start()
    total = args.messages
    while _delivered(engine) < total:
        time.sleep(0.05)
    drain_s = time.perf_counter() - started

    # Phase 2: a steady load while the workers run.
    live_from = datetime.now(UTC)
    per_tick = max(1, int(args.live_rate * 0.05))
    ticks = int(args.live_seconds / 0.05)
    next_tick = time.perf_counter()
    for tick in range(ticks):
        with engine.begin() as conn:
            emit(conn, workspace_id, events(per_tick, total + tick * per_tick))
        next_tick += 0.05
        time.sleep(max(0.0, next_tick - time.perf_counter()))
    total += ticks * per_tick
    while _delivered(engine) < total:
        time.sleep(0.05)
    stop.set()
    tallies = [counts.get(timeout=60) for _ in workers]
    for p in workers:
        p.join(30)
    stats = json.loads(_get(port, "/stats"))
    latency = _latency(engine, live_from)
    return {
        "database": args.db,
        "workers": args.workers,
        "threads_per_worker": args.threads,
        "messages": args.messages,
        "enqueue_per_s": round(args.messages / enqueue_s),
        "delivered_per_s": round(args.messages / drain_s),
        "live_rate_per_s": args.live_rate,
        "enqueue_to_first_attempt_ms": latency,
        "receiver": stats,
        "worker_outcomes": tallies,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def _report(args: Any, result: dict[str, Any]) -> None:
    latency = result["enqueue_to_first_attempt_ms"]
    stats = result["receiver"]
    out = sys.stderr if args.json else sys.stdout  # with --json, stdout carries the JSON line alone
    print(
        f"{args.db}, {args.workers} worker(s) x {args.threads} threads, {args.messages:,} messages", file=out
    )
    print(f"  enqueue            {result['enqueue_per_s']:>8,} messages/s", file=out)
    print(
        f"  delivered          {result['delivered_per_s']:>8,} messages/s (signed, verified by the receiver)",
        file=out,
    )
    print(
        f"  enqueue -> attempt p50 {latency['p50']:.0f} ms, p99 {latency['p99']:.0f} ms, "
        f"max {latency['max']:.0f} ms at {args.live_rate}/s",
        file=out,
    )
    print(f"  receiver           {stats}", file=out)
    print(f"  machine            {result['machine']}, {result['date']}", file=out)
    if args.json:
        emit(report(f"webhook-{args.db}", "bench.webhook_bench", figures_of(args, result), None, result))


def figures_of(args: Any, result: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 5: at least 1,000 deliveries/s on PostgreSQL (checked for the 20,000-message drain with
    two or more workers), p99 from enqueue to first attempt under 1 s."""
    latency = result["enqueue_to_first_attempt_ms"]
    run = f"{args.db}, {args.workers} worker(s)"
    rate_bound = (
        ">= 1000" if args.db == "postgres" and args.messages >= 20_000 and args.workers >= 2 else None
    )
    live = f"at {args.live_rate}/s offered"
    return [
        figure(f"{run}: enqueue, {args.messages:,} messages", result["enqueue_per_s"], "messages/s"),
        figure(f"{run}: delivered, {args.messages:,} messages", result["delivered_per_s"], "deliveries/s",
               rate_bound),
        figure(f"{run}: enqueue to first attempt p50, {live}", round(latency["p50"], 1), "ms"),
        figure(f"{run}: enqueue to first attempt p99, {live}", round(latency["p99"], 1), "ms", "< 1000"),
        figure(f"{run}: enqueue to first attempt max, {live}", round(latency["max"], 1), "ms"),
    ]  # fmt: skip


def _delivered(engine: Any) -> int:
    from sqlalchemy import text

    with engine.connect() as conn:
        return int(
            conn.execute(text("SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'")).scalar()
        )


def _latency(engine: Any, since: datetime) -> dict[str, float]:
    import numpy as np
    from sqlalchemy import select

    from plugin.db.models import WebhookAttempt, WebhookDelivery, WebhookMessage

    with engine.connect() as conn:
        rows = conn.execute(
            select(WebhookMessage.created_at, WebhookAttempt.attempted_at)
            .join(WebhookDelivery, WebhookDelivery.message_id == WebhookMessage.id)
            .join(WebhookAttempt, WebhookAttempt.delivery_id == WebhookDelivery.id)
            .where(WebhookAttempt.attempt == 1, WebhookMessage.created_at >= since)
        ).all()
    waits = np.array([(b - a).total_seconds() * 1000 for a, b in rows])
    return {
        "p50": float(np.percentile(waits, 50)),
        "p99": float(np.percentile(waits, 99)),
        "max": float(waits.max()),
        "n": len(waits),
    }


def _get(port: int, path: str) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return str(response.read().decode())


if __name__ == "__main__":
    main()
