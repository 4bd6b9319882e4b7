"""The data-quality table: parameterised check types applied from a settings file (``docs/data-quality.md``).

Ingest has already quarantined every row that breaks the input contract; ``data_quality`` is about what
passed but is incomplete or implausible: conformance, completeness, plausibility and coverage, as counts of
records by source, practice and month - never a person.
"""

from openphm.quality.assess import assess
from openphm.quality.checks import CHECK_TYPES, Inputs
from openphm.quality.schema import HISTORY, SCHEMA, TABLE
from openphm.quality.settings import QualitySettings, load_settings

__all__ = ["CHECK_TYPES", "HISTORY", "SCHEMA", "TABLE", "Inputs", "QualitySettings", "assess", "load_settings"]
