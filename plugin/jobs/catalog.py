"""Every job a worker runs, with its default interval. Each is idempotent and safe to run twice at
once: the work it does is claimed row by row (webhook deliveries), leased (a CRM connection), or
changes nothing the second time (scoring, reward holds, panel reminders)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Engine, select

from plugin.db.models import CrmConnection, Panel, PanelMember
from plugin.settings import Settings

Summary = dict[str, Any]


@dataclass(frozen=True)
class JobContext:
    engine: Engine
    settings: Settings
    workspace_id: int | None
    now: datetime
    #: set when the worker is asked to stop: long jobs finish their current step and return
    stop: threading.Event


@dataclass(frozen=True)
class JobSpec:
    name: str
    scope: Literal["workspace", "global"]
    every_s: int
    what: str
    run: Callable[[JobContext], Summary]


class Skipped(Exception):
    """Nothing to do for this scope (no CRM connected, say): recorded as ``skipped``, not failed."""


def _ws(ctx: JobContext) -> int:
    assert ctx.workspace_id is not None
    return ctx.workspace_id


def _score(ctx: JobContext) -> Summary:
    from plugin.services.score_config import load_scoring_config
    from plugin.services.score_run import run_scoring

    report = run_scoring(
        ctx.engine,
        _ws(ctx),
        load_scoring_config(ctx.settings.scoring_config),
        public_url=ctx.settings.public_url,
    )
    return {"mode": report.mode, "members_scored": report.members_scored, "events": dict(report.events)}


def _crm_kinds(ctx: JobContext) -> list[str]:
    with ctx.engine.connect() as conn:
        kinds = list(
            conn.execute(
                select(CrmConnection.kind)
                .where(CrmConnection.workspace_id == _ws(ctx))
                .order_by(CrmConnection.kind)
            ).scalars()
        )
    if not kinds:
        raise Skipped("no CRM connected (`flywheel crm connect`)")
    return kinds


def _crm_sync(ctx: JobContext) -> Summary:
    from plugin.services.crm_sync import sync_crm

    out: Summary = {}
    for kind in _crm_kinds(ctx):
        report = sync_crm(ctx.engine, ctx.settings, _ws(ctx), kind=kind)
        out[kind] = {k: v for k, v in report.counts.items() if v}
    return out


def _crm_pull(ctx: JobContext) -> Summary:
    from plugin.services.crm_pull import pull_crm

    out: Summary = {}
    for kind in _crm_kinds(ctx):
        out[kind] = pull_crm(ctx.engine, ctx.settings, _ws(ctx), kind=kind).as_dict()
    return out


def _panel_reminders(ctx: JobContext) -> Summary:
    from plugin.services import panel_invites
    from plugin.services.program_rules import load_programs, load_rules

    pm = PanelMember
    with ctx.engine.connect() as conn:
        panels = list(
            conn.execute(
                select(Panel.id)
                .where(Panel.workspace_id == _ws(ctx), Panel.status != "closed")
                .where(select(pm.panel_id).where(pm.panel_id == Panel.id, pm.status == "invited").exists())
                .order_by(Panel.id)
            ).scalars()
        )  # fmt: skip
    if not panels:
        raise Skipped("no panel waits for answers")
    policy, rules = load_programs(ctx.settings.programs_config), load_rules(ctx.settings.programs_config)
    reminded = expired = 0
    for panel_id in panels:
        with ctx.engine.begin() as conn:  # one transaction per panel: one panel's failure keeps the others'
            expired += len(panel_invites.expire(conn, _ws(ctx), panel_id, rules=rules, now=ctx.now))
            sent = panel_invites.remind(
                conn, ctx.settings, _ws(ctx), panel_id, policy=policy, now=ctx.now, halfway=True
            )
            reminded += len(sent.members)
    return {"panels": len(panels), "reminded": reminded, "expired": expired}


def _reward_holds(ctx: JobContext) -> Summary:
    from plugin.services.rewards import release

    with ctx.engine.begin() as conn:
        return {"approved": len(release(conn, _ws(ctx), ctx.now))}


def _inbox(ctx: JobContext) -> Summary:
    from plugin.db.models import Workspace
    from plugin.services.inbox import pull_inbox

    if ctx.settings.inbox_dir is None:
        raise Skipped("no inbox folder (set FLYWHEEL_INBOX_DIR)")
    with ctx.engine.connect() as conn:
        slug = conn.execute(select(Workspace.slug).where(Workspace.id == _ws(ctx))).scalar_one()
    folder = ctx.settings.inbox_dir / slug
    if not folder.is_dir():
        raise Skipped(f"no folder {folder} for this workspace")
    return pull_inbox(ctx.engine, _ws(ctx), folder, lease_s=ctx.settings.job_lease_s).as_dict()


#: The longest one delivery sweep runs before it hands the thread back (the next tick goes on).
SWEEP_S = 50.0


def _webhooks(ctx: JobContext) -> Summary:
    from plugin.services.webhook_worker import Worker

    stop = threading.Event()
    timer = threading.Timer(SWEEP_S, stop.set)  # and the worker's own stop ends it at once
    threading.Thread(target=_relay, args=(ctx.stop, stop), daemon=True).start()
    timer.start()
    worker = Worker(ctx.engine, ctx.settings, threads=8)
    try:
        tally = worker.run(once=True, stop=stop)
    finally:
        timer.cancel()
        stop.set()  # ends the relay thread too
        worker.close()
    return dict(tally)


def _relay(source: threading.Event, target: threading.Event) -> None:
    while not target.is_set():
        if source.wait(1.0):
            target.set()


def _webhook_prune(ctx: JobContext) -> Summary:
    from plugin.services.webhook_outbox import prune

    cutoff = ctx.now - timedelta(days=ctx.settings.webhook_retention_days)
    with ctx.engine.begin() as conn:
        return {"pruned": prune(conn, cutoff)}


JOBS: dict[str, JobSpec] = {
    spec.name: spec
    for spec in (
        JobSpec("webhooks", "global", 5, "deliver due outgoing webhooks, retries included", _webhooks),
        JobSpec("webhook_prune", "global", 86_400, "delete old delivered webhooks", _webhook_prune),
        JobSpec("inbox", "workspace", 60, "pull in activity files dropped in the inbox folder", _inbox),
        JobSpec("score", "workspace", 900, "rescore members with new activity (incremental)", _score),
        JobSpec("crm_sync", "workspace", 3_600, "send changed members and signals to the CRM", _crm_sync),
        JobSpec("crm_pull", "workspace", 3_600, "read lifecycle stages and deals back", _crm_pull),
        JobSpec("panel_reminders", "workspace", 3_600, "remind halfway, expire late", _panel_reminders),
        JobSpec("reward_holds", "workspace", 3_600, "approve rewards whose hold ran out", _reward_holds),
    )
}  # fmt: skip
