"""Account signals from a per-account summary of the people outside a pass equal those from every
person: the property an incremental run relies on when the database aggregates colleagues."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.accounts import MIN_QUIET_DAYS, People, account_signals, joined, summarise

N_ORGS = 4

person = st.tuples(
    st.integers(-1, N_ORGS - 1),  # organization (-1: none)
    st.integers(0, 6),  # lifetime activities: small, so champions tie often
    st.one_of(st.just(np.inf), st.floats(0, 200)),  # recency in days (inf: never active)
    st.one_of(st.just(np.nan), st.floats(0.5, 60)),  # usual gap in days (NaN: one active day)
    st.booleans(),  # active in the recent window
)


def people(rows: list[tuple[int, int, float, float, bool]]) -> People:
    cols = list(zip(*rows, strict=True)) if rows else [[]] * 5
    return People(
        organization=np.array(cols[0], dtype=np.int64),
        activities=np.array(cols[1], dtype=np.float64),
        recency_days=np.array(cols[2], dtype=np.float64),
        usual_gap_days=np.array(cols[3], dtype=np.float64),
        recent=np.array(cols[4], dtype=np.float64),
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(person, max_size=12), st.lists(person, max_size=12))
def test_a_summary_of_the_others_gives_the_signals_of_everyone(fresh: list, rest: list) -> None:
    a, b = people(fresh), people(rest)
    whole = account_signals(joined(a, b), N_ORGS)
    summed = account_signals(a, N_ORGS, summarise(b, N_ORGS))
    assert whole.active_people.tolist() == summed.active_people.tolist()
    assert whole.champion_quiet.tolist() == summed.champion_quiet.tolist()


def test_the_champion_outside_the_pass_going_quiet_marks_the_account() -> None:
    # Org 0: the pass has a light, active member; the account's champion (40 activities, usually
    # weekly) is outside it and silent for 45 days. Org 1: the outside champion is quiet but the
    # member in the pass has more activity, so the account's champion is active.
    fresh = people([(0, 3, 1.0, 7.0, True), (1, 50, 2.0, 3.0, True)])
    others = summarise(people([(0, 40, 45.0, 7.0, False), (1, 40, 45.0, 7.0, False)]), 2)
    signals = account_signals(fresh, 2, others)
    assert signals.champion_quiet.tolist() == [True, False]
    assert signals.active_people.tolist() == [1.0, 1.0]
    # Silence shorter than the floor is not quiet, whatever the usual gap.
    brief = summarise(people([(0, 40, MIN_QUIET_DAYS - 1, 1.0, False)]), 1)
    assert account_signals(people([]), 1, brief).champion_quiet.tolist() == [False]
