// datalog-rrd: the daemon's time zone in the browser, for the charts
// (chart.js, dashboard.js). dygraphs draws in the browser's own zone or in
// UTC; a chart's times are shifted to the zone's wall clock and drawn as
// UTC, so that its ticks and labels read the daemon's local time whatever
// the browser's zone. Offsets come from the browser's zone database
// (Intl), remembered by the hour; an unknown zone is UTC.
"use strict";

// wallClock("Europe/Berlin").toWall(ms) → the same moment on Berlin's
// clock, as milliseconds drawn as UTC; fromWall is its inverse.
function wallClock(name) {
  let format = null;
  try {
    format = new Intl.DateTimeFormat("en-CA", {
      timeZone: name, hourCycle: "h23",
      year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    });
  } catch (e) {
    format = null;
  }
  const offsets = new Map();
  function offsetAt(ms) {
    if (!format) {
      return 0;
    }
    const hour = Math.floor(ms / 3600000);
    if (!offsets.has(hour)) {
      const p = {};
      format.formatToParts(new Date(hour * 3600000)).forEach(function (x) { p[x.type] = Number(x.value); });
      const wall = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
      offsets.set(hour, wall - hour * 3600000);
    }
    return offsets.get(hour);
  }
  return {
    toWall: function (ms) { return ms + offsetAt(ms); },
    fromWall: function (wall) { return wall - offsetAt(wall - offsetAt(wall)); },
  };
}
