"""CRM sync throughput: N changed members pushed to the HubSpot sandbox enforcing HubSpot's
ten-second limit (190 calls), in records per second against the ceiling (190 x 100 / 10 s); or to
the Salesforce fake, by sObject Collections or by one Bulk API 2.0 job.

The CRM runs in its own process, as a real CRM is elsewhere: its request handling does not share
this process's CPU (the GIL). The database is a temporary SQLite file with N members, their
activities and their scores.

    python -m bench.crm_bench                # 20,000 members to HubSpot
    python -m bench.crm_bench --crm salesforce --path collections
    python -m bench.crm_bench --crm salesforce --path bulk --json
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.figures import emit, figure, report

TOKEN = "bench-token"
WINDOW_MAX = 190
CEILING = WINDOW_MAX * 100 / 10  # records per second: 190 calls of 100 per ten seconds


def serve(pipe: Connection, window_max: int) -> None:
    """In the child: a sandbox until the parent says stop; reports its call counts."""
    from plugin.sandbox.hubspot import HubSpotSandbox

    with HubSpotSandbox((TOKEN,), ten_second_max=window_max) as sandbox:
        pipe.send(sandbox.base_url)
        pipe.recv()
        counts = {f"{m} {r}": n for (m, r), n in sandbox.calls.items()}
        rejected = sum(1 for c in sandbox.call_log if c.status == 429)
        pipe.send({"calls": counts, "rate_limited": rejected, "contacts": len(sandbox.store.all("contacts"))})


def serve_salesforce(pipe: Connection) -> None:
    """In the child: the Salesforce fake with Flywheel's fields, until the parent says stop."""
    from connectors.crm.salesforce import EXTERNAL_ID, sf_name
    from plugin.services.crm_fields import FIELDS
    from tests.fakes.salesforce import SalesforceFake

    types = {"string": "string", "text": "textarea", "number": "double", "datetime": "datetime"}
    with SalesforceFake(daily_api_limit=1_000_000) as fake:
        for sobject in ("Contact", "Lead"):
            fake.add_field(sobject, EXTERNAL_ID, external_id=True, unique=True)
            for spec in FIELDS[1:]:
                fake.add_field(sobject, sf_name(spec.name), type=types[spec.kind])
        pipe.send((fake.instance_url, fake.netloc, fake.ca_bundle, fake.issue_session()))
        pipe.recv()
        counts = {f"{m} {r}": n for (m, r), n in fake.calls.items()}
        pipe.send({"calls": counts, "leads": len(fake.records("Lead"))})


def build(db: Path, members: int) -> None:
    from sqlalchemy.orm import Session

    from connectors.records import parse_record
    from plugin.db.engine import make_engine
    from plugin.db.migrate import upgrade
    from plugin.services.ingest import Ingestor
    from plugin.services.score_config import load_scoring_config
    from plugin.services.score_run import run_scoring
    from plugin.services.workspaces import ensure_workspace
    from plugin.settings import load_settings

    settings = load_settings(
        {"FLYWHEEL_DATABASE_URL": f"sqlite:///{db}", "FLYWHEEL_SECRET_KEY_FILE": str(db) + ".key"}
    )
    engine = make_engine(settings)
    upgrade(engine)
    with Session(engine) as session:
        ws, _ = ensure_workspace(session, "default", "Default")
        session.commit()
        ws_id = ws.id
    rows = (
        {"source": "discourse", "id": f"p{i}-{k}", "type": kind,
         "occurred_at": f"2026-05-{1 + (i + k) % 28:02d}T10:00:00Z",
         "member": {"email": f"person{i}@corp{i % 997}.io", "name": f"Person {i}"}}
        for i in range(members)
        for k, kind in enumerate(("post", "answer") if i % 3 else ("reaction",))
    )  # fmt: skip
    with Ingestor(engine, ws_id) as ingestor:
        ingestor.add_many(parse_record(r) for r in rows)
    run_scoring(engine, ws_id, load_scoring_config(), full=True)
    engine.dispose()


def measure(db: Path, kind: str, make_adapter: Callable[[], Any]) -> dict[str, Any]:
    from plugin.db.engine import make_engine
    from plugin.services.crm_connections import save_connection
    from plugin.services.crm_sync import sync_crm
    from plugin.settings import load_settings

    settings = load_settings(
        {"FLYWHEEL_DATABASE_URL": f"sqlite:///{db}", "FLYWHEEL_SECRET_KEY_FILE": str(db) + ".key"}
    )
    engine = make_engine(settings)
    save_connection(engine, settings, 1, kind, {"token": TOKEN}, None)
    started = time.perf_counter()
    report = sync_crm(engine, settings, 1, adapter=make_adapter())
    seconds = time.perf_counter() - started
    again_started = time.perf_counter()
    again = sync_crm(engine, settings, 1, adapter=make_adapter())
    return {
        "seconds": seconds,
        "records_per_s": (report.counts["created"] + report.counts["updated"]) / seconds,
        "phases": report.phases,
        "contacts_records_per_s": (report.counts["created"] + report.counts["updated"])
        / report.phases["contacts"],
        "counts": dict(report.counts),
        "calls": report.calls,
        "resync_seconds": time.perf_counter() - again_started,
        "resync_counts": dict(again.counts),
        "resync_calls": again.calls,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.crm_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--window-max", type=int, default=WINDOW_MAX)
    parser.add_argument("--crm", choices=["hubspot", "salesforce"], default="hubspot")
    parser.add_argument(
        "--path", choices=["collections", "bulk"], default="collections", help="Salesforce only"
    )
    parser.add_argument("--json", action="store_true", help="also one JSON line on stdout (bench/figures.py)")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    workdir = Path(tempfile.mkdtemp(prefix="flywheel-crm-bench-"))
    db = workdir / "bench.db"
    print(f"building {args.members:,} scored members ...", file=sys.stderr)
    build(db, args.members)
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    if args.crm == "hubspot":
        server = ctx.Process(target=serve, args=(child, args.window_max), daemon=True)
        server.start()
        base_url = parent.recv()
        print(f"syncing to the sandbox at {base_url} ({args.window_max} calls per 10 s) ...", file=sys.stderr)

        def make_adapter() -> Any:
            from connectors.crm.hubspot import HubSpotAdapter

            return HubSpotAdapter(TOKEN, host=base_url)
    else:
        server = ctx.Process(target=serve_salesforce, args=(child,), daemon=True)
        server.start()
        instance_url, netloc, ca_bundle, session_id = parent.recv()
        print(f"syncing to the Salesforce fake at {instance_url} by {args.path} ...", file=sys.stderr)

        def make_adapter() -> Any:
            import requests
            from simple_salesforce.api import Salesforce

            from connectors.crm.salesforce import SalesforceAdapter
            from tests.fakes.salesforce import LoginHostAdapter

            session = requests.Session()
            session.trust_env = False
            session.mount("https://", LoginHostAdapter(netloc, ca_bundle))
            client = Salesforce(instance_url=instance_url, session_id=session_id, session=session)
            bulk = 2_000 if args.path == "bulk" else args.members + 1
            return SalesforceAdapter(client, bulk_threshold=bulk, bulk_poll_s=1)

    figures = measure(db, args.crm, make_adapter)
    parent.send("stop")
    figures["crm_side"] = parent.recv()
    server.join(10)
    ceiling = args.window_max * 100 / 10 if args.crm == "hubspot" else None
    figures |= {
        "crm": args.crm,
        "path": args.path if args.crm == "salesforce" else "batch upsert",
        "members": args.members,
        "ceiling_records_per_s": ceiling,
        "share_of_ceiling": figures["records_per_s"] / ceiling if ceiling else None,
        "machine": {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M")},
    }  # fmt: skip
    share = f", {figures['share_of_ceiling']:.1%} of the {ceiling:,.0f}/s ceiling" if ceiling else ""
    phases = ", ".join(f"{k} {v:.2f} s" for k, v in figures["phases"].items())
    share += f" (members alone {figures['contacts_records_per_s']:,.0f}/s; {phases})"
    writes = sum(v for k, v in figures["resync_calls"].items() if "upsert" in k or "collections" in k)
    print(
        f"{args.crm} ({figures['path']}): {args.members:,} members in {figures['seconds']:.2f} s: "
        f"{figures['records_per_s']:,.0f} records/s{share}; {sum(figures['calls'].values())} calls; "
        f"failed {figures['counts'].get('failed', 0)}; re-sync {figures['resync_seconds']:.2f} s, "
        f"{writes} write calls",
        file=sys.stderr if args.json else sys.stdout,  # with --json, stdout carries the JSON line alone
    )
    if args.json:
        figures["resync_write_calls"] = writes
        bench = "crm-hubspot" if args.crm == "hubspot" else f"crm-salesforce-{args.path}"
        emit(report(bench, "bench.crm_bench", figures_of(figures, args), argv, figures))
    return 0


def figures_of(figures: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Issue 4: at least 1,800 records/s (HubSpot: and 95% of its ceiling) for 20,000 members, no
    failure; the rates are checked only at that size (a small run ends inside HubSpot's window)."""
    at_scale = args.members >= 20_000
    n = f"{args.members:,} members, {figures['path']}"
    out = [
        figure(f"{n}: whole sync", round(figures["records_per_s"]), "records/s"),
        figure(
            f"{n}: members phase", round(figures["contacts_records_per_s"]), "records/s",
            ">= 1800" if at_scale else None,
        ),
    ]  # fmt: skip
    if figures["share_of_ceiling"] is not None:
        members_share = figures["contacts_records_per_s"] / figures["ceiling_records_per_s"] * 100
        out.append(
            figure(f"{n}: members phase, share of the ceiling", round(members_share, 1), "%",
                   ">= 95" if at_scale else None)
        )  # fmt: skip
    out += [
        figure(f"{n}: failed records", figures["counts"].get("failed", 0), "", "== 0"),
        figure(f"{n}: re-sync", round(figures["resync_seconds"], 2), "s"),
        figure(f"{n}: re-sync write calls", figures["resync_write_calls"], "", "== 0"),
    ]
    return out


if __name__ == "__main__":
    raise SystemExit(main())
