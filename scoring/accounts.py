"""Signals of a whole account (organization), from a summary of each of its people.

Lead scoring counts how many people of an account are active at once; churn scoring asks whether
the account's champion (its most active person, by lifetime activity, so the champion does not
change as time merely passes) has gone quiet. Both need every person of the account, not only the
members being rescored, so they are computed from per-person summaries the caller can assemble
from fresh features and stored ones alike.
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


def account_signals(people: People, n_orgs: int) -> AccountSignals:
    org = people.organization
    in_org = org >= 0
    active = np.bincount(org[in_org], weights=(people.recent[in_org] > 0), minlength=n_orgs)[:n_orgs]
    quiet = np.zeros(n_orgs, bool)
    if n_orgs and in_org.any():
        total = people.activities
        top = np.full(n_orgs, -np.inf)
        np.maximum.at(top, org[in_org], total[in_org])
        is_champ = in_org & (total > 0) & (total == np.r_[top, -np.inf][org])
        gap = np.nan_to_num(people.usual_gap_days, nan=MIN_QUIET_DAYS)
        silent = people.recency_days > np.maximum(2.0 * gap, MIN_QUIET_DAYS)
        # Tied champions: the account counts as quiet when one of them is.
        quiet[org[is_champ & silent]] = True
    return AccountSignals(active.astype(np.float64), quiet)
