"""Properties every score must keep, on small random communities (hypothesis)."""

from __future__ import annotations

import tomllib
from importlib import resources

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring.bgnbd import BgNbdParams
from scoring.churn import ChurnContext
from scoring.config import ScoringConfig
from scoring.explain import known_features, sentence
from scoring.features import DAY_US, Activities
from scoring.lead import HandRaises, LeadContext
from scoring.pipeline import Inputs, score_all

CFG = ScoringConfig.from_mapping(
    tomllib.loads(resources.files("scoring").joinpath("defaults.toml").read_text("utf-8"))
)
NOW = 1_790_000_000 * 1_000_000
PARAMS = BgNbdParams(r=0.4, alpha=6.5, a=0.8, b=3.0, log_likelihood=0.0, n=0)
POSITIVE = [name for name, w in zip(CFG.type_names, CFG.type_weight, strict=True) if w > 0]

activity = st.tuples(
    st.integers(0, 5),  # member
    st.sampled_from(CFG.type_names),
    st.floats(0, 700),  # age in days
    st.one_of(st.none(), st.floats(-1, 1)),  # sentiment
    st.one_of(st.none(), st.integers(0, 10)),  # NPS or rating
)
community = st.fixed_dictionaries(
    {
        "acts": st.lists(activity, max_size=60),
        "customer": st.lists(st.booleans(), min_size=6, max_size=6),
        "org": st.lists(st.integers(-1, 2), min_size=6, max_size=6),
        "renewal": st.lists(st.one_of(st.none(), st.floats(-30, 400)), min_size=6, max_size=6),
    }
)
props = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def build(c: dict, now: int = NOW, extra: list | None = None) -> Inputs:
    rows = list(c["acts"]) + list(extra or [])
    n = 6
    member = np.array([r[0] for r in rows], dtype=np.int64)
    kind = np.array([CFG.type_code(r[1]) for r in rows], dtype=np.int16)
    at = np.array([NOW - int(r[2] * DAY_US) for r in rows], dtype=np.int64)
    sentiment = np.array([np.nan if r[3] is None else r[3] for r in rows], dtype=np.float64)
    value = np.array([np.nan if r[4] is None else r[4] for r in rows], dtype=np.float64)
    customer = np.array(c["customer"], dtype=bool)
    org = np.array(c["org"], dtype=np.int64)
    renewal = np.array([np.nan if r is None else r for r in c["renewal"]]) - (now - NOW) / DAY_US
    return Inputs(
        acts=Activities(member, kind, at, sentiment, value),
        n=n,
        now=now,
        lead=LeadContext(customer, org, np.full(n, 0.5), np.full(n, 200.0), np.ones(n), np.ones(n)),
        churn=ChurnContext(customer, org, renewal),
        raises=HandRaises(*(np.zeros(0, np.int64) for _ in range(3)), np.zeros(0, np.int16)),
        n_orgs=3,
    )


@props
@given(community)
def test_scores_are_bounded(c: dict) -> None:
    result = score_all(build(c), CFG, params=PARAMS).scored
    assert np.all((result["advocate"].score >= 0) & (result["advocate"].score <= 100))
    assert np.all((result["lead"].score >= 0) & (result["lead"].score <= 100))
    assert np.all((result["churn"].score >= 0) & (result["churn"].score <= 1))
    assert set(result["churn"].label) <= {"low", "medium", "high"}


@props
@given(community, st.randoms(use_true_random=False))
def test_scores_are_deterministic_for_an_as_of(c: dict, rnd: object) -> None:
    first = score_all(build(c), CFG, params=PARAMS).scored
    shuffled = dict(c, acts=sorted(c["acts"], key=lambda _: rnd.random()))  # type: ignore[attr-defined]
    again = score_all(build(shuffled), CFG, params=PARAMS).scored
    for kind in first:
        np.testing.assert_allclose(first[kind].score, again[kind].score, rtol=1e-12, atol=1e-12)
        assert first[kind].label == again[kind].label


@props
@given(community, st.lists(st.tuples(st.sampled_from(POSITIVE), st.floats(0, 700)), min_size=1, max_size=10))
def test_more_positive_activity_never_lowers_an_advocate_score(c: dict, more: list) -> None:
    before = score_all(build(c), CFG, kinds=("advocate",)).scored["advocate"].score
    extra = [(0, kind, age, None, None) for kind, age in more]
    after = score_all(build(c, extra=extra), CFG, kinds=("advocate",)).scored["advocate"].score
    assert after[0] >= before[0] - 1e-9
    assert after[0] > before[0] or before[0] >= 99.999  # and it counts for something


@props
@given(community, st.floats(0.5, 400))
def test_a_longer_silence_never_lowers_churn_risk(c: dict, days: float) -> None:
    c = dict(c, customer=[True] * 6)
    early = score_all(build(c), CFG, kinds=("churn",), params=PARAMS).scored["churn"].score
    later_now = NOW + int(days * DAY_US)
    late = score_all(build(c, now=later_now), CFG, kinds=("churn",), params=PARAMS).scored["churn"].score
    assert np.all(late >= early - 1e-9), (early, late)


@props
@given(community)
def test_reasons_name_real_features_with_the_points_they_added(c: dict) -> None:
    result = score_all(build(c), CFG, params=PARAMS).scored
    for scored in result.values():
        for i in range(scored.rows.size):
            reasons = scored.reasons(i)
            assert len(reasons) <= 3
            for r in reasons:
                assert r.feature in scored.points and r.feature in known_features()
                assert r.points == pytest.approx(float(scored.points[r.feature][i]))
                assert r.points != 0
                text = sentence(r)
                assert f"{r.points:+.1f}" in text and "nan" not in text.lower()
            # the reasons are the largest contributions
            if reasons:
                largest = max(abs(float(p[i])) for p in scored.points.values() if np.isfinite(p[i]))
                assert abs(reasons[0].points) == pytest.approx(largest)


def test_levels_need_a_score_and_a_place_near_the_top() -> None:
    """Three posts do not make a champion in a tiny community; in a big one only the top few are."""
    tiny = {"acts": [(0, "post", 1.0, None, None)] * 3, "customer": [False] * 6, "org": [-1] * 6,
            "renewal": [None] * 6}  # fmt: skip
    labels = score_all(build(tiny), CFG, kinds=("advocate",)).scored["advocate"].label
    assert labels[0] not in ("champion", "advocate")
    assert labels[1] == "observer"  # no activity at all


def test_hand_raise_makes_a_good_fit_hot_and_names_the_activity() -> None:
    c = {"acts": [(0, "post", 2.0, None, None), (0, "event_attended", 5.0, None, None)],
         "customer": [False] * 6, "org": [-1] * 6, "renewal": [None] * 6}  # fmt: skip
    base = build(c)
    raises = HandRaises(
        np.array([0, 0], np.int64),
        np.array([NOW - 2 * DAY_US, NOW - 3 * DAY_US], np.int64),
        np.array([101, 102], np.int64),
        np.array([0, 0], np.int16),
    )
    fit = LeadContext(base.lead.customer, base.lead.organization, np.full(6, 1.0), np.full(6, 500.0),
                      np.ones(6), np.ones(6))  # fmt: skip
    lead = score_all(Inputs(base.acts, 6, NOW, fit, base.churn, raises, 3), CFG, kinds=("lead",)).scored[
        "lead"
    ]
    assert lead.hot is not None and bool(lead.hot[0]) and not lead.hot[1:].any()
    assert lead.triggers[0] == [101, 102]
    assert lead.label[0].startswith("A")
    assert lead.score[0] > lead.score[1]
