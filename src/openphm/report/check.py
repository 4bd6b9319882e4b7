"""A last check before the page is written: no count on it is a small number or an unrounded one.

The counts come from published tables, so this never fires unless a chart builder has a bug; it exists so
that such a bug stops the report instead of disclosing. It checks every value a chart shows as people.
"""

from __future__ import annotations

from collections.abc import Iterable

from openphm.disclosure import Policy
from openphm.report.model import Report


class DisclosureError(AssertionError):
    """A count about to be shown breaks the disclosure rule (a bug in the report, never in the data)."""


def _counts(kind: str, value_format: str, data: dict) -> Iterable[float | None]:
    if kind == "sankey":
        yield from (link["value"] for link in data["links"])
        return
    for series in data["series"]:
        if value_format == "count":
            yield from series["values"]
            yield from series.get("lower") or []
            yield from series.get("upper") or []
        yield from series.get("counts") or []


def check_disclosed(report: Report, policy: Policy) -> None:
    """Raise DisclosureError if any count of any chart of any area is in 1..threshold or not rounded."""
    if policy.is_none:
        return
    kinds = {c.id: (c.kind, c.value_format) for c in report.charts}
    for area, charts in report.data.items():
        for chart_id, data in charts.items():
            kind, value_format = kinds[chart_id]
            for value in _counts(kind, value_format, data):
                if value is None:
                    continue
                if 0 < value <= policy.redact_up_to or value % policy.round_to:
                    raise DisclosureError(f"chart {chart_id} of area {area}: a count breaks the '{policy.name}' rule")
