"""``flywheel score``: one scoring pass over a workspace, stored with its version and reasons.

* **full**: every current member is scored; the activity model (BG/NBD) is fitted afresh.
* **incremental** (the default once a full run exists with the same settings, younger than
  ``runs.full_every_hours``): only members with activity stored since the last run, reusing the
  last fitted activity model. Once the last full pass is older, the default run is a full pass:
  decay, silence and renewal dates move for members with no new activity too, and a full pass at
  least every day (by default) keeps everyone's scores correct to the day. What it needs about
  everyone else comes from what earlier runs stored: levels rank against stored advocate scores,
  account signals and account churn use stored summaries of the other people at those accounts.
* **as of a date**: the world as it stood then (later activities ignored), for backtests; nothing
  stored is changed, the result is returned.

Crossings (a member becomes a champion, a lead turns hot, a churn risk turns high) are stored as
events; a rescore that changes no label adds none.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from plugin.db.base import table_of, to_micros, utcnow
from plugin.db.engine import bulk_transaction
from plugin.db.models import Activity, CrmConnection, CrmSyncRun, MergeLog, ScoreRun
from plugin.db.models.identity_log import MERGE, SPLIT
from plugin.db.sql import in_chunks, raw_rows
from plugin.errors import ValidationFailed
from plugin.services.leases import SCORE_LEASE_S, Held, held, score_lease_name
from plugin.services.score_deals import members_of_changed_deals
from plugin.services.score_inputs import Loaded, Since, hand_raise_since, load_inputs
from plugin.services.score_others import stored_customers
from plugin.services.score_store import write_hand_raises, write_scores, write_stats
from plugin.services.webhook_signals import emit_run_events
from scoring.advocate import level_cutoffs
from scoring.bgnbd import BgNbdParams
from scoring.config import ScoringConfig
from scoring.lead import MATCHER_VERSION
from scoring.pipeline import KINDS, Pass, score_all

Progress = Callable[[str], None]
#: Deals a `crm pull` changed this long before the last run started are rescored again: the pull's
#: clock (another machine's) may be behind the scoring run's.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass
class ScoreReport:
    run_id: int | None
    mode: str
    as_of: datetime
    kinds: tuple[str, ...]
    model_version: str
    weights_hash: str
    why: str = ""  # why this mode: the user sees whether everyone was brought up to date
    members_scored: int = 0
    scored: dict[str, int] = field(default_factory=dict)
    labels: dict[str, Counter[str]] = field(default_factory=dict)
    events: Counter[str] = field(default_factory=Counter)
    activity_model: dict[str, Any] | None = None
    result: Pass | None = None  # the in-memory result (as-of runs keep nothing else)
    loaded: Loaded | None = None
    webhooks_queued: int = 0  # messages written for the crossings (to subscribed endpoints)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "mode": self.mode,
            "why": self.why,
            "as_of": self.as_of.isoformat(),
            "kinds": list(self.kinds),
            "model_version": self.model_version,
            "weights_hash": self.weights_hash,
            "members_scored": self.members_scored,
            "scored": self.scored,
            "labels": {k: dict(v) for k, v in self.labels.items()},
            "events": dict(self.events),
            "webhooks_queued": self.webhooks_queued,
            "activity_model": self.activity_model,
        }


def _check_kinds(kinds: tuple[str, ...]) -> tuple[str, ...]:
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ValidationFailed(
            f"unknown score kind {', '.join(bad) or '(none)'}",
            fields={"kind": "advocate, lead or churn"},
            hint="use --kind advocate, --kind lead or --kind churn, or leave it out for all three",
        )
    return tuple(k for k in KINDS if k in kinds)


def _last_run(engine: Engine, workspace_id: int) -> ScoreRun | None:
    with Session(engine) as session:  # an ORM session: a Core connection would give the id only
        return session.scalars(
            select(ScoreRun)
            .where(
                ScoreRun.workspace_id == workspace_id,
                ScoreRun.mode.in_(("full", "incremental")),
                ScoreRun.finished_at.is_not(None),
            )
            .order_by(ScoreRun.id.desc())
            .limit(1)
        ).first()


def _merged_since(engine: Engine, workspace_id: int, since: datetime) -> bool:
    """Whether a person merged or split members since ``since``: activities changed hands, and
    merged-away members must lose their scores, which only a full run sees."""
    with engine.connect() as conn:
        return (
            conn.execute(
                select(MergeLog.id)
                .where(
                    MergeLog.workspace_id == workspace_id,
                    MergeLog.kind.in_((MERGE, SPLIT)),
                    MergeLog.created_at >= since,
                )
                .limit(1)
            ).first()
            is not None
        )


def _stages_pulled_since(engine: Engine, workspace_id: int, since: datetime) -> bool:
    """Whether a `crm pull` changed lifecycle stages since ``since``: customers and leads are
    scored apart, and who is one changed for people with no new activity."""
    r, c = CrmSyncRun, CrmConnection
    with engine.connect() as conn:
        rows = conn.execute(
            select(r.counts)
            .join(c, c.id == r.connection_id)
            .where(
                c.workspace_id == workspace_id,
                r.direction == "pull",
                r.status == "done",
                r.started_at >= since,
            )
        ).all()
    return any((counts or {}).get("stages_changed") for (counts,) in rows)


def _last_full(engine: Engine, workspace_id: int) -> datetime | None:
    """When the last finished full pass started."""
    with engine.connect() as conn:
        got: datetime | None = conn.execute(
            select(func.max(ScoreRun.started_at)).where(
                ScoreRun.workspace_id == workspace_id,
                ScoreRun.mode == "full",
                ScoreRun.finished_at.is_not(None),
            )
        ).scalar_one()
    return got


def _choose_mode(
    engine: Engine,
    workspace_id: int,
    cfg: ScoringConfig,
    kinds: tuple[str, ...],
    last: ScoreRun | None,
    now: datetime,
    *,
    full: bool,
) -> tuple[str, str]:
    """Full or incremental, and why, in words for the user. Incremental needs a usable last run
    and a full pass younger than ``runs.full_every_hours``: what decays with time (engagement,
    silence, renewal dates) changes for members with no new activity too, and only a full pass
    brings them up to date."""
    if full:
        return "full", "a full pass was asked for"
    if last is None:
        return "full", "no earlier run to build on"
    if last.weights_hash != cfg.weights_hash:
        return "full", f"the settings changed since run {last.id} (weights {last.weights_hash})"
    missing = [k for k in kinds if k not in last.kinds.split(",")]
    if missing:
        return "full", f"run {last.id} did not compute {', '.join(missing)}"
    if last.activity_model is None or last.level_cutoffs is None:
        return "full", f"run {last.id} kept no activity model or level cut-offs"
    if last.hand_raises_since is None:
        return "full", f"run {last.id} kept no hand-raising posts (made by an earlier version)"
    if not _raises_kept(cfg, last, to_micros(now)):
        return "full", (
            f"run {last.id} matched hand-raising posts with another matcher, or the clock is behind it"
        )
    if _merged_since(engine, workspace_id, last.started_at):
        return "full", f"members were merged or split since run {last.id}"
    if _stages_pulled_since(engine, workspace_id, last.started_at):
        return "full", f"the CRM changed members' lifecycle stages since run {last.id}"
    every = cfg.number("runs", "full_every_hours", positive=True)
    full_at = _last_full(engine, workspace_id)
    if full_at is None:
        return "full", "no earlier full pass"
    age_h = (now - _utc(full_at)).total_seconds() / 3600
    if age_h >= every:
        return "full", (
            f"the last full pass is {age_h:.0f} h old; everyone is rescored for time decay "
            f"at least every {every:g} h (runs.full_every_hours)"
        )
    return "incremental", (
        f"members with activity since run {last.id}; everyone else stands as of the full pass "
        f"{age_h:.1f} h ago (refreshed every {every:g} h)"
    )


def raises_key(cfg: ScoringConfig) -> str:
    """What hand-raising matches depend on besides the texts: the settings and the matcher."""
    return f"{cfg.weights_hash}/{MATCHER_VERSION}"


def _raises_kept(cfg: ScoringConfig, last: ScoreRun | None, now: int) -> bool:
    """Whether the hand-raising posts kept by ``last`` serve a run at ``now``: matched under the
    same settings by the same matcher, over a window that starts no later than this run's. Texts
    do not change once stored, merges move the kept rows with the activities, and erasure removes
    them with the posts."""
    return (
        last is not None
        and last.hand_raises_since is not None
        and last.hand_raises_key == raises_key(cfg)
        and hand_raise_since(cfg, now) >= last.hand_raises_since
    )


def _utc(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _changed_members(engine: Engine, workspace_id: int, after: int, upto: int) -> list[int]:
    """Current members with activity stored after id ``after`` up to ``upto`` (this run's
    watermark: later ones are the next run's): a range scan of the activities' primary key
    (filtering on the workspace in SQL made SQLite walk a workspace-wide index instead), then which
    of them are current (not merged away)."""
    with engine.connect() as conn:
        touched: set[int] = set()
        sql = "SELECT member_id, workspace_id FROM activities WHERE id > ? AND id <= ?"
        for part in raw_rows(conn, sql, (after, upto)):
            touched.update(r[0] for r in part if r[1] == workspace_id)
        ids = sorted(touched)
        out: list[int] = []
        for chunk, marks in in_chunks(ids):
            sql = f"SELECT id FROM members WHERE id IN ({marks}) AND merged_into_id IS NULL"  # noqa: S608
            out += [r[0] for rows in raw_rows(conn, sql, chunk) for r in rows]
    return sorted(out)


def run_scoring(
    engine: Engine,
    workspace_id: int,
    cfg: ScoringConfig,
    *,
    kinds: tuple[str, ...] = KINDS,
    as_of: datetime | None = None,
    full: bool = False,
    clock: Callable[[], datetime] = utcnow,
    progress: Progress | None = None,
    public_url: str | None = None,
) -> ScoreReport:
    """Score the workspace. A run that stores its scores holds the workspace's scoring lease from
    choosing its mode to its commit: a second one (a CLI run beside the scheduled one) is told who
    runs and until when (:class:`~plugin.errors.Busy`) instead of announcing the same crossings
    again. A backtest changes nothing and takes no lease."""
    kinds = _check_kinds(kinds)
    started = clock()
    if as_of is not None and as_of.tzinfo is None:
        raise ValidationFailed("--as-of needs a time zone", hint="give a date (UTC) or an ISO time with zone")
    backtest = as_of is not None and as_of < started
    one_run = partial(
        _score, engine, workspace_id, cfg, kinds, started, as_of if backtest else None,
        clock=clock, say=progress or _quiet, public_url=public_url, full=full,
    )  # fmt: skip
    if backtest:
        return one_run(lease=None)
    name = score_lease_name(workspace_id)
    with held(engine, name, "a scoring run of this workspace", SCORE_LEASE_S) as lease:
        return one_run(lease=lease)


def _quiet(_msg: str) -> None:
    return None


def _score(
    engine: Engine,
    workspace_id: int,
    cfg: ScoringConfig,
    kinds: tuple[str, ...],
    started: datetime,
    as_of: datetime | None,
    *,
    clock: Callable[[], datetime],
    say: Progress,
    public_url: str | None,
    full: bool,
    lease: Held | None,
) -> ScoreReport:
    """One run; a backtest when ``as_of`` is given (then without ``lease``: it stores nothing)."""
    backtest = as_of is not None
    when = as_of if as_of is not None else started
    now = to_micros(when)
    last = None if backtest else _last_run(engine, workspace_id)
    with engine.connect() as conn:
        # The highest activity id of any workspace: the primary key's last entry, read at once (with a
        # workspace filter SQLite walks that workspace's index). Later runs filter by workspace anyway.
        watermark = conn.execute(select(func.coalesce(func.max(Activity.id), 0))).scalar_one()
    if backtest:
        mode, why = "as_of", "a backtest: the world as it stood then; stored scores are not changed"
    else:
        mode, why = _choose_mode(engine, workspace_id, cfg, kinds, last, started, full=full)
    incremental = mode == "incremental"
    report = ScoreReport(None, mode, when, kinds, cfg.version, cfg.weights_hash, why=why)
    subset: list[int] | None = None
    # Texts of activities newer than the last run are matched; older ones' matches were kept,
    # unless they were made otherwise (then every recent text is matched again).
    kept = last.activity_watermark if last is not None and _raises_kept(cfg, last, now) else None
    since = Since(after=kept, upto=watermark)
    params: BgNbdParams | None = None
    if incremental and last is not None:
        subset = _changed_members(engine, workspace_id, last.activity_watermark, watermark)
        with engine.connect() as conn:  # and those a deal read by `crm pull` since then involves
            dealt = members_of_changed_deals(conn, workspace_id, _utc(last.started_at) - CLOCK_SKEW)
        subset = sorted(set(subset) | dealt) if dealt else subset
        params = BgNbdParams(**last.activity_model) if last.activity_model else None
        say(f"incremental: {len(subset):,} members changed since run {last.id}")
        if not subset:  # nothing to rescore (and the activity model refuses empty input)
            report.activity_model = last.activity_model
            report.scored = dict.fromkeys(kinds, 0)
            return report
    stored = None
    with engine.connect() as conn:
        say("reading activities")
        loaded = load_inputs(conn, workspace_id, cfg, now, subset, since, live=not backtest)
        if subset is not None:
            stored = stored_customers(conn, workspace_id, loaded)
    say(f"scoring {loaded.inputs.n:,} members")
    cutoffs = None
    if subset is not None and last is not None and last.level_cutoffs is not None:
        cutoffs = [float("-inf") if c is None else float(c) for c in last.level_cutoffs]
    result = score_all(loaded.inputs, cfg, kinds, params, cutoffs)
    if cutoffs is None and "advocate" in result.scored:
        adv = result.scored["advocate"]
        cutoffs = level_cutoffs(adv.score, result.features["activities"][adv.rows] > 0, cfg)
    model = result.activity_model
    report.activity_model = model.as_dict() if model is not None else None
    report.members_scored = loaded.inputs.n
    report.result, report.loaded = result, loaded
    for kind, scored in result.scored.items():
        report.scored[kind] = int(scored.rows.size)
        report.labels[kind] = Counter(scored.label)
    if backtest:
        return report
    with bulk_transaction(engine) as conn:  # the run row first, then what refers to it
        if lease is not None:
            lease.confirm(conn)  # still this run's: nobody took over while it was reading
        run = conn.execute(
            table_of(ScoreRun)
            .insert()
            .values(
                workspace_id=workspace_id,
                kinds=",".join(kinds),
                mode=mode,
                as_of=when,
                started_at=started,
                activity_watermark=watermark,
                members_scored=loaded.inputs.n,
                model_version=cfg.version,
                weights_hash=cfg.weights_hash,
                activity_model=report.activity_model or (last.activity_model if last else None),
                level_cutoffs=[c if c != float("-inf") else None for c in cutoffs] if cutoffs else None,
                hand_raises_since=hand_raise_since(cfg, now),
                hand_raises_key=raises_key(cfg),
            )
            .returning(table_of(ScoreRun).c.id)
        ).scalar_one()
        report.run_id = run
        say("storing scores")
        for kind, scored in result.scored.items():
            report.events.update(
                write_scores(
                    conn,
                    workspace_id,
                    run,
                    kind,
                    scored,
                    loaded,
                    result,
                    cfg,
                    when,
                    partial=subset is not None,
                    stored=stored,
                )
            )
        write_stats(conn, workspace_id, loaded, result, partial=subset is not None)
        drop = hand_raise_since(cfg, now) if subset is None else None
        write_hand_raises(conn, workspace_id, loaded, since, drop_until=drop)
        # The crossings' webhooks commit with the scores that crossed: neither without the other.
        report.webhooks_queued = emit_run_events(conn, workspace_id, run, public_url=public_url)
        conn.execute(update(ScoreRun).where(ScoreRun.id == run).values(finished_at=clock()))
    return report
