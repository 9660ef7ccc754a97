"""Tests for scoring.fit: coefficient recovery, explanation identities, constraints and errors."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.optimize import check_grad
from scipy.special import expit

from scoring.fit import LogisticFit, _objective, fit_logistic

NAMES = ["posts", "replies", "seats"]
TRUE_INTERCEPT = -0.5
TRUE_COEF = np.array([1.5, -0.8, 0.02])
SCALES = np.array([1.0, 2.0, 100.0])  # deliberately different units


def synthetic(
    n: int = 20_000, seed: int = 12345, coef: NDArray[np.float64] = TRUE_COEF
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    rng = np.random.default_rng(seed)
    X = rng.normal(0.0, 1.0, (n, 3)) * SCALES + np.array([0.0, 1.0, 50.0])
    y = rng.random(n) < expit(TRUE_INTERCEPT + X @ coef)
    return X, y


@pytest.fixture(scope="module")
def data() -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    return synthetic()


@pytest.fixture(scope="module")
def fitted(data: tuple[NDArray[np.float64], NDArray[np.bool_]]) -> LogisticFit:
    X, y = data
    return fit_logistic(X, y, l2=1e-3, feature_names=NAMES)


def reference_newton(X: NDArray[np.float64], y: NDArray[np.float64], l2: float) -> NDArray[np.float64]:
    """Independent Newton solver on the same standardised objective; returns raw [intercept, coef...]."""
    mean, scale = X.mean(axis=0), X.std(axis=0)
    Z = np.column_stack([np.ones(len(X)), (X - mean) / scale])
    penalty = np.diag([0.0] + [l2] * X.shape[1])
    beta = np.zeros(Z.shape[1])
    for _ in range(50):
        p = expit(Z @ beta)
        grad = Z.T @ (p - y) + penalty @ beta
        hess = (Z * (p * (1 - p))[:, None]).T @ Z + penalty
        beta = beta - np.linalg.solve(hess, grad)
    coef = beta[1:] / scale
    return np.concatenate([[beta[0] - np.sum(beta[1:] * mean / scale)], coef])


def test_recovers_known_coefficients(fitted: LogisticFit) -> None:
    assert fitted.converged
    assert list(fitted.coefficients) == NAMES
    coef = np.array([fitted.coefficients[name] for name in NAMES])
    # Compare in standard-deviation units so one tolerance fits every feature's scale.
    assert np.all(np.abs(coef - TRUE_COEF) * SCALES < 0.1)
    assert fitted.intercept == pytest.approx(TRUE_INTERCEPT, abs=0.2)
    assert fitted.n == 20_000
    assert fitted.l2 == 1e-3
    assert 0.0 < fitted.log_loss < np.log(2)


@pytest.mark.parametrize("l2", [0.0, 1.0, 500.0])
def test_matches_independent_newton_solution(l2: float) -> None:
    X, y = synthetic(n=3000, seed=3)
    fit = fit_logistic(X, y, l2=l2, feature_names=NAMES)
    expected = reference_newton(X, y.astype(float), l2)
    got = np.concatenate([[fit.intercept], [fit.coefficients[name] for name in NAMES]])
    np.testing.assert_allclose(got * np.r_[1.0, SCALES], expected * np.r_[1.0, SCALES], atol=1e-4)


def test_predict_proba_in_unit_interval(
    fitted: LogisticFit, data: tuple[NDArray[np.float64], NDArray[np.bool_]]
) -> None:
    X, y = data
    p = fitted.predict_proba(X)
    assert p.shape == (len(X),)
    assert np.all((p >= 0.0) & (p <= 1.0))
    extreme = np.array([[1e6, -1e6, 1e8], [-1e6, 1e6, -1e8]])
    assert np.all((fitted.predict_proba(extreme) >= 0.0) & (fitted.predict_proba(extreme) <= 1.0))
    # The model ranks well on its own synthetic data.
    assert p[y].mean() > p[~y].mean() + 0.2


def test_contributions_sum_to_logit(
    fitted: LogisticFit, data: tuple[NDArray[np.float64], NDArray[np.bool_]]
) -> None:
    X = data[0][:100]
    contrib = fitted.contributions(X)
    assert contrib.shape == (100, 3)
    logit = fitted.intercept + contrib.sum(axis=1)
    np.testing.assert_allclose(logit, fitted.logit(X), rtol=1e-12)
    np.testing.assert_allclose(expit(logit), fitted.predict_proba(X), rtol=1e-12)
    np.testing.assert_allclose(contrib[:, 1], X[:, 1] * fitted.coefficients["replies"])


def test_nonnegative_constraint_respected() -> None:
    X, y = synthetic(n=5000, seed=9)
    fit = fit_logistic(X, y, l2=1.0, feature_names=NAMES, nonnegative=True)
    assert all(c >= 0.0 for c in fit.coefficients.values())
    assert fit.coefficients["replies"] == pytest.approx(0.0, abs=1e-6)  # truly negative -> clamped
    assert fit.coefficients["posts"] > 1.0
    # Monotone: raising a feature never lowers the score.
    row = X[:5].copy()
    bumped = row.copy()
    bumped[:, 1] += 10.0
    assert np.all(fit.predict_proba(bumped) >= fit.predict_proba(row))


def test_intercept_not_penalised() -> None:
    X, y = synthetic(n=4000, seed=5)
    fit = fit_logistic(X, y, l2=1e9, feature_names=NAMES)
    assert all(abs(c) * s < 1e-3 for c, s in zip(fit.coefficients.values(), SCALES, strict=True))
    base = y.mean()
    assert fit.intercept == pytest.approx(np.log(base / (1 - base)), abs=1e-3)


def test_constant_column_gets_zero_coefficient() -> None:
    X, y = synthetic(n=2000, seed=1)
    X = np.column_stack([X, np.full(len(X), 7.0)])
    fit = fit_logistic(X, y, l2=1.0, feature_names=[*NAMES, "constant"])
    assert fit.coefficients["constant"] == 0.0
    assert np.all(np.isfinite(fit.predict_proba(X)))


def test_gradient_is_analytic_derivative() -> None:
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(50, 3))
    y = (rng.random(50) < 0.4).astype(float)
    params = rng.normal(size=4)
    err = check_grad(lambda p: _objective(p, Z, y, 0.7)[0], lambda p: _objective(p, Z, y, 0.7)[1], params)
    assert err < 1e-6


def test_matches_sklearn_if_available() -> None:
    linear_model = pytest.importorskip("sklearn.linear_model")
    X, y = synthetic(n=3000, seed=11)
    mean, scale = X.mean(axis=0), X.std(axis=0)
    model = linear_model.LogisticRegression(C=1.0 / 2.0, tol=1e-10, max_iter=10_000)
    model.fit((X - mean) / scale, y)
    fit = fit_logistic(X, y, l2=2.0, feature_names=NAMES)
    got = np.array([fit.coefficients[name] for name in NAMES]) * scale
    np.testing.assert_allclose(got, model.coef_[0], atol=1e-4)


@pytest.mark.parametrize(
    ("X", "y", "names", "message"),
    [
        ([[1.0, np.nan], [0.0, 1.0]], [0, 1], ["a", "b"], "finite"),
        ([[1.0, np.inf], [0.0, 1.0]], [0, 1], ["a", "b"], "finite"),
        ([[1.0, 2.0], [0.0, 1.0]], [1, 1], ["a", "b"], "both classes"),
        ([[1.0, 2.0], [0.0, 1.0]], [0, 1, 1], ["a", "b"], "rows"),
        ([[1.0, 2.0], [0.0, 1.0]], [0, 1], ["a"], "columns"),
        ([[1.0, 2.0], [0.0, 1.0]], [0, 1], ["a", "a"], "unique"),
        ([1.0, 2.0], [0, 1], ["a"], "two-dimensional"),
        ([[1.0, 2.0], [0.0, 1.0]], [0, np.nan], ["a", "b"], "0/1"),
        ([[1.0, 2.0], [0.0, 1.0]], [0, 1], "ab", "single string"),
    ],
)
def test_fit_errors(X: object, y: object, names: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fit_logistic(X, y, feature_names=names)  # type: ignore[arg-type]


def test_negative_l2_rejected() -> None:
    with pytest.raises(ValueError, match="l2"):
        fit_logistic([[0.0], [1.0]], [0, 1], l2=-1.0, feature_names=["a"])


def test_prediction_input_checked(fitted: LogisticFit) -> None:
    with pytest.raises(ValueError, match="columns"):
        fitted.predict_proba(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="finite"):
        fitted.contributions(np.array([[np.nan, 0.0, 0.0]]))
    with pytest.raises(AttributeError):
        fitted.intercept = 0.0  # type: ignore[misc]
