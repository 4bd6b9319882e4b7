/* openphm report page: the geography picker, and for the chosen area each chart drawn by vega-embed from the
   Vega-Lite spec built in Python (openphm.charts) with its data table beside it. No chart drawing lives here:
   the specs are in the JSON blob in #report-data, and Vega evaluates their expressions with the interpreter
   (vegaInterpreter), so the page's content security policy needs no unsafe-eval. No network use. */
(function () {
  "use strict";

  var report = JSON.parse(document.getElementById("report-data").textContent);
  var chartsById = {};
  report.charts.forEach(function (c) { chartsById[c.id] = c; });
  var options = Object.assign({}, report.embed);
  if (options.ast) options.expr = window.vegaInterpreter.expressionInterpreter; /* evaluates the parsed ASTs */
  var views = {};
  var generation = 0; /* a drawing that finishes after the reader moved on is discarded */

  function html(tag, attrs, parent, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function table(container, chart, t) {
    var node = html("table", {}, container);
    html("caption", {}, node, chart.title);
    var head = html("tr", {}, html("thead", {}, node));
    t.columns.forEach(function (c) { html("th", { scope: "col" }, head, c); });
    var body = html("tbody", {}, node);
    t.rows.forEach(function (cells) {
      var tr = html("tr", {}, body);
      cells.forEach(function (c, i) { html(i === 0 ? "th" : "td", i === 0 ? { scope: "row" } : {}, tr, c); });
    });
  }

  function levelLabel(id) { return report.levels.filter(function (l) { return l.id === id; })[0].label; }
  function emptyMessage(chart, level) {
    if (chart.levels.length && chart.levels.indexOf(level) < 0) {
      return "Not computed at " + levelLabel(level) + " level; it is for: " +
        chart.levels.map(levelLabel).join(", ") + ". Choose a wider area above.";
    }
    return "Nothing to show for this area: the data are absent, or every count is below the disclosure threshold.";
  }

  /* Returns a promise settled when the chart is drawn (or failed, which is logged). */
  function drawFigure(figure, areaKey) {
    var chart = chartsById[figure.getAttribute("data-chart")];
    var view = (report.views[areaKey] || {})[chart.id];
    var plot = figure.querySelector(".plot");
    var tableBox = figure.querySelector(".table");
    if (views[chart.id]) { views[chart.id].finalize(); delete views[chart.id]; }
    plot.textContent = "";
    tableBox.textContent = "";
    figure.querySelector(".note").textContent = view && view.note ? view.note : "";
    if (!view) {
      html("p", { "class": "empty" }, plot, emptyMessage(chart, areas[areaKey].level));
      figure.querySelector("details").hidden = true;
      return Promise.resolve();
    }
    figure.querySelector("details").hidden = false;
    table(tableBox, chart, view.table);
    var target = html("div", { "class": "vega" }, plot);
    var drawing = generation;
    return window.vegaEmbed(target, view.spec, options).then(function (result) {
      if (drawing !== generation) { result.finalize(); return; }
      views[chart.id] = result;
      var svg = target.querySelector("svg");
      if (svg) {
        svg.setAttribute("role", "img");
        svg.setAttribute("aria-label", view.spec.description);
      }
    }).catch(function (error) {
      console.error("chart " + chart.id + ": " + error.message);
    });
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
    generation += 1;
    var drawing = generation;
    document.body.setAttribute("data-charts", "drawing");
    Promise.all(Array.prototype.map.call(document.querySelectorAll("figure.chart"), function (f) {
      return drawFigure(f, current);
    })).then(function () {
      /* tests and print wait for this */
      if (drawing === generation) document.body.setAttribute("data-charts", "ready");
    });
    if (window.history && window.history.replaceState) {
      window.history.replaceState(null, "", "#area=" + encodeURIComponent(current));
    }
  }

  var fromHash = /area=([^&]+)/.exec(window.location.hash);
  show(fromHash ? decodeURIComponent(fromHash[1]) : root);
}());
