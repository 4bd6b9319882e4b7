"""The chart layer's spec builders: valid Vega-Lite, plain JSON, and the right numbers in the right marks.

Specs are checked against the JSON schema shipped in the vega-lite 6.5.0 npm package (vendored in
``tests/data/vega-lite-schema.json`` by ``scripts/vendor_vega.sh``). That they draw is checked in the browser
by ``test_report_render.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from openphm import charts
from openphm.analytics.spc import xmr
from tests.support.report import CHARTS, area_data

SCHEMA = Path(__file__).parent / "data" / "vega-lite-schema.json"


@dataclass(frozen=True)
class C:
    kind: str
    title: str = "A chart"
    description: str = "What it shows."
    x_label: str = "Month"
    y_label: str = "Admissions"
    value_format: str = "count"
    horizontal: bool = False


@cache
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return jsonschema.validators.validator_for(schema)(schema)


def _walk(value: Any) -> Any:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k, v
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


def assert_valid(spec: dict[str, Any]) -> None:
    errors = sorted(validator().iter_errors(spec), key=lambda e: list(e.absolute_path))
    assert not errors, [f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors[:5]]
    assert json.loads(json.dumps(spec, allow_nan=False)) == spec  # plain JSON: no functions, NaN or tuples
    assert not any(k == "url" for k, _ in _walk(spec))  # values inline, never fetched


MONTHS = [f"2024-{m:02d}" for m in range(1, 13)] + [f"2025-{m:02d}" for m in range(1, 13)]
ADMISSIONS = [50, 52, 49, 51, 50, 53, 48, 50, 52, 51, 49, 50, 51, 50, 52, 49, 50, 51, 50, 49, 52, 50, 51, 75]


@pytest.mark.parametrize("chart", CHARTS, ids=lambda c: c.id)
def test_every_report_chart_kind_gives_a_valid_spec(chart: Any) -> None:
    data = area_data(2)[chart.id]
    spec = charts.spec(chart, data)
    assert_valid(spec)
    assert spec["description"].startswith(chart.title)


def test_the_spc_chart_is_valid_and_coloured_by_making_data_count_point_type() -> None:
    chart = C("spc")
    spec = charts.spec(chart, {"categories": MONTHS, "values": ADMISSIONS, "improvement": "decrease"})
    assert_valid(spec)
    expected = xmr(ADMISSIONS, improvement="decrease")
    rules = {r["line"]: r["value"] for r in spec["layer"][0]["data"]["values"]}
    assert rules == pytest.approx(
        {
            "Mean": expected.mean,
            "Upper process limit": expected.upper_limit,
            "Lower process limit": expected.lower_limit,
            "Upper two sigma": expected.upper_near,
            "Lower two sigma": expected.lower_near,
        }
    )
    points = spec["data"]["values"]
    colour = spec["layer"][2]["encoding"]["color"]["scale"]
    by_label = dict(zip(colour["domain"], colour["range"], strict=True))
    assert by_label["Common cause"] == "#a6a6a6"
    assert by_label["Special cause: improvement"] == "#00b0f0"
    assert by_label["Special cause: concern"] == "#e46c0a"
    assert by_label["Special cause: high"] == by_label["Special cause: low"] == "#490092"
    # The last month (75) is beyond the upper limit, and fewer admissions are better: concern, orange.
    assert points[-1]["value"] == 75 and points[-1]["type"] == "Special cause: concern"
    assert all(p["type"] == "Common cause" for p in points[:-1])
    table = charts.table(chart, {"categories": MONTHS, "values": ADMISSIONS, "improvement": "decrease"})
    assert table["rows"][-1] == ["2025-12", "75", "Special cause: concern", "above upper limit"]


def test_a_short_spc_series_shows_no_limits() -> None:
    spec = charts.spec(C("spc"), {"categories": MONTHS[:8], "values": ADMISSIONS[:8]})
    assert_valid(spec)
    assert [r["line"] for r in spec["layer"][0]["data"]["values"]] == ["Mean"]


def test_redacted_values_are_left_out_of_the_marks_and_shown_in_the_table() -> None:
    chart = C("bar", x_label="Register", y_label="% of people", value_format="percent")
    data = {
        "categories": ["Asthma", "COPD", "Diabetes"],
        "series": [{"name": "Prevalence", "values": [6.5, None, 7.25]}],
    }
    spec = charts.spec(chart, data)
    assert_valid(spec)
    assert [r["category"] for r in spec["data"]["values"]] == ["Asthma", "Diabetes"]
    assert charts.table(chart, data) == {
        "columns": ["Register", "Prevalence"],
        "rows": [["Asthma", "6.5%"], ["COPD", "redacted"], ["Diabetes", "7.2%"]],
    }


def test_intervals_become_whiskers_and_columns() -> None:
    chart = C("bar", x_label="IMD quintile", y_label="per 1,000", value_format="rate")
    data = {
        "categories": ["1", "2"],
        "series": [{"name": "Rate", "values": [80.0, 60.0], "lower": [-3.0, None], "upper": [90.0, 70.0]}],
    }
    spec = charts.spec(chart, data)
    assert_valid(spec)
    rows = spec["data"]["values"]
    assert rows[0]["lower"] == 0.0 and rows[0]["upper"] == 90.0  # the axis starts at 0
    assert "lower" not in rows[1]  # half an interval draws no whisker
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["bar", "rule"]
    assert charts.table(chart, data)["columns"] == ["IMD quintile", "Rate", "Rate 95% CI lower", "Rate 95% CI upper"]


def test_the_pyramid_puts_the_first_group_left() -> None:
    chart = next(c for c in CHARTS if c.kind == "pyramid")
    spec = charts.spec(chart, area_data(1)["pyramid"])
    rows = spec["data"]["values"]
    assert all(r["signed"] == -r["value"] for r in rows if r["group"] == "Female")
    assert all(r["signed"] == r["value"] > 0 for r in rows if r["group"] == "Male")


def test_forecast_lines_are_dashed_from_the_split_and_gaps_break_the_line() -> None:
    chart = C("line", x_label="Year", y_label="People")
    data = {
        "categories": ["2021", "2022", "2023", "2024", "2025", "2026"],
        "split": 4,
        "series": [{"name": "Total", "values": [10, None, 12, 13, 14, 15], "lower": [None] * 4 + [13, 13],
                    "upper": [None] * 4 + [15, 17]}],
    }  # fmt: skip
    spec = charts.spec(chart, data)
    assert_valid(spec)
    band, path, points = (layer["data"]["values"] for layer in spec["layer"])
    paths: dict[str, list[str]] = {}
    for r in path:
        paths.setdefault(r["path"], []).append(r["category"])
    # 2021 stands alone (2022 is redacted): a point, no line; recorded 2023-2024; forecast 2024 (joined) to 2026.
    assert paths == {"Total|1|recorded": ["2023", "2024"], "Total|1|forecast": ["2024", "2025", "2026"]}
    assert [p["category"] for p in points] == ["2021", "2023", "2024", "2025", "2026"]
    assert [b["category"] for b in band] == ["2025", "2026"]


def test_sankey_ribbons_fill_their_nodes_in_proportion_to_the_flows() -> None:
    chart = next(c for c in CHARTS if c.kind == "sankey")
    data = area_data(1)["sankey"]
    spec = charts.spec(chart, data)
    assert_valid(spec)
    ribbons = spec["layer"][0]["data"]["values"]
    nodes = {(n["side"], n["node"]): n for n in spec["layer"][1]["data"]["values"]}
    # the redacted flow is not drawn, and a node with no drawn flow (died) is not drawn either
    assert set(nodes) == {
        ("left", "Healthy well"),
        ("left", "joined"),
        ("right", "Healthy well"),
        ("right", "Long-term conditions"),
    }
    starts = [r for r in ribbons if r["x"] == pytest.approx(charts.SANKEY_COLUMNS[0][1])]
    ends = [r for r in ribbons if r["x"] == pytest.approx(charts.SANKEY_COLUMNS[1][0])]
    assert len(starts) == len(ends) == 3
    thickness = sorted(r["top"] - r["bottom"] for r in starts)
    assert thickness[0] / thickness[-1] == pytest.approx(15 / 100, abs=1e-4)  # joined 15 against healthy to healthy 100
    left = nodes["left", "Healthy well"]
    from_healthy = [r for r in starts if left["bottom"] - 1e-5 <= r["bottom"] and r["top"] <= left["top"] + 1e-5]
    assert sum(r["top"] - r["bottom"] for r in from_healthy) == pytest.approx(left["top"] - left["bottom"], abs=1e-4)
    assert all(r["top"] <= 1 and r["bottom"] >= 0 for r in ribbons)
    assert charts.table(chart, data)["rows"][2] == ["Long-term conditions", "died", "redacted"]


def test_has_values_is_false_when_everything_is_redacted() -> None:
    assert not charts.has_values(C("bar"), {"categories": ["a"], "series": [{"name": "x", "values": [None]}]})
    redacted_flow = {"left": ["a"], "right": ["b"], "links": [{"source": "a", "target": "b", "value": None}]}
    assert not charts.has_values(C("sankey"), redacted_flow)
    assert not charts.has_values(C("bar"), None)


def test_unknown_kinds_and_scripts_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown chart kind"):
        charts.spec(C("pie"), {})
    with pytest.raises(ValueError, match="not a vendored"):
        charts.vendor_script("../../etc/passwd")
    assert all(charts.vendor_script(name) for name in charts.VENDOR_SCRIPTS)


def test_the_schema_check_can_fail() -> None:
    spec = charts.spec(C("bar"), {"categories": ["a"], "series": [{"name": "x", "values": [1]}]})
    spec["layer"][0]["mark"]["type"] = "pie"
    assert list(validator().iter_errors(spec))


def test_the_spc_chart_draws_in_chromium_under_a_strict_policy(tmp_path: Path) -> None:
    """The report has no SPC chart yet (the app has): draw one on a bare page with the same runtime and policy."""
    from openphm.report.render import script_hash, script_json
    from tests.support.report import opened

    spec = charts.spec(C("spc"), {"categories": MONTHS, "values": ADMISSIONS, "improvement": "decrease"})
    page_script = (
        "var spec = JSON.parse(document.getElementById('spec').textContent);"
        "vegaEmbed('#plot', spec, Object.assign({expr: vegaInterpreter.expressionInterpreter}, "
        + json.dumps(charts.EMBED_OPTIONS)
        + ")).then(function () { document.body.setAttribute('data-charts', 'ready'); });"
    )
    scripts = [charts.vendor_script(name) for name in charts.VENDOR_SCRIPTS] + [page_script]
    policy = f"default-src 'none'; script-src {' '.join(script_hash(s) for s in scripts)}; style-src 'unsafe-inline'"
    page = tmp_path / "spc.html"
    page.write_text(
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}"><title>SPC</title></head><body>'
        f'<div id="plot"></div><script type="application/json" id="spec">{script_json(spec)}</script>'
        + "".join(f"<script>{s}</script>" for s in scripts)
        + "</body></html>",
        encoding="utf-8",
    )
    with opened(page) as visit:
        fills = visit.page.evaluate(
            "() => Array.from(document.querySelectorAll('g.mark-symbol.role-mark path'))"
            ".map(p => p.getAttribute('fill'))"
        )
        assert fills.count("#a6a6a6") == len(ADMISSIONS) - 1 and fills.count("#e46c0a") == 1
        assert visit.page.locator("g.mark-rule.role-mark line").count() == 5  # mean, limits, two-sigma lines
        assert not visit.console_errors and not visit.page_errors, visit.console_errors + visit.page_errors
        assert visit.requests == [page.resolve().as_uri()]
