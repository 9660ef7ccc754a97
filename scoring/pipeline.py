"""One scoring pass: features once, then the three models, then what crossed a line."""

from __future__ import annotations

from dataclasses import dataclass

from scoring.accounts import Others, account_signals, people_of
from scoring.advocate import advocate_scores, level_rank
from scoring.bgnbd import BgNbdParams
from scoring.churn import ChurnContext, churn_scores, fit_activity_model
from scoring.config import ScoringConfig
from scoring.features import Activities, Features, compute_features
from scoring.lead import HandRaises, LeadContext, lead_scores
from scoring.result import Scored

KINDS = ("advocate", "lead", "churn")


@dataclass(frozen=True)
class Inputs:
    acts: Activities
    n: int
    now: int  # epoch microseconds; activities after it are ignored
    lead: LeadContext
    churn: ChurnContext
    raises: HandRaises
    n_orgs: int
    #: The people of the same accounts who are not scored in this pass, one summary row per
    #: account (an incremental run aggregates their stored summaries), so account signals still
    #: count everyone.
    others: Others | None = None


@dataclass(frozen=True)
class Pass:
    features: Features
    scored: dict[str, Scored]
    activity_model: BgNbdParams | None


def score_all(
    inputs: Inputs,
    cfg: ScoringConfig,
    kinds: tuple[str, ...] = KINDS,
    params: BgNbdParams | None = None,
    level_cutoffs: list[float] | None = None,
) -> Pass:
    """Score every member. ``params`` fixes the BG/NBD model (by default it is fitted here);
    ``level_cutoffs`` are the advocate level cut scores of the last full run (incremental runs)."""
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown score kind(s) {sorted(unknown)}; use {', '.join(KINDS)}")
    feats = compute_features(inputs.acts, inputs.n, inputs.now, cfg)
    accounts = account_signals(people_of(feats, inputs.lead.organization), inputs.n_orgs, inputs.others)
    out: dict[str, Scored] = {}
    if "advocate" in kinds:
        out["advocate"] = advocate_scores(feats, cfg, level_cutoffs)
    if "lead" in kinds:
        out["lead"] = lead_scores(feats, inputs.acts, inputs.lead, inputs.raises, cfg, accounts)
    model = params
    if "churn" in kinds:
        model = params if params is not None else fit_activity_model(feats)
        out["churn"] = churn_scores(feats, inputs.churn, cfg, accounts, model)
    return Pass(feats, out, model)


def crossed(kind: str, before: str | None, after: str, cfg: ScoringConfig) -> str | None:
    """The event a label change means, or None: a member becomes a champion, a lead turns hot
    (handled by the caller from ``hot``), a churn risk turns high."""
    if before == after:
        return None
    if kind == "advocate":
        top = cfg.levels[0].name if cfg.levels else None
        ranks = level_rank(cfg)
        if after == top and (before is None or ranks.get(before, 99) > ranks[after]):
            return f"became_{after}"
    if kind == "churn" and after == "high":
        return "churn_risk_high"
    return None
