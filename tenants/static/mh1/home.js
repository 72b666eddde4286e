// The home page's chart of decisions and executions per day (our own file; Chart.js is a pinned
// static file beside it, no CDN). Data: the JSON the page embeds with json_script.
(function () {
  "use strict";
  var source = document.getElementById("activity-data");
  var canvas = document.getElementById("activity-chart");
  if (!source || !canvas || typeof Chart === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  var colours = { approved: "#417690", rejected: "#b58105", executed: "#2e7d32", failed: "#ba2121" };
  var datasets = Object.keys(colours).map(function (outcome) {
    return {
      label: outcome,
      data: data.series[outcome],
      backgroundColor: colours[outcome],
      stack: outcome === "approved" || outcome === "rejected" ? "decisions" : "executions",
    };
  });
  window.mh1ActivityChart = new Chart(canvas, {
    type: "bar",
    data: { labels: data.labels, datasets: datasets },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
      plugins: { legend: { position: "bottom" } },
    },
  });
})();
