"""Churn risk for customers: a probability-like 0..1 and a band, with its reasons.

The base is BG/NBD, fitted per workspace on active days: the probability that a member shows no
activity at all in the next ``horizon_days``, ``P(X(t)=0) = 1 - p_alive + p_alive * ((alpha+T) /
(alpha+T+t))^(r+x)``. That reading ranks better than "probability alive" alone, which calls every
one-time visitor surely alive. Other signals then shift the log-odds, each by its own points, so
each one is a reason: silence beyond the member's usual gap, a pace that fell, negative sentiment,
a share of support questions, the account's champion gone quiet, and a renewal coming up. With the
model fixed, a longer silence never lowers the risk: every term only grows as time passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from scoring.bgnbd import BgNbdParams, fit_bgnbd, prob_alive
from scoring.config import ScoringConfig
from scoring.features import Features, group_max
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
    features: Features, ctx: ChurnContext, cfg: ScoringConfig, n_orgs: int, params: BgNbdParams | None
) -> Scored:
    c = cfg.section("churn")
    rows = np.flatnonzero(ctx.customer).astype(np.int64)
    n = features.n
    horizon = cfg.number("churn", "horizon_days", positive=True)
    recent_days = cfg.number("windows", "recent_days", positive=True)
    prior_days = cfg.number("windows", "prior_days", positive=True)
    x, t_x, age = features["bg_frequency"], features["bg_recency"], features["bg_age"]
    p0 = np.full(n, 0.5) if params is None else prob_quiet(params, x, t_x, age, horizon)
    p0 = np.where(features["activities"] > 0, p0, 1.0 - _EPS)
    base = float(c["base_weight"]) * np.log(p0 / (1.0 - p0))

    points: dict[str, Floats] = {"quiet_probability": base}
    values: dict[str, Floats] = {"quiet_probability": p0}
    recency, gap = features["recency_days"], features["usual_gap_days"]
    with np.errstate(invalid="ignore", divide="ignore"):
        silence = np.log2(np.maximum(recency, 0.0) / np.maximum(gap, 1.0))
    silence = np.where(np.isfinite(silence), np.clip(silence, 0.0, float(c["silence"]["cap"])), 0.0)
    points["silence"] = float(c["silence"]["weight"]) * silence
    values["silence"] = np.where(np.isfinite(recency), recency, 0.0)
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
    share = features["support_share"]
    points["support_questions"] = float(c["support_questions"]["weight"]) * np.minimum(
        share * 10.0, float(c["support_questions"]["cap"])
    )
    values["support_questions"] = share
    quiet = champion_quiet(features, ctx.organization, n_orgs)
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
    )


def champion_quiet(features: Features, organization: Ints, n_orgs: int) -> Floats:
    """1 for members of an account whose most engaged person has been silent for over twice their
    usual gap (and at least 30 days); 0 otherwise. Engagement here is lifetime activity, so the
    champion does not change as time passes."""
    if n_orgs == 0:
        return np.zeros(features.n)
    total = features["activities"]
    top = group_max(total, organization, n_orgs)
    in_org = organization >= 0
    is_champ = in_org & (total > 0) & (total == top[np.maximum(organization, 0)])
    gap = np.nan_to_num(features["usual_gap_days"], nan=30.0)
    silent = features["recency_days"] > np.maximum(2.0 * gap, 30.0)
    quiet_org = np.zeros(n_orgs, bool)
    quiet_org[organization[is_champ & silent]] = True
    # An account with several tied champions counts as quiet only if one of them is.
    return np.where(in_org, quiet_org[np.maximum(organization, 0)], False).astype(np.float64)


def account_risk(scored: Scored, organization: Ints, engagement: Floats, n_orgs: int) -> Floats:
    """Per organization, the engagement-weighted mean risk of its scored members (NaN if none)."""
    org = organization[scored.rows]
    sel = org >= 0
    w = np.maximum(engagement[scored.rows][sel], 0.05)
    num = np.bincount(org[sel], weights=w * scored.score[sel], minlength=n_orgs)
    den = np.bincount(org[sel], weights=w, minlength=n_orgs)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)
