//! Which family a message belongs to, from its topic alone: what is not
//! data (availability, bridge state, discovery, attributes), which formats
//! need their own decoder (collectd, janitoo, Shelly's watt-minutes and RPC
//! notifications), and which JSON keys of a family are times, not values.
//! Pure.

use smallvec::SmallVec;

/// A JSON key holding the sample time. `strict`: a value that is not a
/// time refuses the message (`ts`, `timestamp`); otherwise it is ignored
/// and the receive time used (Tasmota's `Time` has no zone unless the
/// device is told to add one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TimeKey {
    pub name: &'static str,
    pub strict: bool,
}

/// How a family's JSON objects are read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ObjectRules {
    /// Top-level keys giving the sample time; never series themselves.
    pub time_keys: &'static [TimeKey],
    /// Keys skipped at any depth: numbers that are not measurements.
    pub skip_keys: &'static [&'static str],
}

const STRICT_TS: [TimeKey; 2] = [
    TimeKey {
        name: "ts",
        strict: true,
    },
    TimeKey {
        name: "timestamp",
        strict: true,
    },
];

pub(crate) const GENERIC: ObjectRules = ObjectRules {
    time_keys: &STRICT_TS,
    skip_keys: &[],
};

/// zigbee2mqtt: `last_seen` (when enabled) is ISO 8601 with an offset, or
/// epoch milliseconds.
const ZIGBEE2MQTT: ObjectRules = ObjectRules {
    time_keys: &[TimeKey {
        name: "last_seen",
        strict: false,
    }],
    skip_keys: &[],
};

/// Tasmota `tele/<device>/SENSOR|STATE`: `Time` is local time, used only
/// when it carries an offset (`SetOption52 1`).
const TASMOTA: ObjectRules = ObjectRules {
    time_keys: &[TimeKey {
        name: "Time",
        strict: false,
    }],
    skip_keys: &["UptimeSec", "TotalStartTime"],
};

/// Shelly Gen2 `status/<component>:<id>`: `minute_ts` is a time stamp of
/// the `by_minute` array, not a reading.
pub(crate) const SHELLY_GEN2: ObjectRules = ObjectRules {
    time_keys: &[],
    skip_keys: &["minute_ts", "id"],
};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Route {
    /// Availability, bridge state, attributes, discovery: acknowledged and
    /// counted as ignored, never refused.
    NotData,
    /// `<time|N>:<v1>[:<v2>…]`
    Collectd,
    /// janitoo value JSON under `/values/…`.
    Janitoo,
    /// A Shelly Gen1 energy counter in watt-minutes: stored in Wh.
    WattMinutes,
    /// Shelly Gen2 `<prefix>/events/rpc`: NotifyStatus carries partial
    /// status under `params`, written to `<prefix>/status/<component>/…`.
    ShellyRpc,
    /// Numbers, boolean words, or JSON read with these rules.
    Generic(ObjectRules),
}

/// Runs for every message: the levels stay inline (no heap allocation)
/// for topics of up to 8 levels.
pub(crate) fn route(topic: &str) -> Route {
    let levels: SmallVec<[&str; 8]> = topic.split('/').collect();
    let last = *levels.last().unwrap_or(&"");
    let at = |i: usize| levels.get(i).copied().unwrap_or("");
    if levels.iter().any(|l| l.starts_with('$')) {
        return Route::NotData; // Homie attributes, broker statistics
    }
    // MQTT forbids an empty topic; one that came anyway names no series.
    if topic.is_empty() {
        return Route::NotData;
    }
    match at(0) {
        "homeassistant" => return Route::NotData,
        "zigbee2mqtt" if at(1) == "bridge" || last == "availability" => return Route::NotData,
        "zigbee2mqtt" => return Route::Generic(ZIGBEE2MQTT),
        "tele" if levels.len() == 3 && (last == "LWT" || last.starts_with("INFO")) => {
            return Route::NotData;
        }
        "tele" if levels.len() == 3 && (last == "SENSOR" || last == "STATE") => {
            return Route::Generic(TASMOTA);
        }
        "cmnd" => return Route::NotData,
        "collectd" => return Route::Collectd,
        "" if at(1) == "values" => return Route::Janitoo,
        "shellies" if last == "announce" || last == "online" || last == "command" => {
            return Route::NotData;
        }
        "shellies"
            if levels.len() == 5
                && ["relay", "roller", "light"].contains(&at(2))
                && last == "energy" =>
        {
            return Route::WattMinutes;
        }
        _ => {}
    }
    let n = levels.len();
    if n >= 3 && levels[n - 2] == "events" && last == "rpc" {
        return Route::ShellyRpc;
    }
    if n >= 3 && levels[n - 2] == "status" && last.contains(':') {
        return Route::Generic(SHELLY_GEN2);
    }
    // ESPHome's and Shelly Gen2's `<node>/status|online`: availability.
    if n == 2 && (last == "status" || last == "online") || last == "availability" || last == "LWT" {
        return Route::NotData;
    }
    Route::Generic(GENERIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_route_to_their_family() {
        for (topic, want) in [
            ("zigbee2mqtt/bridge/state", Route::NotData),
            ("zigbee2mqtt/living_room/availability", Route::NotData),
            ("zigbee2mqtt/living_room", Route::Generic(ZIGBEE2MQTT)),
            ("tele/plug_desk/LWT", Route::NotData),
            ("tele/plug_desk/INFO1", Route::NotData),
            ("tele/plug_desk/SENSOR", Route::Generic(TASMOTA)),
            ("stat/plug_desk/POWER", Route::Generic(GENERIC)),
            ("cmnd/plug_desk/POWER", Route::NotData),
            (
                "shellies/shellyplug-s-7A3B/relay/0/energy",
                Route::WattMinutes,
            ),
            (
                "shellies/shellyem-1/emeter/0/energy",
                Route::Generic(GENERIC),
            ),
            (
                "shellies/shellyplug-s-7A3B/relay/0/power",
                Route::Generic(GENERIC),
            ),
            ("shellies/shellyplug-s-7A3B/online", Route::NotData),
            ("shellies/announce", Route::NotData),
            (
                "shellyplus1pm-a8032ab1/status/switch:0",
                Route::Generic(SHELLY_GEN2),
            ),
            ("shellyplus1pm-a8032ab1/events/rpc", Route::ShellyRpc),
            ("shellyplus1pm-a8032ab1/online", Route::NotData),
            ("livingroom-node/status", Route::NotData),
            (
                "livingroom-node/sensor/temperature/state",
                Route::Generic(GENERIC),
            ),
            (
                "homie/weather-station/outdoor/temperature",
                Route::Generic(GENERIC),
            ),
            (
                "homie/weather-station/outdoor/temperature/$unit",
                Route::NotData,
            ),
            ("homie/weather-station/$state", Route::NotData),
            ("homeassistant/sensor/x/config", Route::NotData),
            ("collectd/pi4/load/load", Route::Collectd),
            ("/values/user/0048/0004/memory_rss", Route::Janitoo),
            ("home/kitchen/temperature", Route::Generic(GENERIC)),
            ("", Route::NotData), // MQTT forbids it; no series
        ] {
            assert_eq!(route(topic), want, "{topic}");
        }
    }
}
