// zij Benchmarks page (zij_canon.leaderboard): sortable leaderboards, and any class's loss curve on a task's chart.
// Without this script the tables are plain, ranked tables and the charts show the five best classes.
(function () {
  "use strict";

  // ---- sorting: a button in each header; cells sort by their data-v (empty values last, either way) ----
  function sortable(table) {
    var heads = table.tHead.rows[0].cells, body = table.tBodies[0];
    var rank = new Map();  // ties keep the ranked order, whatever was clicked before
    Array.prototype.forEach.call(body.rows, function (tr, i) { rank.set(tr, i); });
    Array.prototype.forEach.call(heads, function (th, col) {
      var numeric = th.getAttribute("data-sort") === "num";
      var button = document.createElement("button");
      button.type = "button";
      button.className = "zij-sort";
      while (th.firstChild) button.appendChild(th.firstChild);
      th.appendChild(button);
      th.setAttribute("data-sort-key", col);
      button.addEventListener("click", function () {
        var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
        var rows = Array.prototype.map.call(body.rows, function (tr) {
          var v = tr.cells[col].getAttribute("data-v");
          return { tr: tr, i: rank.get(tr), v: v === "" ? null : numeric ? parseFloat(v) : v.toLowerCase() };
        });
        rows.sort(function (a, b) {
          if (a.v === null || b.v === null) return (a.v === null) - (b.v === null) || a.i - b.i;
          return (a.v < b.v ? -dir : a.v > b.v ? dir : 0) || a.i - b.i;
        });
        rows.forEach(function (r) { body.appendChild(r.tr); });
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
      });
    });
  }

  // ---- a chosen class's curve: path data on each chart's axes, from the page's data file ----
  function picker(figure, curves) {
    var box = figure.querySelector(".zij-bench-pick"), select = box.querySelector("select");
    var path = figure.querySelector(".zij-chart .zij-series-pick"), status = box.querySelector(".zij-bench-status");
    if (!curves || !curves.length || !path) return;
    curves.forEach(function (c, i) {
      var option = document.createElement("option");
      option.value = i;
      option.textContent = c[0] + " (" + c[1] + ")";
      select.appendChild(option);
    });
    select.addEventListener("change", function () {
      var c = curves[select.value];
      path.setAttribute("d", c ? c[2] : "");
      status.textContent = c ? c[0] + ", rank " + c[1] + ", drawn" : "";
    });
    box.hidden = false;
  }

  function start() {
    document.querySelectorAll("table.zij-bench-table").forEach(sortable);
    var root = document.querySelector("[data-zij-bench]");
    if (!root || !window.fetch) return;
    fetch(root.getAttribute("data-zij-bench")).then(function (r) { return r.json(); }).then(function (data) {
      root.querySelectorAll("figure.zij-bench-curves").forEach(function (figure) {
        picker(figure, data[figure.getAttribute("data-task")]);
      });
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
