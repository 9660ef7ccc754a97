"""Lead score for members who are not customers: fit (who they are) x intent (what they do now).

Fit: title seniority, company size and industry against the ideal profile, and a company email
rather than free mail. Intent: hand-raising posts (pricing, integrations, security, trials),
events, several people of one account active at once, fresh engagement, and open deals in the CRM.
The grade is the fit letter and the intent digit (A1 best, C3 least); a lead is ``hot`` when a good
fit has just raised a hand, and the activities that did it are named.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from scoring.accounts import AccountSignals
from scoring.config import FIT_PARTS, INTENT_PARTS, ScoringConfig
from scoring.features import DAY_US, Activities, Features
from scoring.result import Scored, saturating

MODEL = "lead"
Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


@dataclass(frozen=True)
class LeadContext:
    """Per member: who they are. ``customer`` rows are left to the churn model."""

    customer: NDArray[np.bool_]
    organization: Ints  # row index into the workspace's organizations, -1 for none
    seniority: Floats  # 0..1, from :func:`seniority_of`
    company_size: Floats  # employees, NaN when unknown
    industry_fit: Floats  # 1 for an ideal industry, 0 for another, NaN when unknown
    business_email: Floats  # 1 company domain, 0 free mail, NaN when no email
    open_deals: Floats | None = None  # open CRM deals involving them or their company; None: no CRM


@dataclass(frozen=True)
class HandRaises:
    """Recent posts that matched an intent topic (see :func:`match_topics`)."""

    member: Ints
    at: Ints
    activity_id: Ints
    topic: NDArray[np.int16]  # index into the config's topic names


def topic_names(cfg: ScoringConfig) -> tuple[str, ...]:
    return tuple(sorted(cfg.section("lead", "topics")))


@lru_cache(maxsize=8)
def _patterns(words: tuple[tuple[str, tuple[str, ...]], ...]) -> list[tuple[str, re.Pattern[str]]]:
    return [
        (name, re.compile(r"\b(?:" + "|".join(re.escape(w) for w in ws) + r")\b", re.IGNORECASE))
        for name, ws in words
        if ws
    ]


def _word_table(table: Mapping[str, object]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    out = []
    for name, spec in table.items():
        words = spec.get("words", []) if isinstance(spec, Mapping) else spec
        out.append((str(name), tuple(str(w) for w in words) if isinstance(words, list) else ()))
    return tuple(out)


#: Bump when :func:`match_topics` would match a stored text differently (its patterns, its rules):
#: matches kept by a scoring run are reused only under the same settings and this version.
MATCHER_VERSION = 1


def match_topics(texts: Iterable[str], cfg: ScoringConfig) -> list[int]:
    """For each text, the index of the first hand-raising topic it mentions, or -1."""
    names = topic_names(cfg)
    table = cfg.section("lead", "topics")
    pats = _patterns(tuple((n, tuple(str(w) for w in table[n])) for n in names))
    index = {name: i for i, name in enumerate(names)}
    out = []
    for text in texts:
        hit = -1
        for name, pat in pats:
            if pat.search(text):
                hit = index[name]
                break
        out.append(hit)
    return out


def seniority_of(titles: Sequence[str | None], cfg: ScoringConfig) -> Floats:
    """A 0..1 seniority per title; each distinct title is matched once."""
    table = cfg.section("lead", "seniority")
    pats = _patterns(_word_table(table))
    values = {name: float(spec["value"]) for name, spec in table.items()}
    default = values.get("other", 0.25)
    cache: dict[str | None, float] = {None: np.nan}
    out = np.empty(len(titles))
    for i, title in enumerate(titles):
        v = cache.get(title)
        if v is None:
            v = next((values[name] for name, pat in pats if pat.search(title or "")), default)
            cache[title] = v
        out[i] = v
    return out


def _size_fit(size: Floats, lo: float, hi: float) -> Floats:
    """1 inside the ideal range, falling by half per factor of 4 outside it; 0.5 when unknown."""
    with np.errstate(invalid="ignore", divide="ignore"):
        below = np.log(np.maximum(lo / size, 1.0)) / np.log(4.0)
        above = np.log(np.maximum(size / hi, 1.0)) / np.log(4.0)
    out = np.exp2(-(below + above))
    return np.where(np.isnan(size) | (size <= 0), 0.5, out)


def lead_scores(
    features: Features,
    acts: Activities,
    ctx: LeadContext,
    raises: HandRaises,
    cfg: ScoringConfig,
    accounts: AccountSignals,
) -> Scored:
    lead = cfg.section("lead")
    rows = np.flatnonzero(~ctx.customer).astype(np.int64)
    fit_points = lead["fit_points"]
    lo, hi = (float(x) for x in lead["ideal_company_size"])
    fit_values = {
        "seniority": ctx.seniority,
        "company_size": ctx.company_size,
        "industry": ctx.industry_fit,
        "business_email": ctx.business_email,
    }
    fit_share = {
        "seniority": np.nan_to_num(ctx.seniority, nan=0.25),
        "company_size": _size_fit(ctx.company_size, lo, hi),
        "industry": np.nan_to_num(ctx.industry_fit, nan=0.3),
        "business_email": np.nan_to_num(ctx.business_email, nan=0.0),
    }
    points: dict[str, Floats] = {}
    values: dict[str, Floats] = {}
    for part in FIT_PARTS:
        points[f"fit_{part}"] = float(fit_points[part]) * fit_share[part]
        values[f"fit_{part}"] = fit_values[part]
    fit = np.clip(sum(points[f"fit_{p}"] for p in FIT_PARTS), 0.0, 100.0)

    now, n = features.now, features.n
    half = cfg.number("lead", "intent_half_life_days", positive=True)
    window = cfg.number("lead", "intent_window_days", positive=True)

    def decayed(member: Ints, at: Ints) -> Floats:
        age = (now - at) / DAY_US
        keep = (age >= 0) & (age < window)
        return np.bincount(member[keep], weights=np.exp2(-age[keep] / half), minlength=n).astype(float)

    codes = {name: i for i, name in enumerate(cfg.type_names)}
    raw_intent = {
        "hand_raise": decayed(raises.member, raises.at),
        "event_attended": decayed(*_of(acts, codes.get("event_attended", -2))),
        "event_registered": decayed(*_of(acts, codes.get("event_registered", -2))),
        "engagement": features["engagement"],
        "open_deal": np.zeros(n) if ctx.open_deals is None else ctx.open_deals,
    }
    recent = (features["recent"] > 0).astype(np.float64)
    active_people = np.r_[accounts.active_people, 0.0]  # a spare slot for "no organization" (-1)
    others = active_people[ctx.organization] - recent
    raw_intent["account"] = np.where(ctx.organization >= 0, np.maximum(others, 0.0), 0.0)
    ip, scale = lead["intent_points"], lead["intent_scale"]
    for part in INTENT_PARTS:
        points[f"intent_{part}"] = saturating(raw_intent[part], float(ip[part]), float(scale[part]))
        values[f"intent_{part}"] = raw_intent[part]
    intent = np.clip(sum(points[f"intent_{p}"] for p in INTENT_PARTS), 0.0, 100.0)

    # The score is fit x intent on a 0-100 scale; reasons show each part's share of it.
    score = fit * intent / 100.0
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(fit + intent > 0, score / (fit + intent), 0.0)
    points = {k: v * share for k, v in points.items()}

    grades = lead["fit_grades"]
    letter = np.where(fit >= grades["A"], "A", np.where(fit >= grades["B"], "B", "C"))
    digits = lead["intent_digits"]
    digit = np.where(intent >= digits["1"], "1", np.where(intent >= digits["2"], "2", "3"))
    hot_rule = lead["hot"]
    fresh = (now - raises.at) / DAY_US <= float(hot_rule["within_days"])
    raised = np.zeros(n, bool)
    raised[raises.member[fresh]] = True
    hot = (letter <= str(hot_rule["max_fit_grade"])) & (digit <= str(hot_rule["intent_digit"])) & raised
    triggers: dict[int, list[int]] = {}
    for m, aid in zip(raises.member[fresh].tolist(), raises.activity_id[fresh].tolist(), strict=True):
        if hot[m]:
            triggers.setdefault(m, []).append(aid)
    return Scored(
        kind=MODEL,
        rows=rows,
        score=score[rows],
        label=[a + b for a, b in zip(letter[rows].tolist(), digit[rows].tolist(), strict=True)],
        points={k: v[rows] for k, v in points.items()},
        values={k: v[rows] for k, v in values.items()},
        hot=hot[rows],
        triggers=[sorted(triggers.get(int(r), [])) for r in rows],
    )


def _of(acts: Activities, code: int) -> tuple[Ints, Ints]:
    sel = acts.kind == code
    return acts.member[sel], acts.at[sel]
