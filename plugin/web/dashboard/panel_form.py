"""The panel builder's form, read into the dict ``panel_spec.parse_spec`` checks (the same keys
as a panel file): every field's raw text is kept so a form with a mistake comes back as typed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from plugin.services.panel_spec import LEVELS, STRATA

QUOTA_ROWS = 6
DEFAULTS: dict[str, Any] = {
    "name": "",
    "size": "20",
    "reserve": "10",
    "seed": "",
    "stratify_by": "customer",
    "levels": ["champion", "advocate", "contributor"],
    "advocate_min": "",
    "advocate_max": "",
    "active_within_days": "180",
    "activity_types": "",
    "lifecycle_stages": "",
    "languages": "",
    "min_tenure_days": "",
    "org_size_min": "",
    "org_size_max": "",
    "industries": "",
    "own_domains": "",
    "competitor_domains": "",
    "other_active_panels": True,
    "quotas": [("customer", "8", "8"), ("prospect", "12", "12")] + [("", "", "")] * (QUOTA_ROWS - 2),
}
#: Where parse_spec's keys are on the form.
FIELD_OF = {
    "eligibility.advocate_score": "advocate_min",
    "eligibility.organization_size": "org_size_min",
    "eligibility.levels": "levels",
    "quotas": "quota_name_0",
}


@dataclass
class PanelForm:
    values: dict[str, Any] = field(default_factory=lambda: dict(DEFAULTS))
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, form: Mapping[str, Any], getlist: Any) -> PanelForm:
        values: dict[str, Any] = {k: str(form.get(k, "")).strip() for k, v in DEFAULTS.items()
                                  if isinstance(v, str)}  # fmt: skip
        values["levels"] = [v for v in getlist("levels") if v in LEVELS]
        values["other_active_panels"] = form.get("other_active_panels") == "1"
        values["quotas"] = [
            tuple(str(form.get(f"quota_{part}_{i}", "")).strip() for part in ("name", "min", "max"))
            for i in range(QUOTA_ROWS)
        ]
        return cls(values)

    def _int(self, key: str, label: str) -> int | None:
        raw = self.values[key]
        if raw == "":
            return None
        try:
            return int(raw)
        except ValueError:
            self.errors[key] = f"{label} must be a whole number"
            return None

    def _number(self, key: str, label: str) -> float | None:
        raw = self.values[key]
        if raw == "":
            return None
        try:
            return float(raw)
        except ValueError:
            self.errors[key] = f"{label} must be a number"
            return None

    def _words(self, key: str) -> list[str]:
        return [w.strip() for w in self.values[key].replace("\n", ",").split(",") if w.strip()]

    def spec(self) -> dict[str, Any]:
        """The panel file's dict; ``errors`` holds what could not be read as a number."""
        v = self.values
        data: dict[str, Any] = {"name": v["name"], "stratify_by": v["stratify_by"]}
        for key, label in (("size", "The size"), ("reserve", "The reserve"), ("seed", "The seed")):
            number = self._int(key, label)
            if number is not None:
                data[key] = number
        eligibility: dict[str, Any] = {}
        if v["levels"]:
            eligibility["levels"] = list(v["levels"])
        for key, label in (("active_within_days", "Active within"), ("min_tenure_days", "Tenure")):
            number = self._int(key, label)
            if number is not None:
                eligibility[key] = number
        for key, low, high, label, top in (
            ("advocate_score", "advocate_min", "advocate_max", "The advocate score", 100),
            ("organization_size", "org_size_min", "org_size_max", "The organization size", 10**9),
        ):
            lo, hi = self._number(low, label), self._number(high, label)
            if lo is not None or hi is not None:
                eligibility[key] = [lo if lo is not None else 0, hi if hi is not None else top]
        for key in ("activity_types", "lifecycle_stages", "industries"):
            if self._words(key):
                eligibility[key] = self._words(key)
        if self._words("languages"):
            eligibility["languages"] = [w.lower() for w in self._words("languages")]
        data["eligibility"] = eligibility
        data["exclusions"] = {
            "own_domains": self._words("own_domains"),
            "competitor_domains": self._words("competitor_domains"),
            "other_active_panels": bool(v["other_active_panels"]),
        }
        quotas: dict[str, dict[str, Any]] = {}
        for i, (name, low, high) in enumerate(v["quotas"]):
            if not name:
                continue
            try:
                quotas[name] = {"min": int(low or 0), "max": int(high)}
            except ValueError:
                self.errors[f"quota_max_{i}"] = f"the quota of {name} needs whole numbers"
        data["quotas"] = quotas
        return data

    def fail(self, key: str, message: str) -> None:
        """Put parse_spec's complaint about ``key`` on the form field that holds it."""
        if key.startswith("quotas."):
            names = [name for name, _, _ in self.values["quotas"]]
            stratum = key.removeprefix("quotas.")
            key = f"quota_max_{names.index(stratum)}" if stratum in names else "quota_name_0"
        self.errors[FIELD_OF.get(key, key.split(".")[-1])] = message


STRATUM_HINTS = {
    "customer": "customer, prospect",
    "level": ", ".join(LEVELS),
    "language": "language codes, e.g. en, de, he, ar, zh, ru",
}
assert set(STRATUM_HINTS) == set(STRATA)
