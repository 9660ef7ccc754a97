"""Evaluation metrics for churn and lead scores checked against a user's own labels.

``flywheel evaluate`` joins the scores Flywheel produced with outcomes the user knows (who churned,
which leads closed) and reports how well the scores rank and, when they are probabilities, how well
they are calibrated. Everything here is a pure function of two arrays so the numbers can be
reproduced by hand or by any statistics package:

* ``roc_auc``: probability that a random positive outranks a random negative (ties count one half).
* ``top_decile_lift``: how much richer in positives the top 10% by score is than the whole set.
* ``precision_at_k``: share of positives among the k highest scores (what a team working a list sees).
* ``brier_score``: mean squared error of probabilities, a calibration check.

Ranking ties are broken deterministically: a stable sort on ``-score`` keeps the input order among
equal scores, so the same input always gives the same lift and precision.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import rankdata

__all__ = [
    "Evaluation",
    "as_binary_labels",
    "brier_score",
    "evaluate",
    "precision_at_k",
    "roc_auc",
    "top_decile_lift",
]


def as_binary_labels(labels: ArrayLike) -> NDArray[np.bool_]:
    """Return ``labels`` as a 1-D boolean array; ValueError unless every value is bool, 0 or 1.

    Strict on purpose: a label column holding 2, 0.5 or NaN means the user exported the wrong
    column, and silently thresholding it would produce a plausible but meaningless metric.
    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {arr.shape}")
    if arr.dtype == np.bool_:
        return arr
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"labels must be bool or 0/1 numbers, got dtype {arr.dtype}")
    values = arr.astype(np.float64)
    if not np.all((values == 0.0) | (values == 1.0)):
        raise ValueError("labels must be bool or 0/1; found other values (NaN, 2, 0.5, ...)")
    return np.asarray(values == 1.0, dtype=np.bool_)


def _as_scores(scores: ArrayLike, name: str = "scores") -> NDArray[np.float64]:
    """Return ``scores`` as a finite 1-D float array, or raise ValueError naming the argument."""
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or infinity)")
    return arr


def _validate(
    scores: ArrayLike, labels: ArrayLike, name: str = "scores"
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Validate a (scores, labels) pair: same non-zero length, finite scores, binary labels."""
    s = _as_scores(scores, name)
    y = as_binary_labels(labels)
    if s.shape[0] != y.shape[0]:
        raise ValueError(f"{name} and labels differ in length: {s.shape[0]} != {y.shape[0]}")
    if s.shape[0] == 0:
        raise ValueError(f"{name} and labels are empty; nothing to evaluate")
    return s, y


def _ranked_labels(scores: NDArray[np.float64], labels: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Labels ordered by descending score; stable, so ties keep their input order."""
    order = np.argsort(-scores, kind="stable")
    return labels[order]


def _decile_size(n: int) -> int:
    """Number of rows in the top 10% of ``n``: ceil(n / 10), at least 1."""
    return max(1, -(-n // 10))


def roc_auc(scores: ArrayLike, labels: ArrayLike) -> float:
    """Area under the ROC curve in its Mann-Whitney form.

    AUC = (sum of positive ranks - P(P+1)/2) / (P * N), with average ranks for tied scores, which is
    exactly the share of (positive, negative) pairs the score orders correctly, ties counting 1/2.
    Raises ValueError when the inputs are empty, differ in length, or hold only one class.
    """
    s, y = _validate(scores, labels)
    n_pos = int(y.sum())
    n_neg = int(y.shape[0] - n_pos)
    if n_pos == 0 or n_neg == 0:
        kind = "positive" if n_neg == 0 else "negative"
        raise ValueError(f"roc_auc needs both classes; every label is {kind}")
    ranks = np.asarray(rankdata(s, method="average"), dtype=np.float64)
    u = float(ranks[y].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def top_decile_lift(scores: ArrayLike, labels: ArrayLike) -> float:
    """Positive rate among the top 10% by score divided by the overall positive rate.

    The top decile holds ceil(n / 10) rows (at least one). 1.0 means the score is no better than a
    random list; 10.0 is the ceiling when positives are at most 10% of rows. Raises ValueError when
    there are no positives, since the ratio is then undefined.
    """
    s, y = _validate(scores, labels)
    overall = float(y.mean())
    if overall == 0.0:
        raise ValueError("top_decile_lift is undefined when no label is positive")
    top = _ranked_labels(s, y)[: _decile_size(s.shape[0])]
    return float(top.mean()) / overall


def precision_at_k(scores: ArrayLike, labels: ArrayLike, k: int) -> float:
    """Share of positives among the ``k`` highest-scoring rows (1 <= k <= n, else ValueError)."""
    s, y = _validate(scores, labels)
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise ValueError(f"k must be an integer, got {k!r}")
    if not 1 <= k <= s.shape[0]:
        raise ValueError(f"k must be between 1 and the number of rows ({s.shape[0]}), got {k}")
    return float(_ranked_labels(s, y)[: int(k)].mean())


def brier_score(probabilities: ArrayLike, labels: ArrayLike) -> float:
    """Mean squared difference between predicted probabilities and 0/1 outcomes (lower is better).

    Raises ValueError if any probability lies outside [0, 1]: a score that is not a probability has
    no Brier score, and clipping it would hide that.
    """
    p, y = _validate(probabilities, labels, name="probabilities")
    if np.any((p < 0.0) | (p > 1.0)):
        raise ValueError("probabilities must lie in [0, 1]")
    return float(np.mean((p - y.astype(np.float64)) ** 2))


@dataclass(frozen=True)
class Evaluation:
    """Summary of how a score performs against labels, as reported by ``flywheel evaluate``.

    ``brier`` is None when no probabilities were supplied (e.g. a 0-100 lead score).
    """

    n: int
    positives: int
    auc: float
    lift_top_decile: float
    precision_at_k: float
    k: int
    brier: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        """Plain dict of the fields, ready for JSON or a table."""
        return asdict(self)


def evaluate(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    k: int | None = None,
    probabilities: ArrayLike | None = None,
) -> Evaluation:
    """Compute every metric for one score against one label column.

    ``k`` defaults to the number of positives capped at the top-decile size ceil(n / 10), and is at
    least 1: the list length a team could plausibly work. ``probabilities`` (same rows, in [0, 1])
    enables the Brier score; ranking metrics always use ``scores``. Raises ValueError on invalid
    input, including a single-class label column, for which AUC and lift are undefined.
    """
    s, y = _validate(scores, labels)
    n = int(s.shape[0])
    positives = int(y.sum())
    if k is None:
        k = max(1, min(positives, _decile_size(n)))
    brier: float | None = None
    if probabilities is not None:
        p = _as_scores(probabilities, "probabilities")
        if p.shape[0] != n:
            raise ValueError(f"probabilities and scores differ in length: {p.shape[0]} != {n}")
        brier = brier_score(p, y)
    return Evaluation(
        n=n,
        positives=positives,
        auc=roc_auc(s, y),
        lift_top_decile=top_decile_lift(s, y),
        precision_at_k=precision_at_k(s, y, k),
        k=int(k),
        brier=brier,
    )
