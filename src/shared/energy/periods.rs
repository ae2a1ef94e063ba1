//! Consumption per local hour, day and month, from a meter's archives.
//!
//! librrd exports each archive's rows (their average rate, or average
//! reading); [`pieces`] joins them into one timeline, the finest archive
//! where it reaches and coarser ones before it, as amounts consumed over
//! intervals; [`bars`] shares each amount among the periods it overlaps,
//! in proportion to the time, and prices it. The periods are local:
//! midnights and months of the zone people live in, which an RRD's own
//! rows (UTC) do not follow.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Timelike};

use super::Stored;
use super::tariff::Tariffs;

/// What one bar covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    Hour,
    Day,
    Month,
}

impl Per {
    pub const ALL: [Per; 3] = [Per::Hour, Per::Day, Per::Month];

    pub fn parse(s: &str) -> Option<Per> {
        Per::ALL.into_iter().find(|p| p.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Per::Hour => "hour",
            Per::Day => "day",
            Per::Month => "month",
        }
    }

    /// How many bars a view shows: two days of hours, two months of days,
    /// two years of months.
    pub fn count(self) -> usize {
        match self {
            Per::Hour => 48,
            Per::Day => 62,
            Per::Month => 24,
        }
    }

    /// The archive step that draws this view's bars best (its rows fit in
    /// a bar), for the graph's data.
    pub fn drawing_step(self) -> u32 {
        match self {
            Per::Hour => 300,
            Per::Day => 3600,
            Per::Month => 86_400,
        }
    }
}

/// A local hour, day or month: `(start_s, end_s]` in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start_s: i64,
    pub end_s: i64,
}

/// The Unix time of a local wall-clock time: the earlier of a time read
/// twice (autumn), the first hour after a time the clock skipped (spring).
fn at<Tz: TimeZone>(zone: &Tz, wall: NaiveDateTime) -> i64 {
    let mut wall = wall;
    for _ in 0..4 {
        if let Some(t) = zone.from_local_datetime(&wall).earliest() {
            return t.timestamp();
        }
        wall += Duration::hours(1);
    }
    wall.and_utc().timestamp()
}

fn midnight(date: NaiveDate) -> NaiveDateTime {
    date.and_hms_opt(0, 0, 0).expect("midnight exists")
}

/// The start of the local period `per` holding `t_s`, and of the one after.
fn period_of<Tz: TimeZone>(per: Per, t_s: i64, zone: &Tz) -> Period {
    let wall = DateTime::from_timestamp(t_s, 0)
        .unwrap_or_default()
        .with_timezone(zone)
        .naive_local();
    match per {
        // Every local hour is 3600 s long, across a change of summer time
        // too; where it starts depends on the zone's offset (India: :30).
        Per::Hour => {
            let start = t_s - i64::from(wall.minute()) * 60 - i64::from(wall.second());
            Period {
                start_s: start,
                end_s: start + 3600,
            }
        }
        Per::Day => {
            let day = wall.date();
            Period {
                start_s: at(zone, midnight(day)),
                end_s: at(zone, midnight(day + Duration::days(1))),
            }
        }
        Per::Month => {
            let first = wall.date().with_day(1).expect("day 1 exists");
            let next = if first.month() == 12 {
                NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
            }
            .expect("the first of a month exists");
            Period {
                start_s: at(zone, midnight(first)),
                end_s: at(zone, midnight(next)),
            }
        }
    }
}

/// The last `count` local periods up to the one holding `now_s` (which is
/// still running), oldest first.
pub fn periods<Tz: TimeZone>(per: Per, count: usize, now_s: i64, zone: &Tz) -> Vec<Period> {
    let mut out = Vec::with_capacity(count);
    let mut p = period_of(per, now_s, zone);
    for _ in 0..count {
        out.push(p);
        p = period_of(per, p.start_s - 1, zone);
    }
    out.reverse();
    out
}

/// One archive's rows as librrd exported them: each row's end (Unix
/// seconds) and its average (a rate per second, or a reading), over the
/// `step_s` before it; `None` unknown.
#[derive(Debug, Clone, PartialEq)]
pub struct Archive {
    pub step_s: i64,
    pub rows: Vec<(i64, Option<f64>)>,
}

/// An amount consumed over `(start_s, end_s]`, or unknown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Piece {
    pub start_s: i64,
    pub end_s: i64,
    pub amount: Option<f64>,
}

/// The meter's timeline from its archives, finest first: each archive is
/// used where no finer one reaches. Where two meet, the finer one starts
/// at the first row boundary of the coarser one within its reach, so that
/// no coarser row is cut (a cut row's part would have to be guessed as
/// even use); a coarser row a finer archive still covers in part (steps
/// that do not divide) counts in proportion.
///
/// A counter's row gives its average rate: the amount is that rate times
/// the row's seconds, which is exact: librrd's average of a rate over a
/// row is what was counted in it. Readings give amounts as the difference
/// of successive known rows' averages (each taken at its row's middle): a
/// fall (the meter was reset or replaced) counts nothing rather than a
/// negative amount.
pub fn pieces(stored: Stored, archives: &[Archive]) -> Vec<Piece> {
    let mut rows: Vec<(i64, i64, Option<f64>)> = Vec::new();
    // Where the archive finer than the current one starts being used.
    let mut upper = i64::MAX;
    for (i, a) in archives.iter().enumerate() {
        let Some(first) = a.rows.first() else {
            continue;
        };
        let reach = first.0 - a.step_s;
        // This archive is used from the coarser one's first boundary
        // within its reach on.
        let lower = match archives[i + 1..].iter().find(|c| !c.rows.is_empty()) {
            Some(coarser) if coarser.step_s > 0 => {
                reach.div_euclid(coarser.step_s) * coarser.step_s
                    + if reach.rem_euclid(coarser.step_s) == 0 {
                        0
                    } else {
                        coarser.step_s
                    }
            }
            _ => i64::MIN,
        };
        for &(end, value) in &a.rows {
            let start = end - a.step_s;
            if start >= upper || start < lower {
                continue;
            }
            let clipped_end = end.min(upper);
            let value = match stored {
                Stored::Rate => value.map(|rate| rate * (clipped_end - start) as f64),
                // A reading is a level: a part of its row reads the same.
                Stored::Readings => value,
            };
            rows.push((start, clipped_end, value));
        }
        upper = upper.min(lower);
    }
    rows.sort_by_key(|r| r.0);
    match stored {
        Stored::Rate => rows
            .into_iter()
            .filter(|(start, end, _)| end > start)
            .map(|(start_s, end_s, amount)| Piece {
                start_s,
                end_s,
                amount: amount.filter(|a| a.is_finite()),
            })
            .collect(),
        Stored::Readings => {
            let mut out = Vec::new();
            let mut previous: Option<(i64, f64)> = None;
            for (start, end, reading) in rows {
                let middle = start + (end - start) / 2;
                match (previous, reading.filter(|r| r.is_finite())) {
                    (Some((t0, r0)), Some(r)) if middle > t0 => {
                        out.push(Piece {
                            start_s: t0,
                            end_s: middle,
                            amount: Some((r - r0).max(0.0)),
                        });
                        previous = Some((middle, r));
                    }
                    (None, Some(r)) => previous = Some((middle, r)),
                    _ => {}
                }
            }
            out
        }
    }
}

/// One period's consumption.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub period: Period,
    /// In the meter's unit; 0 when nothing of it is known.
    pub amount: f64,
    /// Seconds of the period the archives know (the rest: the meter did
    /// not report, or the period has not come yet).
    pub known_s: i64,
    /// Its price, when a tariff covers the meter's unit.
    pub cost: Option<f64>,
}

impl Bar {
    /// Whether anything of the period is known.
    pub fn is_known(&self) -> bool {
        self.known_s > 0
    }
}

/// The consumption of each period: every piece's amount shared among the
/// periods it overlaps, in proportion to the time, priced at the
/// tariff's rate over that time.
pub fn bars<Tz: TimeZone>(
    pieces: &[Piece],
    periods: &[Period],
    tariffs: Option<(&Tariffs, f64)>,
    zone: &Tz,
) -> Vec<Bar> {
    let mut out: Vec<Bar> = periods
        .iter()
        .map(|&period| Bar {
            period,
            amount: 0.0,
            known_s: 0,
            cost: tariffs.map(|_| 0.0),
        })
        .collect();
    // Both are in time order: walk them together.
    let mut first = 0;
    for piece in pieces {
        let Some(amount) = piece.amount else {
            continue;
        };
        let length = (piece.end_s - piece.start_s) as f64;
        while first < out.len() && out[first].period.end_s <= piece.start_s {
            first += 1;
        }
        for bar in out[first..].iter_mut() {
            if bar.period.start_s >= piece.end_s {
                break;
            }
            let from = piece.start_s.max(bar.period.start_s);
            let to = piece.end_s.min(bar.period.end_s);
            if to <= from {
                continue;
            }
            let part = amount * (to - from) as f64 / length;
            bar.amount += part;
            bar.known_s += to - from;
            if let (Some(cost), Some((tariffs, in_price_unit))) = (bar.cost.as_mut(), tariffs) {
                *cost += part * in_price_unit * tariffs.mean_price(from, to, zone);
            }
        }
    }
    out
}

/// What a file's archives lack for these views, in words: the views still
/// draw from what there is.
/// `archives` are each AVERAGE archive's step and rows.
pub fn lacking(archives: &[(i64, i64)]) -> Vec<String> {
    let mut out = Vec::new();
    let reaches = |finest: i64, secs: i64| {
        archives
            .iter()
            .any(|&(step, rows)| step <= finest && step * rows >= secs)
    };
    if !reaches(3600, 62 * 86_400) {
        out.push(
            "No archive of an hour or finer kept for 62 days: older days are shared out of \
             coarser rows (UTC days), so a day's bar may hold part of its neighbours."
                .to_owned(),
        );
    }
    if !reaches(86_400, 2 * 366 * 86_400) {
        out.push("No daily archive kept for 2 years: older months stay empty.".to_owned());
    }
    out
}

#[cfg(test)]
mod tests;
