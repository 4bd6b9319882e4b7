"""What the report can draw: chart definitions, and the data shape each kind of chart expects.

A chart definition is static (title, kind, axis labels); the data of a chart are per area, in the shapes
documented in :mod:`openphm.charts`, which turns them into Vega-Lite specs and data tables. Adding a chart to the
report is a new definition and a new data builder in :mod:`openphm.report.data`, never new JavaScript.

Every chart's data may carry ``"note"`` (a sentence shown under it, e.g. the slope index of inequality).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from openphm.charts import OKABE_ITO

KINDS = ("bar", "stacked", "pyramid", "line", "sankey")


@dataclass(frozen=True)
class Chart:
    """One chart of the report."""

    id: str
    section: str
    kind: str
    title: str
    description: str
    x_label: str
    y_label: str
    value_format: str = "count"
    """How values read: ``count`` (people, thousands separators), ``percent``, ``gbp``, ``rate`` (1 decimal)."""
    horizontal: bool = False
    """Bars run left to right with categories down the side (long category names)."""
    levels: tuple[str, ...] = ()
    """Geography levels at which some area has data (set when the report is built): elsewhere the page says
    the chart is not computed at that level, rather than that its counts are suppressed."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"chart {self.id}: unknown kind {self.kind}")

    def as_json(self) -> dict[str, object]:
        return asdict(self)


SECTIONS = {
    "population": "Population and segments",
    "need": "Need, conditions and cost",
    "change": "Change over time",
    "inequality": "Inequalities",
    "cohorts": "Cohorts for proactive care",
}
"""Report sections in page order, with their headings."""

SEGMENTS = {
    "healthy": "Healthy well",
    "maternal_and_infant": "Maternal and infant health",
    "acutely_ill": "Acutely ill",
    "long_term_conditions": "Long-term conditions",
    "disability": "Disability",
    "incurable_cancer": "Incurable cancer",
    "organ_failure": "Organ failure",
    "frailty_and_dementia": "Frailty and dementia",
}
"""The eight Bridges to Health segments, in order of increasing need, with their published names."""

SEGMENT_COLOURS = dict(zip(SEGMENTS, OKABE_ITO, strict=True))

STATE_COLOURS = {"joined": "#999999", "left": "#BBBBBB", "died": "#555555"}
"""Colours of the non-segment states of the transition Sankey."""


def sequential(n: int) -> list[str]:
    """``n`` colours from light to dark blue, for ordered categories such as need tiers or quintiles."""
    light, dark = (0xDE, 0xEB, 0xF7), (0x08, 0x30, 0x6B)
    out = []
    for i in range(n):
        t = i / max(n - 1, 1)
        out.append("#" + "".join(f"{round(a + (b - a) * t):02X}" for a, b in zip(light, dark, strict=True)))
    return out
