"""``flywheel demo``: the whole pipeline on a generated community, one stage at a time.

The demo is the front door of the product: each stage runs the same service the real commands run,
on data that passes through the same parsing and ingest code as real files. Later stages (scoring,
CRM sync, programs, webhooks) are added to :data:`STAGES` by the issues that build them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.orm import Session

from connectors.errors import InvalidRecord
from connectors.records import parse_record
from plugin.db.models import Consent, CrmConnection, Identity, Organization
from plugin.demo.community import (
    DemoConfig,
    DemoOrganization,
    DemoPerson,
    generate_activities,
    generate_people,
)
from plugin.services.crm_connections import SANDBOX, connect_hubspot_account, sandbox_state_path
from plugin.services.crm_pull import pull_crm
from plugin.services.crm_sync import sync_crm
from plugin.services.identity import chunks
from plugin.services.ingest import Ingestor, IngestReport
from plugin.services.ingest_files import bulk_gc
from plugin.services.score_config import load_scoring_config
from plugin.services.score_read import top_scores
from plugin.services.score_run import ScoreReport, run_scoring
from plugin.services.suggestions import refresh_suggestions
from plugin.settings import Settings, load_settings

DEMO_WORKSPACE = "demo"
TOP_SHOWN = 5  # entries shown of each ranked list
Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class DemoRun:
    config: DemoConfig
    workspace_id: int
    engine: Engine
    progress: Progress
    people: list[DemoPerson] = field(default_factory=list)
    organizations: list[DemoOrganization] = field(default_factory=list)
    ingest: IngestReport | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    scores: ScoreReport | None = None
    top: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    settings: Settings | None = None
    crm: dict[str, Any] = field(default_factory=dict)
    programs: dict[str, Any] = field(default_factory=dict)


def stage_ingest(run: DemoRun) -> None:
    run.people, run.organizations = generate_people(run.config)
    total = run.config.activities
    with bulk_gc(), Ingestor(run.engine, run.workspace_id) as ingestor:
        for count, obj in enumerate(generate_activities(run.config, run.people), start=1):
            try:
                ingestor.add(parse_record(obj))
            except InvalidRecord as exc:
                ingestor.reject(count, exc.field, exc.reason, "demo")
            if count % 5_000 == 0:
                run.progress("ingest", count, total)
    run.progress("ingest", total, total)
    run.ingest = ingestor.report


def stage_suggestions(run: DemoRun) -> None:
    run.facts["suggestions_opened"] = refresh_suggestions(run.engine, run.workspace_id)


def stage_organizations(run: DemoRun) -> None:
    """Give the organizations found from email domains the size and industry a CRM would know."""
    enriched = 0
    with run.engine.begin() as conn:
        for org in run.organizations:
            result = conn.execute(
                update(Organization)
                .where(
                    Organization.workspace_id == run.workspace_id,
                    Organization.domain == org.domain,
                    Organization.size.is_(None),
                )
                .values(name=org.name, size=org.size, industry=org.industry)
            )
            enriched += result.rowcount or 0
    run.facts["organizations_enriched"] = enriched


def stage_consents(run: DemoRun) -> None:
    """Record each person's consents once (marketing, research, sales), as a signup form would."""
    by_email = {p.email: p for p in run.people if p.consents}
    member_of: dict[str, int] = {}
    with run.engine.connect() as conn:
        for part in chunks(sorted(by_email)):
            for email, member_id in conn.execute(
                select(Identity.email, Identity.member_id).where(
                    Identity.workspace_id == run.workspace_id, Identity.email.in_(part)
                )
            ):
                if email is not None:
                    member_of.setdefault(email, member_id)
        has_consent = set(
            conn.scalars(select(Consent.member_id).where(Consent.workspace_id == run.workspace_id).distinct())
        )
    rows = [
        {
            "workspace_id": run.workspace_id,
            "member_id": member_id,
            "purpose": purpose,
            "granted": granted,
            "source": "demo signup form",
        }
        for email, member_id in sorted(member_of.items())
        if member_id not in has_consent
        for purpose, granted in sorted(by_email[email].consents.items())
    ]
    if rows:
        with run.engine.begin() as conn:
            conn.execute(insert(Consent), rows)
    run.facts["consents_recorded"] = len(rows)


def stage_scores(run: DemoRun) -> None:
    """Score everyone as of the demo's own "now", so the lists read the same on any day."""
    report = run_scoring(
        run.engine, run.workspace_id, load_scoring_config(), full=True, clock=lambda: run.config.end
    )
    report.result = report.loaded = None  # keep the summary, not a copy of the arrays
    run.scores = report
    run.top = top_scores(run.engine, run.workspace_id, report, TOP_SHOWN)


def stage_crm(run: DemoRun) -> None:
    """Sync the scored community into a local HubSpot sandbox (the CRM's test mode, its state in a
    file beside the database) and read it back, through the same services as `flywheel crm`."""
    settings = run.settings or load_settings()
    with Session(run.engine) as session:
        existing = session.scalars(
            select(CrmConnection).where(
                CrmConnection.workspace_id == run.workspace_id, CrmConnection.kind == "hubspot"
            )
        ).first()
    if existing is None or not (existing.base_url or "").startswith(SANDBOX):
        connect_hubspot_account(run.engine, settings, run.workspace_id, token=None, sandbox=True)
    pushed = sync_crm(
        run.engine,
        settings,
        run.workspace_id,
        kind="hubspot",
        progress=lambda d, t: run.progress("crm", d, t),
    )
    pulled = pull_crm(run.engine, settings, run.workspace_id, kind="hubspot")
    state = sandbox_state_path(settings)
    contacts = [
        c for c in json.loads(state.read_text(encoding="utf-8"))["records"].get("contacts", []) if not c[4]
    ]
    sample = sorted(
        (c[1] for c in contacts if c[1].get("flywheel_advocate_level") == "champion"),
        key=lambda p: -float(p.get("flywheel_advocate_score") or 0),
    )[:3]
    run.crm = {
        "sandbox_state": str(state),
        "contacts_in_crm": len(contacts),
        "sync": pushed.as_dict() | {"changes": None},
        "pull": pulled.as_dict(),
        "sample": [
            {k: c.get(k) for k in ("email", "firstname", "lastname", "flywheel_advocate_score",
                                   "flywheel_advocate_level", "flywheel_lead_grade", "flywheel_churn_band")}
            for c in sample
        ],
    }  # fmt: skip


def stage_programs(run: DemoRun) -> None:
    """One referral campaign and one panel draw on the scored community."""
    from plugin.services.demo_programs import run_programs

    run.programs = run_programs(run.engine, run.settings or load_settings(), run.workspace_id, run.config.end)


STAGES: list[tuple[str, Callable[[DemoRun], None]]] = [
    ("ingest", stage_ingest),
    ("suggestions", stage_suggestions),
    ("organizations", stage_organizations),
    ("consents", stage_consents),
    ("scores", stage_scores),
    ("programs", stage_programs),  # before the CRM: the referred prospect is synced with its referral
    ("crm", stage_crm),
]


def run_demo(
    engine: Engine,
    workspace_id: int,
    config: DemoConfig,
    progress: Progress,
    settings: Settings | None = None,
) -> DemoRun:
    run = DemoRun(
        config=config, workspace_id=workspace_id, engine=engine, progress=progress, settings=settings
    )
    for name, stage in STAGES:
        started = time.perf_counter()
        progress(name, 0, 0)
        stage(run)
        run.timings[name] = round(time.perf_counter() - started, 2)
    return run
