/* finetune-agent dashboard: the live loss / learning-rate (and an RL run's reward) chart and
   the inbox's keys.
   Everything else is htmx attributes in the templates. No inline script: the pages' CSP. */
(function () {
  "use strict";

  var MAX_TAIL = 60;
  var chart = null;
  var points = emptyPoints();
  var rewards = false;  // an RL run's chart: a reward series on its own axis

  function emptyPoints() { return { step: [], loss: [], lr: [], reward: [] }; }

  function columns() {
    var data = [points.step, points.loss, points.lr];
    return rewards ? data.concat([points.reward]) : data;
  }

  function chartSize(el) {
    return { width: Math.max(el.clientWidth, 280), height: 220 };
  }

  function drawChart() {
    var el = document.getElementById("chart");
    var data = document.getElementById("chart-data");
    if (!el || !data || typeof uPlot === "undefined") return;
    rewards = el.dataset.rewards === "yes";
    JSON.parse(data.textContent || "[]").forEach(addPoint);
    var size = chartSize(el);
    var axes = [
      { label: "step" },
      { label: "loss", scale: "loss" },
      { label: "learning rate", scale: "lr", side: 1, grid: { show: false } }
    ];
    var series = [
      { label: "step" },
      { label: "loss", scale: "loss", stroke: "#1f5fbf", width: 2 },
      { label: "learning rate", scale: "lr", stroke: "#b3541e", width: 1.5, dash: [6, 4] }
    ];
    if (rewards) {
      axes.push({ label: "reward", scale: "reward", side: 1, grid: { show: false } });
      series.push({ label: "reward", scale: "reward", stroke: "#2e7d32", width: 2 });
    }
    chart = new uPlot({
      width: size.width,
      height: size.height,
      scales: { x: { time: false } },
      axes: axes,
      series: series
    }, columns(), el);
    el.dataset.points = String(points.step.length);
    window.addEventListener("resize", function () { chart.setSize(chartSize(el)); });
  }

  function addPoint(p) {
    var last = points.step.length ? points.step[points.step.length - 1] : -1;
    if (p.step < last) { points = emptyPoints(); }  // a new training run
    if (p.step === last) return;
    points.step.push(p.step);
    points.loss.push(p.loss);
    points.lr.push(p.lr);
    points.reward.push(p.reward === undefined ? null : p.reward);
  }

  function onProgress(target) {
    var node = target.querySelector("[data-point]");
    if (!node || !chart) return;
    addPoint(JSON.parse(node.getAttribute("data-point")));
    chart.setData(columns());
    document.getElementById("chart").dataset.points = String(points.step.length);
  }

  function trimTail() {
    var tail = document.getElementById("tail");
    while (tail && tail.children.length > MAX_TAIL) tail.removeChild(tail.lastElementChild);
  }

  document.addEventListener("htmx:sseMessage", function (evt) {
    var target = evt.target;
    if (target.id === "progress") onProgress(target);
    if (target.id === "tail") trimTail();
  });

  // --- the inbox: j/k move, a approves, r rejects, e opens the edit ---------------------------
  // An answered card stays in view with its outcome; the keys move over the waiting ones.
  function gates() { return Array.prototype.slice.call(document.querySelectorAll("[data-gate]:not([data-answered])")); }

  function selected() {
    var all = gates();
    return all.filter(function (g) { return g.classList.contains("selected"); })[0] || all[0];
  }

  function select(gate) {
    gates().forEach(function (g) { g.classList.remove("selected"); });
    if (!gate) return;
    gate.classList.add("selected");
    gate.scrollIntoView({ block: "nearest" });
  }

  function typing(el) {
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable);
  }

  document.addEventListener("keydown", function (evt) {
    if (evt.ctrlKey || evt.metaKey || evt.altKey || typing(evt.target)) return;
    if (!document.querySelector("[data-keyboard-gates]")) return;
    var gate = selected();
    if (!gate) return;
    var all = gates(), at = all.indexOf(gate);
    if (evt.key === "j" || evt.key === "k") {
      select(all[Math.min(Math.max(at + (evt.key === "j" ? 1 : -1), 0), all.length - 1)]);
      evt.preventDefault();
      return;
    }
    var control = gate.querySelector('[data-key="' + evt.key + '"]');
    if (!control) return;
    evt.preventDefault();
    select(gate);
    control.click();
  });

  document.addEventListener("toggle", function (evt) {
    var details = evt.target;
    if (details.classList && details.classList.contains("edit") && details.open) {
      var box = details.querySelector("textarea");
      if (box) box.focus();
    }
  }, true);

  document.addEventListener("DOMContentLoaded", drawChart);
})();
