"""Reward rules as configuration: the packaged ``plugin/programs.toml``, each rule replaceable by
a workspace's own file (``FLYWHEEL_PROGRAMS_CONFIG``)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

from plugin.errors import ConfigError

KINDS = ("points", "money")


@dataclass(frozen=True)
class Rule:
    reason: str
    kind: str
    amount: Decimal
    currency: str | None = None
    hold_days: int = 0
    approve_above: Decimal | None = None

    def needs_approval(self, amount: Decimal) -> bool:
        return self.approve_above is not None and amount > self.approve_above


def money(value: Any, what: str) -> Decimal:
    """A decimal from a string or integer (a float is refused: 0.1 is not exact)."""
    if isinstance(value, float | bool):
        raise ConfigError(f'{what} must be a decimal string such as "12.50", not a float')
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{what} is not a number: {value!r}") from None
    try:
        exact = amount.is_finite() and amount == amount.quantize(Decimal("0.0001"))
    except InvalidOperation:  # too many digits to hold four places
        exact = False
    if not exact or abs(amount) >= Decimal(10) ** 14:
        raise ConfigError(f"{what} must be below 100 trillion, with at most four decimal places")
    return amount


def check_kind(kind: str, currency: str | None, what: str) -> str | None:
    if kind not in KINDS:
        raise ConfigError(f"{what}: kind must be points or money, not {kind!r}")
    if kind == "money":
        if not currency or len(currency) != 3 or not currency.isalpha():
            raise ConfigError(f"{what}: money needs a three-letter ISO 4217 currency, e.g. USD")
        return currency.upper()
    if currency:
        raise ConfigError(f"{what}: points have no currency")
    return None


def _rule(reason: str, raw: dict[str, Any]) -> Rule:
    what = f"reward rule {reason!r}"
    kind = str(raw.get("kind", ""))
    currency = check_kind(kind, raw.get("currency"), what)
    amount = money(raw.get("amount"), f"{what}: amount")
    if amount <= 0:
        raise ConfigError(f"{what}: amount must be above zero")
    hold = raw.get("hold_days", 0)
    if not isinstance(hold, int) or hold < 0:
        raise ConfigError(f"{what}: hold_days must be a whole number of days, 0 or more")
    above = raw.get("approve_above")
    return Rule(
        reason,
        kind,
        amount,
        currency,
        hold,
        None if above is None else money(above, f"{what}: approve_above"),
    )


def _raw(override: Path | None) -> tuple[dict[str, Any], dict[str, Any]]:
    packaged = tomllib.loads(resources.files("plugin").joinpath("programs.toml").read_text("utf-8"))
    mine: dict[str, Any] = {}
    if override is not None:
        try:
            mine = tomllib.loads(override.read_text("utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(
                f"cannot read the programs config {override}: {exc}",
                hint="fix the file or unset FLYWHEEL_PROGRAMS_CONFIG",
            ) from None
    return packaged, mine


def load_rules(override: Path | None = None) -> dict[str, Rule]:
    packaged, mine = _raw(override)
    raw = {**packaged["rules"], **mine.get("rules", {})}
    return {reason: _rule(reason, dict(body)) for reason, body in raw.items()}


@dataclass(frozen=True)
class Programs:
    max_contacts: int = 3
    window_days: int = 30
    min_gap_days: int = 7
    attribution_days: int = 90
    burst_per_day: int = 10
    same_domain_is_self: bool = True


def load_programs(override: Path | None = None) -> Programs:
    """The contact budget and referral checks: packaged values, then the override's, key by key."""
    packaged, mine = _raw(override)
    values: dict[str, Any] = {}
    for section in ("contact_budget", "referrals"):
        values |= {**packaged.get(section, {}), **mine.get(section, {})}
    known = set(Programs.__dataclass_fields__)
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"unknown program settings: {', '.join(sorted(unknown))}")
    for key, value in values.items():
        expected = bool if key == "same_domain_is_self" else int
        if not isinstance(value, expected) or (expected is int and value < 0):
            raise ConfigError(
                f"{key} must be {'true or false' if expected is bool else 'a whole number, 0 or more'}"
            )
    return Programs(**values)
