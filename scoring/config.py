"""Scoring settings: weights and thresholds as data, versioned and hashed.

The settings come from a TOML mapping (the packaged ``defaults.toml``, overridden per workspace).
This module only checks and shapes that mapping; reading files is the caller's job, because
``scoring`` does no I/O. ``weights_hash`` is a sha256 of the merged settings, stored with every
score so any score can be traced back to the numbers that made it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

ADVOCATE_COMPONENTS = ("engagement", "helpfulness", "advocacy", "consistency")
FIT_PARTS = ("seniority", "company_size", "industry", "business_email")
INTENT_PARTS = ("hand_raise", "event_attended", "event_registered", "account", "engagement", "open_deal")


class ConfigError(ValueError):
    """The scoring settings are not usable; the message names the key."""


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` into ``base``: tables merge key by key, anything else replaces."""
    out: dict[str, Any] = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _num(table: Mapping[str, Any], key: str, path: str, *, positive: bool = False) -> float:
    value = table.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{path}.{key} must be a number")
    if positive and value <= 0:
        raise ConfigError(f"{path}.{key} must be above 0")
    return float(value)


def _table(data: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path + '.' if path else ''}{key} must be a table")
    return value


#: Numbers the models read by name: (table path, key, must be above 0).
_NUMBERS: tuple[tuple[tuple[str, ...], str, bool], ...] = (
    (("windows",), "recent_days", True),
    (("windows",), "prior_days", True),
    (("windows",), "active_weeks_days", True),
    (("windows",), "sentiment_days", True),
    (("runs",), "full_every_hours", True),
    (("lead",), "intent_half_life_days", True),
    (("lead",), "intent_window_days", True),
    (("lead", "fit_grades"), "A", False),
    (("lead", "fit_grades"), "B", False),
    (("lead", "intent_digits"), "1", False),
    (("lead", "intent_digits"), "2", False),
    (("lead", "hot"), "within_days", True),
    (("churn",), "horizon_days", True),
    (("churn",), "base_weight", False),
    (("churn",), "bias", False),
    (("churn", "bands"), "medium", True),
    (("churn", "bands"), "high", True),
    (("churn", "drop"), "weight", False),
    (("churn", "drop"), "cap", True),
    (("churn", "negative_sentiment"), "weight", False),
    (("churn", "support_questions"), "weight", False),
    (("churn", "support_questions"), "cap", True),
    (("churn", "champion_quiet"), "weight", False),
    (("churn", "renewal"), "weight", False),
    (("churn", "renewal"), "within_days", True),
    (("churn", "spend"), "weight", False),
)


def _check_numbers(data: Mapping[str, Any]) -> None:
    for path, key, positive in _NUMBERS:
        table: Mapping[str, Any] = data
        for i, part in enumerate(path):
            table = _table(table, part, ".".join(path[:i]))
        _num(table, key, ".".join(path), positive=positive)
    size = _table(data, "lead", "").get("ideal_company_size")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(x, int | float) for x in size)):
        raise ConfigError("lead.ideal_company_size must be two numbers, e.g. [50, 5000]")
    bands = data["churn"]["bands"]
    if not 0 < bands["medium"] <= bands["high"] < 1:
        raise ConfigError("churn.bands must satisfy 0 < medium <= high < 1")
    hot = data["lead"]["hot"]
    if hot.get("max_fit_grade") not in ("A", "B", "C") or str(hot.get("intent_digit")) not in ("1", "2", "3"):
        raise ConfigError("lead.hot needs max_fit_grade A, B or C and intent_digit 1, 2 or 3")


@dataclass(frozen=True)
class Level:
    name: str
    min_score: float
    top_share: float


@dataclass(frozen=True)
class ScoringConfig:
    """The checked settings. ``raw`` keeps the whole mapping for the parts read by name."""

    version: str
    weights_hash: str
    type_names: tuple[str, ...]
    type_weight: tuple[float, ...]
    type_half_life_days: tuple[float, ...]
    levels: tuple[Level, ...]
    raw: Mapping[str, Any]

    def type_code(self, name: str) -> int:
        """The code scoring uses for an activity type, or -1 for a type that counts for nothing."""
        try:
            return self.type_names.index(name)
        except ValueError:
            return -1

    def section(self, *path: str) -> Mapping[str, Any]:
        data: Mapping[str, Any] = self.raw
        for i, key in enumerate(path):
            data = _table(data, key, ".".join(path[:i]))
        return data

    def number(self, *path: str, positive: bool = False) -> float:
        return _num(self.section(*path[:-1]), path[-1], ".".join(path[:-1]), positive=positive)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ScoringConfig:
        version = data.get("version")
        if not isinstance(version, str) or not version:
            raise ConfigError("version must be a non-empty string")
        types = _table(data, "types", "")
        names, weights, halves = [], [], []
        for name, spec in sorted(types.items()):
            if not isinstance(spec, Mapping):
                raise ConfigError(f"types.{name} must be a table with weight and half_life_days")
            names.append(str(name))
            weights.append(_num(spec, "weight", f"types.{name}"))
            halves.append(_num(spec, "half_life_days", f"types.{name}", positive=True))
        advocate = _table(data, "advocate", "")
        components = _table(advocate, "components", "advocate")
        for comp in ADVOCATE_COMPONENTS:
            spec = _table(components, comp, "advocate.components")
            _num(spec, "points", f"advocate.components.{comp}")
            _num(spec, "scale", f"advocate.components.{comp}", positive=True)
        raw_levels = advocate.get("levels")
        if not isinstance(raw_levels, list) or not raw_levels:
            raise ConfigError("advocate.levels must be a list of tables")
        levels = []
        for i, spec in enumerate(raw_levels):
            if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
                raise ConfigError(f"advocate.levels[{i}] needs a name")
            share = _num(spec, "top_share", f"advocate.levels[{i}]", positive=True)
            if share > 1:
                raise ConfigError(f"advocate.levels[{i}].top_share must be at most 1")
            levels.append(Level(spec["name"], _num(spec, "min_score", f"advocate.levels[{i}]"), share))
        if any(a.min_score < b.min_score for a, b in pairwise(levels)):
            raise ConfigError("advocate.levels must be ordered from the highest min_score down")
        for part in FIT_PARTS:
            _num(_table(_table(data, "lead", ""), "fit_points", "lead"), part, "lead.fit_points")
        for part in INTENT_PARTS:
            _num(_table(data["lead"], "intent_points", "lead"), part, "lead.intent_points")
            _num(_table(data["lead"], "intent_scale", "lead"), part, "lead.intent_scale", positive=True)
        _check_numbers(data)
        hashed = {k: v for k, v in data.items() if k != "runs"}  # when to run, not how to score
        digest = hashlib.sha256(json.dumps(hashed, sort_keys=True, default=str).encode()).hexdigest()
        return cls(
            version=version,
            weights_hash=digest[:16],
            type_names=tuple(names),
            type_weight=tuple(weights),
            type_half_life_days=tuple(halves),
            levels=tuple(levels),
            raw=data,
        )
