"""Signals of a whole account (organization), from a summary of each of its people.

Lead scoring counts how many people of an account are active at once; churn scoring asks whether
the account's champion (its most active person, by lifetime activity, so the champion does not
change as time merely passes) has gone quiet. Both need every person of the account, not only the
members being rescored, so they are computed from per-person summaries of the people in the pass
and, for everyone else at those accounts, one summary row per account (:class:`Others`): what the
signals need of them, which a database can aggregate without handing over every person.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from scoring.features import Features

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]

MIN_QUIET_DAYS = 30.0  # a champion is quiet after twice their usual gap, and at least this long


@dataclass(frozen=True)
class AccountSignals:
    active_people: Floats  # per organization: people active in the recent window
    champion_quiet: NDArray[np.bool_]  # per organization


@dataclass(frozen=True)
class People:
    """One row per person: their organization and a summary of their activity."""

    organization: Ints  # -1 for none
    activities: Floats  # lifetime count
    recency_days: Floats  # inf when never active
    usual_gap_days: Floats  # NaN with a single active day
    recent: Floats  # activities in the recent window


@dataclass(frozen=True)
class Others:
    """Per organization, what the account signals need of the people not in the pass: how many of
    them are active in the recent window, the highest lifetime activity among them (0 when none),
    and whether one of those with that highest count has gone quiet (:func:`is_quiet`)."""

    active: Floats
    top_activities: Floats
    top_quiet: NDArray[np.bool_]


def is_quiet(recency_days: Floats, usual_gap_days: Floats) -> NDArray[np.bool_]:
    """Silent for longer than twice one's usual gap between active days, and at least
    :data:`MIN_QUIET_DAYS` (NaN gap: a single active day, counted as that minimum)."""
    gap = np.nan_to_num(usual_gap_days, nan=MIN_QUIET_DAYS)
    quiet: NDArray[np.bool_] = recency_days > np.maximum(2.0 * gap, MIN_QUIET_DAYS)
    return quiet


def summarise(people: People, n_orgs: int) -> Others:
    """:class:`Others` of these people, per organization (people without one count nowhere)."""
    org = people.organization
    in_org = org >= 0
    active = np.bincount(org[in_org], weights=(people.recent[in_org] > 0), minlength=n_orgs)[:n_orgs]
    top = np.zeros(n_orgs + 1)
    np.maximum.at(top, org[in_org], np.maximum(people.activities[in_org], 0.0))
    at_top = in_org & (people.activities == top[org]) & is_quiet(people.recency_days, people.usual_gap_days)
    quiet = np.zeros(n_orgs + 1, bool)
    quiet[org[at_top]] = True
    return Others(active.astype(np.float64), top[:n_orgs], quiet[:n_orgs])


def people_of(features: Features, organization: Ints) -> People:
    return People(
        organization,
        features["activities"],
        features["recency_days"],
        features["usual_gap_days"],
        features["recent"],
    )


def joined(first: People, second: People | None) -> People:
    if second is None:
        return first
    return People(
        *(np.concatenate([getattr(first, f), getattr(second, f)]) for f in People.__dataclass_fields__)
    )


def account_signals(people: People, n_orgs: int, others: Others | None = None) -> AccountSignals:
    """Per organization: its people active in the recent window, and whether its champion (the
    person with the most lifetime activity, ties all counted) has gone quiet. ``people`` are
    those in the pass; ``others`` summarises the rest of each account."""
    org = people.organization
    in_org = org >= 0
    weights = (people.recent[in_org] > 0).astype(np.float64)
    active = np.bincount(org[in_org], weights=weights, minlength=n_orgs)[:n_orgs].astype(np.float64)
    quiet = np.zeros(n_orgs, bool)
    top = np.zeros(n_orgs)  # a champion has some activity: 0 is no champion
    if others is not None:
        active = active + others.active
        top = np.maximum(top, others.top_activities)
    if n_orgs and in_org.any():
        total = people.activities
        np.maximum.at(top, org[in_org], total[in_org])
        is_champ = in_org & (total > 0) & (total == np.r_[top, -np.inf][org])
        # Tied champions: the account counts as quiet when one of them is.
        quiet[org[is_champ & is_quiet(people.recency_days, people.usual_gap_days)]] = True
    if others is not None:
        quiet |= (others.top_activities > 0) & (others.top_activities == top) & others.top_quiet
    return AccountSignals(active, quiet)
