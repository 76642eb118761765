// Charts of the report and store pages, drawn with uPlot from JSON embedded in the page.
// Instants come as ISO 8601 UTC text; uPlot's x values are seconds since the epoch.
(function () {
  "use strict";
  const css = getComputedStyle(document.documentElement);
  const color = function (name) { return css.getPropertyValue(name).trim(); };
  const UP = color("--up"), DOWN = color("--down"), BUSINESS = color("--business");
  const ACCENT = color("--accent"), INK = color("--ink");
  const charts = window.storeMonitorCharts = {};

  function data(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }
  function seconds(iso) { return Date.parse(iso) / 1000; }
  function width(node) { return Math.max(280, node.clientWidth); }
  function axis(extra) {
    return Object.assign({ stroke: INK, grid: { stroke: "#e6e9ef" }, ticks: { stroke: "#c9ced8" } }, extra);
  }
  function responsive(chart, node, height) {
    window.addEventListener("resize", function () {
      chart.setSize({ width: width(node), height: height });
    });
  }

  // Report page: stores per 10-point band of weekly uptime.
  const histogram = data("histogram-data");
  const histogramNode = document.getElementById("histogram");
  if (histogram && histogramNode) {
    const centers = histogram.counts.map(function (_, i) {
      return (histogram.edges[i] + histogram.edges[i + 1]) / 2;
    });
    charts.histogram = new uPlot({
      width: width(histogramNode), height: 240,
      scales: { x: { time: false, range: [0, 100] }, y: { range: function (u, min, max) { return [0, Math.max(1, max) * 1.1]; } } },
      axes: [axis({ label: "weekly uptime", values: function (u, ticks) { return ticks.map(function (t) { return t + " %"; }); } }),
        axis({ label: "stores", size: 60 })],
      series: [{ label: "uptime band", value: function (u, v) { return v == null ? "–" : (v - 5) + "–" + (v + 5) + " %"; } },
        { label: "stores", fill: ACCENT + "cc", stroke: ACCENT, paths: uPlot.paths.bars({ size: [0.9, 80] }), points: { show: false } }],
      legend: { live: true },
    }, [centers, histogram.counts], histogramNode);
    responsive(charts.histogram, histogramNode, 240);
  }

  // Store page: the week, and its local days.
  const timeline = data("timeline-data");
  const weekNode = document.getElementById("week-chart");
  if (timeline && weekNode) {
    const zone = timeline.timezone;
    const local = new Intl.DateTimeFormat("en-GB", { timeZone: zone, weekday: "short", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
    const utc = new Intl.DateTimeFormat("en-GB", { timeZone: "UTC", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
    const x = timeline.polls.map(function (p) { return seconds(p[0]); });
    const up = timeline.polls.map(function (p) { return p[1] ? 1 : null; });
    const down = timeline.polls.map(function (p) { return p[1] ? null : 0; });
    const business = timeline.business.map(function (b) { return [seconds(b[0]), seconds(b[1])]; });
    const segments = timeline.segments.map(function (s) { return [seconds(s[0]), seconds(s[1]), s[2]]; });
    const window_ = timeline.window.map(seconds);

    function band(u, from, to, y0, y1, fill) {
      const ctx = u.ctx;
      const left = u.valToPos(Math.max(from, u.scales.x.min), "x", true);
      const right = u.valToPos(Math.min(to, u.scales.x.max), "x", true);
      if (right <= left) { return; }
      const top = y1 == null ? u.bbox.top : u.valToPos(y1, "y", true);
      const bottom = y0 == null ? u.bbox.top + u.bbox.height : u.valToPos(y0, "y", true);
      ctx.fillStyle = fill;
      ctx.fillRect(left, top, Math.max(1, right - left), bottom - top);
    }
    const drawn = { business: 0, segments: 0 };
    const dot = function (color) { return { show: true, size: 7, width: 1, stroke: INK, fill: color }; };
    charts.week = new uPlot({
      width: width(weekNode), height: 260,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), zone); },
      scales: { x: { time: true, range: window_ }, y: { range: [-0.6, 1.6] } },
      axes: [axis({}), axis({ size: 56, splits: [0, 1], values: function (u, ticks) { return ticks.map(function (t) { return t === 1 ? "up" : "down"; }); } })],
      series: [
        { label: "time", value: function (u, v) { return v == null ? "–" : local.format(new Date(v * 1e3)) + " (UTC " + utc.format(new Date(v * 1e3)) + ")"; } },
        { label: "poll: active", stroke: UP, paths: function () { return null; }, points: dot(UP), value: function (u, v) { return v == null ? "–" : "active"; } },
        { label: "poll: inactive", stroke: DOWN, paths: function () { return null; }, points: dot(DOWN), value: function (u, v) { return v == null ? "–" : "inactive"; } },
      ],
      cursor: { points: { size: 10 } },
      hooks: {
        // Business time under the grid; the up and down stretches over it, under the polls.
        drawClear: [function (u) {
          drawn.business = 0;
          business.forEach(function (b) { band(u, b[0], b[1], null, null, BUSINESS); drawn.business += 1; });
        }],
        drawAxes: [function (u) {
          drawn.segments = 0;
          segments.forEach(function (s) {
            if (s[2]) { band(u, s[0], s[1], 0.8, 1.2, UP + "66"); } else { band(u, s[0], s[1], -0.2, 0.2, DOWN + "66"); }
            drawn.segments += 1;
          });
        }],
      },
    }, [x, up, down], weekNode);
    charts.weekDrawn = drawn;
    charts.weekSource = { business: business, segments: segments };
    responsive(charts.week, weekNode, 260);
  }

  const daysNode = document.getElementById("days-chart");
  if (timeline && daysNode) {
    const index = timeline.days.map(function (_, i) { return i; });
    const short = daysNode.clientWidth < 500;
    const labels = timeline.days.map(function (d) { return short ? d.date.slice(8) : d.date.slice(5); });
    charts.days = new uPlot({
      width: width(daysNode), height: 220,
      scales: { x: { time: false, range: [-0.6, index.length - 0.4] }, y: { range: function (u, min, max) { return [0, Math.max(1, max) * 1.1]; } } },
      axes: [axis({ splits: index, values: function (u, ticks) { return ticks.map(function (t) { return labels[t] || ""; }); } }), axis({ label: "hours", size: 50 })],
      series: [{ label: "day", value: function (u, v) { return v == null ? "–" : timeline.days[v].date; } },
        { label: "up (h)", fill: UP + "cc", stroke: UP, paths: uPlot.paths.bars({ size: [0.4, 40], align: -1 }), points: { show: false } },
        { label: "down (h)", fill: DOWN + "cc", stroke: DOWN, paths: uPlot.paths.bars({ size: [0.4, 40], align: 1 }), points: { show: false } }],
    }, [index, timeline.days.map(function (d) { return d.uptime_hours; }), timeline.days.map(function (d) { return d.downtime_hours; })], daysNode);
    responsive(charts.days, daysNode, 220);
  }
})();
