"""One chart layer: Python builders that turn a chart's data into a Vega-Lite spec and a data table.

The offline report and the web application draw every chart the same way: a builder here makes a plain-JSON
Vega-Lite spec (no functions, no data URLs: the values are inline), and the vendored Vega, Vega-Lite and
vega-embed in ``vendor/`` draw it in the browser with the Vega expression interpreter, so a content security
policy without ``unsafe-eval`` holds. Every chart also gets a table of its data (:func:`table`) and a text
alternative (the spec's ``description``, which Vega puts on the drawing's ARIA label).

Data shapes (every number may be ``None``: redacted or not computable; it is left out of the marks and the
table says "redacted"):

- ``bar``: ``{"categories": [...], "series": [{"name", "values", "lower"?, "upper"?, "color"?}]}``; several
  series are drawn side by side; ``lower``/``upper`` draw interval whiskers.
- ``stacked``: as ``bar``; series are stacked per category (``counts`` per series, optional, go to the table).
- ``pyramid``: as ``stacked`` with ``"group"`` on each series: the first group is drawn to the left.
- ``line``: as ``bar`` with categories on the x axis; ``lower``/``upper`` draw a band; ``"split"`` (index of the
  first forecast category, optional) draws forecast lines dashed.
- ``sankey``: ``{"left": [...], "right": [...], "links": [{"source", "target", "value"}], "colors"?: {node: colour},
  "from_label"?, "to_label"?}``.
- ``spc``: ``{"categories": [...months], "values": [...], "improvement"?: "increase"|"decrease"|"neutral",
  "rules"?: "nhsr"|"mdc_excel"}``: an XmR chart from :func:`openphm.analytics.spc.xmr`.

Adding a chart kind is a builder here and a test (``docs/charts.md``); the browser code never changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from importlib.resources import files
from typing import Any, Protocol

from openphm.analytics.spc import xmr

KINDS = ("bar", "stacked", "pyramid", "line", "sankey", "spc")

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
"""The ``$schema`` every spec declares: an identifier only, never fetched (vega-embed reads it for the mode)."""

OKABE_ITO = ("#56B4E9", "#E69F00", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000")
"""A palette that stays distinguishable for the common colour-vision deficiencies (Okabe and Ito, 2008)."""

POINT_COLOURS = {
    "common_cause": "#a6a6a6",
    "special_cause_improvement": "#00b0f0",
    "special_cause_concern": "#e46c0a",
    "special_cause_neutral_high": "#490092",
    "special_cause_neutral_low": "#490092",
}
"""NHS England Making Data Count colours: common cause grey, improvement blue, concern orange, neutral purple."""

POINT_LABELS = {
    "common_cause": "Common cause",
    "special_cause_improvement": "Special cause: improvement",
    "special_cause_concern": "Special cause: concern",
    "special_cause_neutral_high": "Special cause: high",
    "special_cause_neutral_low": "Special cause: low",
}

VENDOR_SCRIPTS = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js", "vega-interpreter.min.js")
"""The vendored runtime, in load order (vega-embed needs the globals ``vega`` and ``vegaLite``)."""

EMBED_OPTIONS = {"ast": True, "renderer": "svg", "actions": False}
"""vega-embed options (the page adds ``expr: vegaInterpreter.expressionInterpreter``): parse expressions to
ASTs and evaluate them with the interpreter, so no code is generated at run time; SVG so the drawing is in the
document's accessibility tree; no export menu (it would offer to open the Vega editor online)."""

REDACTED = "redacted"
HEIGHT = 240
"""Plot height in pixels; the width follows the page (``"width": "container"``)."""


class ChartLike(Protocol):
    """What a builder needs to know about a chart besides its data (the report's ``Chart`` is one)."""

    @property
    def kind(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def x_label(self) -> str: ...

    @property
    def y_label(self) -> str: ...

    @property
    def value_format(self) -> str: ...

    @property
    def horizontal(self) -> bool: ...


def vendor_script(name: str) -> str:
    """The text of one vendored script, for inlining (the report) or serving (the app)."""
    if name not in VENDOR_SCRIPTS:
        raise ValueError(f"not a vendored chart script: {name}")
    return files("openphm.charts").joinpath("vendor", name).read_text(encoding="utf-8")


def _num(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


NUMBER_FORMATS = {"count": ",.0f", "percent": ",.1f", "gbp": "$,.0f", "rate": ",.1f"}
"""d3-format patterns per ``value_format`` for tooltips (``$`` is the pound through the locale below)."""
AXIS_FORMATS = {"count": ",~r", "percent": ",.1~f", "gbp": "$,~r", "rate": ",.1~f"}
"""Axis ticks drop trailing zeros (14, not 14.0)."""


def _label_angle(categories: Sequence[str]) -> int:
    """Category labels lie flat when short (quintiles, years) and slant when they would collide."""
    return 0 if max((len(c) for c in categories), default=0) * len(categories) <= 60 else -45


LOCALE = {"number": {"decimal": ".", "thousands": ",", "grouping": [3], "currency": ["£", ""]}}


def format_value(v: object, value_format: str) -> str:
    """A value as the table shows it: the same rounding as the chart's axes and tooltips."""
    if not _num(v):
        return REDACTED
    x = float(v)  # type: ignore[arg-type]
    if value_format == "percent":
        return f"{x:,.1f}%"
    if value_format == "gbp":
        return f"£{x:,.0f}"
    if value_format == "rate":
        return f"{x:,.1f}"
    return f"{x:,.0f}"


def _base(chart: ChartLike, layers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "$schema": SCHEMA,
        "description": f"{chart.title}. {chart.description} The data table gives every value.",
        "width": "container",
        "height": HEIGHT,
        "autosize": {"type": "fit-x", "contains": "padding"},
        "config": {"locale": LOCALE, "view": {"stroke": None}, "font": "system-ui, sans-serif"},
        **extra,
        "layer": layers,
    }


def _colour_scale(series: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    names: list[str] = []
    colours: list[str] = []
    for i, s in enumerate(series):
        if s["name"] not in names:
            names.append(s["name"])
            colours.append(s.get("color") or OKABE_ITO[i % len(OKABE_ITO)])
    return {"domain": names, "range": colours}


def _series_rows(data: Mapping[str, Any], signed_left: bool = False) -> list[dict[str, Any]]:
    """One row per drawn value; redacted values are left out. ``signed_left`` adds ``signed``: the value, negated
    for the first group (the left side of a pyramid)."""
    rows = []
    groups = list(dict.fromkeys(s.get("group") for s in data["series"]))
    for order, s in enumerate(data["series"]):
        sign = -1 if s.get("group") == groups[0] else 1
        for i, category in enumerate(data["categories"]):
            v = s["values"][i]
            if not _num(v):
                continue
            row: dict[str, Any] = {
                "category": str(category),
                "series": s["name"],
                "order": order,
                "value": v,
            }
            if signed_left:
                row["signed"] = sign * v
            if s.get("group") is not None:
                row["group"] = s["group"]
            lower, upper = (s.get("lower") or [None] * (i + 1))[i], (s.get("upper") or [None] * (i + 1))[i]
            if _num(lower) and _num(upper):
                row["lower"], row["upper"] = max(0.0, lower), upper
            rows.append(row)
    return rows


def _tooltip(chart: ChartLike, *fields: tuple[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"field": f, "type": "nominal", "title": t} for f, t in fields]
    out.append(
        {"field": "value", "type": "quantitative", "title": chart.y_label, "format": NUMBER_FORMATS[chart.value_format]}
    )
    return out


def bar(chart: ChartLike, data: Mapping[str, Any]) -> dict[str, Any]:
    """Grouped bars with optional interval whiskers; horizontal for long category names."""
    rows = _series_rows(data)
    cat_axis, val_axis, offset = ("y", "x", "yOffset") if chart.horizontal else ("x", "y", "xOffset")
    categories = [str(c) for c in data["categories"]]
    cat = {
        "field": "category",
        "type": "nominal",
        "sort": categories,
        "title": chart.x_label,
        "axis": {"labelLimit": 220}
        if chart.horizontal
        else {"labelLimit": 160, "labelAngle": _label_angle(categories)},
    }
    val = {
        "field": "value",
        "type": "quantitative",
        "title": chart.y_label,
        "axis": {"format": AXIS_FORMATS[chart.value_format]},
    }
    several = len(data["series"]) > 1
    encoding: dict[str, Any] = {cat_axis: cat, val_axis: val}
    if several:
        encoding[offset] = {"field": "series", "type": "nominal", "sort": _colour_scale(data["series"])["domain"]}
    encoding["color"] = {
        "field": "series",
        "type": "nominal",
        "scale": _colour_scale(data["series"]),
        "title": None,
        "legend": {"orient": "top"} if several else None,
    }
    layers: list[dict[str, Any]] = [
        {
            "mark": {"type": "bar", "tooltip": True},
            "encoding": {**encoding, "tooltip": _tooltip(chart, ("category", chart.x_label), ("series", "Series"))},
        }
    ]
    if any("lower" in r for r in rows):
        whisker = {k: v for k, v in encoding.items() if k != "color"}
        whisker[val_axis] = {"field": "lower", "type": "quantitative"}
        whisker[val_axis + "2"] = {"field": "upper"}
        layers.append(
            {
                "transform": [{"filter": "isValid(datum.lower)"}],
                "mark": {"type": "rule", "color": "#333333", "strokeWidth": 1.5},
                "encoding": whisker,
            }
        )
    height = max(HEIGHT, 22 * len(categories) * min(len(data["series"]), 3)) if chart.horizontal else HEIGHT
    spec = _base(chart, layers, data={"values": rows})
    spec["height"] = height
    return spec


def stacked(chart: ChartLike, data: Mapping[str, Any]) -> dict[str, Any]:
    """Series stacked within each category (segments by quintile, need tiers...)."""
    rows = [r for r in _series_rows(data) if r["value"] > 0]
    scale = _colour_scale(data["series"])
    encoding = {
        "x": {
            "field": "category",
            "type": "nominal",
            "sort": [str(c) for c in data["categories"]],
            "title": chart.x_label,
            "axis": {"labelLimit": 160, "labelAngle": _label_angle([str(c) for c in data["categories"]])},
        },
        "y": {
            "field": "value",
            "type": "quantitative",
            "stack": "zero",
            "title": chart.y_label,
            "axis": {"format": AXIS_FORMATS[chart.value_format]},
        },
        "color": {"field": "series", "type": "nominal", "scale": scale, "title": None, "legend": {"orient": "top"}},
        "order": {"field": "order", "type": "quantitative"},
        "tooltip": _tooltip(chart, ("category", chart.x_label), ("series", "Series")),
    }
    return _base(chart, [{"mark": {"type": "bar"}, "encoding": encoding}], data={"values": rows})


def pyramid(chart: ChartLike, data: Mapping[str, Any]) -> dict[str, Any]:
    """An age-sex pyramid: the first group to the left (negative values, labelled as positive), each stacked."""
    rows = [r for r in _series_rows(data, signed_left=True) if r["value"] > 0]
    groups = [g for g in dict.fromkeys(s.get("group") for s in data["series"]) if g is not None][:2]
    sides = " | ".join(f"{g} {'left' if i == 0 else 'right'}" for i, g in enumerate(groups))
    encoding = {
        "y": {
            "field": "category",
            "type": "ordinal",
            "sort": [str(c) for c in reversed(data["categories"])],
            "title": chart.x_label,
        },
        "x": {
            "field": "signed",
            "type": "quantitative",
            "stack": "zero",
            "title": f"{chart.y_label} ({sides})",
            "axis": {"labelExpr": "format(abs(datum.value), ',')"},
        },
        "color": {
            "field": "series",
            "type": "nominal",
            "scale": _colour_scale(data["series"]),
            "title": None,
            "legend": {"orient": "top"},
        },
        "order": {"field": "order", "type": "quantitative"},
        "tooltip": _tooltip(chart, ("group", "Group"), ("category", chart.x_label), ("series", "Series")),
    }
    spec = _base(chart, [{"mark": {"type": "bar"}, "encoding": encoding}], data={"values": rows})
    spec["height"] = max(HEIGHT, 15 * len(data["categories"]))
    return spec


def _runs(indices: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for i in indices:
        if out and out[-1][-1] == i - 1:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def line(chart: ChartLike, data: Mapping[str, Any]) -> dict[str, Any]:
    """Lines with interval bands; from ``split`` on, the line is dashed (a forecast)."""
    categories = [str(c) for c in data["categories"]]
    split = data.get("split")
    split = split if isinstance(split, int) and 0 < split < len(categories) else len(categories)
    points, paths, bands = [], [], []
    for s in data["series"]:
        values, lower, upper = s["values"], s.get("lower") or [], s.get("upper") or []
        drawn = [i for i, v in enumerate(values) if _num(v)]
        for run_no, run in enumerate(_runs(drawn)):
            for part, keep in (
                ("recorded", [i for i in run if i < split]),
                ("forecast", [i for i in run if i >= split - 1]),
            ):
                if len(keep) < 2:
                    continue
                path = f"{s['name']}|{run_no}|{part}"
                paths += [
                    {"category": categories[i], "series": s["name"], "value": values[i], "part": part, "path": path}
                    for i in keep
                ]
        points += [
            {
                "category": categories[i],
                "series": s["name"],
                "value": values[i],
                "part": "forecast" if i >= split else "recorded",
            }
            for i in drawn
        ]
        banded = [
            i for i in range(len(values)) if i < len(lower) and i < len(upper) and _num(lower[i]) and _num(upper[i])
        ]
        for run_no, run in enumerate(_runs(banded)):
            bands += [
                {
                    "category": categories[i],
                    "series": s["name"],
                    "lower": lower[i],
                    "upper": upper[i],
                    "band": f"{s['name']}|{run_no}",
                }
                for i in run
            ]
    x = {
        "field": "category",
        "type": "ordinal",
        "sort": categories,
        "title": chart.x_label,
        "axis": {"labelAngle": _label_angle(categories)},
    }
    y_axis = {"format": AXIS_FORMATS[chart.value_format]}
    colour = {
        "field": "series",
        "type": "nominal",
        "scale": _colour_scale(data["series"]),
        "title": None,
        "legend": {"orient": "top", "symbolOpacity": 1},
    }
    layers: list[dict[str, Any]] = []
    if bands:
        layers.append(
            {
                "data": {"values": bands},
                "mark": {"type": "area", "opacity": 0.18},
                "encoding": {
                    "x": x,
                    "y": {"field": "lower", "type": "quantitative", "title": chart.y_label, "axis": y_axis},
                    "y2": {"field": "upper"},
                    "color": colour,
                    "detail": {"field": "band"},
                },
            }
        )
    layers.append(
        {
            "data": {"values": paths},
            "mark": {"type": "line", "strokeWidth": 2.5},
            "encoding": {
                "x": x,
                "y": {"field": "value", "type": "quantitative", "title": chart.y_label, "axis": y_axis},
                "color": colour,
                "detail": {"field": "path"},
                "strokeDash": {
                    "field": "part",
                    "type": "nominal",
                    "title": None,
                    "scale": {"domain": ["recorded", "forecast"], "range": [[1, 0], [6, 4]]},
                    "legend": {"orient": "top"} if split < len(categories) else None,
                },
            },
        }
    )
    layers.append(
        {
            "data": {"values": points},
            "mark": {"type": "point", "filled": True, "size": 40},
            "encoding": {
                "x": x,
                "y": {"field": "value", "type": "quantitative", "title": chart.y_label},
                "color": colour,
                "tooltip": _tooltip(chart, ("series", "Series"), ("category", chart.x_label), ("part", "Part")),
            },
        }
    )
    return _base(chart, layers)


SANKEY_GAP = 0.02
"""Vertical gap between nodes, as a share of the drawing's height."""
SANKEY_COLUMNS = ((0.27, 0.3), (0.7, 0.73))
"""The left and right node columns (x, x2) as shares of the drawing's width: the labels sit outside them."""
SANKEY_SAMPLES = 16
"""Points along each ribbon (monotone interpolation between them): a smooth curve at the report's width, and
a page that stays small (the samples are the bulk of a Sankey spec)."""


def _unit(v: float) -> float:
    """A coordinate on the unit square, to 5 decimals: a hundred-thousandth of the drawing is far below a pixel,
    and the page carries no float noise such as 0.29999999999999993."""
    return round(v, 5)


def sankey(chart: ChartLike, data: Mapping[str, Any]) -> dict[str, Any]:
    """Transitions between two dates as a two-column Sankey.

    Vega-Lite has no Sankey mark, so the geometry is computed here on a unit square: each node is a ``rect``
    (x, x2, y, y2) and each link an ``area`` ribbon sampled along x with y/y2 following a smoothstep curve from
    its slot at the source to its slot at the target (its colour and tooltip joined once per link by a
    ``lookup``, not repeated on every sample). Heights are proportional to the flow; redacted links are
    left out (the table lists them).
    """
    links = [lk for lk in data["links"] if _num(lk["value"]) and lk["value"] > 0]
    total = sum(lk["value"] for lk in links) or 1.0
    colours = data.get("colors") or {}

    def column(names: Sequence[str], key: str) -> dict[str, dict[str, float]]:
        present = [n for n in names if any(lk[key] == n for lk in links)]
        scale = (1.0 - SANKEY_GAP * max(len(present) - 1, 0)) / total
        out, y = {}, 1.0
        for n in present:
            h = sum(lk["value"] for lk in links if lk[key] == n) * scale
            out[n] = {"top": y, "bottom": y - h, "used": 0.0, "scale": scale, "value": h / scale}
            y -= h + SANKEY_GAP
        return out

    left, right = column(data["left"], "source"), column(data["right"], "target")
    palette = {n: colours.get(n) or OKABE_ITO[i % len(OKABE_ITO)] for i, n in enumerate(dict.fromkeys([*left, *right]))}
    x0, x1 = SANKEY_COLUMNS[0][1], SANKEY_COLUMNS[1][0]
    ribbons, flows = [], []
    order = {n: i for i, n in enumerate(left)}, {n: i for i, n in enumerate(right)}
    for k, lk in enumerate(sorted(links, key=lambda lk: (order[0][lk["source"]], order[1][lk["target"]]))):
        s, t = left[lk["source"]], right[lk["target"]]
        h = lk["value"] * s["scale"]
        ht = lk["value"] * t["scale"]
        s_top, t_top = s["top"] - s["used"], t["top"] - t["used"]
        s["used"] += h
        t["used"] += ht
        flows.append(
            {
                "link": k,
                "colour": palette[lk["source"]],
                "tip": f"{lk['source']} → {lk['target']}: {format_value(lk['value'], chart.value_format)}",
            }
        )
        for j in range(SANKEY_SAMPLES + 1):
            u = j / SANKEY_SAMPLES
            w = u * u * (3 - 2 * u)
            top = s_top + (t_top - s_top) * w
            ribbons.append(
                {
                    "link": k,
                    "x": _unit(x0 + (x1 - x0) * u),
                    "top": _unit(top),
                    "bottom": _unit(top - (h + (ht - h) * w)),
                }
            )
    nodes = []
    for side, column_nodes in (("left", left), ("right", right)):
        for n, p in column_nodes.items():
            column_x, column_x2 = SANKEY_COLUMNS[0] if side == "left" else SANKEY_COLUMNS[1]
            nodes.append(
                {
                    "node": n,
                    "x": column_x,
                    "x2": column_x2,
                    "top": _unit(p["top"]),
                    "bottom": _unit(p["bottom"]),
                    "mid": _unit((p["top"] + p["bottom"]) / 2),
                    "colour": palette[n],
                    "side": side,
                    "tip": f"{n}: {format_value(p['value'], chart.value_format)}",
                }
            )
    hidden = {"scale": {"domain": [0, 1]}, "axis": None}
    unit_x = {"type": "quantitative", **hidden, "scale": {"domain": [0, 1], "nice": False, "zero": False}}
    unit_y = {"type": "quantitative", **hidden, "scale": {"domain": [0, 1], "nice": False, "zero": False}}
    raw = {"field": "colour", "type": "nominal", "scale": None}
    layers: list[dict[str, Any]] = [
        {
            "name": "links",
            "data": {"values": ribbons},
            "transform": [
                {"lookup": "link", "from": {"data": {"values": flows}, "key": "link", "fields": ["colour", "tip"]}}
            ],
            "mark": {"type": "area", "opacity": 0.45, "interpolate": "monotone", "tooltip": True},
            "encoding": {
                "x": {"field": "x", **unit_x},
                "y": {"field": "top", **unit_y},
                "y2": {"field": "bottom"},
                "detail": {"field": "link", "type": "nominal"},
                "color": raw,
                "tooltip": {"field": "tip", "type": "nominal"},
            },
        },
        {
            "name": "nodes",
            "data": {"values": nodes},
            "mark": {"type": "rect"},
            "encoding": {
                "x": {"field": "x", **unit_x},
                "x2": {"field": "x2"},
                "y": {"field": "top", **unit_y},
                "y2": {"field": "bottom"},
                "color": raw,
                "tooltip": {"field": "tip", "type": "nominal"},
            },
        },
    ]
    for side, align, dx in (("left", "right", -6), ("right", "left", 6)):
        layers.append(
            {
                "data": {"values": [n for n in nodes if n["side"] == side]},
                "mark": {"type": "text", "align": align, "dx": dx, "baseline": "middle", "fontSize": 11, "limit": 150},
                "encoding": {
                    "x": {"field": "x" if side == "left" else "x2", **unit_x},
                    "y": {"field": "mid", **unit_y},
                    "text": {"field": "node"},
                },
            }
        )
    titles = [
        {"label": data.get("from_label") or "From", "x": sum(SANKEY_COLUMNS[0]) / 2},
        {"label": data.get("to_label") or "To", "x": sum(SANKEY_COLUMNS[1]) / 2},
    ]
    layers.append(
        {
            "data": {"values": titles},
            "mark": {"type": "text", "fontWeight": "bold", "dy": -10},
            "encoding": {"x": {"field": "x", **unit_x}, "y": {"datum": 1, **unit_y}, "text": {"field": "label"}},
        }
    )
    spec = _base(chart, layers)
    spec["height"] = 380
    return spec


def spc(chart: ChartLike, data: Mapping[str, Any]) -> dict[str, Any]:
    """A Making Data Count XmR chart: points coloured by point type, the mean, the process limits (dashed) and
    the two-sigma lines (dotted); with fewer than 13 points only the points and the mean are drawn."""
    result = xmr(data["values"], improvement=data.get("improvement", "neutral"), rules=data.get("rules", "nhsr"))
    months = [str(m) for m in data["categories"]]
    points = [
        {"category": m, "value": v, "type": POINT_LABELS[t], "cause": c.replace("_", " ")}
        for m, v, t, c in zip(months, result.values, result.point_type, result.special_cause, strict=True)
    ]
    x = {
        "field": "category",
        "type": "ordinal",
        "sort": months,
        "title": chart.x_label,
        "axis": {"labelAngle": _label_angle(months)},
    }
    y_axis = {"format": AXIS_FORMATS[chart.value_format]}
    lines = [("Mean", result.mean, [1, 0])]
    if result.enough_points:
        lines += [
            ("Upper process limit", result.upper_limit, [6, 4]),
            ("Lower process limit", result.lower_limit, [6, 4]),
            ("Upper two sigma", result.upper_near, [2, 3]),
            ("Lower two sigma", result.lower_near, [2, 3]),
        ]
    references = [{"line": name, "value": v, "dash": dash} for name, v, dash in lines]
    layers: list[dict[str, Any]] = [
        {
            "data": {"values": references},
            "mark": {"type": "rule", "color": "#231f20", "strokeWidth": 1},
            "encoding": {
                "y": {"field": "value", "type": "quantitative"},
                "strokeDash": {"field": "dash", "type": "nominal", "scale": None},
                "tooltip": [
                    {"field": "line", "type": "nominal", "title": "Line"},
                    {
                        "field": "value",
                        "type": "quantitative",
                        "title": chart.y_label,
                        "format": NUMBER_FORMATS[chart.value_format],
                    },
                ],
            },
        },
        {
            "mark": {"type": "line", "color": "#a6a6a6", "strokeWidth": 1.5},
            "encoding": {
                "x": x,
                "y": {
                    "field": "value",
                    "type": "quantitative",
                    "title": chart.y_label,
                    "axis": y_axis,
                    "scale": {"zero": False},
                },
            },
        },
        {
            "mark": {"type": "point", "filled": True, "size": 50, "opacity": 1},
            "encoding": {
                "x": x,
                "y": {"field": "value", "type": "quantitative"},
                "color": {
                    "field": "type",
                    "type": "nominal",
                    "title": None,
                    "legend": {"orient": "top"},
                    "scale": {"domain": list(POINT_LABELS.values()), "range": list(POINT_COLOURS.values())},
                },
                "tooltip": _tooltip(chart, ("category", chart.x_label), ("type", "Point"), ("cause", "Rule")),
            },
        },
    ]
    return _base(chart, layers, data={"values": points})


BUILDERS: dict[str, Callable[[ChartLike, Mapping[str, Any]], dict[str, Any]]] = {
    "bar": bar,
    "stacked": stacked,
    "pyramid": pyramid,
    "line": line,
    "sankey": sankey,
    "spc": spc,
}


def spec(chart: ChartLike, data: Mapping[str, Any]) -> dict[str, Any]:
    """The Vega-Lite spec of ``chart`` drawn from ``data`` (its kind's shape, above)."""
    if chart.kind not in BUILDERS:
        raise ValueError(f"unknown chart kind {chart.kind}")
    return BUILDERS[chart.kind](chart, data)


def table(chart: ChartLike, data: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The chart's data as a table of strings (``columns``, ``rows``; the first cell of a row is its header),
    with every redacted value shown as "redacted"."""
    fmt = chart.value_format
    if chart.kind == "sankey":
        columns = [data.get("from_label") or "From", data.get("to_label") or "To", chart.y_label]
        return {
            "columns": columns,
            "rows": [[lk["source"], lk["target"], format_value(lk["value"], fmt)] for lk in data["links"]],
        }
    if chart.kind == "spc":
        result = xmr(data["values"], improvement=data.get("improvement", "neutral"), rules=data.get("rules", "nhsr"))
        rows = [
            [str(m), format_value(v, fmt), POINT_LABELS[t], c.replace("_", " ")]
            for m, v, t, c in zip(
                data["categories"], result.values, result.point_type, result.special_cause, strict=True
            )
        ]
        return {"columns": [chart.x_label, chart.y_label, "Point", "Rule"], "rows": rows}
    cols: list[tuple[str, Sequence[Any], str]] = []
    for s in data["series"]:
        name = (f"{s['group']}: " if s.get("group") else "") + s["name"]
        cols.append((name, s["values"], fmt))
        if s.get("lower") and s.get("upper"):
            cols += [(f"{name} 95% CI lower", s["lower"], fmt), (f"{name} 95% CI upper", s["upper"], fmt)]
        if s.get("counts"):
            cols.append((f"{name} (people)", s["counts"], "count"))
    rows = [[str(c), *(format_value(values[i], f) for _, values, f in cols)] for i, c in enumerate(data["categories"])]
    return {"columns": [chart.x_label, *(name for name, _, _ in cols)], "rows": rows}


def has_values(chart: ChartLike, data: Mapping[str, Any] | None) -> bool:
    """Whether anything would be drawn: else the page says why the chart is empty."""
    if not data:
        return False
    if chart.kind == "sankey":
        return any(_num(lk["value"]) and lk["value"] > 0 for lk in data["links"])
    if chart.kind == "spc":
        return bool(data["values"])
    return any(_num(v) and v > 0 for s in data["series"] for v in s["values"])
