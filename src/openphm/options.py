"""The options of one pipeline run, typed: what a user can replace or choose without changing code.

Every field has a ``phm run`` flag and a keyword of :func:`openphm.api.run` of the same name, so a new option
is one field here, one flag and one keyword; stages read ``context.options.<name>`` and a misspelt name is
an attribute error in the code, not an option silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

PEOPLE_PER_SLICE = 1_500_000
"""The default: a million-person population still runs whole (measured within 6 GB, docs/performance.md)."""

CohortAsOf = Literal["all", "latest"]


@dataclass(frozen=True)
class RunOptions:
    """The user's choices for one run; None means the package's shipped content."""

    codelists: Path | None = None
    """A folder of condition definitions (same layout as ``content/codelists``) used instead of the shipped ones."""
    unit_costs: Path | None = None
    """A CSV of unit costs (``setting,kind,cost_gbp``) used instead of the national defaults."""
    segment_rules: Path | None = None
    """A segmentation rules file (same layout as ``content/segments/rules.yaml``)."""
    cohorts: Path | None = None
    """A folder of cohort definitions (YAML) used instead of the shipped ones."""
    townsend: Path | None = None
    """A CSV of Townsend deprivation scores by LSOA (``lsoa_code,townsend``) for QRISK3, when the store has no
    ``townsend`` table."""
    admission_model: Path | None = None
    """A published admission risk model file applied instead of the store's model or one fitted in the run."""
    cohort_as_of: CohortAsOf = "all"
    """Cohorts at every as_of date, or at the latest only."""
    people_per_slice: int = PEOPLE_PER_SLICE
    """Per-person stages run on slices of at most about this many people (less memory, the same tables)."""
    quality_settings: Path | None = None
    """A data-quality settings file (same layout as ``content/quality/settings.yaml``) instead of the shipped
    checks and thresholds."""

    def __post_init__(self) -> None:
        if self.people_per_slice < 1:
            raise ValueError("people_per_slice must be at least 1")
        if self.cohort_as_of not in ("all", "latest"):
            raise ValueError(f"cohort_as_of must be 'all' or 'latest', not {self.cohort_as_of!r}")
