"""Write a :class:`~openphm.report.model.Report` as one self-contained HTML file.

The stylesheet, the renderer and the data are inlined, so the file works when mailed, opened from a shared
drive, or read on a machine with no network. Jinja2 autoescapes every value from the store; the JSON blob
is escaped for a ``<script>`` element separately (``</`` and the two JavaScript-only line separators).
"""

from __future__ import annotations

import json
from importlib.resources import files

from jinja2 import Environment, PackageLoader, select_autoescape

from openphm.report.charts import SECTIONS
from openphm.report.model import LEVELS, Report


def _static(name: str) -> str:
    return files("openphm.report").joinpath("static", name).read_text(encoding="utf-8")


def script_json(value: object) -> str:
    """JSON safe inside ``<script type="application/json">``: it can never close the element early."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def format_count(value: float | None) -> str:
    """A disclosure-controlled count for the page: thousands separators, or 'redacted'."""
    return "redacted" if value is None else f"{value:,.0f}"


def render(report: Report) -> str:
    """The whole page as one string."""
    env = Environment(
        loader=PackageLoader("openphm.report", "templates"),
        autoescape=select_autoescape(["html", "html.j2"], default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["count"] = format_count
    sections = [
        (key, heading, [c for c in report.charts if c.section == key])
        for key, heading in SECTIONS.items()
        if any(c.section == key for c in report.charts)
    ]
    return env.get_template("report.html.j2").render(
        report=report,
        sections=sections,
        levels=LEVELS,
        methods=report.methods,
        css=_static("report.css"),
        js=_static("report.js"),
        blob=script_json(report.blob()),
    )
