"""Advocate score (0-100) and level: who gives the community the most, lately.

Like Orbit's "love", engagement fades with time (here per activity type, by half-life). Unlike a
plain sum, each component saturates, so one habit (say, reactions) cannot make a champion; and a
level needs both an absolute score and a rank near the top (see ``defaults.toml``), so levels mean
the same in a community of thirty and of a million. Every component grows with activity: more
positive activity never lowers the score.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from scoring.config import ADVOCATE_COMPONENTS, ScoringConfig
from scoring.features import Features
from scoring.result import Scored, saturating

MODEL = "advocate"
OBSERVER = "observer"
#: Which feature feeds each component.
SOURCE = {
    "engagement": "engagement",
    "helpfulness": "helpfulness",
    "advocacy": "advocacy",
    "consistency": "active_weeks",
}


def advocate_scores(features: Features, cfg: ScoringConfig, cutoffs: list[float] | None = None) -> Scored:
    """Scores for every member of ``features``. ``cutoffs`` (from :func:`level_cutoffs` of a full
    run) rank an incremental run's few members against everyone."""
    comps = cfg.section("advocate", "components")
    points: dict[str, NDArray[np.float64]] = {}
    values: dict[str, NDArray[np.float64]] = {}
    shown = {  # what the reasons quote: plain counts, where the points come from decayed ones
        "helpfulness": features["n_answer"] + features["n_answer_accepted"],
        "advocacy": features["n_review"] + features["n_referral"] + features["n_event_attended"],
    }
    for name in ADVOCATE_COMPONENTS:
        value = features[SOURCE[name]]
        values[name] = shown.get(name, value)
        points[name] = saturating(value, float(comps[name]["points"]), float(comps[name]["scale"]))
    score = np.clip(np.sum(np.vstack(list(points.values())), axis=0), 0.0, 100.0)
    active = features["activities"] > 0
    return Scored(
        kind=MODEL,
        rows=np.arange(features.n, dtype=np.int64),
        score=score,
        label=levels(score, active, cfg, cutoffs),
        points=points,
        values=values,
    )


def level_cutoffs(score: NDArray[np.float64], active: NDArray[np.bool_], cfg: ScoringConfig) -> list[float]:
    """Per level, the lowest score still within its ``top_share`` of the active community: a
    member qualifies when fewer than ``top_share`` of the community score strictly higher, which
    is exactly ``score >= cutoff``. Stored with a full run, they let an incremental run give
    levels without reading everyone's score."""
    ranked = np.sort(score[active])[::-1]
    population = ranked.size
    out = []
    for level in cfg.levels:
        k = int(np.ceil(level.top_share * population)) - 1
        out.append(float(ranked[k]) if 0 <= k < population else float("-inf"))
    return out


def levels(
    score: NDArray[np.float64],
    active: NDArray[np.bool_],
    cfg: ScoringConfig,
    cutoffs: list[float] | None = None,
) -> list[str]:
    """A level per member: the first level whose ``min_score`` the member reaches and whose
    ``top_share`` of the active community, counted from the top, the member is within (by the
    given ``cutoffs``, or this population's own)."""
    cuts = level_cutoffs(score, active, cfg) if cutoffs is None else cutoffs
    out = np.full(score.shape, OBSERVER, dtype=object)
    undecided = active.copy()
    for level, cut in zip(cfg.levels, cuts, strict=True):
        hit = undecided & (score >= level.min_score) & (score >= cut)
        out[hit] = level.name
        undecided &= ~hit
    return [str(x) for x in out]


def level_rank(cfg: ScoringConfig) -> dict[str, int]:
    """Levels from the highest (0) down; observer last."""
    names = [lv.name for lv in cfg.levels] + [OBSERVER]
    return {name: i for i, name in enumerate(names)}
