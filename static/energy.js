// datalog-rrd: a meter's consumption as an interactive bar chart (dygraphs,
// Debian's libjs-dygraphs), from /rrd/energy/<file>.json: one bar per local
// hour, day or month, its width its period's (a month of 31 days is wider
// than February), its cost in the legend when a tariff prices it. Times
// are the daemon's zone's wall clock (wallclock.js), whatever the browser's.
"use strict";

(function () {
  const section = document.getElementById("energy-chart");
  const holder = document.getElementById("chart");
  if (!section || !holder || typeof Dygraph === "undefined") {
    return;
  }
  const url = new URL(section.dataset.url, window.location.origin).href;
  const zone = wallClock(document.body.dataset.tz || "UTC"); // wallclock.js
  const note = document.getElementById("chart-note");
  const color = "#1f77b4";

  function asText(s) {
    const span = document.createElement("span");
    span.textContent = s;
    return span.innerHTML;
  }

  // Each bar from its period's start to its end, less a gap.
  function barPlotter(ends) {
    return function (e) {
      const ctx = e.drawingContext;
      const g = e.dygraph;
      const bottom = e.dygraph.toDomYCoord(0);
      ctx.fillStyle = color;
      e.points.forEach(function (p) {
        if (p.yval === null || isNaN(p.canvasy)) {
          return;
        }
        const left = g.toDomXCoord(p.xval);
        const right = g.toDomXCoord(ends.get(p.xval));
        const gap = Math.max(1, (right - left) * 0.12);
        ctx.fillRect(left, p.canvasy, Math.max(1, right - left - gap), bottom - p.canvasy);
      });
    };
  }

  fetch(url, { headers: { Accept: "application/json" } })
    .then(function (r) {
      if (!r.ok) {
        return r.text().then(function (t) { throw new Error(t); });
      }
      return r.json();
    })
    .then(function (data) {
      const ends = new Map();
      const costs = new Map();
      const rows = data.bars.map(function (b) {
        const start = zone.toWall(b[0] * 1000);
        ends.set(start, zone.toWall(b[1] * 1000));
        costs.set(start, b[3]);
        return [new Date(start), b[2]];
      });
      if (rows.length === 0) {
        return;
      }
      const last = data.bars[data.bars.length - 1];
      const visible = document.getElementById("visible-total");
      // The total and cost of the bars wholly in view: the range shown,
      // or the one zoomed to.
      function showVisible(g) {
        const range = g.xAxisRange();
        let total = 0;
        let cost = 0;
        let bars = 0;
        data.bars.forEach(function (b) {
          const start = zone.toWall(b[0] * 1000);
          if (b[2] !== null && start >= range[0] && zone.toWall(b[1] * 1000) <= range[1] + 1) {
            total += b[2];
            cost += b[3] || 0;
            bars += 1;
          }
        });
        holder.dataset.visibleTotal = String(total);
        if (visible) {
          visible.textContent = "In view: " + total.toPrecision(4) + " " + data.unit + " in " + bars + " " +
            data.per + (bars === 1 ? "" : "s") + (data.currency ? ", " + data.currency + " " + cost.toFixed(2) : "");
        }
      }
      const unit = asText(data.unit);
      const currency = data.currency ? asText(data.currency) : null;
      const chart = new Dygraph(holder, rows, {
        labels: ["time", "Consumption"],
        plotter: barPlotter(ends),
        dateWindow: [rows[0][0].getTime(), zone.toWall(last[1] * 1000)],
        includeZero: true,
        labelsUTC: true,
        legend: "always",
        labelsDiv: document.getElementById("energy-legend"),
        ylabel: unit + " per " + data.per,
        colors: [color],
        axes: {
          y: { valueFormatter: function (v) { return v === null ? "–" : v.toPrecision(4) + " " + unit; } },
          x: {
            // Room for "Nov 2026" under each tick.
            axisLabelWidth: 70,
            valueFormatter: function (ms) {
              const t = new Date(ms).toISOString();
              if (data.per === "month") {
                return t.slice(0, 7);
              }
              return data.per === "day" ? t.slice(0, 10) : t.slice(0, 16).replace("T", " ");
            },
          },
        },
        drawCallback: showVisible,
        // The bar pointed at: its period, its amount, and its cost.
        legendFormatter: function (d) {
          if (d.x === undefined || d.x === null) {
            return "Consumption, " + unit + " per " + data.per;
          }
          const s = d.series[0];
          let text = d.xHTML + ": " + (s && s.y !== null && s.y !== undefined ? s.yHTML : "–");
          const cost = costs.get(d.x);
          if (currency && cost !== null && cost !== undefined) {
            text += " · " + currency + " " + cost.toFixed(2);
          }
          return text;
        },
      });
      // For tests: the chart, how many bars, and the range's total.
      holder.dygraph = chart;
      holder.dataset.bars = String(rows.filter(function (r) { return r[1] !== null; }).length);
      holder.dataset.total = String(data.total);
    })
    .catch(function (e) {
      if (note) {
        note.textContent = "Chart data not loaded: " + e.message;
      }
    });
})();
