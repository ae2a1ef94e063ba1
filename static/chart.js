// datalog-rrd: the interactive chart of a file page, drawn by dygraphs
// (Debian's libjs-dygraphs) from /rrd/data/<file>.json. The server
// consolidates to the chart's width; zooming fetches the zoomed range again
// at its finer resolution. Times are shown in the daemon's time zone (the
// page's data-tz), whatever the browser's. Without dygraphs the page shows
// its PNGs only.
"use strict";

(function () {
  const section = document.getElementById("interactive");
  const holder = document.getElementById("chart");
  if (!section || !holder || typeof Dygraph === "undefined") {
    return;
  }
  // From the page's origin, not its address: a page opened as
  // http://user:pass@host/… would otherwise make fetch refuse the URL.
  const url = new URL(section.dataset.url, window.location.origin).href;
  const binary = section.dataset.binary === "true";
  const zone = wallClock(document.body.dataset.tz || "UTC"); // wallclock.js
  const note = document.getElementById("chart-note");
  const stepBox = document.getElementById("step-plot");
  const toggles = document.getElementById("ds-toggles");
  let chart = null;
  let full = null; // [start, end] of the first load, for "reset zoom"
  let loading = 0;
  // The PNG graphs' colours (src/stages/rrd/read/graph.rs), so a series
  // looks the same in both.
  const palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

  function points() {
    return Math.max(50, Math.min(4000, Math.round(holder.clientWidth || 800)));
  }

  function asText(s) {
    const span = document.createElement("span");
    span.textContent = s;
    return span.innerHTML;
  }

  function labelOf(c) {
    const name = c.name || c.label || c.series || c.ds;
    return c.unit && !c.binary ? name + " (" + c.unit + ")" : name;
  }

  function load(start, end) {
    const ticket = ++loading;
    let query = "?points=" + points();
    if (start !== undefined) {
      query += "&start=" + Math.floor(start) + "&end=" + Math.ceil(end);
    }
    return fetch(url + query, { headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) {
          return r.text().then(function (t) { throw new Error(t); });
        }
        return r.json();
      })
      .then(function (data) {
        if (ticket !== loading) {
          return; // a newer zoom superseded this answer
        }
        draw(data);
      })
      .catch(function (e) {
        if (note) {
          note.textContent = "Chart data not loaded: " + e.message;
        }
      });
  }

  function draw(data) {
    // Shifted to the zone's wall clock and drawn as UTC: ticks fall on
    // local hours and days, and labels read local time.
    const rows = data.rows.map(function (r) {
      return [new Date(zone.toWall(r[0] * 1000))].concat(r.slice(1));
    });
    const labels = ["time"].concat(data.columns.map(labelOf));
    if (full === null) {
      full = [data.start, data.end];
    }
    if (rows.every(function (r) { return r.slice(1).every(function (v) { return v === null; }); })) {
      if (note) {
        note.textContent = "No values in this range.";
      }
      holder.dataset.rows = "0";
      return;
    }
    const states = binary ? data.columns[0].states || ["On", "Off"] : null;
    const options = {
      labels: labels,
      stepPlot: binary || (stepBox ? stepBox.checked : false),
      fillGraph: binary,
      valueRange: binary ? [0, 1.05] : null,
      yAxisLabelWidth: binary ? 90 : 50,
      connectSeparatedPoints: false,
      labelsUTC: true,
      legend: "always",
      labelsDiv: document.getElementById("chart-legend"),
      colors: data.columns.map(function (_, i) { return palette[i % palette.length]; }),
      // dygraphs puts the axis label in as HTML; a unit comes from
      // discovery, that is from any publisher: as text only.
      ylabel: data.columns.length === 1 && data.columns[0].unit && !binary ? asText(data.columns[0].unit) : "",
      axes: {
        y: binary ? {
          ticker: function () { return [{ v: 0, label: states[1] }, { v: 1, label: states[0] }]; },
          valueFormatter: function (v) { return v >= 0.5 ? states[0] : states[1]; },
        } : {},
      },
      zoomCallback: function (minX, maxX) {
        load(zone.fromWall(minX) / 1000, zone.fromWall(maxX) / 1000);
      },
    };
    if (chart === null) {
      chart = new Dygraph(holder, rows, options);
      buildToggles(labels.slice(1));
    } else {
      chart.updateOptions(Object.assign({ file: rows, dateWindow: null }, options));
    }
    // For tests and the curious: how many rows, how many loads so far, and
    // the last row's time as the chart shows it (local, "YYYY-MM-DD HH:MM").
    holder.dataset.rows = String(rows.length);
    holder.dataset.loads = String(Number(holder.dataset.loads || 0) + 1);
    holder.dataset.lastTime = rows.length ? rows[rows.length - 1][0].toISOString().slice(0, 16).replace("T", " ") : "";
  }

  function buildToggles(names) {
    if (!toggles || names.length < 2) {
      return;
    }
    names.forEach(function (name, i) {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = true;
      box.addEventListener("change", function () {
        chart.setVisibility(i, box.checked);
      });
      label.appendChild(box);
      label.appendChild(document.createTextNode(" " + name));
      toggles.appendChild(label);
    });
  }

  if (stepBox) {
    stepBox.addEventListener("change", function () {
      if (chart) {
        chart.updateOptions({ stepPlot: stepBox.checked });
      }
    });
  }
  const reset = document.getElementById("reset-zoom");
  if (reset) {
    reset.addEventListener("click", function () {
      if (full) {
        load(full[0], full[1]);
      }
    });
  }
  load();
})();
