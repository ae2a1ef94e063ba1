//! `datalog-rrd import-janitoo FILE`: a janitoo_datalog_rrd INI config
//! turned into our TOML. Pure: text in, TOML text and what could not be
//! mapped out.
//!
//! - `[system]` broker_ip/port/user/password → `[mqtt]`, subscribed to
//!   janitoo's `/values/#`;
//! - `[datarrd]` `cache_rrd_ttl_0`, `cache_pickle_ttl_0`, `cache_dead_ttl_0`
//!   (seconds) → `cache.flush_after`, `cache.snapshot_every`,
//!   `cache.dead_after`;
//! - `[system]` home_dir → `data_dir = "<home_dir>/public/rrd/rrds"`, where
//!   janitoo keeps its `.rrd` files and its `index.txt` (same `a|b` format
//!   as ours), so that its files are continued, not shadowed by new ones;
//! - each `[datarrd__<name>]` → one `[[file]]` at `rrd_file_0`, with one DS
//!   per `source_config_N = hadd|value_uuid|value_index|rrd_type|rrd_label`
//!   fed by the series our janitoo decoder makes of that value
//!   (`janitoo/<hadd>/<uuid>/<index>`), in a template with janitoo's own
//!   layout for `rrd_step_0`: `--step`, DS `<label>:<type>:<2 × step>:U:U`,
//!   then the AVERAGE, MAX and MIN archives of 1, 12, 144 and 288 steps,
//!   1440 rows each, in that order. Like janitoo, sources are read from
//!   `source_config_0` up to the first missing number; later ones janitoo
//!   never saw, and they are reported, not added (an extra DS would make
//!   the existing file's layout check refuse every write).
//!
//! Everything else (the http resource, node names, loggers) has no
//! equivalent and is listed in the report.

use std::collections::BTreeSet;
use std::fmt::Write;

use ini::{Ini, ParseOption};

use crate::config::is_valid_ds_name;

/// janitoo's default step when a section gives none.
const DEFAULT_STEP: u64 = 300;

#[derive(Debug, Default)]
pub struct Imported {
    pub toml: String,
    /// `section.key: why` for everything not carried over.
    pub not_mapped: Vec<String>,
    pub files: usize,
}

/// A TOML string literal.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

pub fn import(text: &str) -> Result<Imported, String> {
    // Python's ConfigParser, which janitoo used, reads values verbatim.
    let verbatim = ParseOption {
        enabled_quote: false,
        enabled_escape: false,
        ..ParseOption::default()
    };
    let ini =
        Ini::load_from_str_opt(text, verbatim).map_err(|e| format!("not an INI file: {e}"))?;
    let mut importer = Importer::default();
    for (section, props) in ini.iter() {
        match section.unwrap_or("") {
            "system" => importer.system(props),
            "datarrd" => importer.datarrd(props),
            s if s.starts_with("datarrd__") => importer.file(s, props),
            "" => {}
            s => importer
                .out
                .not_mapped
                .push(format!("[{s}]: no equivalent")),
        }
    }
    Ok(importer.finish())
}

/// The TOML's parts as the sections are read.
#[derive(Default)]
struct Importer {
    out: Imported,
    /// `[mqtt]`'s lines after the topics.
    mqtt: String,
    data_dir: Option<String>,
    /// `[cache]`'s lines.
    cache: String,
    /// The steps the files use: a template each.
    steps: BTreeSet<u64>,
    files: String,
}

impl Importer {
    fn unmapped(&mut self, section: &str, key: &str, why: &str) {
        self.out
            .not_mapped
            .push(format!("[{section}] {key}: {why}"));
    }

    /// `[system]`: the broker and its account, and where janitoo ran.
    fn system(&mut self, props: &ini::Properties) {
        let host = props.get("broker_ip").unwrap_or("127.0.0.1");
        let port = props.get("broker_port").unwrap_or("1883");
        let broker = quoted(&format!("mqtt://{host}:{port}"));
        let _ = writeln!(self.mqtt, "broker = {broker}");
        if let Some(user) = props.get("broker_user") {
            let _ = writeln!(self.mqtt, "username = {}", quoted(user));
        }
        if let Some(password) = props.get("broker_password") {
            let _ = writeln!(self.mqtt, "password = {}", quoted(password));
        }
        if let Some(home) = props
            .get("home_dir")
            .map(str::trim)
            .filter(|h| !h.is_empty())
        {
            self.data_dir = Some(format!("{}/public/rrd/rrds", home.trim_end_matches('/')));
        }
        for (k, _) in props.iter() {
            if k != "home_dir" && (!k.starts_with("broker_") || k == "broker_keepalive") {
                self.unmapped("system", k, "no equivalent");
            }
        }
    }

    /// `[datarrd]`: the cache's three timers.
    fn datarrd(&mut self, props: &ini::Properties) {
        for (k, v) in props.iter() {
            let target = match k {
                "cache_rrd_ttl_0" => "flush_after",
                "cache_pickle_ttl_0" => "snapshot_every",
                "cache_dead_ttl_0" => "dead_after",
                _ => {
                    self.unmapped("datarrd", k, "no equivalent");
                    continue;
                }
            };
            match v.trim().parse::<u64>() {
                Ok(secs) => {
                    let _ = writeln!(self.cache, "{target} = \"{secs}s\"");
                }
                Err(_) => self.unmapped("datarrd", k, "not a number of seconds"),
            }
        }
    }

    /// `[datarrd__<name>]`: one file.
    fn file(&mut self, section: &str, props: &ini::Properties) {
        let (file, step) = file_section(section, props, &mut self.out.not_mapped);
        if let Some(file) = file {
            self.files.push_str(&file);
            self.steps.insert(step);
            self.out.files += 1;
        }
    }

    fn finish(mut self) -> Imported {
        let mut toml = String::from(
            "# Converted from a janitoo_datalog_rrd configuration by `datalog-rrd import-janitoo`.\n",
        );
        match &self.data_dir {
            Some(dir) => {
                let _ = write!(
                    toml,
                    "\n# janitoo's files, continued where they are.\ndata_dir = {}\n",
                    quoted(dir)
                );
            }
            None if self.out.files > 0 => self.out.not_mapped.push(
                "[system] home_dir: missing; janitoo kept its files in public/rrd/rrds under the \
                 directory it ran in: set data_dir there"
                    .into(),
            ),
            None => {}
        }
        let _ = write!(toml, "\n[mqtt]\ntopics = [\"/values/#\"]\n{}", self.mqtt);
        if !self.cache.is_empty() {
            let _ = write!(toml, "\n[cache]\n{}", self.cache);
        }
        for step in &self.steps {
            toml.push_str(&template(*step));
        }
        toml.push_str(&self.files);
        self.out.toml = toml;
        self.out
    }
}

/// janitoo's layout for one step, its archives in its order.
fn template(step: u64) -> String {
    let mut t = format!(
        "\n[[template]]\nname = \"janitoo_{step}s\"\ntopics = []\nstep = \"{step}s\"\n\
         heartbeat = \"{}s\"\nhold = \"0s\"\nrra = [\n",
        2 * step
    );
    for cf in ["AVERAGE", "MAX", "MIN"] {
        for steps in [1, 12, 144, 288] {
            let _ = writeln!(
                t,
                "  {{ cf = [\"{cf}\"], xff = 0.5, every = \"{}s\", keep = \"{}s\" }},",
                steps * step,
                steps * step * 1440
            );
        }
    }
    t.push_str("]\n");
    t
}

/// One `[[file]]` from a `[datarrd__<name>]` section, and its step.
fn file_section(
    section: &str,
    props: &ini::Properties,
    not_mapped: &mut Vec<String>,
) -> (Option<String>, u64) {
    let mut report = |key: &str, why: String| not_mapped.push(format!("[{section}] {key}: {why}"));
    let step = match props.get("rrd_step_0").map(|s| s.trim().parse::<u64>()) {
        None => DEFAULT_STEP,
        Some(Ok(s)) if (1..=86_400).contains(&s) => s,
        Some(_) => {
            report(
                "rrd_step_0",
                format!("not a step in seconds; {DEFAULT_STEP} used"),
            );
            DEFAULT_STEP
        }
    };
    let Some(path) = props
        .get("rrd_file_0")
        .map(str::trim)
        .filter(|p| !p.is_empty())
    else {
        report("rrd_file_0", "missing: section skipped".into());
        return (None, step);
    };
    let mut ds = String::new();
    let mut names = BTreeSet::new();
    for (n, config) in sources(props, &mut report) {
        match ds_line(config, &mut names) {
            Ok(line) => ds.push_str(&line),
            Err(why) => report(&format!("source_config_{n}"), why),
        }
    }
    for (k, _) in props.iter() {
        if !(k == "rrd_file_0" || k == "rrd_step_0" || k.starts_with("source_config_")) {
            report(k, "no equivalent".into());
        }
    }
    if ds.is_empty() {
        report(
            "source_config_*",
            "no usable source: section skipped".into(),
        );
        return (None, step);
    }
    let file = format!(
        "\n[[file]]\npath = {}\ntemplate = \"janitoo_{step}s\"\nds = [\n{ds}]\n",
        quoted(path)
    );
    (Some(file), step)
}

/// The sources janitoo read: `source_config_0`, 1, … up to the first
/// missing number; later ones it never saw are reported.
fn sources<'p>(
    props: &'p ini::Properties,
    report: &mut impl FnMut(&str, String),
) -> Vec<(u32, &'p str)> {
    let mut sources: Vec<(u32, &str)> = Vec::new();
    while let Some(v) = props.get(format!("source_config_{}", sources.len())) {
        sources.push((sources.len() as u32, v));
    }
    let mut beyond: Vec<&str> = props
        .iter()
        .map(|(k, _)| k)
        .filter(|k| {
            k.strip_prefix("source_config_")
                .is_some_and(|n| n.parse::<usize>().map_or(true, |n| n > sources.len()))
        })
        .collect();
    beyond.sort_unstable();
    for k in beyond {
        report(
            k,
            format!(
                "janitoo ignored it (it stops at the first missing number, source_config_{}): not added",
                sources.len()
            ),
        );
    }
    sources
}

/// `hadd|value_uuid|value_index|rrd_type|rrd_label` as a DS line, fed by
/// the series our janitoo decoder makes of that value; `names`: the DS
/// names taken so far in the file.
fn ds_line(config: &str, names: &mut BTreeSet<String>) -> Result<String, String> {
    let fields: Vec<&str> = config.split('|').map(str::trim).collect();
    let [hadd, uuid, index, rrd_type, label] = fields[..] else {
        return Err(format!(
            "{config:?}: expected hadd|value_uuid|value_index|rrd_type|rrd_label"
        ));
    };
    let ds_type = rrd_type.to_ascii_uppercase();
    if !["GAUGE", "COUNTER", "DERIVE", "ABSOLUTE"].contains(&ds_type.as_str()) {
        return Err(format!("{rrd_type:?} is not a DS type"));
    }
    if !is_valid_ds_name(label) || !names.insert(label.to_owned()) {
        return Err(format!(
            "{label:?} is not a usable DS name (1-19 of [A-Za-z0-9_], unique)"
        ));
    }
    Ok(format!(
        "  {{ name = {}, series = {}, ds_type = \"{ds_type}\" }},\n",
        quoted(label),
        quoted(&format!("janitoo/{hadd}/{uuid}/{index}"))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::model::DsType;

    const INI: &str = "\
[system]
service = jnt_datalog_rrd
broker_ip = 10.0.0.5
broker_port = 1884
broker_user = janitoo
broker_password = \"p|w\"
broker_keepalive = 60
home_dir = /opt/janitoo/home/

[datarrd]
auto_start = True
hadd = 0014/0000
cache_rrd_ttl_0 = 3600
cache_pickle_ttl_0 = 60
cache_dead_ttl_0 = nope

[http]
auto_start = True

[datarrd__load]
heartbeat = 60
hadd = 0014/0008
rrd_file_0 = load
rrd_step_0 = 60
source_config_0 = 0048/0002|load|0|GAUGE|load1
source_config_2 = 0048/0002|load|2|GAUGE|load15
source_config_1 = 0048/0002|load|1|GAUGE|load5
source_config_3 = 0048/0002|load|3|SUM|bad
source_config_4 = 0048/0002|load|4|GAUGE|load 4

[datarrd__memory_rss]
rrd_file_0 = memory_rss
source_config_0 = 0048/0004|memory_rss|0|GAUGE|hostsensor
source_config_2 = 0048/0004|memory_rss|2|GAUGE|ghost

[datarrd__empty]
name = nothing here
";

    #[test]
    fn a_janitoo_config_becomes_a_valid_toml_config() {
        let imported = import(INI).unwrap();
        assert_eq!(imported.files, 2);
        let config = Config::parse(&imported.toml, "imported")
            .unwrap_or_else(|e| panic!("{e}\n{}", imported.toml));
        assert_eq!(
            (config.mqtt.host.as_str(), config.mqtt.port),
            ("10.0.0.5", 1884)
        );
        assert_eq!(
            config.mqtt.credentials,
            Some(("janitoo".into(), "\"p|w\"".into()))
        );
        assert!(config.mqtt.topics.contains(&"/values/#".to_owned()));
        assert_eq!(config.cache.flush_after.as_secs(), 3600);
        let load = config.files.iter().find(|f| f.rel_path == "load").unwrap();
        assert_eq!(load.step_secs, 60);
        let names: Vec<&str> = load.ds.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["load1", "load5", "load15"]);
        assert_eq!(load.ds[2].series, "janitoo/0048/0002/load/2");
        assert_eq!(load.ds[0].heartbeat_secs, 120);
        assert_eq!(load.ds[0].ds_type, DsType::Gauge);
        assert_eq!(load.rras.len(), 12);
        assert!(load.rras.iter().all(|r| r.rows == 1440));
        let rss = config
            .files
            .iter()
            .find(|f| f.rel_path == "memory_rss")
            .unwrap();
        assert_eq!(rss.step_secs, 300);
        // janitoo stopped at the missing source_config_1: so do we.
        assert_eq!(rss.ds.len(), 1);
        // Its files are continued where janitoo kept them.
        assert_eq!(
            config.data_dir,
            std::path::Path::new("/opt/janitoo/home/public/rrd/rrds")
        );
        // Its archives, in its order: AVERAGE, MAX, MIN of 1, 12, 144, 288 steps.
        let layout: Vec<String> = load.rras.iter().map(|r| r.to_string()).collect();
        assert_eq!(layout[0], "RRA:AVERAGE:0.5:1:1440");
        assert_eq!(layout[3], "RRA:AVERAGE:0.5:288:1440");
        assert_eq!(layout[4], "RRA:MAX:0.5:1:1440");
        assert_eq!(layout[11], "RRA:MIN:0.5:288:1440");
        for needle in [
            "[datarrd] cache_dead_ttl_0",
            "[datarrd] hadd",
            "[http]",
            "source_config_3",
            "source_config_4",
            "[datarrd__empty] rrd_file_0",
            "[system] broker_keepalive",
            "[datarrd__memory_rss] source_config_2: janitoo ignored it",
        ] {
            assert!(
                imported.not_mapped.iter().any(|n| n.contains(needle)),
                "{needle} not reported: {:?}",
                imported.not_mapped
            );
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(import("[unclosed\nx").is_err());
        let empty = import("").unwrap();
        assert_eq!(empty.files, 0);
        Config::parse(&empty.toml, "empty").unwrap();
    }
}
