/* openphm analytics pages: draw each chart from the Vega-Lite spec the server built (openphm.charts), held in a
   JSON data block beside its container. Vega evaluates the spec's expressions with the interpreter
   (vegaInterpreter), so the content security policy needs no unsafe-eval; the data table under each chart is
   server-rendered HTML, so nothing is lost without script. */
(function () {
  "use strict";
  var options = {
    ast: true,
    expr: window.vegaInterpreter.expressionInterpreter,
    renderer: "svg",
    actions: false,
    defaultStyle: false, /* vega-embed would add a <style> element, which the CSP refuses: app.css styles it */
    tooltip: { disableDefaultStyle: true } /* so would its tooltip handler (vega-tooltip): app.css styles that too */
  };
  document.querySelectorAll(".app-chart__plot[data-spec]").forEach(function (target) {
    var blob = document.getElementById(target.getAttribute("data-spec"));
    if (!blob) return;
    var spec = JSON.parse(blob.textContent);
    window.vegaEmbed(target, spec, options).then(function () {
      var svg = target.querySelector("svg");
      if (svg) {
        svg.setAttribute("role", "img");
        svg.setAttribute("aria-label", spec.description);
      }
    }).catch(function (error) {
      console.error("chart " + target.id + ": " + error.message);
    });
  });
})();
