// Line charts of a run with uPlot (static/vendor/uplot), shared by `glassbox ui` and `glassbox report`.
// A chart spec comes from glassbox_ui.views.chart: {id, title, xLabel, yLabel, log, nonneg,
// series: [{name, points: [[x, y], ...]}]}. What the hand-drawn SVG got wrong is fixed here on purpose:
// x ticks are whole steps, a quantity that cannot be negative never gets a negative axis, and the
// y axis is as wide as its longest label.
(function (global) {
  "use strict";
  const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];
  const STEP_INCRS = [];
  for (let e = 0; e < 12; e++) for (const m of [1, 2, 5]) STEP_INCRS.push(m * Math.pow(10, e));

  function fmt(v) {
    if (v == null || !isFinite(v)) return "";
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e5 || a < 1e-4)) {
      if (a >= 1e5 && a < 1e12) {
        const units = [[1e9, "G"], [1e6, "M"], [1e3, "k"]];
        for (const [d, u] of units) if (a >= d) return +(v / d).toPrecision(4) + u;
      }
      return v.toExponential(2);
    }
    return String(+v.toPrecision(4));
  }

  function align(series) {
    const xs = Array.from(new Set(series.flatMap(s => s.points.map(p => p[0])))).sort((a, b) => a - b);
    const index = new Map(xs.map((x, i) => [x, i]));
    const ys = series.map(s => {
      const col = new Array(xs.length).fill(null);
      for (const [x, y] of s.points) col[index.get(x)] = y;
      return col;
    });
    return [xs, ...ys];
  }

  function yRange(spec) {
    return (u, min, max) => {
      if (min == null || max == null) return [0, 1];
      if (spec.log) return uPlot.rangeLog(min, max, 10, true);
      let pad = (max - min) * 0.08;
      if (pad === 0) pad = Math.abs(max) * 0.1 || 1;
      let lo = min - pad;
      if (spec.nonneg && min >= 0 && lo < 0) lo = 0;
      return [lo, max + pad];
    };
  }

  function xRange(u, min, max) {
    // One point (one checkpoint so far): a step either side, not uPlot's wide default.
    if (min == null) return [0, 1];
    return min === max ? [Math.max(0, min - 1), max + 1] : [min, max];
  }

  function axisSize(u, values, axisIdx, cycleNum) {
    // Wide enough for the longest tick label, so no label is clipped.
    const longest = (values || []).reduce((n, v) => Math.max(n, String(v).length), 1);
    return Math.ceil(longest * 7.2) + 22;
  }

  function options(spec, width, height) {
    const few = spec.series.every(s => s.points.length <= 60);
    return {
      title: spec.title, width: width, height: height,
      scales: {x: {time: false, range: xRange}, y: {distr: spec.log ? 3 : 1, range: yRange(spec)}},
      axes: [
        {label: spec.xLabel || "step", incrs: spec.xLabel === "step" || !spec.xLabel ? STEP_INCRS : undefined,
         values: (u, splits) => splits.map(fmt)},
        {label: spec.yLabel || "", size: axisSize, values: (u, splits) => splits.map(fmt)},
      ],
      series: [{label: spec.xLabel || "step", value: (u, v) => fmt(v)}].concat(spec.series.map((s, i) => ({
        label: s.name, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true,
        points: {show: few, size: 5}, value: (u, v) => fmt(v),
      }))),
    };
  }

  function draw(container, spec, width) {
    container.innerHTML = "";
    container.dataset.chart = spec.id;
    container.dataset.points = spec.series.map(s => s.points.length).join(",");
    if (!spec.series.length) {
      container.textContent = spec.title + ": no data yet";
      return null;
    }
    const w = width || Math.max(320, Math.min(640, container.clientWidth || 560));
    const u = new uPlot(options(spec, w, 260), align(spec.series), container);
    global.glassboxCharts = global.glassboxCharts || {};
    global.glassboxCharts[spec.id] = u;
    return u;
  }

  global.GlassboxCharts = {draw: draw, fmt: fmt, align: align};
})(window);
