//! Meters: series that count an accumulated quantity (energy in Wh or kWh,
//! gas or water in m³ or litres), and how people read them: as a flow
//! (power in W or kW, m³ per hour) and as consumption per hour, day and
//! month, with its cost.
//!
//! A meter is stored as librrd stores a counter (DDERIVE, minimum 0): a
//! rate per second, which is right for an RRD and wrong for a person. Every
//! conversion for people is here, in one place, and read by the graph and
//! export definitions: the stored data stays the counter's rate.
//!
//! Files made before a family's field was known as a counter keep its
//! readings as a gauge; their consumption is read from the readings'
//! differences ([`Stored::Readings`]), and they are drawn as readings.
//!
//! Pure: the periods, the bars and the tariffs are computed here from what
//! librrd exported (`periods.rs`, `tariff.rs`), and tested without I/O.

mod periods;
mod tariff;

#[cfg(test)]
pub use periods::Period;
pub use periods::{Archive, Bar, Per, bars, lacking, periods, pieces};
pub use tariff::{Tariff, TariffPeriod, Tariffs, covers_the_day};

use crate::model::DsType;

/// Seconds per hour: a counter's rate per second times this is its flow
/// per hour (Wh/s × 3600 = W).
pub const PER_HOUR: f64 = 3600.0;

/// A counter of a unit people count in, and what that unit's flow is.
struct Counted {
    unit: &'static str,
    flow: &'static str,
    /// The fastest believable rate, per second: a whole house's
    /// connection (100 kW), a gas or water main. A step faster than this
    /// is a glitch (a counter that read nonsense once) and is stored
    /// unknown rather than drawn as a spike.
    max_per_second: f64,
    /// How many of the price unit one of this unit is (`Wh` is 0.001 of a
    /// `kWh`), and the price unit.
    price_unit: &'static str,
    in_price_unit: f64,
}

/// 100 kW: above any home's connection (3 × 63 A at 230 V is 43 kW).
const MAX_WATTS: f64 = 100_000.0;

const COUNTED: &[Counted] = &[
    Counted {
        unit: "Wh",
        flow: "W",
        max_per_second: MAX_WATTS / PER_HOUR,
        price_unit: "kWh",
        in_price_unit: 0.001,
    },
    Counted {
        unit: "kWh",
        flow: "kW",
        max_per_second: MAX_WATTS / 1000.0 / PER_HOUR,
        price_unit: "kWh",
        in_price_unit: 1.0,
    },
    Counted {
        unit: "MWh",
        flow: "MW",
        max_per_second: MAX_WATTS / 1e6 / PER_HOUR,
        price_unit: "kWh",
        in_price_unit: 1000.0,
    },
    // Gas and water: 40 m³ an hour is far beyond a house's meter.
    Counted {
        unit: "m³",
        flow: "m³/h",
        max_per_second: 40.0 / PER_HOUR,
        price_unit: "m³",
        in_price_unit: 1.0,
    },
    Counted {
        unit: "m3",
        flow: "m³/h",
        max_per_second: 40.0 / PER_HOUR,
        price_unit: "m³",
        in_price_unit: 1.0,
    },
    Counted {
        unit: "L",
        flow: "L/h",
        max_per_second: 40_000.0 / PER_HOUR,
        price_unit: "m³",
        in_price_unit: 0.001,
    },
    Counted {
        unit: "l",
        flow: "L/h",
        max_per_second: 40_000.0 / PER_HOUR,
        price_unit: "m³",
        in_price_unit: 0.001,
    },
    Counted {
        unit: "ft³",
        flow: "ft³/h",
        max_per_second: 1500.0 / PER_HOUR,
        price_unit: "ft³",
        in_price_unit: 1.0,
    },
    Counted {
        unit: "gal",
        flow: "gal/h",
        max_per_second: 10_000.0 / PER_HOUR,
        price_unit: "gal",
        in_price_unit: 1.0,
    },
];

fn counted(unit: &str) -> Option<&'static Counted> {
    COUNTED.iter().find(|c| c.unit == unit)
}

/// Whether a series in `unit` is a quantity people count (energy, gas,
/// water), whose counter becomes a flow and consumption.
pub fn is_counted_unit(unit: &str) -> bool {
    counted(unit).is_some()
}

/// Whether tariffs can be priced per `unit`: a unit meters' amounts are
/// converted to (`Wh` counters are priced per `kWh`).
pub fn is_price_unit(unit: &str) -> bool {
    COUNTED.iter().any(|c| c.price_unit == unit)
}

/// The largest believable rate per second of a counter in `unit`: its
/// DS's `max`, so that one absurd reading is stored unknown.
pub fn counter_max(unit: &str) -> Option<f64> {
    counted(unit).map(|c| c.max_per_second)
}

/// How a meter's file holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// As a counter (DDERIVE and kin): librrd keeps the rate per second.
    Rate,
    /// As a gauge of the counter's readings (a file made before its
    /// series was known as a counter): consumption is their difference.
    Readings,
}

/// A series that counts a quantity, as people read it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Meter {
    /// The counter's unit (`kWh`).
    pub unit: &'static str,
    /// Its flow's unit (`kW`).
    pub flow_unit: &'static str,
    pub stored: Stored,
    /// The unit prices are said in (`kWh`, `m³`), and how many of it one
    /// of `unit` is.
    pub price_unit: &'static str,
    pub in_price_unit: f64,
}

impl Meter {
    /// The meter a DS is, if any: a counted unit, stored as a counter, or
    /// as a gauge of readings when its family says it counts.
    pub fn of(unit: Option<&str>, stored: DsType, family_counter: bool) -> Option<Meter> {
        let c = counted(unit?)?;
        let stored = match stored {
            DsType::Gauge if family_counter => Stored::Readings,
            DsType::Gauge => return None,
            _ => Stored::Rate,
        };
        Some(Meter {
            unit: c.unit,
            flow_unit: c.flow,
            stored,
            price_unit: c.price_unit,
            in_price_unit: c.in_price_unit,
        })
    }

    /// The unit consumption is said in, and what one of the meter's unit
    /// is in it: a day of a Wh counter reads better as 1.6 kWh than as
    /// 1593 Wh (as Home Assistant's energy view says it).
    pub fn shown(&self) -> (&'static str, f64) {
        match self.unit {
            "Wh" => ("kWh", 0.001),
            unit => (unit, 1.0),
        }
    }

    /// What its flow is called beside its name: power for energy, flow
    /// for gas and water.
    pub fn flow_word(&self) -> &'static str {
        if self.price_unit == "kWh" {
            "power"
        } else {
            "flow"
        }
    }

    /// What the stored values are multiplied by to be drawn, and the unit
    /// they are then in: a rate per second becomes a flow per hour; a
    /// gauge of readings is drawn as it is.
    pub fn drawn(&self) -> Option<(f64, &'static str)> {
        match self.stored {
            Stored::Rate => Some((PER_HOUR, self.flow_unit)),
            Stored::Readings => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_of_energy_and_volume_are_drawn_as_flows_per_hour() {
        let wh = Meter::of(Some("Wh"), DsType::Dderive, false).unwrap();
        assert_eq!(wh.drawn(), Some((3600.0, "W")));
        // 1 Wh a second is 3.6 kW: 3600 W.
        assert_eq!(1.0 * wh.drawn().unwrap().0, 3600.0);
        let kwh = Meter::of(Some("kWh"), DsType::Derive, false).unwrap();
        assert_eq!(kwh.drawn(), Some((3600.0, "kW")));
        assert_eq!(kwh.in_price_unit, 1.0);
        assert_eq!(wh.in_price_unit, 0.001);
        let gas = Meter::of(Some("m³"), DsType::Counter, false).unwrap();
        assert_eq!(gas.drawn(), Some((3600.0, "m³/h")));
        assert_eq!((wh.flow_word(), gas.flow_word()), ("power", "flow"));
        let water = Meter::of(Some("L"), DsType::Dderive, false).unwrap();
        assert_eq!((water.flow_unit, water.price_unit), ("L/h", "m³"));
    }

    #[test]
    fn gauges_are_meters_only_when_their_family_says_they_count() {
        assert_eq!(Meter::of(Some("kWh"), DsType::Gauge, false), None);
        let readings = Meter::of(Some("kWh"), DsType::Gauge, true).unwrap();
        assert_eq!(readings.stored, Stored::Readings);
        assert_eq!(readings.drawn(), None, "readings are drawn as they are");
        // Rates in other units are not meters: bytes, packets, °C.
        for unit in [Some("B/s"), Some("bit/s"), Some("°C"), None] {
            assert_eq!(Meter::of(unit, DsType::Dderive, true), None, "{unit:?}");
        }
    }

    #[test]
    fn the_largest_believable_rate_is_a_house_connection() {
        // 100 kW in Wh per second, and in kWh per second.
        assert!((counter_max("Wh").unwrap() - 27.78).abs() < 0.01);
        assert!((counter_max("kWh").unwrap() * 3600.0 - 100.0).abs() < 1e-9);
        assert_eq!(counter_max("°C"), None);
    }
}
