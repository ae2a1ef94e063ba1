// datalog-rrd: a dashboard's views as interactive charts, drawn by dygraphs
// (Debian's libjs-dygraphs); their PNGs are for browsers without scripts. Each view names its series
// (data-series: file data URL, label, colour); their data comes from
// /rrd/data/<file>.json, one request per series, merged on time. Zooming
// one chart zooms the others (dygraphs' synchronizer extra), so a spike in
// one view can be read against the others at the same moment. Events about
// a view's files (or about none) are marked on it (/rrd/events.json).
"use strict";

(function () {
  const holders = Array.from(document.querySelectorAll(".dash-chart"));
  if (holders.length === 0 || typeof Dygraph === "undefined") {
    return;
  }
  const palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
  const zone = wallClock(document.body.dataset.tz || "UTC"); // wallclock.js
  // The PNGs' threshold colours (src/stages/web/dashboards/draw.rs).
  const thresholdColors = { warning: "#e69f00", critical: "#d62728" };

  function thresholds(holder) {
    return Object.keys(thresholdColors)
      .filter(function (k) { return holder.dataset[k]; })
      .map(function (k) { return { value: Number(holder.dataset[k]), color: thresholdColors[k] }; });
  }

  // Thresholds as dashed horizontal rules under the lines.
  function drawThresholds(lines) {
    return function (ctx, area, g) {
      lines.forEach(function (t) {
        const y = g.toDomYCoord(t.value);
        ctx.save();
        ctx.strokeStyle = t.color;
        ctx.setLineDash([5, 3]);
        ctx.beginPath();
        ctx.moveTo(area.x, y);
        ctx.lineTo(area.x + area.w, y);
        ctx.stroke();
        ctx.restore();
      });
      g.datalogThresholds = lines.length;
    };
  }

  function fetchJson(url) {
    // From the page's origin: a page opened as http://user:pass@host/…
    // would otherwise make fetch refuse the URL.
    const absolute = new URL(url, window.location.origin).href;
    return fetch(absolute, { headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) {
        return r.text().then(function (t) { throw new Error(t); });
      }
      return r.json();
    });
  }

  // Rows of several series, each [time, value], merged on time: a series
  // without a row at a time gets null there (a gap, not a zero).
  function merge(answers) {
    const byTime = new Map();
    answers.forEach(function (data, i) {
      data.rows.forEach(function (row) {
        let merged = byTime.get(row[0]);
        if (!merged) {
          merged = new Array(answers.length).fill(null);
          byTime.set(row[0], merged);
        }
        merged[i] = row[1];
      });
    });
    return Array.from(byTime.keys())
      .sort(function (a, b) { return a - b; })
      .map(function (t) { return [new Date(zone.toWall(t * 1000))].concat(byTime.get(t)); });
  }

  function chart(holder) {
    const series = JSON.parse(holder.dataset.series);
    const points = Math.max(50, Math.min(2000, Math.round(holder.clientWidth || 600)));
    const query = "&range=" + encodeURIComponent(holder.dataset.range) + "&points=" + points;
    return Promise.all(series.map(function (s) { return fetchJson(s.url + query); }))
      .then(function (answers) {
        const rows = merge(answers);
        holder.dataset.rows = String(rows.length);
        if (rows.length === 0) {
          holder.textContent = "No values in this range.";
          return null;
        }
        const binary = series.length > 0 && series.every(function (s) { return s.states; });
        const lines = thresholds(holder);
        // The value range holds the thresholds, as the PNG's does.
        let lo = Infinity;
        let hi = -Infinity;
        rows.forEach(function (r) {
          r.slice(1).forEach(function (v) {
            if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
          });
        });
        lines.forEach(function (t) { lo = Math.min(lo, t.value); hi = Math.max(hi, t.value); });
        const pad = (hi - lo) * 0.05 || 1;
        const states = binary ? series[0].states : null;
        const g = new Dygraph(holder, rows, {
          valueRange: binary ? [0, 1.05] : (isFinite(lo) ? [lo - pad, hi + pad] : null),
          fillGraph: binary,
          yAxisLabelWidth: binary ? 90 : 50,
          axes: {
            y: binary ? {
              ticker: function () { return [{ v: 0, label: states[1] }, { v: 1, label: states[0] }]; },
              valueFormatter: function (v) { return v >= 0.5 ? states[0] : states[1]; },
            } : {},
          },
          underlayCallback: drawThresholds(lines),
          labels: ["time"].concat(series.map(function (s) { return s.label; })),
          colors: series.map(function (s, i) { return s.color || palette[i % palette.length]; }),
          labelsUTC: true,
          legend: "always",
          labelsDiv: holder.nextElementSibling,
          connectSeparatedPoints: false,
          stepPlot: true,
        });
        g.datalogSeries = series;
        g.datalogTimes = rows.map(function (r) { return r[0].getTime(); });
        return g;
      })
      .catch(function (e) {
        holder.textContent = "Chart data not loaded: " + e.message;
        return null;
      });
  }

  // An event about a device is about its files; one about none, about all.
  function about(path, device) {
    return !device || path === device || path.startsWith(device + "/");
  }

  // Dygraphs pins an annotation to a row: the one nearest the event.
  function annotate(g, events) {
    const times = g.datalogTimes;
    const marks = [];
    events.forEach(function (e) {
      const on = g.datalogSeries.find(function (s) { return about(s.path, e.device); });
      if (!on || times.length === 0) {
        return;
      }
      const t = zone.toWall(e.time * 1000);
      let best = times[0];
      times.forEach(function (x) { if (Math.abs(x - t) < Math.abs(best - t)) { best = x; } });
      marks.push({ series: on.label, x: best, shortText: "E", text: e.text });
    });
    g.setAnnotations(marks);
    g.datalogEvents = marks.length;
  }

  Promise.all(holders.map(chart)).then(function (charts) {
    const drawn = charts.filter(function (c) { return c !== null; });
    if (drawn.length > 0) {
      fetchJson("/rrd/events.json?range=" + encodeURIComponent(holders[0].dataset.range))
        .then(function (events) { drawn.forEach(function (g) { annotate(g, events); }); })
        .catch(function () { /* the charts stand without their marks */ });
    }
    if (drawn.length >= 2 && typeof Dygraph.synchronize === "function") {
      Dygraph.synchronize(drawn, { zoom: true, selection: true, range: false });
    }
    // For tests and the curious: the charts, once all are drawn.
    window.datalogCharts = drawn;
    document.body.dataset.charts = String(drawn.length);
  });
})();
