"""Write a :class:`~openphm.report.model.Report` as one self-contained HTML file.

The stylesheet, the chart runtime (the vendored Vega, Vega-Lite, vega-embed and Vega expression interpreter of
:mod:`openphm.charts`), the page script and the data are inlined, so the file works when mailed, opened from a
shared drive, or read on a machine with no network. Each chart of each area is a Vega-Lite spec and a data table
built in Python; the page's content security policy allows exactly these inline scripts by their SHA-256 hashes
and no ``unsafe-eval`` (Vega evaluates expressions with its interpreter). Jinja2 autoescapes every value from
the store; the JSON blob is escaped for a ``<script>`` element separately (``</`` and the two JavaScript-only
line separators).
"""

from __future__ import annotations

import base64
import hashlib
import json
from importlib.resources import files

from jinja2 import Environment, PackageLoader, select_autoescape

from openphm import charts
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


def views(report: Report) -> dict[str, dict[str, dict[str, object]]]:
    """``views[area][chart]``: the Vega-Lite spec, the data table and the note of every chart with something to
    draw (a chart absent here is shown as empty, with the reason)."""
    out: dict[str, dict[str, dict[str, object]]] = {}
    for area, by_chart in report.data.items():
        out[area] = {}
        for chart in report.charts:
            data = by_chart.get(chart.id)
            if data is None or not charts.has_values(chart, data):
                continue
            out[area][chart.id] = {
                "spec": charts.spec(chart, data),
                "table": charts.table(chart, data),
                "note": data.get("note"),
            }
    return out


def script_hash(body: str) -> str:
    """A CSP source for one inline script: ``'sha256-...'`` of exactly the text between its tags."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii") + "'"


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
    scripts = [charts.vendor_script(name) for name in charts.VENDOR_SCRIPTS] + [_static("page.js")]
    blob = {**report.blob(), "views": views(report), "embed": charts.EMBED_OPTIONS}
    return env.get_template("report.html.j2").render(
        report=report,
        sections=sections,
        levels=LEVELS,
        methods=report.methods,
        css=_static("report.css"),
        scripts=scripts,
        script_src=" ".join(script_hash(body) for body in scripts),
        blob=script_json(blob),
    )
