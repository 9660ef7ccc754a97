"""What the CRM's deals add to a scoring run: reading N deals and turning them into renewal dates
and open-deal counts for a few members (an incremental run) and for a million (a full run).

Usage: ``python -m bench.deals_bench [--deals N] [--db sqlite|postgres] [--json]``. The deals name
two random members of 200,000 and one of 5,000 companies; a third are won, half closed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.figures import emit, figure, report

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _deal(i: int, connection_id: int, rng: np.random.Generator) -> dict[str, Any]:
    name = f"Deal {i}" + (" renewal" if i % 7 == 0 else "")
    return {
        "connection_id": connection_id,
        "crm_id": f"d{i}",
        "name": name,
        "stage": "s",
        "won": i % 3 == 0,
        "closed": i % 2 == 0,
        "amount": 1000.0,
        "close_date": f"2026-{1 + i % 12:02d}-15",
        "member_ids": rng.integers(1, 200_000, 2).tolist(),
        "company_ids": [f"c{i % 5000}"],
        "read_at": NOW,
        "changed_at": NOW,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.deals_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--json", action="store_true", help="also one JSON line on stdout (bench/figures.py)")
    args = parser.parse_args(argv)

    from sqlalchemy import text

    from plugin.db.base import table_of, to_micros
    from plugin.db.engine import make_engine
    from plugin.db.migrate import upgrade
    from plugin.db.models import CrmDeal
    from plugin.db.sql import insert_rows
    from plugin.services.crm_connections import save_connection
    from plugin.services.score_deals import deal_signals
    from plugin.services.workspaces import ensure_workspace
    from plugin.settings import load_settings

    workdir = Path(tempfile.mkdtemp(prefix="flywheel-deals-bench-"))
    url = f"sqlite:///{workdir / 'bench.db'}" if args.db == "sqlite" else PG_URL
    schema = f"deals_bench_{int(time.time())}"
    from cryptography.fernet import Fernet

    env = {"FLYWHEEL_DATABASE_URL": url, "FLYWHEEL_SECRET_KEY": Fernet.generate_key().decode()}
    if args.db == "postgres":  # a scratch schema, dropped at the end
        admin = make_engine(load_settings(env))
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        env["FLYWHEEL_DATABASE_URL"] = f"{url}?options=-csearch_path%3D{schema}"
    settings = load_settings(env)
    engine = make_engine(settings)
    try:
        upgrade(engine)
        from sqlalchemy.orm import Session

        with Session(engine) as session:
            workspace, _ = ensure_workspace(session, "bench", "Bench")
            session.commit()
            ws = workspace.id
        connection = save_connection(
            engine, settings, ws, "hubspot", {"token": "bench"}, "http://127.0.0.1:9"
        )
        rng = np.random.default_rng(7)
        rows = [_deal(i, connection.id, rng) for i in range(args.deals)]
        with engine.begin() as conn:
            insert_rows(conn, table_of(CrmDeal), rows)
        timings: dict[str, float] = {}
        for label, members in (("incremental", 10_000), ("full", 1_000_000)):
            ids = np.arange(1, members + 1, dtype=np.int64)
            orgs = np.arange(1, members // 20 + 1, dtype=np.int64)
            best = float("inf")
            for _ in range(3):
                with engine.connect() as conn:
                    started = time.perf_counter()
                    deal_signals(conn, ws, ids, orgs, (ids - 1) // 20, to_micros(NOW))
                    best = min(best, time.perf_counter() - started)
            timings[label] = best
            print(f"{args.deals:,} deals, {members:,} members ({label}): {best:.3f} s", file=sys.stderr)
    finally:
        engine.dispose()
        if args.db == "postgres":
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    if args.json:
        name = f"deals: {args.deals:,} CRM deals, {args.db}"
        emit(
            report(
                "deals",
                "bench.deals_bench",
                [
                    figure(f"{name}: deal signals for 10,000 members", timings["incremental"], "s"),
                    figure(f"{name}: deal signals for 1,000,000 members", timings["full"], "s"),
                ],
                argv,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
