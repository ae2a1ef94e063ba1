use chrono::FixedOffset;

use super::*;
use crate::energy::{Tariff, TariffPeriod};

/// 2025-12-03 00:00 at UTC+1.
const MIDNIGHT: i64 = 1_764_716_400;

fn plus_one() -> FixedOffset {
    FixedOffset::east_opt(3600).unwrap()
}

#[test]
fn days_and_months_start_at_local_midnight() {
    let zone = plus_one();
    let days = periods(Per::Day, 3, MIDNIGHT + 10 * 3600, &zone);
    assert_eq!(days.len(), 3);
    assert_eq!(days[2].start_s, MIDNIGHT, "today, still running");
    assert_eq!(days[2].end_s, MIDNIGHT + 86_400);
    assert_eq!(days[0].start_s, MIDNIGHT - 2 * 86_400);
    for pair in days.windows(2) {
        assert_eq!(pair[0].end_s, pair[1].start_s, "no gap, no overlap");
    }
    let months = periods(Per::Month, 13, MIDNIGHT, &zone);
    // December 2025 starts on the 1st, local midnight; November has 30 days.
    assert_eq!(months[12].start_s, MIDNIGHT - 2 * 86_400);
    assert_eq!(months[11].end_s - months[11].start_s, 30 * 86_400);
    assert_eq!(months[12].end_s - months[12].start_s, 31 * 86_400);
    assert_eq!(
        months[0].end_s - months[0].start_s,
        31 * 86_400,
        "December 2024"
    );
}

#[test]
fn hours_follow_the_zone_offset() {
    let india = FixedOffset::east_opt(5 * 3600 + 1800).unwrap();
    let t = 1_764_720_000; // 00:00 UTC
    let hours = periods(Per::Hour, 2, t, &india);
    // 00:00 UTC is 05:30 local: its local hour started at 05:00, 23:30 UTC.
    assert_eq!(hours[1].start_s, t - 1800);
    assert_eq!(
        hours[0],
        Period {
            start_s: t - 5400,
            end_s: t - 1800
        }
    );
    let utc_plus_one = periods(Per::Hour, 1, t + 1799, &plus_one());
    assert_eq!(utc_plus_one[0].start_s, t);
}

fn rate_archive(step_s: i64, first_end: i64, rates: &[Option<f64>]) -> Archive {
    Archive {
        step_s,
        rows: rates
            .iter()
            .enumerate()
            .map(|(i, r)| (first_end + i as i64 * step_s, *r))
            .collect(),
    }
}

#[test]
fn a_finer_archive_wins_from_the_first_coarser_boundary_it_reaches() {
    // 2025-12-03 00:00 UTC: where daily rows end.
    let d = 1_764_720_000;
    // Hours from 19:00 the day before to 03:00 (1 unit/s); days before
    // (0.5 units/s).
    let fine = rate_archive(3600, d - 4 * 3600, &[Some(1.0); 8]);
    let coarse = rate_archive(86_400, d - 86_400, &[Some(0.5), Some(0.5)]);
    let p = pieces(Stored::Rate, &[fine, coarse]);
    // The day row ending at midnight whole, the hours after it: no row cut.
    assert_eq!(p.len(), 2 + 3, "{p:?}");
    assert_eq!(
        p[1],
        Piece {
            start_s: d - 86_400,
            end_s: d,
            amount: Some(0.5 * 86_400.0)
        }
    );
    assert_eq!(p[2].start_s, d);
    for pair in p.windows(2) {
        assert_eq!(pair[0].end_s, pair[1].start_s, "no gap, no overlap");
    }
    let total: f64 = p.iter().filter_map(|p| p.amount).sum();
    assert_eq!(total, 86_400.0 + 3.0 * 3600.0);
}

#[test]
fn a_day_bar_is_the_sum_of_its_hours_and_a_piece_across_midnight_is_shared_by_time() {
    let zone = plus_one();
    // 26 hours from 23:00 the day before, 1 unit/s; one unknown hour.
    let mut rates = vec![Some(1.0); 26];
    rates[5] = None;
    let archive = rate_archive(3600, MIDNIGHT, &rates);
    let p = pieces(Stored::Rate, &[archive]);
    let days = periods(Per::Day, 2, MIDNIGHT + 3600, &zone);
    let b = bars(&p, &days, None, &zone);
    assert_eq!(b[0].amount, 3600.0, "the hour before midnight");
    assert_eq!(b[1].amount, 23.0 * 3600.0, "24 hours, one unknown");
    assert_eq!(b[1].known_s, 23 * 3600);
    assert!(b[1].cost.is_none());
    // A 6 h piece across midnight: shared 2 h / 4 h.
    let across = [Piece {
        start_s: MIDNIGHT - 7200,
        end_s: MIDNIGHT + 4 * 3600,
        amount: Some(60.0),
    }];
    let b = bars(&across, &days, None, &zone);
    assert_eq!((b[0].amount, b[1].amount), (20.0, 40.0));
}

#[test]
fn readings_count_their_rises_and_a_reset_counts_nothing() {
    // Hourly readings of a kWh meter replaced at the fourth row.
    let archive = Archive {
        step_s: 3600,
        rows: vec![
            (MIDNIGHT + 3600, Some(100.0)),
            (MIDNIGHT + 7200, Some(101.5)),
            (MIDNIGHT + 10_800, None),
            (MIDNIGHT + 14_400, Some(0.2)),
            (MIDNIGHT + 18_000, Some(1.2)),
        ],
    };
    let p = pieces(Stored::Readings, &[archive]);
    let amounts: Vec<f64> = p.iter().filter_map(|p| p.amount).collect();
    assert_eq!(amounts, [1.5, 0.0, 1.0]);
    assert!(amounts.iter().all(|a| *a >= 0.0), "never negative");
    // Each from one row's middle to the next known one's.
    assert_eq!(p[1].start_s, MIDNIGHT + 5400);
    assert_eq!(p[1].end_s, MIDNIGHT + 12_600);
}

#[test]
fn costs_follow_the_tariff_of_each_hour() {
    let zone = plus_one();
    let all = [
        Tariff {
            name: "day".into(),
            unit: "kWh".into(),
            price: 0.30,
            period: None,
        },
        Tariff {
            name: "night".into(),
            unit: "kWh".into(),
            price: 0.20,
            period: Some(TariffPeriod {
                from_min: 23 * 60,
                to_min: 7 * 60,
            }),
        },
    ];
    let tariffs = Tariffs::for_unit(&all, "€", "kWh").unwrap();
    // A Wh meter at 1000 Wh per hour (1 kW) for a whole local day.
    let archive = rate_archive(3600, MIDNIGHT + 3600, &[Some(1000.0 / 3600.0); 24]);
    let p = pieces(Stored::Rate, &[archive]);
    let day = periods(Per::Day, 1, MIDNIGHT + 60, &zone);
    let b = bars(&p, &day, Some((&tariffs, 0.001)), &zone);
    assert!((b[0].amount - 24_000.0).abs() < 1e-6);
    let cost = b[0].cost.unwrap();
    assert!((cost - (8.0 * 0.20 + 16.0 * 0.30)).abs() < 1e-9, "{cost}");
}

#[test]
fn what_a_file_lacks_is_said() {
    let default = [(60, 1440), (300, 2016), (3600, 1488), (86_400, 1827)];
    assert!(lacking(&default).is_empty());
    let munin_like = [(300, 600), (1800, 700), (7200, 775), (86_400, 400)];
    let said = lacking(&munin_like);
    assert_eq!(said.len(), 2, "{said:?}");
}

/// Berlin in spring 2026, enough of it: UTC+1 until 2026-03-29 01:00 UTC,
/// UTC+2 after (summer time: the local clock skips 02:00–03:00).
#[derive(Debug, Clone, Copy)]
struct SpringBerlin;

const SUMMER_FROM: i64 = 1_774_746_000;

impl SpringBerlin {
    fn offset_at(utc_s: i64) -> FixedOffset {
        FixedOffset::east_opt(if utc_s < SUMMER_FROM { 3600 } else { 7200 }).unwrap()
    }
}

impl chrono::TimeZone for SpringBerlin {
    type Offset = FixedOffset;

    fn from_offset(_: &FixedOffset) -> Self {
        SpringBerlin
    }

    fn offset_from_local_date(
        &self,
        local: &chrono::NaiveDate,
    ) -> chrono::LocalResult<FixedOffset> {
        self.offset_from_local_datetime(&local.and_hms_opt(0, 0, 0).unwrap())
    }

    fn offset_from_local_datetime(
        &self,
        local: &chrono::NaiveDateTime,
    ) -> chrono::LocalResult<FixedOffset> {
        let wall = local.and_utc().timestamp();
        let winter = FixedOffset::east_opt(3600).unwrap();
        let summer = FixedOffset::east_opt(7200).unwrap();
        match (wall - 3600 < SUMMER_FROM, wall - 7200 >= SUMMER_FROM) {
            (true, false) => chrono::LocalResult::Single(winter),
            (false, true) => chrono::LocalResult::Single(summer),
            // 02:00–03:00 on the day of the change: no such local time.
            _ => chrono::LocalResult::None,
        }
    }

    fn offset_from_utc_date(&self, utc: &chrono::NaiveDate) -> FixedOffset {
        Self::offset_at(utc.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp())
    }

    fn offset_from_utc_datetime(&self, utc: &chrono::NaiveDateTime) -> FixedOffset {
        Self::offset_at(utc.and_utc().timestamp())
    }
}

#[test]
fn the_day_summer_time_starts_has_23_hours_and_its_hours_are_23_bars() {
    // 2026-03-29 00:00 +01:00, and the next midnight, 2026-03-30 00:00 +02:00.
    let (start, end) = (1_774_738_800, 1_774_821_600);
    let days = periods(Per::Day, 2, end + 3600, &SpringBerlin);
    assert_eq!(
        days[0],
        Period {
            start_s: start,
            end_s: end
        }
    );
    assert_eq!(days[0].end_s - days[0].start_s, 23 * 3600);
    let hours = periods(Per::Hour, 24, end - 1, &SpringBerlin);
    let in_the_day: Vec<&Period> = hours.iter().filter(|h| h.start_s >= start).collect();
    assert_eq!(in_the_day.len(), 23);
    // A day of 1 unit a second counts 23 hours' worth.
    let archive = rate_archive(3600, start + 3600, &[Some(1.0); 23]);
    let b = bars(
        &pieces(Stored::Rate, &[archive]),
        &days,
        None,
        &SpringBerlin,
    );
    assert_eq!(b[0].amount, 23.0 * 3600.0);
    assert_eq!(b[0].known_s, 23 * 3600);
    // March is 31 days less an hour.
    let months = periods(Per::Month, 1, start, &SpringBerlin);
    assert_eq!(months[0].end_s - months[0].start_s, 31 * 86_400 - 3600);
}
