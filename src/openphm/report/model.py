"""The report's content, independent of how it is gathered (:mod:`data`) or written out (:mod:`render`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from openphm.report.charts import Chart

LEVELS = (
    ("national", "All areas"),
    ("region", "Region"),
    ("icb", "ICB"),
    ("sub_icb", "Sub-ICB"),
    ("pcn", "PCN"),
    ("practice", "Practice"),
)
"""Geography levels from the top down, as the picker drills: id and label."""


@dataclass(frozen=True)
class Area:
    """One place the picker can show; ``key`` is unique across levels (``level:code``; ``national`` alone)."""

    level: str
    code: str
    name: str
    parent: str | None

    @property
    def key(self) -> str:
        return f"{self.level}:{self.code}" if self.code else self.level


@dataclass(frozen=True)
class Coverage:
    """One source table's reconciliation at ingest, each count disclosure-controlled (None = redacted)."""

    table: str
    input_rows: float | None
    loaded: float | None
    quarantined: float | None
    opted_out: float | None


@dataclass(frozen=True)
class QualityRow:
    """A data-quality check that failed or warned, its counts disclosure-controlled (None = redacted)."""

    status: str
    check_id: str
    description: str
    where: str
    numerator: float | None
    denominator: float | None
    rate: float | None
    """From the published counts, like every rate of the report; None where either is redacted or zero."""
    threshold: float


@dataclass(frozen=True)
class Definition:
    """A condition, medicine or measure definition the run used, with its version."""

    id: str
    name: str
    kind: str
    version: str
    completeness: str


@dataclass
class Methods:
    """What a reader needs to judge the figures: purpose, dates, coverage, the rules applied."""

    purpose: str
    as_of: list[str]
    extract_date: str | None
    policy: str
    disclosure: str
    population: list[tuple[str, float | None]] = field(default_factory=list)
    """People in the population (alive and registered) at each as_of, published (rounded)."""
    coverage: list[Coverage] = field(default_factory=list)
    quarantine: list[tuple[str, str, float | None]] = field(default_factory=list)
    quality: list[QualityRow] = field(default_factory=list)
    """Failed and warned data-quality checks of the latest extract, failures first."""
    quality_counts: dict[str, int] = field(default_factory=dict)
    """Rows of data_quality by status (checks, not people: shown exactly)."""
    qrisk3_disclaimer: str | None = None
    definitions: list[Definition] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Plain statements about gaps, e.g. a pipeline table that was absent so a chart could not be drawn."""
    output_purpose: str = "planning"
    """What this report is for; the store's ingest purpose (``purpose``) must cover it, or be overridden."""
    opt_outs: str = ""
    """Which opt-outs were applied at ingest, under which policy version."""
    warnings: list[str] = field(default_factory=list)
    """What a reader must know before trusting the figures: an old national check, a purpose override."""


@dataclass
class Report:
    """Everything the page shows: the areas, the charts, each area's chart data, and the methods."""

    title: str
    generated_at: str
    latest_as_of: str | None
    areas: list[Area]
    charts: list[Chart]
    data: dict[str, dict[str, dict[str, object]]]
    """``data[area.key][chart.id]``: the chart's data for that area (shapes in :mod:`charts`)."""
    methods: Methods

    def blob(self) -> dict[str, object]:
        """The JSON the page's renderer reads."""
        return {
            "levels": [{"id": level, "label": label} for level, label in LEVELS],
            "areas": [
                {"key": a.key, "level": a.level, "code": a.code, "name": a.name, "parent": a.parent} for a in self.areas
            ],
            "charts": [c.as_json() for c in self.charts],
            "data": self.data,
        }
