"""Tests for scoring.metrics: AUC against a brute-force pair count, hand-checked lift/precision/Brier."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from scoring.metrics import (
    Evaluation,
    as_binary_labels,
    brier_score,
    evaluate,
    precision_at_k,
    roc_auc,
    top_decile_lift,
)


def brute_force_auc(scores: list[float], labels: list[bool]) -> float:
    """Share of (positive, negative) pairs ordered correctly, ties counting one half."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


# Small integer-valued scores make ties common, which is where rank averaging matters.
rows = st.lists(st.tuples(st.integers(-5, 5).map(float), st.booleans()), min_size=2, max_size=40)


@given(rows)
def test_roc_auc_matches_brute_force(data: list[tuple[float, bool]]) -> None:
    scores = [s for s, _ in data]
    labels = [y for _, y in data]
    assume(any(labels) and not all(labels))
    assert roc_auc(scores, labels) == pytest.approx(brute_force_auc(scores, labels), abs=1e-12)


@given(st.lists(st.tuples(st.floats(-1e6, 1e6), st.booleans()), min_size=2, max_size=40))
def test_roc_auc_symmetry_and_range(data: list[tuple[float, bool]]) -> None:
    scores = np.array([s for s, _ in data])
    labels = np.array([y for _, y in data])
    assume(labels.any() and not labels.all())
    auc = roc_auc(scores, labels)
    assert 0.0 <= auc <= 1.0
    assert roc_auc(-scores, labels) == pytest.approx(1.0 - auc, abs=1e-12)
    assert roc_auc(scores, ~labels) == pytest.approx(1.0 - auc, abs=1e-12)


def test_roc_auc_known_values() -> None:
    labels = [0, 0, 1, 1]
    assert roc_auc([0.1, 0.2, 0.8, 0.9], labels) == 1.0
    assert roc_auc([0.9, 0.8, 0.2, 0.1], labels) == 0.0
    assert roc_auc([0.5, 0.5, 0.5, 0.5], labels) == 0.5
    # One positive below one negative: 3 of 4 pairs correct.
    assert roc_auc([0.1, 0.6, 0.5, 0.9], labels) == 0.75
    assert roc_auc(np.array([1, 2, 3, 4]), np.array([False, False, True, True])) == 1.0


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        ([0.1, 0.2], [1, 1], "both classes"),
        ([0.1, 0.2], [0, 0], "both classes"),
        ([0.1, 0.2, 0.3], [0, 1], "differ in length"),
        ([], [], "empty"),
        ([0.1, float("nan")], [0, 1], "finite"),
        ([0.1, 0.2], [0, 2], "0/1"),
        ([0.1, 0.2], [0.0, 0.5], "0/1"),
        ([0.1, 0.2], ["a", "b"], "0/1"),
        ([[0.1, 0.2]], [[0, 1]], "one-dimensional"),
    ],
)
def test_roc_auc_errors(scores: list[float], labels: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        roc_auc(scores, labels)


def test_as_binary_labels_accepts_bool_and_01() -> None:
    assert as_binary_labels([True, False]).tolist() == [True, False]
    assert as_binary_labels([1, 0, 1.0]).tolist() == [True, False, True]
    assert as_binary_labels(np.array([1, 0], dtype=np.int8)).dtype == np.bool_


def test_top_decile_lift_hand_example() -> None:
    # 20 rows, 4 positives (rate 0.2). Top decile = 2 rows; both positive -> rate 1.0, lift 5.
    scores = np.arange(20, 0, -1, dtype=float)
    labels = np.zeros(20, dtype=bool)
    labels[[0, 1, 10, 15]] = True
    assert top_decile_lift(scores, labels) == pytest.approx(5.0)
    # Only one of the top two positive -> 0.5 / 0.2 = 2.5.
    labels2 = labels.copy()
    labels2[1] = False
    labels2[2] = True
    assert top_decile_lift(scores, labels2) == pytest.approx(2.5)


def test_top_decile_lift_rounds_decile_up_and_is_deterministic_on_ties() -> None:
    # n=15 -> top decile holds ceil(1.5) = 2 rows. All scores tied: stable order keeps input order.
    scores = np.ones(15)
    labels = np.zeros(15, dtype=bool)
    labels[[0, 14]] = True
    rate = 2 / 15
    assert top_decile_lift(scores, labels) == pytest.approx(0.5 / rate)
    assert top_decile_lift(scores, labels) == top_decile_lift(scores.copy(), labels.copy())
    # Small n still has a top decile of one row.
    assert top_decile_lift([0.9, 0.1, 0.2], [1, 0, 0]) == pytest.approx(3.0)


def test_top_decile_lift_without_positives_raises() -> None:
    with pytest.raises(ValueError, match="no label is positive"):
        top_decile_lift([0.1, 0.2], [0, 0])


def test_precision_at_k_hand_example() -> None:
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    labels = [1, 0, 1, 0, 0]
    assert precision_at_k(scores, labels, 1) == 1.0
    assert precision_at_k(scores, labels, 2) == 0.5
    assert precision_at_k(scores, labels, 3) == pytest.approx(2 / 3)
    assert precision_at_k(scores, labels, 5) == pytest.approx(0.4)
    # Ties broken by input order: of the two tied top scores the first (negative) is taken.
    assert precision_at_k([0.5, 0.5, 0.1], [0, 1, 0], 1) == 0.0
    assert precision_at_k([0.5, 0.5, 0.1], [1, 0, 0], 1) == 1.0


@pytest.mark.parametrize("k", [0, 6, -1, True, 2.0])
def test_precision_at_k_rejects_bad_k(k: int) -> None:
    with pytest.raises(ValueError, match="k must"):
        precision_at_k([0.1, 0.2, 0.3, 0.4, 0.5], [0, 1, 0, 1, 0], k)


def test_precision_at_k_accepts_numpy_integer() -> None:
    assert precision_at_k([0.1, 0.9], [0, 1], np.int64(1)) == 1.0  # type: ignore[arg-type]


def test_brier_score_examples() -> None:
    assert brier_score([1.0, 0.0], [1, 0]) == 0.0
    assert brier_score([0.0, 1.0], [1, 0]) == 1.0
    assert brier_score([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0]) == pytest.approx(0.25)
    # (0.1^2 + 0.3^2 + 0.4^2) / 3
    assert brier_score([0.9, 0.3, 0.6], [1, 0, 1]) == pytest.approx((0.01 + 0.09 + 0.16) / 3)
    # One class only is fine for Brier.
    assert brier_score([0.2, 0.4], [0, 0]) == pytest.approx(0.1)


@pytest.mark.parametrize("p", [[-0.1, 0.5], [0.5, 1.0001], [0.5, float("inf")]])
def test_brier_score_rejects_non_probabilities(p: list[float]) -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]|finite"):
        brier_score(p, [0, 1])


def test_evaluate_defaults_and_dict() -> None:
    rng = np.random.default_rng(7)
    n = 200
    labels = rng.random(n) < 0.3
    scores = labels * 1.0 + rng.normal(0, 0.8, n)
    probs = 1 / (1 + np.exp(-scores))
    result = evaluate(scores, labels, probabilities=probs)
    positives = int(labels.sum())
    assert result.n == n
    assert result.positives == positives
    assert result.k == min(positives, 20)
    assert result.auc == pytest.approx(roc_auc(scores, labels))
    assert result.lift_top_decile == pytest.approx(top_decile_lift(scores, labels))
    assert result.precision_at_k == pytest.approx(precision_at_k(scores, labels, result.k))
    assert result.brier == pytest.approx(brier_score(probs, labels))
    as_dict = result.as_dict()
    assert set(as_dict) == {"n", "positives", "auc", "lift_top_decile", "precision_at_k", "k", "brier"}
    json.dumps(as_dict)
    with pytest.raises(AttributeError):
        result.n = 3  # type: ignore[misc]


def test_evaluate_k_rules_and_missing_probabilities() -> None:
    # 2 positives among 50: k = min(2, ceil(50/10)=5) = 2.
    labels = np.zeros(50, dtype=bool)
    labels[[3, 45]] = True  # scores ascend, so the top 7 rows are 43..49
    scores = np.linspace(0, 100, 50)
    result = evaluate(scores, labels)
    assert result.k == 2
    assert result.brier is None
    assert isinstance(result, Evaluation)
    # Many positives in a small set: capped at the decile size, at least 1.
    assert evaluate([0.1, 0.9, 0.5], [1, 1, 0]).k == 1
    assert evaluate(scores, labels, k=7).k == 7
    assert math.isclose(evaluate(scores, labels, k=7).precision_at_k, 1 / 7)


def test_evaluate_errors() -> None:
    with pytest.raises(ValueError, match="both classes"):
        evaluate([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="differ in length"):
        evaluate([0.1, 0.2], [0, 1], probabilities=[0.5])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        evaluate([10.0, 20.0], [0, 1], probabilities=[10.0, 20.0])
