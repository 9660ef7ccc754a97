"""What a model returns: a score per scored row, a label, and the points each feature added."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]

#: How many contributions are kept as a score's reasons.
TOP_REASONS = 3


@dataclass(frozen=True)
class Reason:
    feature: str
    value: float
    points: float
    detail: float | None = None  # a second figure some sentences need (e.g. the usual gap in days)


@dataclass(frozen=True)
class Scored:
    """``rows`` index the input members that this model scored (e.g. only customers for churn).

    ``points[name]`` is what feature ``name`` added to each row's score (log-odds for churn);
    ``values[name]`` is the feature value behind it, for the explanation.
    """

    kind: str
    rows: NDArray[np.int64]
    score: Floats
    label: list[str]
    points: dict[str, Floats]
    values: dict[str, Floats]
    hot: NDArray[np.bool_] | None = None
    details: dict[str, Floats] = field(default_factory=dict)  # second figures, by feature
    triggers: list[list[int]] = field(default_factory=list)  # per row: activity ids behind `hot`

    def reasons(self, i: int, top: int = TOP_REASONS) -> list[Reason]:
        """Row ``i``'s largest contributions, biggest first; features that added nothing are left out."""
        found = [
            Reason(
                name,
                float(self.values[name][i]),
                float(pts[i]),
                float(self.details[name][i]) if name in self.details else None,
            )
            for name, pts in self.points.items()
            if pts[i] != 0 and np.isfinite(pts[i])
        ]
        found.sort(key=lambda r: (-abs(r.points), r.feature))
        return found[:top]

    def top_matrix(self, top: int = TOP_REASONS) -> tuple[list[str], NDArray[np.int64]]:
        """Vectorised reasons for every row: the feature names and, per row, the indexes of its
        ``top`` largest absolute contributions (-1 where fewer features contributed)."""
        names = sorted(self.points)
        if not names or self.rows.size == 0:
            return names, np.full((self.rows.size, top), -1, np.int64)
        mat = np.abs(np.vstack([self.points[n] for n in names]).T)
        mat = np.where(np.isfinite(mat), mat, 0.0)
        k = min(top, len(names))
        order = np.argsort(-mat, axis=1, kind="stable")[:, :k]
        picked = np.take_along_axis(mat, order, axis=1)
        order = np.where(picked > 0, order, -1)
        if k < top:
            order = np.hstack([order, np.full((order.shape[0], top - k), -1)])
        return names, order.astype(np.int64)


def saturating(value: Floats, points: float, scale: float) -> Floats:
    """Points that grow with ``value`` and level off at ``points``: ``points * (1 - e^(-value/scale))``."""
    return points * -np.expm1(-np.maximum(value, 0.0) / scale)
