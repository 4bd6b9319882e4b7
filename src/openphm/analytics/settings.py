"""The analytics settings and the European Standard Population, read from package data."""

from __future__ import annotations

import csv
from functools import cache

from pydantic import Field, field_validator

from openphm.content import content_path
from openphm.content.validation import ContentError, ContentModel, read_yaml, validated


class Settings(ContentModel):
    """`content/analytics/settings.yaml` (documented in docs/analytics.md)."""

    version: str
    inequality_levels: tuple[str, ...] = Field(min_length=1)
    dsr_min_events: int = Field(ge=0)
    sii_min_deciles: int = Field(ge=2, le=10)
    sii_simulations: int = Field(ge=1)
    forecast_levels: tuple[str, ...] = Field(min_length=1)
    forecast_years: int = Field(ge=1)
    forecast_draws: int = Field(ge=1)
    forecast_prior_people: float = Field(ge=0)
    forecast_age_groups: tuple[int, ...] = Field(description="Lower bounds: increasing multiples of 5 from 0.")

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, version: object) -> object:
        return str(version) if isinstance(version, int | float) else version

    @field_validator("forecast_age_groups")
    @classmethod
    def _unions_of_five_year_bands(cls, groups: tuple[int, ...]) -> tuple[int, ...]:
        if not groups or groups[0] != 0 or any(g % 5 for g in groups) or list(groups) != sorted(set(groups)):
            raise ValueError("increasing multiples of 5 starting at 0")
        return groups


@cache
def load_settings() -> Settings:
    source = "analytics/settings.yaml"
    document = read_yaml(content_path("analytics", "settings.yaml"), source, ContentError)
    return validated(Settings, document, source, ContentError)


@cache
def esp2013() -> dict[str, float]:
    """ESP 2013 weight of each 5-year age band ('00-04' ... '95+'); the weights sum to 100,000."""
    with content_path("analytics", "esp2013.csv").open(encoding="utf-8") as handle:
        return {row["age_band"]: float(row["weight"]) for row in csv.DictReader(handle)}
