"""Learn score weights from a user's labels while keeping every score explainable.

A logistic model is the simplest learned score that still decomposes exactly: the log-odds of a row
is ``intercept + sum(coefficient * value)``, so each feature's contribution can be shown next to the
score. ``fit_logistic`` fits it with L-BFGS-B on the L2-penalised log-loss (analytic gradient):

* Features are standardised internally so the optimiser is well conditioned and the penalty treats
  every feature alike whatever its unit; coefficients are mapped back to the raw scale, so callers
  never see the standardisation.
* The intercept is not penalised: shrinking it would bias the base rate, not the feature weights.
* ``nonnegative=True`` bounds every coefficient at zero or above, so the product promise "more of a
  good signal never lowers a score" survives fitting. Dividing by a positive standard deviation
  keeps the sign, so the bound holds on the raw scale too.

The objective, in standardised units z, is ``sum(log-loss) + l2/2 * ||w||^2`` (sklearn's
``LogisticRegression(C=1/l2)`` on standardised features minimises the same thing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import expit

from scoring.metrics import as_binary_labels

__all__ = ["LogisticFit", "fit_logistic"]

_MAX_ITER = 1000


def _as_matrix(X: ArrayLike, n_features: int | None = None) -> NDArray[np.float64]:
    """Return ``X`` as a finite 2-D float array, optionally checking its column count."""
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"X must be two-dimensional (rows x features), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("X must be finite (no NaN or infinity)")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"X has {arr.shape[1]} columns but the model has {n_features} features")
    return arr


@dataclass(frozen=True)
class LogisticFit:
    """A fitted logistic score on the raw feature scale.

    ``coefficients`` keeps the feature order used for fitting; ``X`` passed to the methods must have
    its columns in that order. ``log_loss`` is the mean unpenalised log-loss on the training rows.
    """

    intercept: float
    coefficients: dict[str, float]
    l2: float
    n: int
    log_loss: float
    converged: bool

    @property
    def feature_names(self) -> list[str]:
        """Feature names in column order."""
        return list(self.coefficients)

    def _coef_vector(self) -> NDArray[np.float64]:
        return np.fromiter(self.coefficients.values(), dtype=np.float64, count=len(self.coefficients))

    def contributions(self, X: ArrayLike) -> NDArray[np.float64]:
        """Per-row, per-feature ``coefficient * value``; with the intercept they sum to the logit."""
        arr = _as_matrix(X, len(self.coefficients))
        return arr * self._coef_vector()

    def logit(self, X: ArrayLike) -> NDArray[np.float64]:
        """Log-odds per row: ``intercept + contributions(X).sum(axis=1)``."""
        return np.asarray(self.intercept + self.contributions(X).sum(axis=1), dtype=np.float64)

    def predict_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """Probability of the positive class per row, in [0, 1]."""
        return np.asarray(expit(self.logit(X)), dtype=np.float64)


def _objective(
    params: NDArray[np.float64], Z: NDArray[np.float64], y: NDArray[np.float64], l2: float
) -> tuple[float, NDArray[np.float64]]:
    """Mean penalised log-loss and its gradient; ``params`` is ``[intercept, w...]`` on Z's scale.

    Dividing the whole objective by n keeps its size near 1 for any data size, which keeps the
    optimiser's tolerances meaningful; the minimiser is unchanged.
    """
    n = Z.shape[0]
    b, w = params[0], params[1:]
    z = b + Z @ w
    loss = float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * float(w @ w)) / n
    residual = np.asarray(expit(z), dtype=np.float64) - y
    grad = np.empty_like(params)
    grad[0] = residual.sum() / n
    grad[1:] = (Z.T @ residual + l2 * w) / n
    return loss, grad


def fit_logistic(
    X: ArrayLike,
    y: ArrayLike,
    *,
    l2: float = 1.0,
    feature_names: Sequence[str],
    nonnegative: bool = False,
) -> LogisticFit:
    """Fit an L2-penalised logistic regression and return it on the raw feature scale.

    ``X`` is rows x features, ``y`` bool or 0/1, ``feature_names`` one unique name per column.
    ``l2`` (>= 0) penalises the standardised coefficients, never the intercept. With
    ``nonnegative=True`` every coefficient is constrained to be >= 0. Constant columns get a zero
    coefficient. Raises ValueError for NaN/infinite values, mismatched shapes, a single-class ``y``,
    duplicate names or a negative ``l2``. ``converged`` is False when the optimiser stopped early
    (e.g. ``l2=0`` on perfectly separable data, where the unpenalised optimum does not exist).
    """
    if isinstance(feature_names, str):
        raise ValueError("feature_names must be a sequence of names, not a single string")
    names = list(feature_names)
    arr = _as_matrix(X, len(names))
    labels = as_binary_labels(y)
    if arr.shape[0] != labels.shape[0]:
        raise ValueError(f"X has {arr.shape[0]} rows but y has {labels.shape[0]}")
    if len(set(names)) != len(names):
        raise ValueError("feature_names must be unique")
    if not np.isfinite(l2) or l2 < 0:
        raise ValueError(f"l2 must be a finite number >= 0, got {l2!r}")
    n_pos = int(labels.sum())
    if n_pos in (0, labels.shape[0]):
        raise ValueError("y must contain both classes to fit a logistic model")

    n, p = arr.shape
    yf = labels.astype(np.float64)
    mean = arr.mean(axis=0)
    scale = arr.std(axis=0)
    constant = scale == 0.0
    scale[constant] = 1.0
    Z = (arr - mean) / scale
    Z[:, constant] = 0.0

    base_rate = n_pos / n
    start = np.zeros(p + 1)
    start[0] = np.log(base_rate / (1.0 - base_rate))
    lower: float | None = 0.0 if nonnegative else None
    bounds: list[tuple[float | None, float | None]] = [(None, None)] + [(lower, None)] * p
    result = minimize(
        _objective,
        start,
        args=(Z, yf, float(l2)),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": _MAX_ITER, "ftol": 1e-12, "gtol": 1e-8},
    )
    params = np.asarray(result.x, dtype=np.float64)
    w = params[1:]
    w[constant] = 0.0
    raw_coef = w / scale
    intercept = float(params[0] - np.sum(w * mean / scale))

    z = params[0] + Z @ w
    log_loss = float(np.mean(np.logaddexp(0.0, z) - yf * z))
    return LogisticFit(
        intercept=intercept,
        coefficients={name: float(c) for name, c in zip(names, raw_coef, strict=True)},
        l2=float(l2),
        n=int(n),
        log_loss=log_loss,
        converged=bool(result.success),
    )
