"""Load the scoring settings: the packaged defaults, overridden by a workspace's TOML file."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from plugin.errors import ConfigError
from scoring.config import ConfigError as ScoringConfigError
from scoring.config import ScoringConfig, merge


def default_settings() -> dict[str, Any]:
    return tomllib.loads(resources.files("scoring").joinpath("defaults.toml").read_text("utf-8"))


def load_scoring_config(override: Path | None = None) -> ScoringConfig:
    """The defaults merged with ``override`` (a partial TOML file), checked."""
    data = default_settings()
    if override is not None:
        try:
            extra = tomllib.loads(override.read_text("utf-8"))
        except FileNotFoundError:
            raise ConfigError(
                f"scoring config file {override} does not exist",
                hint="check the path given by --config or FLYWHEEL_SCORING_CONFIG",
            ) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"scoring config file {override} is not valid TOML: {exc}",
                hint="fix the file; `flywheel score --show-config` prints the defaults to start from",
            ) from None
        data = merge(data, extra)
    try:
        return ScoringConfig.from_mapping(data)
    except ScoringConfigError as exc:
        raise ConfigError(
            f"scoring config: {exc}",
            hint="compare with the defaults printed by `flywheel score --show-config`",
        ) from None
