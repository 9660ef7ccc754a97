"""Churn risk for customers: a probability-like 0..1 and a band, with its reasons.

The base is BG/NBD, fitted per workspace on active days: the probability that a member shows no
activity at all in the next ``horizon_days``, ``P(X(t)=0) = 1 - p_alive + p_alive * ((alpha+T) /
(alpha+T+t))^(r+x)``. That reading ranks better than "probability alive" alone, which calls every
one-time visitor surely alive. Its log-odds are shown as two reasons that add up to it: the
member's activity pattern (the risk were they active today) and their silence since. Other signals
then shift the log-odds, each by its own points, so each one is a reason: a pace that fell,
negative sentiment, a share of support questions, the account's champion gone quiet, a renewal
coming up, and (lowering it) what the customer has spent. With the model fixed, a longer silence
never lowers the risk: every term only grows, or stays, as time passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from scoring.accounts import AccountSignals
from scoring.bgnbd import BgNbdParams, fit_bgnbd, prob_alive
from scoring.config import ScoringConfig
from scoring.features import Features
from scoring.result import Scored

MODEL = "churn"
Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
_EPS = 1e-6


@dataclass(frozen=True)
class ChurnContext:
    customer: NDArray[np.bool_]
    organization: Ints  # -1 for none
    renewal_days: Floats  # days until the account's renewal (negative: overdue), NaN when unknown


def fit_activity_model(features: Features) -> BgNbdParams | None:
    """BG/NBD on the workspace's active days (days as the unit); None with too little history."""
    seen = features["bg_age"] > 0
    if int(seen.sum()) < 20 or not (features["bg_frequency"][seen] > 0).any():
        return None
    return fit_bgnbd(features["bg_frequency"][seen], features["bg_recency"][seen], features["bg_age"][seen])


def prob_quiet(params: BgNbdParams, x: Floats, t_x: Floats, age: Floats, horizon: float) -> Floats:
    """P(no activity in the next ``horizon`` days | x repeat days, last at t_x, age)."""
    alive = prob_alive(params, x, t_x, age)
    stay_quiet = np.exp((params.r + x) * (np.log(params.alpha + age) - np.log(params.alpha + age + horizon)))
    quiet: Floats = np.clip(1.0 - alive + alive * stay_quiet, _EPS, 1.0 - _EPS)
    return quiet


def churn_scores(
    features: Features,
    ctx: ChurnContext,
    cfg: ScoringConfig,
    accounts: AccountSignals,
    params: BgNbdParams | None,
) -> Scored:
    c = cfg.section("churn")
    rows = np.flatnonzero(ctx.customer).astype(np.int64)
    n = features.n
    horizon = cfg.number("churn", "horizon_days", positive=True)
    recent_days = cfg.number("windows", "recent_days", positive=True)
    prior_days = cfg.number("windows", "prior_days", positive=True)
    x, t_x, age = features["bg_frequency"], features["bg_recency"], features["bg_age"]
    active = features["activities"] > 0
    if params is None:
        p0 = p_engaged = np.full(n, 0.5)
    else:
        p0 = prob_quiet(params, x, t_x, age, horizon)
        p_engaged = prob_quiet(params, x, age, age, horizon)  # the same member, active today
    p0 = np.where(active, p0, 1.0 - _EPS)
    p_engaged = np.where(active, p_engaged, 1.0 - _EPS)
    weight = float(c["base_weight"])
    # The BG/NBD log-odds, split in two readable parts that add up to it: what the member's
    # habits alone imply (were they active today), and what their silence since then adds.
    points: dict[str, Floats] = {"activity_pattern": weight * _logit(p_engaged)}
    values: dict[str, Floats] = {"activity_pattern": p_engaged}
    points["silence"] = weight * (_logit(p0) - _logit(p_engaged))
    values["silence"] = np.where(active, features["recency_days"], np.inf)
    details = {"silence": np.nan_to_num(features["usual_gap_days"], nan=np.inf)}
    # Pace: activity per day over the short window against the long one (both decayed).
    short = features["pace_short"] / recent_days
    long = features["pace_long"] / prior_days
    drop = np.log2((long + _EPS) / (short + _EPS))
    drop = np.where(features["pace_long"] > 0, np.clip(drop, 0.0, float(c["drop"]["cap"])), 0.0)
    points["engagement_drop"] = float(c["drop"]["weight"]) * drop
    values["engagement_drop"] = drop
    sentiment = features["sentiment"]
    negative = np.where(np.isnan(sentiment), 0.0, np.maximum(-sentiment, 0.0))
    points["negative_sentiment"] = float(c["negative_sentiment"]["weight"]) * negative
    values["negative_sentiment"] = np.nan_to_num(sentiment)
    spend = features["spend"]
    points["spend"] = -float(c["spend"]["weight"]) * np.log1p(np.maximum(spend, 0.0))
    values["spend"] = spend
    share = features["support_share"]
    points["support_questions"] = float(c["support_questions"]["weight"]) * np.minimum(
        share * 10.0, float(c["support_questions"]["cap"])
    )
    values["support_questions"] = share
    spare = np.r_[accounts.champion_quiet, False]  # a spare slot for "no organization" (-1)
    quiet = spare[ctx.organization].astype(np.float64)
    points["champion_quiet"] = float(c["champion_quiet"]["weight"]) * quiet
    values["champion_quiet"] = quiet
    within = float(c["renewal"]["within_days"])
    soon = np.where(np.isnan(ctx.renewal_days), 0.0, np.clip(1.0 - ctx.renewal_days / within, 0.0, 1.0))
    soon = np.where(ctx.renewal_days < 0, 1.0, soon)  # overdue: the renewal lapsed
    points["renewal"] = float(c["renewal"]["weight"]) * soon
    values["renewal"] = np.nan_to_num(ctx.renewal_days, nan=np.inf)

    logit = float(c["bias"]) + np.sum(np.vstack(list(points.values())), axis=0)
    prob = 1.0 / (1.0 + np.exp(-logit))
    bands = c["bands"]
    band = np.where(prob >= bands["high"], "high", np.where(prob >= bands["medium"], "medium", "low"))
    return Scored(
        kind=MODEL,
        rows=rows,
        score=prob[rows],
        label=band[rows].tolist(),
        points={k: v[rows] for k, v in points.items()},
        values={k: v[rows] for k, v in values.items()},
        details={k: v[rows] for k, v in details.items()},
    )


def _logit(p: Floats) -> Floats:
    out: Floats = np.log(p / (1.0 - p))
    return out
