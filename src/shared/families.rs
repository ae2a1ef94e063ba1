//! What the payload families we decode say about their series beyond the
//! values: which topic levels name the device (a Shelly is one device, a
//! Tasmota device is `tele/<name>`, an ESPHome node is its first level),
//! the units of their well-known fields, and which fields are on/off
//! states. Pure tables. Home Assistant
//! discovery and `[[rule]]`s override them; a field not listed here gets
//! nothing from them.

/// What a family says of one series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Known {
    pub unit: Option<&'static str>,
    /// Home Assistant's `device_class` where it has one for the field.
    pub device_class: Option<&'static str>,
    /// An on/off state (1 on, 0 off).
    pub binary: bool,
    /// A meter's counter (energy since it was installed): stored as a
    /// counter, read as power and consumption (`energy`).
    pub counter: bool,
}

const fn unit(unit: &'static str) -> Known {
    Known {
        unit: Some(unit),
        device_class: None,
        binary: false,
        counter: false,
    }
}

const fn measured(unit: &'static str, device_class: &'static str) -> Known {
    Known {
        unit: Some(unit),
        device_class: Some(device_class),
        binary: false,
        counter: false,
    }
}

/// A counter that only grows (until the device is reset or replaced).
const fn counted(unit: &'static str) -> Known {
    Known {
        unit: Some(unit),
        device_class: Some("energy"),
        binary: false,
        counter: true,
    }
}

const fn state(device_class: &'static str) -> Known {
    Known {
        unit: None,
        device_class: Some(device_class),
        binary: true,
        counter: false,
    }
}

/// A power factor: no unit.
const POWER_FACTOR: Known = Known {
    unit: None,
    device_class: Some("power_factor"),
    binary: false,
    counter: false,
};

/// zigbee2mqtt's common fields (its "exposes"), as its devices publish them
/// under `zigbee2mqtt/<device>/<field>`. A battery device's `voltage` is
/// in millivolts; a plug's, in volts, comes with Home Assistant discovery
/// (zigbee2mqtt publishes it by default), which wins.
const ZIGBEE2MQTT: &[(&str, Known)] = &[
    ("temperature", measured("°C", "temperature")),
    ("local_temperature", measured("°C", "temperature")),
    ("humidity", measured("%", "humidity")),
    ("soil_moisture", measured("%", "moisture")),
    ("pressure", measured("hPa", "pressure")),
    ("battery", measured("%", "battery")),
    ("voltage", measured("mV", "voltage")),
    ("linkquality", unit("lqi")),
    ("illuminance", unit("lx")),
    ("illuminance_lux", measured("lx", "illuminance")),
    ("co2", measured("ppm", "carbon_dioxide")),
    ("voc", measured("ppb", "volatile_organic_compounds_parts")),
    ("pm25", measured("µg/m³", "pm25")),
    ("power", measured("W", "power")),
    ("energy", counted("kWh")),
    ("current", measured("A", "current")),
    ("occupancy", state("occupancy")),
    ("presence", state("presence")),
    ("contact", state("contact")),
    ("water_leak", state("moisture")),
    ("smoke", state("smoke")),
    ("gas", state("gas")),
    ("carbon_monoxide", state("carbon_monoxide")),
    ("tamper", state("tamper")),
    ("battery_low", state("battery")),
    ("vibration", state("vibration")),
    ("state", state("power")),
    ("update_available", state("update")),
];

/// Tasmota's `tele/<device>/SENSOR` (`ENERGY` and sensors' readings) and
/// `STATE`, and `stat/<device>/POWER`.
const TASMOTA: &[(&str, Known)] = &[
    // `Today` and `Yesterday` restart every day: levels, not counters.
    ("Total", counted("kWh")),
    ("Yesterday", measured("kWh", "energy")),
    ("Today", measured("kWh", "energy")),
    ("Power", measured("W", "power")),
    ("ApparentPower", measured("VA", "apparent_power")),
    ("ReactivePower", measured("var", "reactive_power")),
    ("Factor", POWER_FACTOR),
    ("Voltage", measured("V", "voltage")),
    ("Current", measured("A", "current")),
    ("Temperature", measured("°C", "temperature")),
    ("DewPoint", measured("°C", "temperature")),
    ("Humidity", measured("%", "humidity")),
    ("Pressure", measured("hPa", "pressure")),
    ("Illuminance", measured("lx", "illuminance")),
    ("RSSI", unit("%")),
    ("Signal", measured("dBm", "signal_strength")),
    ("POWER", state("power")),
    ("POWER1", state("power")),
    ("POWER2", state("power")),
];

/// Shelly Gen1 (`shellies/<id>/relay/<n>/…`, `emeter/<n>/…`): energy
/// counters arrive in watt-minutes and are stored in Wh.
const SHELLY_GEN1: &[(&str, Known)] = &[
    ("power", measured("W", "power")),
    ("energy", counted("Wh")),
    ("total", counted("Wh")),
    ("total_returned", counted("Wh")),
    ("returned_energy", counted("Wh")),
    ("reactive_power", measured("var", "reactive_power")),
    ("voltage", measured("V", "voltage")),
    ("current", measured("A", "current")),
    ("pf", POWER_FACTOR),
    ("temperature", measured("°C", "temperature")),
];

/// Shelly Gen2 (`<device>/status/<component>:<n>/…`).
const SHELLY_GEN2: &[(&str, Known)] = &[
    ("apower", measured("W", "power")),
    ("voltage", measured("V", "voltage")),
    ("current", measured("A", "current")),
    ("freq", measured("Hz", "frequency")),
    ("pf", POWER_FACTOR),
    ("total", counted("Wh")),
    ("tC", measured("°C", "temperature")),
    ("tF", measured("°F", "temperature")),
    ("output", state("power")),
];

/// What the series' family says of it; nothing for a series of no family
/// we know, or a field we do not list.
pub fn known(series: &str) -> Known {
    let levels: Vec<&str> = series.split('/').collect();
    let last = levels.last().copied().unwrap_or("");
    let table = match levels.first().copied().unwrap_or("") {
        "zigbee2mqtt" if levels.len() >= 3 => ZIGBEE2MQTT,
        "tele" | "stat" if levels.len() >= 3 => TASMOTA,
        // `shellies/<id>/relay/<n>` itself: the relay's on/off.
        "shellies" if levels.len() == 4 && matches!(levels[2], "relay" | "light") => {
            return state("power");
        }
        "shellies" => SHELLY_GEN1,
        _ if shelly_gen2_device_levels(series).is_some() => SHELLY_GEN2,
        _ if esphome_device_levels(series).is_some() => {
            return Known {
                binary: ESPHOME_STATES.contains(&levels[1]),
                ..Known::default()
            };
        }
        _ => return Known::default(),
    };
    table
        .iter()
        .find(|(field, _)| *field == last)
        .map(|(_, k)| *k)
        .unwrap_or_default()
}

/// How many leading levels of a series (or of its file's path, which keeps
/// one segment per level) name its device: the family's own layout where
/// we know it, else every level but the last (the file's directory).
pub fn device_levels(series: &str) -> usize {
    // Called for every file of the index at each page: no allocation.
    let n = series.bytes().filter(|&b| b == b'/').count() + 1;
    let mut levels = series.split('/');
    let first = levels.next().unwrap_or("");
    let second = levels.next().unwrap_or("");
    match first {
        "homie" if second == "5" && n >= 4 => 3,
        "tele" | "stat" | "shellies" | "homie" if n >= 3 => 2,
        // The host, as Munin and collectd's own pages group (poll jobs'
        // default prefixes are `munin/<host>` and `prometheus/<host>`).
        "collectd" | "munin" | "prometheus" | "ping" | "snmp" if n >= 3 => 2,
        _ => shelly_gen2_device_levels(series)
            .or_else(|| esphome_device_levels(series))
            .unwrap_or(n - 1),
    }
}

/// `<device…>/status/<component>:<n>/…` (Shelly Gen2): the levels before
/// `status`. The `:` is escaped in file paths (`.3A`).
fn shelly_gen2_device_levels(series: &str) -> Option<usize> {
    let mut levels = series.split('/').enumerate();
    let (at, _) = levels.find(|(_, l)| *l == "status")?;
    let (_, component) = levels.next()?;
    (at > 0 && (component.contains(':') || component.contains(".3A"))).then_some(at)
}

/// The levels that name a series within its device: those below the
/// device's, without the family's fixed words (Tasmota's `SENSOR` and
/// `STATE`, Shelly Gen2's `status`, ESPHome's component and `state`).
pub fn field_levels(series: &str) -> Vec<&str> {
    if esphome_device_levels(series).is_some() {
        return series.split('/').skip(2).take(1).collect();
    }
    series
        .split('/')
        .skip(device_levels(series))
        .filter(|l| !matches!(*l, "SENSOR" | "STATE" | "status"))
        .collect()
}

/// ESPHome's components, as its MQTT topics name them.
const ESPHOME_COMPONENTS: &[&str] = &[
    "sensor",
    "binary_sensor",
    "switch",
    "light",
    "fan",
    "lock",
    "number",
    "cover",
    "climate",
];
/// Those whose state is on/off.
const ESPHOME_STATES: &[&str] = &["binary_sensor", "switch", "light", "fan", "lock"];

/// `<node>/<component>/<object_id>/state` (ESPHome): the node, one level.
fn esphome_device_levels(series: &str) -> Option<usize> {
    let mut levels = series.split('/').skip(1);
    let (component, _object, state) = (levels.next()?, levels.next()?, levels.next()?);
    (levels.next().is_none() && state == "state" && ESPHOME_COMPONENTS.contains(&component))
        .then_some(1)
}

/// The words a binary state's two values are said with, by its device
/// class (Home Assistant's): `(on, off)`.
pub fn state_words(device_class: Option<&str>) -> (&'static str, &'static str) {
    match device_class.unwrap_or("") {
        "occupancy" | "motion" | "presence" | "moving" | "smoke" | "gas" | "carbon_monoxide"
        | "sound" | "vibration" | "tamper" | "safety" => ("Detected", "Clear"),
        "door" | "window" | "opening" | "garage_door" => ("Open", "Closed"),
        // zigbee2mqtt's `contact`: true while the contact is made.
        "contact" => ("Closed", "Open"),
        "moisture" => ("Wet", "Dry"),
        "battery" => ("Low", "Normal"),
        "connectivity" => ("Connected", "Disconnected"),
        "problem" => ("Problem", "OK"),
        "lock" => ("Unlocked", "Locked"),
        "update" => ("Update available", "Up to date"),
        "running" => ("Running", "Not running"),
        _ => ("On", "Off"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_name_their_devices() {
        for (series, device) in [
            ("tele/plug1/SENSOR/ENERGY/Power", "tele/plug1"),
            ("stat/plug1/POWER", "stat/plug1"),
            (
                "shellies/shellyplug-s-7A3B/relay/0/power",
                "shellies/shellyplug-s-7A3B",
            ),
            (
                "shellies/shellyplug-s-7A3B/relay/0",
                "shellies/shellyplug-s-7A3B",
            ),
            (
                "shellyplus1pm-a8032ab1/status/switch:0/apower",
                "shellyplus1pm-a8032ab1",
            ),
            (
                "shellyplus1pm-a8032ab1/status/switch.3A0/apower",
                "shellyplus1pm-a8032ab1",
            ),
            (
                "homie/weather-station/outdoor/temperature",
                "homie/weather-station",
            ),
            ("homie/5/station/outdoor/temperature", "homie/5/station"),
            ("collectd/pi4/load/load", "collectd/pi4"),
            ("garage-node/sensor/temperature/state", "garage-node"),
            ("garage-node/binary_sensor/motion/state", "garage-node"),
            ("garage-node/sensor/temperature", "garage-node/sensor"),
            ("zigbee2mqtt/hall/occupancy", "zigbee2mqtt/hall"),
            ("home/kitchen/temperature", "home/kitchen"),
            ("solo", ""),
        ] {
            let levels = device_levels(series);
            let got: Vec<&str> = series.split('/').take(levels).collect();
            assert_eq!(got.join("/"), device, "{series}");
        }
    }

    #[test]
    fn well_known_fields_have_units_and_states() {
        assert_eq!(known("tele/plug1/SENSOR/ENERGY/Voltage").unit, Some("V"));
        assert_eq!(known("tele/plug1/SENSOR/ENERGY/Total").unit, Some("kWh"));
        assert_eq!(known("zigbee2mqtt/hall/battery").unit, Some("%"));
        assert_eq!(known("zigbee2mqtt/hall/voltage").unit, Some("mV"));
        assert!(known("zigbee2mqtt/hall/occupancy").binary);
        assert!(known("shellies/plug/relay/0").binary);
        assert_eq!(known("shellies/plug/relay/0/energy").unit, Some("Wh"));
        assert!(known("shellyplus1pm-a/status/switch:0/output").binary);
        assert_eq!(known("home/kitchen/temperature"), Known::default());
        assert!(known("garage-node/binary_sensor/motion/state").binary);
        assert_eq!(
            field_levels("garage-node/sensor/temperature/state"),
            ["temperature"]
        );
        assert_eq!(
            field_levels("tele/plug1/SENSOR/ENERGY/Power"),
            ["ENERGY", "Power"]
        );
        assert!(!known("garage-node/sensor/temperature/state").binary);
        assert_eq!(state_words(Some("occupancy")), ("Detected", "Clear"));
        assert_eq!(state_words(None), ("On", "Off"));
    }
}
