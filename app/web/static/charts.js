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
  // One date style on every page: ISO date, 24-hour time ("2023-01-25 18:00:00").
  function clock(zone) {
    const format = new Intl.DateTimeFormat("en-CA", { timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", weekday: "short" });
    return function (epochSeconds) {
      const p = {};
      format.formatToParts(new Date(epochSeconds * 1e3)).forEach(function (part) { p[part.type] = part.value; });
      return { date: p.year + "-" + p.month + "-" + p.day, time: p.hour + ":" + p.minute, seconds: p.second, weekday: p.weekday };
    };
  }
  function width(node) { return Math.max(280, node.clientWidth); }
  function axis(extra) {
    return Object.assign({ stroke: INK, grid: { stroke: "#e6e9ef" }, ticks: { stroke: "#c9ced8" } }, extra);
  }
  // No uPlot legend (the page has its own, in HTML): what the cursor points at is written
  // in one line under the chart instead, for hovering and tapping alike.
  function readout(node, describe) {
    const line = document.createElement("p");
    line.className = "hint readout";
    line.setAttribute("aria-live", "polite");
    line.textContent = "\u00a0";
    node.insertAdjacentElement("afterend", line);
    return { show: false, setCursor: [function (u) {
      const i = u.cursor.idx;
      line.textContent = i == null ? "\u00a0" : describe(u, i);
    }] };
  }
  function responsive(chart, node, height) {
    window.addEventListener("resize", function () {
      chart.setSize({ width: width(node), height: height });
    });
  }

  // Report page: stores per band of weekly uptime (bands of one width where most stores
  // are, and one from 0 % for the rest), one bar per band.
  const histogram = data("histogram-data");
  const histogramNode = document.getElementById("histogram");
  if (histogram && histogramNode) {
    const index = histogram.counts.map(function (_, i) { return i; });
    const band = function (i) { return histogram.edges[i] + "–" + histogram.edges[i + 1] + " %"; };
    const histogramHover = readout(histogramNode, function (u, i) {
      return "weekly uptime " + band(i) + ": " + histogram.counts[i] + (histogram.counts[i] === 1 ? " store" : " stores");
    });
    const every = Math.ceil(index.length / Math.max(1, Math.floor(width(histogramNode) / 70)));
    charts.histogram = new uPlot({
      width: width(histogramNode), height: 240,
      scales: { x: { time: false, range: [-0.6, index.length - 0.4] }, y: { range: function (u, min, max) { return [0, Math.max(1, max) * 1.1]; } } },
      axes: [axis({ label: "weekly uptime, % (band from)", splits: index.filter(function (i) { return i % every === 0; }),
        values: function (u, ticks) { return ticks.map(function (t) { return histogram.edges[t] + ""; }); } }),
        axis({ label: "stores", size: 60 })],
      series: [{ label: "band", value: function (u, v) { return v == null ? "–" : band(v); } },
        { label: "stores", fill: ACCENT + "cc", stroke: ACCENT, paths: uPlot.paths.bars({ size: [0.9, 80] }), points: { show: false } }],
      legend: { show: false },
      hooks: { setCursor: histogramHover.setCursor },
    }, [index, histogram.counts], histogramNode);
    responsive(charts.histogram, histogramNode, 240);
  }

  // Store page: the week, and its local days.
  const timeline = data("timeline-data");
  const weekNode = document.getElementById("week-chart");
  if (timeline && weekNode) {
    const zone = timeline.timezone;
    const local = clock(zone), utc = clock("UTC");
    const full = function (p) { return p.date + " " + p.time + ":" + p.seconds; };
    // Axis labels: the date at local midnight, else the 24-hour time.
    const tick = function (t) { const p = local(t); return p.time === "00:00" ? p.date.slice(5) : p.time; };
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
    const weekHover = readout(weekNode, function (u, i) {
      const t = u.data[0][i];
      return local(t).weekday + " " + full(local(t)) + " " + zone + " (" + full(utc(t)) + " UTC): poll " + (u.data[1][i] === 1 ? "active" : "inactive");
    });
    const dot = function (color) { return { show: true, size: 7, width: 1, stroke: INK, fill: color }; };
    charts.week = new uPlot({
      width: width(weekNode), height: 260,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), zone); },
      scales: { x: { time: true, range: function (u, min, max) { return charts.shown ? [min, max] : window_; } }, y: { range: [-0.6, 1.6] } },
      axes: [axis({ values: function (u, ticks) { return ticks.map(tick); } }), axis({ size: 56, splits: [0, 1], values: function (u, ticks) { return ticks.map(function (t) { return t === 1 ? "up" : "down"; }); } })],
      series: [
        { label: "time", value: function (u, v) { return v == null ? "–" : local(v).weekday + " " + full(local(v)) + " (UTC " + full(utc(v)) + ")"; } },
        { label: "poll: active", stroke: UP, paths: function () { return null; }, points: dot(UP), value: function (u, v) { return v == null ? "–" : "active"; } },
        { label: "poll: inactive", stroke: DOWN, paths: function () { return null; }, points: dot(DOWN), value: function (u, v) { return v == null ? "–" : "inactive"; } },
      ],
      cursor: { points: { size: 10 } },
      legend: { show: false },
      hooks: {
        setCursor: weekHover.setCursor,
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
    // An incident's "on the chart" link (and a page opened at #incident-<start>) zooms the
    // week's chart to it, with some time either side; a double click shows the week again.
    const show = function (link) {
      const from = seconds(link.dataset.start), to = seconds(link.dataset.end);
      const pad = Math.max(3600, (to - from) / 2);
      charts.shown = [from, to];
      charts.week.setScale("x", { min: from - pad, max: to + pad });
      document.querySelectorAll("tr.shown").forEach(function (row) { row.classList.remove("shown"); });
      link.closest("tr").classList.add("shown");
    };
    weekNode.addEventListener("dblclick", function () {
      charts.shown = null;
      document.querySelectorAll("tr.shown").forEach(function (row) { row.classList.remove("shown"); });
      charts.week.setScale("x", { min: window_[0], max: window_[1] });
    });
    document.querySelectorAll("a.chart-link").forEach(function (link) {
      link.addEventListener("click", function () { show(link); });
    });
    const wanted = decodeURIComponent(window.location.hash).match(/^#incident-(.+)$/);
    if (wanted) {
      const at = seconds(wanted[1]);
      const links = Array.prototype.slice.call(document.querySelectorAll("a.chart-link"));
      const found = links.filter(function (l) { return seconds(l.dataset.start) <= at && at < seconds(l.dataset.end); })[0]
        || links.filter(function (l) { return seconds(l.dataset.start) === at; })[0]
        // begun before the week: the row the week starts with
        || links.filter(function (l) { return seconds(l.dataset.end) > at; }).pop();
      if (found) { show(found); weekNode.scrollIntoView(); }
    }
  }

  const daysNode = document.getElementById("days-chart");
  if (timeline && daysNode) {
    const index = timeline.days.map(function (_, i) { return i; });
    const short = daysNode.clientWidth < 500;
    const labels = timeline.days.map(function (d) { return short ? d.date.slice(8) : d.date.slice(5); });
    const daysHover = readout(daysNode, function (u, i) {
      const d = timeline.days[i];
      return d.date + ": up " + d.uptime_hours.toFixed(2) + " h, down " + d.downtime_hours.toFixed(2) + " h of " + d.business_hours.toFixed(2) + " h business time";
    });
    charts.days = new uPlot({
      width: width(daysNode), height: 220,
      scales: { x: { time: false, range: [-0.6, index.length - 0.4] }, y: { range: function (u, min, max) { return [0, Math.max(1, max) * 1.1]; } } },
      axes: [axis({ splits: index, values: function (u, ticks) { return ticks.map(function (t) { return labels[t] || ""; }); } }), axis({ label: "hours", size: 50 })],
      series: [{ label: "day", value: function (u, v) { return v == null ? "–" : timeline.days[v].date; } },
        { label: "up (h)", fill: UP + "cc", stroke: UP, paths: uPlot.paths.bars({ size: [0.4, 40], align: -1 }), points: { show: false } },
        { label: "down (h)", fill: DOWN + "cc", stroke: DOWN, paths: uPlot.paths.bars({ size: [0.4, 40], align: 1 }), points: { show: false } }],
      legend: { show: false },
      hooks: { setCursor: daysHover.setCursor },
    }, [index, timeline.days.map(function (d) { return d.uptime_hours; }), timeline.days.map(function (d) { return d.downtime_hours; })], daysNode);
    responsive(charts.days, daysNode, 220);
  }
})();
