//! `datalog-rrd import-munin DIR`: Munin's data directory (its `dbdir`,
//! `/var/lib/munin`) turned into our TOML, so that polling continues in
//! Munin's own files with their years of history. Nothing is copied or
//! rewritten: the files stay where they are, as they are.
//!
//! - Munin names a file `<group>/<node>-<service>-<field>-<t>.rrd` (t: `g`
//!   gauge, `d` derive, `c` counter, `a` absolute), one DS named `42`,
//!   step 300. Node names hold dots and dashes, so they are read from
//!   Munin's `datafile` (`<group>;<node>:<service>.<field>.<attr> …`
//!   lines), and a file is split after its node's name; the field is the
//!   last part before the type, the service what is between (a
//!   multigraph child `a.b` is written `a-b`).
//! - Each file becomes a `[[file]]` at its place, its DS `42` fed by the
//!   series the poller makes of that field (`munin/<node>/<service>/<field>`,
//!   `a.b` → `a/b`), with Munin's type; `data_dir` is Munin's directory;
//!   a template `munin` with munin-update's layout (step 5 min, heartbeat
//!   10 min, AVERAGE, MIN and MAX at 5 min for 2 days, 30 min for 9 days,
//!   2 h for 45 days, 1 day for 450 days, in munin's order) so the layout
//!   check finds them as they are.
//! - Each node becomes a `[[poll]]` job at `<node>:4949`, every 5 minutes,
//!   prefix `munin/<node>`.
//!
//! Pure: the file names and the datafile's text in, TOML and a report out.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::model::DsType;

#[derive(Debug, Default)]
pub struct Imported {
    pub toml: String,
    /// Files not mapped, and why.
    pub not_mapped: Vec<String>,
    pub files: usize,
    pub nodes: usize,
}

/// A TOML string literal.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The nodes of each group, from the datafile's `<group>;<node>:` lines.
pub fn nodes_of(datafile: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut nodes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in datafile.lines() {
        let Some((key, _)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let Some((group, rest)) = key.split_once(';') else {
            continue;
        };
        if let Some((node, _)) = rest.split_once(':') {
            nodes
                .entry(group.to_owned())
                .or_default()
                .insert(node.to_owned());
        }
    }
    nodes
}

/// One Munin file, understood.
#[derive(Debug, PartialEq)]
struct MuninFile {
    node: String,
    service: String,
    field: String,
    ds_type: DsType,
}

/// `<node>-<service>-<field>-<t>` (without `.rrd`), `node` one of `nodes`
/// (the longest that fits).
fn parse_name(name: &str, nodes: &BTreeSet<String>) -> Result<MuninFile, String> {
    let node = nodes
        .iter()
        .filter(|n| name.starts_with(&format!("{n}-")))
        .max_by_key(|n| n.len())
        .ok_or("no node of the datafile starts its name")?;
    let rest = &name[node.len() + 1..];
    let (rest, kind) = rest.rsplit_once('-').ok_or("no type suffix")?;
    let ds_type = match kind {
        "g" => DsType::Gauge,
        "d" => DsType::Derive,
        "c" => DsType::Counter,
        "a" => DsType::Absolute,
        other => return Err(format!("unknown type suffix {other:?}")),
    };
    let (service, field) = rest.rsplit_once('-').ok_or("no field")?;
    if service.is_empty() || field.is_empty() {
        return Err("empty service or field".into());
    }
    Ok(MuninFile {
        node: node.clone(),
        service: service.to_owned(),
        field: field.to_owned(),
        ds_type,
    })
}

/// `dir`: Munin's data directory as the config will name it; `files`:
/// the `.rrd` files under it, relative (`<group>/<name>.rrd`).
pub fn import(dir: &str, files: &[String], datafile: &str) -> Imported {
    let nodes = nodes_of(datafile);
    let mut out = Imported::default();
    let mut file_tables = String::new();
    let mut polled: BTreeSet<&str> = BTreeSet::new();
    for rel in files {
        let Some((group, file)) = rel.split_once('/') else {
            out.not_mapped
                .push(format!("{rel}: not in a group's directory"));
            continue;
        };
        let Some(name) = file.strip_suffix(".rrd") else {
            continue;
        };
        let parsed = nodes
            .get(group)
            .ok_or_else(|| format!("group {group:?} is not in the datafile"))
            .and_then(|n| parse_name(name, n));
        let f = match parsed {
            Ok(f) => f,
            Err(why) => {
                out.not_mapped.push(format!("{rel}: {why}"));
                continue;
            }
        };
        let series = format!(
            "munin/{}/{}/{}",
            f.node,
            f.service.replace('-', "/"),
            f.field
        );
        let _ = write!(
            file_tables,
            "\n[[file]]\npath = {}\ntemplate = \"munin\"\nds = [{{ name = \"42\", series = {}, ds_type = \"{}\" }}]\n",
            quoted(&format!("{group}/{name}")),
            quoted(&series),
            f.ds_type.as_rrd_str()
        );
        out.files += 1;
        polled.insert(nodes[group].get(&f.node).expect("parsed from it"));
    }
    out.nodes = polled.len();
    let mut toml = String::from(
        "# Converted from Munin's data directory by `datalog-rrd import-munin`.\n\
         # Stop munin-update (its cron job) first: two writers on one file refuse\n\
         # each other's updates. The daemon's user must be able to write there.\n",
    );
    let _ = write!(toml, "\ndata_dir = {}\n", quoted(dir));
    for node in &polled {
        let name: String = node
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        let _ = write!(
            toml,
            "\n[[poll]]\nname = {}\nkind = \"munin\"\ntarget = {}\ninterval = \"5m\"\nprefix = {}\n",
            quoted(&name),
            quoted(node),
            quoted(&format!("munin/{node}"))
        );
    }
    toml.push_str(MUNIN_TEMPLATE);
    toml.push_str(&file_tables);
    out.toml = toml;
    out
}

/// munin-update's `rrdtool create` layout, archives in its order.
const MUNIN_TEMPLATE: &str = r#"
[[template]]
name = "munin"
topics = []
step = "5m"
heartbeat = "10m"
hold = "0s"
rra = [
  { cf = ["AVERAGE", "MIN", "MAX"], every = "5m", keep = "2d" },
  { cf = ["AVERAGE", "MIN", "MAX"], every = "30m", keep = "9d" },
  { cf = ["AVERAGE", "MIN", "MAX"], every = "2h", keep = "45d" },
  { cf = ["AVERAGE", "MIN", "MAX"], every = "1d", keep = "450d" },
]
"#;

#[cfg(test)]
mod tests {
    use super::*;

    const DATAFILE: &str = "version 2.0.73\n\
        home;pi-4.lan:cpu.graph_title CPU usage\n\
        home;pi-4.lan:cpu.user.label user\n\
        home;pi:load.load.label load\n\
        home;pi-4.lan:diskstats_iops.sda.rdio.label read\n";

    #[test]
    fn files_become_file_tables_fed_by_the_pollers_series() {
        let files: Vec<String> = [
            "home/pi-4.lan-cpu-user-d.rrd",
            "home/pi-load-load-g.rrd",
            "home/pi-4.lan-diskstats_iops-sda-rdio-c.rrd",
            "home/stranger-x-y-g.rrd",
            "home/pi-4.lan-cpu-user-q.rrd",
            "loose.rrd",
            "home/datafile",
        ]
        .map(String::from)
        .to_vec();
        let out = import("/var/lib/munin", &files, DATAFILE);
        assert_eq!((out.files, out.nodes), (3, 2));
        assert_eq!(out.not_mapped.len(), 3, "{:?}", out.not_mapped);
        let config = crate::config::Config::parse(&out.toml, "imported").unwrap();
        assert_eq!(config.data_dir, std::path::Path::new("/var/lib/munin"));
        let file = |path: &str| config.files.iter().find(|f| f.rel_path == path).unwrap();
        let cpu = file("home/pi-4.lan-cpu-user-d");
        assert_eq!(cpu.ds[0].name, "42");
        assert_eq!(cpu.ds[0].series, "munin/pi-4.lan/cpu/user");
        assert_eq!(cpu.ds[0].ds_type, DsType::Derive);
        assert_eq!(cpu.step_secs, 300);
        assert_eq!(cpu.ds[0].heartbeat_secs, 600);
        let rras: Vec<String> = cpu.rras.iter().map(ToString::to_string).collect();
        assert_eq!(
            rras[..4],
            [
                "RRA:AVERAGE:0.5:1:576",
                "RRA:MIN:0.5:1:576",
                "RRA:MAX:0.5:1:576",
                "RRA:AVERAGE:0.5:6:432"
            ]
        );
        assert_eq!(rras.last().unwrap(), "RRA:MAX:0.5:288:450");
        let sda = file("home/pi-4.lan-diskstats_iops-sda-rdio-c");
        assert_eq!(sda.ds[0].series, "munin/pi-4.lan/diskstats_iops/sda/rdio");
        // The longest node name wins: `pi-load-…` is the node pi.
        assert_eq!(
            file("home/pi-load-load-g").ds[0].series,
            "munin/pi/load/load"
        );
        let targets: Vec<&str> = config.polls.iter().map(|p| p.host.as_str()).collect();
        assert_eq!(targets, ["pi", "pi-4.lan"]);
        assert!(config.polls.iter().all(|p| p.interval.as_secs() == 300));
    }
}
