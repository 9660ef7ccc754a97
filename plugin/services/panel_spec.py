"""The panel file a researcher writes (TOML; documented in docs/panels.md), checked into a plain
dict that is stored with the panel: every mistake is named with the key that holds it."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from plugin.errors import ValidationFailed
from plugin.services.panel_draw import Quota

STRATA = ("customer", "level", "language")
LEVELS = ("champion", "advocate", "contributor", "participant", "observer")
ELIGIBILITY = {
    "levels": list,
    "advocate_score": list,  # [min, max]
    "active_within_days": int,
    "activity_types": list,
    "lifecycle_stages": list,
    "languages": list,  # locale prefixes: "de" matches de-DE and de-AT
    "min_tenure_days": int,
    "organization_size": list,  # [min, max]
    "industries": list,
}
EXCLUSIONS = {"own_domains": list, "competitor_domains": list, "other_active_panels": bool}


MAX_DAYS = 36_500  # a hundred years: further back than any community's history, within a date's range
MAX_PLACES = 100_000  # places on one panel (a focus group is dozens)


def _bad(key: str, what: str) -> ValidationFailed:
    return ValidationFailed(f"the panel file's {key} {what}", fields={key: what})


def _typed(section: dict[str, Any], known: dict[str, type], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in section.items():
        if key not in known:
            raise _bad(f"{prefix}.{key}", f"is not a known setting (known: {', '.join(known)})")
        if not isinstance(value, known[key]) or isinstance(value, bool) != (known[key] is bool):
            raise _bad(f"{prefix}.{key}", f"must be a {known[key].__name__}")
        if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= MAX_DAYS:
            # the whole-number settings are day counts
            raise _bad(f"{prefix}.{key}", f"must be a number of days from 0 to {MAX_DAYS:,}")
        out[key] = value
    return out


def parse_spec(data: dict[str, Any]) -> dict[str, Any]:
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _bad("name", "is needed")
    if "\n" in name or "\r" in name or len(name) > 200:
        raise _bad("name", "must be one line of at most 200 characters (it is an email subject)")
    size, reserve = data.get("size"), data.get("reserve", 0)
    if not isinstance(size, int) or not 1 <= size <= MAX_PLACES:
        raise _bad("size", f"must be a whole number from 1 to {MAX_PLACES:,}")
    if not isinstance(reserve, int) or not 0 <= reserve <= MAX_PLACES:
        raise _bad("reserve", f"must be a whole number from 0 to {MAX_PLACES:,}")
    stratify = data.get("stratify_by", "customer")
    if stratify not in STRATA:
        raise _bad("stratify_by", f"must be one of {', '.join(STRATA)}")
    eligibility = _typed(dict(data.get("eligibility", {})), ELIGIBILITY, "eligibility")
    for level in eligibility.get("levels", []):
        if level not in LEVELS:
            raise _bad("eligibility.levels", f"holds {level!r}; levels are {', '.join(LEVELS)}")
    for key in ("advocate_score", "organization_size"):
        pair = eligibility.get(key)
        if pair is not None and (len(pair) != 2 or not all(isinstance(v, int | float) for v in pair)):
            raise _bad(f"eligibility.{key}", "must be [min, max]")
    exclusions = _typed(dict(data.get("exclusions", {})), EXCLUSIONS, "exclusions")
    quotas = data.get("quotas")
    if not isinstance(quotas, dict) or not quotas:
        raise _bad("quotas", "must give each stratum a min and max, e.g. [quotas.customer] min = 8 max = 8")
    checked: dict[str, dict[str, int]] = {}
    for stratum, q in quotas.items():
        low, high = (q or {}).get("min", 0), (q or {}).get("max")
        if not isinstance(low, int) or not isinstance(high, int) or not 0 <= low <= high <= MAX_PLACES:
            raise _bad(f"quotas.{stratum}", "needs whole numbers 0 <= min <= max")
        checked[stratum] = {"min": low, "max": high}
    if sum(q["min"] for q in checked.values()) > size:
        raise _bad("quotas", f"ask for more minimum places than the panel's size ({size})")
    if sum(q["max"] for q in checked.values()) < size:
        raise _bad("quotas", f"allow fewer places than the panel's size ({size})")
    seed = data.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**31):
        raise _bad("seed", "must be a whole number from 0 to 2147483647")
    return {
        "name": name.strip(),
        "size": size,
        "reserve": reserve,
        "stratify_by": stratify,
        "eligibility": eligibility,
        "exclusions": exclusions,
        "quotas": checked,
        "seed": seed,
    }


def read_spec(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise ValidationFailed(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValidationFailed(f"{path} is not valid TOML: {exc}") from None
    return parse_spec(data)


def quotas_of(spec: dict[str, Any]) -> dict[str, Quota]:
    return {name: Quota(q["min"], q["max"]) for name, q in spec["quotas"].items()}
