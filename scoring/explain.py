"""Reasons in plain words: one sentence per (feature, value, points).

Stored scores keep the numbers; these sentences are rendered from them when shown, so a change of
wording never needs a rescore. Each template names the feature and what it added.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from scoring.result import Reason


def _n(value: float) -> str:
    return f"{value:,.0f}" if abs(value - round(value)) < 1e-9 else f"{value:,.1f}"


def _plural(value: float, word: str) -> str:
    return f"{_n(value)} {word}{'' if round(value) == 1 else 's'}"


_TEMPLATES: dict[str, Callable[[float], str]] = {
    # advocate
    "engagement": lambda v: f"Recent weighted activity of {_n(v)} (older activity counts less)",
    "helpfulness": lambda v: f"Gave {_plural(v, 'answer')}, accepted ones counting triple",
    "advocacy": lambda v: f"{_plural(v, 'advocacy act')} (reviews, referrals, events attended)",
    "consistency": lambda v: f"Active in {_plural(v, 'week')} of the last year",
    # lead: fit
    "fit_seniority": lambda v: (
        "Seniority unknown" if math.isnan(v) else f"Title seniority {v:.0%} of a C-level"
    ),
    "fit_company_size": lambda v: (
        "Company size unknown" if math.isnan(v) else f"Company of {_plural(v, 'employee')}"
    ),
    "fit_industry": lambda v: (
        "Industry unknown"
        if math.isnan(v)
        else ("Company in an ideal industry" if v >= 1 else "Company outside the ideal industries")
    ),
    "fit_business_email": lambda v: (
        "No email known"
        if math.isnan(v)
        else ("Uses a company email address" if v >= 1 else "Uses a free-mail address")
    ),
    # lead: intent
    "intent_hand_raise": lambda v: (
        f"Asked about pricing, integrations, security or a trial lately (signal {_n(v)})"
    ),
    "intent_event_attended": lambda v: f"Attended events lately (signal {_n(v)})",
    "intent_event_registered": lambda v: f"Registered for events lately (signal {_n(v)})",
    "intent_account": lambda v: f"{_n(v)} other people from the same company active in the last 30 days",
    "intent_engagement": lambda v: f"Recent weighted activity of {_n(v)}",
    "intent_open_deal": lambda v: f"In {_plural(round(v), 'open deal')} in the CRM (them or their company)",
    # churn
    "activity_pattern": lambda v: (
        f"Even when active, {v:.0%} likely to go a month without activity (this community's patterns)"
    ),
    "engagement_drop": lambda v: f"Activity pace fell to {2.0**-v:.0%} of the member's usual",
    "negative_sentiment": lambda v: f"Mean sentiment {v:+.2f} (from -1 to +1)",
    "support_questions": lambda v: f"Support questions are {v:.0%} of recent activity",
    "spend": lambda v: f"Has spent {_n(v)} in total",
    "champion_quiet": lambda v: "The account's most active person has gone quiet",
    "renewal": lambda v: (
        f"Renewal due in {_plural(round(v), 'day')}"
        if v >= 0
        else f"Renewal overdue by {_plural(round(-v), 'day')}"
    ),
}


def _silence(days: float, gap: float | None) -> str:
    if not math.isfinite(days):
        return "Never active"
    text = f"No activity for {_plural(round(days), 'day')}"
    if gap is None or not math.isfinite(gap):
        return text + "; active on a single day before"
    habit = "daily" if gap < 1.5 else "weekly" if 5 <= gap <= 9 else f"every {_plural(round(gap), 'day')}"
    return f"{text}; usually active {habit}"


def sentence(reason: Reason) -> str:
    """One reason in words, with the points it added (log-odds points for churn)."""
    if reason.feature == "silence":
        text = _silence(reason.value, reason.detail)
    else:
        render = _TEMPLATES.get(reason.feature)
        text = render(reason.value) if render else f"{reason.feature} = {_n(reason.value)}"
    return f"{text} ({reason.points:+.1f})"


def known_features() -> frozenset[str]:
    return frozenset(_TEMPLATES) | {"silence"}
