//! Prices per unit, by local time of day (`[[energy.tariff]]`): a day
//! rate and a night rate, or one price all day.

use chrono::{DateTime, TimeZone, Timelike};

/// A local time-of-day range, in minutes after midnight: `from` included,
/// `to` excluded; `to` before `from` runs over midnight (23:00–07:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TariffPeriod {
    pub from_min: u32,
    pub to_min: u32,
}

impl TariffPeriod {
    pub fn contains(&self, minute: u32) -> bool {
        if self.from_min <= self.to_min {
            (self.from_min..self.to_min).contains(&minute)
        } else {
            minute >= self.from_min || minute < self.to_min
        }
    }
}

/// One price: per `unit` (`kWh`, `m³`), in `period` or all day.
#[derive(Debug, Clone, PartialEq)]
pub struct Tariff {
    pub name: String,
    pub unit: String,
    pub price: f64,
    pub period: Option<TariffPeriod>,
}

/// The tariffs of one unit, and the currency they are said in. Validation
/// (`config`) makes sure that every minute of the day has a price.
#[derive(Debug, Clone, PartialEq)]
pub struct Tariffs {
    pub currency: String,
    pub unit: String,
    list: Vec<Tariff>,
}

/// Prices are averaged over a piece of time at this spacing: a day's row
/// of an old archive gets the day's mean of a day and a night rate.
const SAMPLE_S: i64 = 15 * 60;

impl Tariffs {
    /// The tariffs for `unit`, if any is configured.
    pub fn for_unit(all: &[Tariff], currency: &str, unit: &str) -> Option<Tariffs> {
        let list: Vec<Tariff> = all.iter().filter(|t| t.unit == unit).cloned().collect();
        (!list.is_empty()).then(|| Tariffs {
            currency: currency.to_owned(),
            unit: unit.to_owned(),
            list,
        })
    }

    /// The price at local minute-of-day `minute`: a period's that holds it,
    /// else the all-day one.
    pub fn price_at_minute(&self, minute: u32) -> f64 {
        self.list
            .iter()
            .find(|t| t.period.is_some_and(|p| p.contains(minute)))
            .or_else(|| self.list.iter().find(|t| t.period.is_none()))
            .map_or(0.0, |t| t.price)
    }

    fn price_at<Tz: TimeZone>(&self, t_s: i64, zone: &Tz) -> f64 {
        let local = DateTime::from_timestamp(t_s, 0)
            .unwrap_or_default()
            .with_timezone(zone);
        self.price_at_minute(local.hour() * 60 + local.minute())
    }

    /// The mean price over `(from_s, to_s]`: at its middle when it is
    /// short, else sampled every quarter hour.
    pub fn mean_price<Tz: TimeZone>(&self, from_s: i64, to_s: i64, zone: &Tz) -> f64 {
        let length = to_s - from_s;
        if length <= SAMPLE_S {
            return self.price_at(from_s + length / 2, zone);
        }
        let samples = length / SAMPLE_S;
        let sum: f64 = (0..samples)
            .map(|i| self.price_at(from_s + i * SAMPLE_S + SAMPLE_S / 2, zone))
            .sum();
        sum / samples as f64
    }
}

/// Whether every minute of a day has a price among `tariffs` (of one unit).
pub fn covers_the_day(tariffs: &[&Tariff]) -> bool {
    tariffs.iter().any(|t| t.period.is_none())
        || (0..1440).all(|m| {
            tariffs
                .iter()
                .any(|t| t.period.is_some_and(|p| p.contains(m)))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    fn tariff(price: f64, period: Option<(u32, u32)>) -> Tariff {
        Tariff {
            name: format!("{price}"),
            unit: "kWh".into(),
            price,
            period: period.map(|(from_min, to_min)| TariffPeriod { from_min, to_min }),
        }
    }

    #[test]
    fn a_night_rate_runs_over_midnight_and_the_day_rate_fills_the_rest() {
        let all = [tariff(0.30, None), tariff(0.20, Some((23 * 60, 7 * 60)))];
        let t = Tariffs::for_unit(&all, "€", "kWh").unwrap();
        assert_eq!(t.price_at_minute(23 * 60), 0.20);
        assert_eq!(t.price_at_minute(3 * 60), 0.20);
        assert_eq!(t.price_at_minute(7 * 60), 0.30);
        assert_eq!(t.price_at_minute(12 * 60), 0.30);
        assert!(Tariffs::for_unit(&all, "€", "m³").is_none());
        // A whole local day (UTC+1): 8 hours at night, 16 by day.
        let zone = FixedOffset::east_opt(3600).unwrap();
        let midnight = 1_764_716_400; // 2025-12-03 00:00 +01:00
        let mean = t.mean_price(midnight, midnight + 86_400, &zone);
        assert!((mean - (8.0 * 0.20 + 16.0 * 0.30) / 24.0).abs() < 1e-12);
        // An hour: its middle's price.
        assert_eq!(t.mean_price(midnight, midnight + 3600, &zone), 0.20);
    }

    #[test]
    fn periods_alone_must_cover_the_day() {
        let day = tariff(0.30, Some((7 * 60, 23 * 60)));
        let night = tariff(0.20, Some((23 * 60, 7 * 60)));
        assert!(covers_the_day(&[&day, &night]));
        assert!(!covers_the_day(&[&day]));
        assert!(covers_the_day(&[&tariff(0.3, None)]));
    }
}
