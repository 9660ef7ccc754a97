"""Per-member features, computed from activity arrays with numpy (no Python loop over activities).

The caller (the plugin) reads activities as parallel arrays, already cut at ``as_of``, and passes
``now`` in epoch microseconds: this module never reads a clock. Every feature is one float array
with a row per member; a member with no activity gets zeros (or NaN where "no value" differs from
zero, such as sentiment).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from scoring.config import ScoringConfig

DAY_US = 86_400_000_000
WEEK_US = 7 * DAY_US

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]

#: Types that make up helpfulness (with their multipliers) and advocacy.
HELPFUL = {"answer": 1.0, "answer_accepted": 3.0}
ADVOCACY = ("review", "referral", "event_attended", "sponsorship")
COUNTED = (
    "answer",
    "answer_accepted",
    "review",
    "referral",
    "event_registered",
    "event_attended",
    "support_question",
    "post",
    "reply",
    "pr_merged",
)


@dataclass(frozen=True)
class Activities:
    """Activities as parallel arrays; ``member`` is a row index into the scored members."""

    member: Ints
    kind: NDArray[np.int16]  # ScoringConfig.type_code; -1 for types that count for nothing
    at: Ints  # epoch microseconds, UTC
    sentiment: Floats  # -1..1, NaN where none
    value: Floats  # NPS (0..10) for surveys, rating (1..5) for reviews, amount for purchases; else NaN
    #: More sentiments as (member, at, sentiment) rows, for callers that read them apart from the
    #: activities (they count only towards the sentiment feature).
    sentiments: tuple[Ints, Ints, Floats] | None = None

    @classmethod
    def empty(cls) -> Activities:
        return cls(
            np.zeros(0, np.int64),
            np.zeros(0, np.int16),
            np.zeros(0, np.int64),
            np.zeros(0, np.float64),
            np.zeros(0, np.float64),
        )

    def __len__(self) -> int:
        return int(self.member.shape[0])


@dataclass(frozen=True)
class Features:
    n: int
    now: int  # epoch microseconds
    columns: dict[str, Floats]

    def __getitem__(self, name: str) -> Floats:
        return self.columns[name]


def _count(idx: Ints, n: int, weights: Floats | None = None) -> Floats:
    return np.bincount(idx, weights=weights, minlength=n).astype(np.float64)


def _distinct(member: Ints, bucket: Ints, n: int) -> Floats:
    """How many distinct buckets (days, weeks) each member has, for rows in any order. One sort
    of packed integer keys (fast when already ordered, as the store mostly returns them)."""
    if member.size == 0:
        return np.zeros(n)
    key = np.sort(member * np.int64(1 << 32) + bucket)
    new = np.empty(key.shape, bool)
    new[0] = True
    np.not_equal(key[1:], key[:-1], out=new[1:])
    return _count(key[new] >> 32, n)


def _distinct_small(member: Ints, code: Ints, n: int, k: int) -> Floats:
    """How many distinct codes in ``0..k-1`` (activity types) each member has, any row order."""
    if member.size == 0:
        return np.zeros(n)
    seen = np.bincount(member * k + code, minlength=n * k).reshape(n, k) > 0
    out: Floats = seen.sum(axis=1).astype(np.float64)
    return out


def compute_features(acts: Activities, n: int, now: int, cfg: ScoringConfig) -> Features:
    """Features for ``n`` members from their activities up to ``now`` (later ones are ignored)."""
    keep = acts.at <= now
    if keep.all():  # the store already cut at `now`: no copies of twenty-million-row arrays
        member, kind, at, sentiment, value = acts.member, acts.kind, acts.at, acts.sentiment, acts.value
    else:
        member, kind, at = acts.member[keep], acts.kind[keep], acts.at[keep]
        sentiment, value = acts.sentiment[keep], acts.value[keep]
    del keep
    counted = kind >= 0
    # float32 for ages and decays: twice as fast over 20M rows, and a thousandth of a day is plenty.
    age_days = ((now - at) / DAY_US).astype(np.float32)
    codes = {name: i for i, name in enumerate(cfg.type_names)}

    half = np.asarray((*cfg.type_half_life_days, 1.0), dtype=np.float32)[kind]  # -1: the sentinel
    decay = np.exp2(-age_days / half)
    weight = np.where(counted, np.asarray((*cfg.type_weight, 0.0))[kind], 0.0)
    cols: dict[str, Floats] = {"engagement": _count(member, n, weight * decay)}

    def of(names: tuple[str, ...] | list[str]) -> NDArray[np.bool_]:
        wanted = [codes[x] for x in names if x in codes]
        return np.isin(kind, np.asarray(wanted, dtype=np.int16)) if wanted else np.zeros(kind.shape, bool)

    helpful_w = np.zeros(len(cfg.type_names) + 1)
    for name, mult in HELPFUL.items():
        if name in codes:
            helpful_w[codes[name]] = mult
    cols["helpfulness"] = _count(member, n, helpful_w[kind] * decay)
    adv = of(ADVOCACY)
    cols["advocacy"] = _count(member[adv], n, decay[adv])
    del half, decay, weight, adv
    for name in COUNTED:
        sel = kind == codes[name] if name in codes else np.zeros(kind.shape, bool)
        cols[f"n_{name}"] = _count(member[sel], n)

    total = _count(member, n)
    cols["activities"] = total
    day = at // DAY_US
    cols["active_days"] = _distinct(member, day, n)
    window = cfg.number("windows", "active_weeks_days", positive=True)
    in_year = age_days < window
    cols["active_weeks"] = _distinct(member[in_year], at[in_year] // WEEK_US, n)
    cols["variety"] = _distinct_small(member[counted], kind[counted].astype(np.int64), n, len(codes))

    first = np.full(n, np.iinfo(np.int64).max)
    last = np.full(n, np.iinfo(np.int64).min)
    np.minimum.at(first, member, at)
    np.maximum.at(last, member, at)
    seen = total > 0
    cols["recency_days"] = np.where(seen, (now - last) / DAY_US, np.inf)
    cols["last_at"] = np.where(seen, last.astype(np.float64), np.nan)  # epoch microseconds
    cols["tenure_days"] = np.where(seen, (now - first) / DAY_US, 0.0)
    span_days = np.where(seen, (last // DAY_US - first // DAY_US).astype(np.float64), 0.0)
    repeats = np.maximum(cols["active_days"] - 1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cols["usual_gap_days"] = np.where(repeats > 0, span_days / repeats, np.nan)
    # BG/NBD inputs, in days: repeat active days, time of the last one, age (first day to now).
    cols["bg_frequency"] = repeats
    cols["bg_recency"] = span_days
    cols["bg_age"] = np.where(seen, (now // DAY_US - first // DAY_US).astype(np.float64), 0.0)

    recent_days = cfg.number("windows", "recent_days", positive=True)
    prior_days = cfg.number("windows", "prior_days", positive=True)
    recent = age_days < recent_days
    prior = ~recent & (age_days < recent_days + prior_days)
    cols["recent"] = _count(member[recent], n)
    cols["prior"] = _count(member[prior], n)

    # Paces and shares below are exponentially weighted, so under silence they change smoothly
    # and one way only: the short pace falls faster than the long one, shares stay put.
    d_short = np.exp2(-age_days / np.float32(recent_days))
    d_long = np.exp2(-age_days / np.float32(prior_days))
    cols["pace_short"] = _count(member[counted], n, d_short[counted])
    del d_short
    cols["pace_long"] = _count(member[counted], n, d_long[counted])
    sup = kind == codes.get("support_question", -2)
    with np.errstate(invalid="ignore", divide="ignore"):
        cols["support_share"] = np.where(
            cols["pace_long"] > 0, _count(member[sup], n, d_long[sup]) / cols["pace_long"], 0.0
        )
    has_sent = ~np.isnan(sentiment)
    s_member, s_at, s_value = member[has_sent], at[has_sent], sentiment[has_sent]
    if acts.sentiments is not None:
        e_member, e_at, e_value = acts.sentiments
        e_keep = e_at <= now
        s_member = np.concatenate([s_member, e_member[e_keep]])
        s_at = np.concatenate([s_at, e_at[e_keep]])
        s_value = np.concatenate([s_value, e_value[e_keep]])
    d_sent = np.exp2(-((now - s_at) / DAY_US) / cfg.number("windows", "sentiment_days", positive=True))
    s_w = _count(s_member, n, d_sent)
    s_sum = _count(s_member, n, s_value * d_sent)
    with np.errstate(invalid="ignore", divide="ignore"):
        cols["sentiment"] = np.where(s_w > 0, s_sum / s_w, np.nan)
    cols["nps"] = _last_value(member, at, value, kind == codes.get("survey_response", -2), n)
    bought = kind == codes.get("purchase", -2)
    paid = bought & ~np.isnan(value)
    cols["spend"] = _count(member[paid], n, value[paid])
    cols["rating"] = _last_value(member, at, value, kind == codes.get("review", -2), n)
    return Features(n=n, now=now, columns=cols)


def _last_value(member: Ints, at: Ints, value: Floats, sel: NDArray[np.bool_], n: int) -> Floats:
    """Each member's latest value among the selected activities (NaN where none)."""
    out = np.full(n, np.nan)
    sel = sel & ~np.isnan(value)
    if not sel.any():
        return out
    m, t, v = member[sel], at[sel], value[sel]
    order = np.lexsort((t, m))  # by member, then time: the last row per member is the latest
    m, v = m[order], v[order]
    is_last = np.r_[m[1:] != m[:-1], True]
    out[m[is_last]] = v[is_last]
    return out
