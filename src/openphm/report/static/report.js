/* openphm report: draws every chart of the page as inline SVG from the JSON blob in #report-data, and
   redraws them all when the geography picker changes. Hand-written, no third-party code, no network use:
   the page must work from a file on a machine with no internet. Chart kinds and data shapes are documented
   in openphm/report/charts.py. */
(function () {
  "use strict";

  var SVG_NS = "http://www.w3.org/2000/svg"; /* an XML namespace name, never fetched */
  var WIDTH = 640;
  var PALETTE = ["#56B4E9", "#E69F00", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000"];
  var REDACTED = "redacted";
  var LABEL_CHARS = 36; /* longer category names are cut, in full in the tooltip and the data table */

  var report = JSON.parse(document.getElementById("report-data").textContent);
  var chartsById = {};
  report.charts.forEach(function (c) { chartsById[c.id] = c; });

  /* ---- small DOM helpers ------------------------------------------------------------------------ */
  function svg(tag, attrs, parent) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (attrs[k] !== null && attrs[k] !== undefined) node.setAttribute(k, attrs[k]);
    });
    if (parent) parent.appendChild(node);
    return node;
  }
  function html(tag, attrs, parent, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }
  function text(parent, x, y, content, attrs) {
    var node = svg("text", Object.assign({ x: x, y: y }, attrs || {}), parent);
    node.textContent = content;
    return node;
  }
  function tooltip(mark, content) { svg("title", {}, mark).textContent = content; }
  function isNum(v) { return typeof v === "number" && isFinite(v); }

  /* ---- numbers ---------------------------------------------------------------------------------- */
  function format(v, kind) {
    if (!isNum(v)) return REDACTED;
    if (kind === "percent") return v.toFixed(1) + "%";
    if (kind === "gbp") return "£" + Math.round(v).toLocaleString("en-GB");
    if (kind === "rate") return v.toFixed(1);
    return Math.round(v).toLocaleString("en-GB");
  }
  function axisFormat(v, kind) {
    if (kind === "percent") return v + "%";
    if (kind === "gbp") return "£" + v.toLocaleString("en-GB");
    return v.toLocaleString("en-GB");
  }
  function ticks(max, count) {
    if (!(max > 0)) max = 1;
    var raw = max / count;
    var power = Math.pow(10, Math.floor(Math.log10(raw)));
    var m = raw / power;
    var step = (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * power;
    var out = [];
    for (var v = 0; v <= max + step * 0.999; v += step) out.push(Number(v.toPrecision(12)));
    return out;
  }
  function colour(series, i) { return series.color || PALETTE[i % PALETTE.length]; }
  function maxOf(values) {
    return values.reduce(function (m, v) { return isNum(v) && v > m ? v : m; }, 0);
  }

  /* ---- frames and axes -------------------------------------------------------------------------- */
  function frame(chart, height) {
    var node = svg("svg", {
      viewBox: "0 0 " + WIDTH + " " + height, width: "100%", role: "img",
      "aria-label": chart.title + ". " + chart.description + " The data table below gives every value.",
      "class": "chart-svg", "data-kind": chart.kind
    });
    svg("title", {}, node).textContent = chart.title;
    return node;
  }
  function valueAxisLabel(node, chart, x, y, rotate) {
    var t = text(node, x, y, chart.y_label, { "class": "axis-label", "text-anchor": "middle" });
    if (rotate) t.setAttribute("transform", "rotate(-90 " + x + " " + y + ")");
  }

  /* Category labels are slanted when the longest would not fit its band. */
  function rotated(categories, margin) {
    var longest = categories.reduce(function (m, c) { return Math.max(m, String(c).length); }, 0);
    return longest * 6.2 > (WIDTH - margin.left - margin.right) / categories.length;
  }
  function verticalMargin(categories) {
    var margin = { left: 70, right: 16, top: 12, bottom: 46 };
    if (rotated(categories, margin)) {
      var longest = categories.reduce(function (m, c) { return Math.max(m, String(c).length); }, 0);
      margin.bottom = 40 + Math.min(longest, LABEL_CHARS) * 4.4;
    }
    return margin;
  }

  /* Vertical layout: categories along x, values up y. Returns the x position of each band and a y scale. */
  function verticalAxes(node, chart, categories, top, height, margin) {
    var plotW = WIDTH - margin.left - margin.right;
    var band = plotW / categories.length;
    /* shares computed from rounded counts can add up to a little over 100% */
    if (chart.value_format === "percent" && top > 100 && top < 110) top = 100;
    var marks = ticks(top, 5);
    var vmax = marks[marks.length - 1];
    var y = function (v) { return margin.top + height - (v / vmax) * height; };
    marks.forEach(function (v) {
      svg("line", { x1: margin.left, x2: WIDTH - margin.right, y1: y(v), y2: y(v), "class": "grid" }, node);
      text(node, margin.left - 6, y(v) + 4, axisFormat(v, chart.value_format), { "class": "tick", "text-anchor": "end" });
    });
    var rotate = rotated(categories, margin);
    categories.forEach(function (c, i) {
      var cx = margin.left + band * (i + 0.5);
      var ty = margin.top + height + 14;
      var t = text(node, cx, ty, c, { "class": "tick", "text-anchor": rotate ? "end" : "middle" });
      if (rotate) t.setAttribute("transform", "rotate(-45 " + cx + " " + ty + ")");
    });
    text(node, margin.left + plotW / 2, margin.top + height + margin.bottom - 8, chart.x_label,
      { "class": "axis-label", "text-anchor": "middle" });
    valueAxisLabel(node, chart, 14, margin.top + height / 2, true);
    return { band: band, y: y, x0: margin.left };
  }

  /* Horizontal layout: categories down the side, values along x. */
  function horizontalAxes(node, chart, categories, top, margin, row) {
    var plotW = WIDTH - margin.left - margin.right;
    var marks = ticks(top, 5);
    var vmax = marks[marks.length - 1];
    var x = function (v) { return margin.left + (v / vmax) * plotW; };
    var bottom = margin.top + row * categories.length;
    marks.forEach(function (v) {
      svg("line", { x1: x(v), x2: x(v), y1: margin.top, y2: bottom, "class": "grid" }, node);
      text(node, x(v), bottom + 14, axisFormat(v, chart.value_format), { "class": "tick", "text-anchor": "middle" });
    });
    categories.forEach(function (c, i) {
      var label = String(c);
      var t = text(node, margin.left - 6, margin.top + row * (i + 0.5) + 4,
        label.length > LABEL_CHARS ? label.slice(0, LABEL_CHARS - 1) + "…" : label, { "class": "tick", "text-anchor": "end" });
      if (label.length > LABEL_CHARS) tooltip(t, label);
    });
    text(node, margin.left + plotW / 2, bottom + 34, chart.y_label, { "class": "axis-label", "text-anchor": "middle" });
    return { x: x, row: row };
  }
  function labelMargin(categories) {
    var longest = categories.reduce(function (m, c) { return Math.max(m, String(c).length); }, 0);
    return 16 + Math.min(longest, LABEL_CHARS) * 6.2;
  }

  /* ---- bar (grouped, with optional intervals) --------------------------------------------------- */
  function drawBar(chart, d) {
    var series = d.series;
    var top = maxOf([].concat.apply([], series.map(function (s) { return (s.upper || []).concat(s.values); })));
    var n = series.length;
    var node;
    if (chart.horizontal) {
      var margin = { left: labelMargin(d.categories), right: 24, top: 10, bottom: 46 };
      var row = 22 * Math.min(n, 3);
      node = frame(chart, margin.top + row * d.categories.length + margin.bottom);
      var h = horizontalAxes(node, chart, d.categories, top, margin, row);
      var barH = (row * 0.75) / n;
      series.forEach(function (s, k) {
        s.values.forEach(function (v, i) {
          if (!isNum(v)) return;
          var y = margin.top + row * i + row * 0.125 + barH * k;
          var bar = svg("rect", { x: h.x(0), y: y, width: Math.max(0, h.x(v) - h.x(0)), height: barH,
            fill: colour(s, k), "class": "mark" }, node);
          tooltip(bar, d.categories[i] + (n > 1 ? ", " + s.name : "") + ": " + format(v, chart.value_format));
          whisker(node, s, i, function (u) { return h.x(u); }, y + barH / 2, true);
        });
      });
    } else {
      var m = verticalMargin(d.categories);
      var plotH = 240;
      node = frame(chart, m.top + plotH + m.bottom);
      var a = verticalAxes(node, chart, d.categories, top, plotH, m);
      var barW = (a.band * 0.75) / n;
      series.forEach(function (s, k) {
        s.values.forEach(function (v, i) {
          if (!isNum(v)) return;
          var x = a.x0 + a.band * i + a.band * 0.125 + barW * k;
          var bar = svg("rect", { x: x, y: a.y(v), width: barW, height: Math.max(0, a.y(0) - a.y(v)),
            fill: colour(s, k), "class": "mark" }, node);
          tooltip(bar, d.categories[i] + (n > 1 ? ", " + s.name : "") + ": " + format(v, chart.value_format));
          whisker(node, s, i, a.y, x + barW / 2, false);
        });
      });
    }
    return node;
  }
  function whisker(node, s, i, scale, at, horizontal) {
    if (!s.lower || !s.upper || !isNum(s.lower[i]) || !isNum(s.upper[i])) return;
    var lo = scale(Math.max(0, s.lower[i])), hi = scale(s.upper[i]); /* the axis starts at 0 */
    var attrs = horizontal ? { x1: lo, x2: hi, y1: at, y2: at } : { x1: at, x2: at, y1: lo, y2: hi };
    svg("line", Object.assign({ "class": "mark interval" }, attrs), node);
    [lo, hi].forEach(function (p) {
      var cap = horizontal ? { x1: p, x2: p, y1: at - 4, y2: at + 4 } : { x1: at - 4, x2: at + 4, y1: p, y2: p };
      svg("line", Object.assign({ "class": "interval" }, cap), node);
    });
  }

  /* ---- stacked bars ----------------------------------------------------------------------------- */
  function stackTotals(series, count) {
    var totals = [];
    for (var i = 0; i < count; i++) {
      totals.push(series.reduce(function (t, s) { return t + (isNum(s.values[i]) ? s.values[i] : 0); }, 0));
    }
    return totals;
  }
  function drawStacked(chart, d) {
    var totals = stackTotals(d.series, d.categories.length);
    var m = verticalMargin(d.categories);
    var plotH = 240;
    var node = frame(chart, m.top + plotH + m.bottom);
    var a = verticalAxes(node, chart, d.categories, maxOf(totals), plotH, m);
    var base = d.categories.map(function () { return 0; });
    d.series.forEach(function (s, k) {
      s.values.forEach(function (v, i) {
        if (!isNum(v) || v <= 0) return;
        var bar = svg("rect", { x: a.x0 + a.band * i + a.band * 0.15, y: a.y(base[i] + v), width: a.band * 0.7,
          height: Math.max(0, a.y(base[i]) - a.y(base[i] + v)), fill: colour(s, k), "class": "mark" }, node);
        tooltip(bar, d.categories[i] + ", " + s.name + ": " + format(v, chart.value_format) +
          (s.counts ? " (" + format(s.counts[i], "count") + " people)" : ""));
        base[i] += v;
      });
    });
    return node;
  }

  /* ---- population pyramid: first group to the left, second to the right, each stacked ---------- */
  function drawPyramid(chart, d) {
    var groups = [];
    d.series.forEach(function (s) { if (groups.indexOf(s.group) < 0) groups.push(s.group); });
    var sides = groups.slice(0, 2).map(function (g) {
      return d.series.filter(function (s) { return s.group === g; });
    });
    var top = Math.max.apply(null, sides.map(function (ss) { return maxOf(stackTotals(ss, d.categories.length)); }));
    var row = 15, gap = 46, m = { left: 20, right: 20, top: 26, bottom: 50 };
    var n = d.categories.length;
    var node = frame(chart, m.top + row * n + m.bottom);
    var half = (WIDTH - m.left - m.right - gap) / 2;
    var centreL = m.left + half, centreR = centreL + gap;
    var marks = ticks(top, 4);
    var vmax = marks[marks.length - 1];
    var scale = function (v) { return (v / vmax) * half; };
    var bottom = m.top + row * n;
    marks.forEach(function (v) {
      [centreL - scale(v), centreR + scale(v)].forEach(function (x) {
        svg("line", { x1: x, x2: x, y1: m.top, y2: bottom, "class": "grid" }, node);
        text(node, x, bottom + 14, axisFormat(v, chart.value_format), { "class": "tick", "text-anchor": "middle" });
      });
    });
    groups.slice(0, 2).forEach(function (g, side) {
      text(node, side === 0 ? centreL - half / 2 : centreR + half / 2, 16, g,
        { "class": "axis-label", "text-anchor": "middle" });
    });
    text(node, centreL + gap / 2, 16, chart.x_label, { "class": "axis-label", "text-anchor": "middle" });
    d.categories.forEach(function (c, i) {
      var y = bottom - row * (i + 1);
      text(node, centreL + gap / 2, y + row / 2 + 4, c, { "class": "tick", "text-anchor": "middle" });
    });
    text(node, WIDTH / 2, bottom + 36, chart.y_label, { "class": "axis-label", "text-anchor": "middle" });
    var seriesIndex = {};
    var names = [];
    d.series.forEach(function (s) { if (!(s.name in seriesIndex)) { seriesIndex[s.name] = names.length; names.push(s.name); } });
    sides.forEach(function (ss, side) {
      var base = d.categories.map(function () { return 0; });
      ss.forEach(function (s) {
        s.values.forEach(function (v, i) {
          if (!isNum(v) || v <= 0) return;
          var y = bottom - row * (i + 1) + 1;
          var x = side === 0 ? centreL - scale(base[i] + v) : centreR + scale(base[i]);
          var bar = svg("rect", { x: x, y: y, width: scale(v), height: row - 2,
            fill: colour(s, seriesIndex[s.name]), "class": "mark" }, node);
          tooltip(bar, s.group + ", " + d.categories[i] + ", " + s.name + ": " + format(v, chart.value_format));
          base[i] += v;
        });
      });
    });
    return node;
  }

  /* ---- lines with interval bands ---------------------------------------------------------------- */
  function drawLine(chart, d) {
    var all = [];
    d.series.forEach(function (s) { all = all.concat(s.values, s.upper || []); });
    var m = verticalMargin(d.categories);
    var plotH = 240;
    var node = frame(chart, m.top + plotH + m.bottom);
    var a = verticalAxes(node, chart, d.categories, maxOf(all), plotH, m);
    var x = function (i) { return a.x0 + a.band * (i + 0.5); };
    if (isNum(d.split) && d.split > 0 && d.split < d.categories.length) {
      var sx = a.x0 + a.band * d.split;
      svg("line", { x1: sx, x2: sx, y1: m.top, y2: m.top + plotH, "class": "split" }, node);
      text(node, sx + 4, m.top + 10, "forecast", { "class": "tick" });
    }
    d.series.forEach(function (s, k) {
      var c = colour(s, k);
      if (s.lower && s.upper) {
        runs(s.values.length, function (i) { return isNum(s.lower[i]) && isNum(s.upper[i]); }).forEach(function (r) {
          var pts = r.map(function (i) { return x(i) + "," + a.y(s.upper[i]); });
          r.slice().reverse().forEach(function (i) { pts.push(x(i) + "," + a.y(s.lower[i])); });
          var band = svg("polygon", { points: pts.join(" "), fill: c, "fill-opacity": 0.18, "class": "mark band" }, node);
          tooltip(band, s.name + ": 95% interval");
        });
      }
      runs(s.values.length, function (i) { return isNum(s.values[i]); }).forEach(function (r) {
        var split = isNum(d.split) ? d.split : r[r.length - 1] + 1;
        var solid = r.filter(function (i) { return i < split; });
        var dashed = r.filter(function (i) { return i >= split - 1; });
        [[solid, null], [dashed, "6 4"]].forEach(function (pair) {
          if (pair[0].length < 2) return;
          svg("polyline", { points: pair[0].map(function (i) { return x(i) + "," + a.y(s.values[i]); }).join(" "),
            fill: "none", stroke: c, "stroke-width": 2.5, "stroke-dasharray": pair[1], "class": "mark line" }, node);
        });
        r.forEach(function (i) {
          var dot = svg("circle", { cx: x(i), cy: a.y(s.values[i]), r: 3.5, fill: c, "class": "mark" }, node);
          tooltip(dot, s.name + ", " + d.categories[i] + ": " + format(s.values[i], chart.value_format));
        });
      });
    });
    return node;
  }
  function runs(length, ok) {
    var out = [], cur = [];
    for (var i = 0; i < length; i++) {
      if (ok(i)) { cur.push(i); } else if (cur.length) { out.push(cur); cur = []; }
    }
    if (cur.length) out.push(cur);
    return out;
  }

  /* ---- Sankey: two columns of nodes, links as filled ribbons ------------------------------------ */
  function drawSankey(chart, d) {
    var links = d.links.filter(function (l) { return isNum(l.value) && l.value > 0; });
    var sum = function (key, name) {
      return links.reduce(function (t, l) { return t + (l[key] === name ? l.value : 0); }, 0);
    };
    var left = d.left.filter(function (n) { return sum("source", n) > 0; });
    var right = d.right.filter(function (n) { return sum("target", n) > 0; });
    var m = { left: 170, right: 170, top: 26, bottom: 24 }, plotH = 380, pad = 8, nodeW = 14;
    var node = frame(chart, m.top + plotH + m.bottom);
    var total = links.reduce(function (t, l) { return t + l.value; }, 0);
    var k = Math.min((plotH - pad * Math.max(left.length - 1, 0)) / total,
      (plotH - pad * Math.max(right.length - 1, 0)) / total);
    var colours = d.colors || {};
    var place = function (names, key) {
      var pos = {}, y = m.top;
      names.forEach(function (n) { var h = sum(key, n) * k; pos[n] = { y: y, h: h, used: 0 }; y += h + pad; });
      return pos;
    };
    var L = place(left, "source"), R = place(right, "target");
    var xL = m.left, xR = WIDTH - m.right - nodeW;
    text(node, xL + nodeW / 2, 16, d.from_label || "", { "class": "axis-label", "text-anchor": "middle" });
    text(node, xR + nodeW / 2, 16, d.to_label || "", { "class": "axis-label", "text-anchor": "middle" });
    var order = function (names) { return function (a, b) { return names.indexOf(a) - names.indexOf(b); }; };
    links.slice().sort(function (a, b) {
      return order(left)(a.source, b.source) || order(right)(a.target, b.target);
    }).forEach(function (l, i) {
      var h = l.value * k, s = L[l.source], t = R[l.target];
      var y0 = s.y + s.used, y1 = t.y + t.used;
      s.used += h;
      t.used += h;
      var x0 = xL + nodeW, x1 = xR, xm = (x0 + x1) / 2;
      var path = "M" + x0 + "," + y0 + "C" + xm + "," + y0 + " " + xm + "," + y1 + " " + x1 + "," + y1 +
        "L" + x1 + "," + (y1 + h) + "C" + xm + "," + (y1 + h) + " " + xm + "," + (y0 + h) + " " + x0 + "," + (y0 + h) + "Z";
      var ribbon = svg("path", { d: path, fill: colours[l.source] || PALETTE[i % PALETTE.length],
        "fill-opacity": 0.45, "class": "mark link" }, node);
      tooltip(ribbon, l.source + " → " + l.target + ": " + format(l.value, chart.value_format));
    });
    [[left, L, xL, "end", -6, "source"], [right, R, xR, "start", nodeW + 6, "target"]].forEach(function (col) {
      var labelY = -Infinity;
      col[0].forEach(function (n) {
        var p = col[1][n];
        var rect = svg("rect", { x: col[2], y: p.y, width: nodeW, height: Math.max(1, p.h),
          fill: colours[n] || "#777", "class": "mark node" }, node);
        tooltip(rect, n + ": " + format(sum(col[5], n), chart.value_format));
        labelY = Math.max(p.y + p.h / 2 + 4, labelY + 12); /* small nodes' labels must not overlap */
        text(node, col[2] + col[4], labelY, n, { "class": "tick", "text-anchor": col[3] });
      });
    });
    return node;
  }

  var DRAW = { bar: drawBar, stacked: drawStacked, pyramid: drawPyramid, line: drawLine, sankey: drawSankey };

  /* ---- legends, data tables, emptiness ---------------------------------------------------------- */
  function legend(container, chart, d) {
    var items = [];
    if (chart.kind === "sankey") return;
    d.series.forEach(function (s, i) {
      if (items.some(function (it) { return it.name === s.name; })) return;
      items.push({ name: s.name, color: colour(s, i) });
    });
    if (items.length < 2 && !(items.length === 1 && chart.kind === "line")) return;
    var list = html("ul", { "class": "legend" }, container);
    items.forEach(function (it) {
      var li = html("li", {}, list);
      html("span", { "class": "swatch", style: "background:" + it.color }, li);
      li.appendChild(document.createTextNode(it.name));
    });
  }

  function table(container, chart, d) {
    var t = html("table", {}, container);
    html("caption", {}, t, chart.title);
    var head = html("tr", {}, html("thead", {}, t));
    var body = html("tbody", {}, t);
    var row = function (cells) {
      var tr = html("tr", {}, body);
      cells.forEach(function (c, i) { html(i === 0 ? "th" : "td", i === 0 ? { scope: "row" } : {}, tr, c); });
    };
    if (chart.kind === "sankey") {
      [d.from_label || "From", d.to_label || "To", chart.y_label].forEach(function (h) { html("th", { scope: "col" }, head, h); });
      d.links.forEach(function (l) { row([l.source, l.target, format(l.value, chart.value_format)]); });
      return;
    }
    html("th", { scope: "col" }, head, chart.x_label);
    var cols = [];
    d.series.forEach(function (s) {
      var name = (s.group ? s.group + ": " : "") + s.name;
      cols.push([name, s, "values"]);
      if (s.lower && s.upper) { cols.push([name + " 95% CI lower", s, "lower"], [name + " 95% CI upper", s, "upper"]); }
      if (s.counts) cols.push([name + " (people)", s, "counts"]);
    });
    cols.forEach(function (c) { html("th", { scope: "col" }, head, c[0]); });
    d.categories.forEach(function (cat, i) {
      row([String(cat)].concat(cols.map(function (c) {
        return format(c[1][c[2]][i], c[2] === "counts" ? "count" : chart.value_format);
      })));
    });
  }

  function hasValues(chart, d) {
    if (!d) return false;
    if (chart.kind === "sankey") return d.links.some(function (l) { return isNum(l.value) && l.value > 0; });
    return d.series.some(function (s) { return s.values.some(function (v) { return isNum(v) && v > 0; }); });
  }

  function levelLabel(id) { return report.levels.filter(function (l) { return l.id === id; })[0].label; }
  function emptyMessage(chart, level) {
    if (chart.levels.length && chart.levels.indexOf(level) < 0) {
      return "Not computed at " + levelLabel(level) + " level; it is for: " +
        chart.levels.map(levelLabel).join(", ") + ". Choose a wider area above.";
    }
    return "Nothing to show for this area: the data are absent, or every count is below the disclosure threshold.";
  }

  function drawFigure(figure, areaKey) {
    var chart = chartsById[figure.getAttribute("data-chart")];
    var d = (report.data[areaKey] || {})[chart.id];
    var plot = figure.querySelector(".plot");
    var tableBox = figure.querySelector(".table");
    var note = figure.querySelector(".note");
    plot.textContent = "";
    tableBox.textContent = "";
    note.textContent = d && d.note ? d.note : "";
    if (!hasValues(chart, d)) {
      html("p", { "class": "empty" }, plot, emptyMessage(chart, areas[areaKey].level));
      figure.querySelector("details").hidden = true;
      return;
    }
    figure.querySelector("details").hidden = false;
    legend(plot, chart, d);
    plot.appendChild(DRAW[chart.kind](chart, d));
    table(tableBox, chart, d);
  }

  /* ---- geography picker ------------------------------------------------------------------------- */
  var areas = {}, children = {};
  report.areas.forEach(function (a) {
    areas[a.key] = a;
    if (a.parent !== null) (children[a.parent] = children[a.parent] || []).push(a);
  });
  var root = report.areas[0].key;
  var current = root;

  function chain(key) {
    var out = [];
    for (var k = key; k !== null && k !== undefined; k = areas[k].parent) out.unshift(k);
    return out;
  }

  function buildPicker() {
    var box = document.getElementById("picker-levels");
    box.textContent = "";
    var path = chain(current);
    report.levels.slice(1).forEach(function (level, i) {
      var parent = path[i];
      var wrap = html("label", { "class": "level" }, box);
      html("span", {}, wrap, level.label);
      var select = html("select", { "data-level": level.id, "aria-label": level.label }, wrap);
      var options = parent !== undefined ? (children[parent] || []) : [];
      html("option", { value: "" }, select, parent !== undefined ? "All in " + areas[parent].name : "—");
      options.forEach(function (a) {
        var o = html("option", { value: a.key }, select, a.name + (a.code ? " (" + a.code + ")" : ""));
        if (path[i + 1] === a.key) o.selected = true;
      });
      select.disabled = options.length === 0;
      select.addEventListener("change", function () {
        show(select.value || parent);
      });
    });
  }

  function show(key) {
    current = areas[key] ? key : root;
    var area = areas[current];
    document.getElementById("area-title").textContent =
      levelLabel(area.level) + ": " + area.name + (area.code ? " (" + area.code + ")" : "");
    buildPicker();
    Array.prototype.forEach.call(document.querySelectorAll("figure.chart"), function (f) { drawFigure(f, current); });
    if (window.history && window.history.replaceState) {
      window.history.replaceState(null, "", "#area=" + encodeURIComponent(current));
    }
  }

  var fromHash = /area=([^&]+)/.exec(window.location.hash);
  show(fromHash ? decodeURIComponent(fromHash[1]) : root);
}());
