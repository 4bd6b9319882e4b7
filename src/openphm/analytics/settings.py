"""The analytics settings and the European Standard Population, read from package data."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache

import yaml

from openphm.content import content_path


@dataclass(frozen=True)
class Settings:
    """`content/analytics/settings.yaml` (documented in docs/analytics.md)."""

    version: str
    inequality_levels: tuple[str, ...]
    dsr_min_events: int
    sii_min_deciles: int
    sii_simulations: int
    forecast_levels: tuple[str, ...]
    forecast_years: int
    forecast_draws: int
    forecast_prior_people: float
    forecast_age_groups: tuple[int, ...]


@cache
def load_settings() -> Settings:
    raw = yaml.safe_load(content_path("analytics", "settings.yaml").read_text(encoding="utf-8"))
    groups = tuple(int(g) for g in raw["forecast_age_groups"])
    if groups[0] != 0 or any(g % 5 for g in groups) or list(groups) != sorted(set(groups)):
        raise ValueError("forecast_age_groups: increasing multiples of 5 starting at 0")
    return Settings(
        version=str(raw["version"]),
        inequality_levels=tuple(raw["inequality_levels"]),
        dsr_min_events=int(raw["dsr_min_events"]),
        sii_min_deciles=int(raw["sii_min_deciles"]),
        sii_simulations=int(raw["sii_simulations"]),
        forecast_levels=tuple(raw["forecast_levels"]),
        forecast_years=int(raw["forecast_years"]),
        forecast_draws=int(raw["forecast_draws"]),
        forecast_prior_people=float(raw["forecast_prior_people"]),
        forecast_age_groups=groups,
    )


@cache
def esp2013() -> dict[str, float]:
    """ESP 2013 weight of each 5-year age band ('00-04' ... '95+'); the weights sum to 100,000."""
    with content_path("analytics", "esp2013.csv").open(encoding="utf-8") as handle:
        return {row["age_band"]: float(row["weight"]) for row in csv.DictReader(handle)}
