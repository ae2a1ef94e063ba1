//! A file's layout as librrd reports it, and what it takes to bring it to
//! the layout the configuration wants. Pure: `rrd info` in, a plan out.
//!
//! Two kinds of change: those `rrdtool tune` makes in place (a heartbeat, a
//! bound, a DS type, a DS renamed), and those that need the file rebuilt
//! (the step, DS added or removed, archives added, removed or resized):
//! librrd then creates a new file pre-filled from the old one
//! (`rrdtool create --source`), which keeps every value the new layout can
//! hold.

use std::collections::HashMap;

use rrd::ops::info::InfoValue;

use crate::model::{DsSpec, DsType, FileSpec};

/// One DS as found in a file, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundDs {
    pub name: String,
    pub ds_type: String,
    pub heartbeat_secs: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// A file's layout: what `rrd info` says of its step, DS and archives.
#[derive(Debug, Clone, PartialEq)]
pub struct FileLayout {
    pub step_secs: u64,
    pub last_update: i64,
    pub ds: Vec<FoundDs>,
    /// `RRA:<cf>:<xff>:<steps per row>:<rows>`, in file order.
    pub rras: Vec<String>,
}

impl FileLayout {
    /// From `rrd info`'s keys (`step`, `ds[x].type`, `rra[i].cf`, …).
    pub fn from_info(info: &HashMap<String, InfoValue>) -> Result<FileLayout, String> {
        let count = |key: &str| info.get(key).cloned().and_then(InfoValue::into_count);
        let text = |key: &str| info.get(key).cloned().and_then(InfoValue::into_string);
        let value = |key: &str| {
            info.get(key)
                .cloned()
                .and_then(InfoValue::into_value)
                .filter(|v| !v.is_nan())
        };
        let step_secs = count("step").ok_or("no step in rrd info")?;
        let last_update = count("last_update").ok_or("no last_update in rrd info")? as i64;
        let mut ds: Vec<(u64, FoundDs)> = info
            .keys()
            .filter_map(|k| k.strip_prefix("ds[")?.strip_suffix("].type"))
            .map(|name| {
                let key = |field: &str| format!("ds[{name}].{field}");
                Ok((
                    count(&key("index")).unwrap_or(0),
                    FoundDs {
                        name: name.to_owned(),
                        ds_type: text(&key("type")).ok_or("a DS without a type")?,
                        heartbeat_secs: count(&key("minimal_heartbeat")).unwrap_or(0),
                        min: value(&key("min")),
                        max: value(&key("max")),
                    },
                ))
            })
            .collect::<Result<_, String>>()?;
        ds.sort_by_key(|(index, _)| *index);
        let mut rras = Vec::new();
        while let Some(cf) = text(&format!("rra[{}].cf", rras.len())) {
            let i = rras.len();
            let xff = value(&format!("rra[{i}].xff")).unwrap_or(0.5);
            let steps = count(&format!("rra[{i}].pdp_per_row")).unwrap_or(1);
            let rows = count(&format!("rra[{i}].rows")).unwrap_or(0);
            rras.push(format!("RRA:{cf}:{xff}:{steps}:{rows}"));
        }
        Ok(FileLayout {
            step_secs,
            last_update,
            ds: ds.into_iter().map(|(_, d)| d).collect(),
            rras,
        })
    }
}

/// One in-place change, as `rrdtool tune` arguments take it.
#[derive(Debug, Clone, PartialEq)]
pub enum Tune {
    Rename { from: String, to: String },
    Heartbeat { ds: String, secs: u32 },
    Min { ds: String, min: Option<f64> },
    Max { ds: String, max: Option<f64> },
    Type { ds: String, ds_type: &'static str },
}

impl Tune {
    /// The `rrdtool tune` arguments for this change.
    pub fn args(&self) -> [String; 2] {
        let bound = |b: &Option<f64>| b.map_or("U".to_owned(), |v| v.to_string());
        match self {
            Tune::Rename { from, to } => ["-r".into(), format!("{from}:{to}")],
            Tune::Heartbeat { ds, secs } => ["-h".into(), format!("{ds}:{secs}")],
            Tune::Min { ds, min } => ["-i".into(), format!("{ds}:{}", bound(min))],
            Tune::Max { ds, max } => ["-a".into(), format!("{ds}:{}", bound(max))],
            Tune::Type { ds, ds_type } => ["-d".into(), format!("{ds}:{ds_type}")],
        }
    }
}

/// What bringing a file to its wanted layout takes.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Nothing: the file is as the configuration wants it.
    None,
    /// In place, with `rrdtool tune`.
    Tune(Vec<Tune>),
    /// A new file pre-filled from the old one; the reasons, for the log.
    Rebuild(Vec<String>),
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::None => f.write_str("as configured"),
            Change::Tune(tunes) => {
                let args: Vec<String> = tunes.iter().map(|t| t.args().join(" ")).collect();
                write!(f, "tuned in place: {}", args.join(" "))
            }
            Change::Rebuild(why) => write!(f, "rebuilt: {}", why.join("; ")),
        }
    }
}

/// Compares `found` with `wanted`. A DS the configuration names with
/// `renamed_from` equal to a DS of the file is that DS renamed.
pub fn plan_change(found: &FileLayout, wanted: &FileSpec) -> Change {
    let mut rebuild = Vec::new();
    if found.step_secs != u64::from(wanted.step_secs) {
        rebuild.push(format!("step {}s → {}s", found.step_secs, wanted.step_secs));
    }
    let mut tunes = Vec::new();
    let mut matched = vec![false; found.ds.len()];
    for want in &wanted.ds {
        let by_name = |name: &str| found.ds.iter().position(|d| d.name == name);
        let (index, renamed) = match by_name(&want.name) {
            Some(i) => (i, false),
            None => match want.renamed_from.as_deref().and_then(by_name) {
                Some(i) => (i, true),
                None => {
                    rebuild.push(format!("DS {} added", want.name));
                    continue;
                }
            },
        };
        matched[index] = true;
        let have = &found.ds[index];
        if renamed {
            tunes.push(Tune::Rename {
                from: have.name.clone(),
                to: want.name.clone(),
            });
        }
        tunes.extend(ds_tunes(have, want));
    }
    for (d, _) in found.ds.iter().zip(&matched).filter(|(_, m)| !**m) {
        rebuild.push(format!("DS {} removed", d.name));
    }
    let wanted_rras: Vec<String> = wanted.rras.iter().map(|r| r.to_string()).collect();
    if found.rras != wanted_rras {
        rebuild.push(format!(
            "archives {} → {}",
            found.rras.join(" "),
            wanted_rras.join(" ")
        ));
    }
    match (rebuild.is_empty(), tunes.is_empty()) {
        (true, true) => Change::None,
        (true, false) => Change::Tune(tunes),
        // A rebuild takes the wanted DS definitions whole; a rename must
        // happen first, so that the new file finds the old DS by its name.
        (false, _) => {
            let renames: Vec<String> = tunes
                .iter()
                .filter_map(|t| match t {
                    Tune::Rename { from, to } => Some(format!("DS {from} renamed {to}")),
                    _ => None,
                })
                .collect();
            rebuild.extend(renames);
            Change::Rebuild(rebuild)
        }
    }
}

/// `wanted` with the DS that would turn from a gauge into a counter or
/// back keeping the file's type and bounds: the values in its archives are
/// levels in one and rates in the other, so a tune (or a rebuild pre-filled
/// from the old file) would give its whole history another meaning (a
/// meter's readings of 1234 kWh read as 1234 kWh per second).
pub fn keeping_kinds(found: &FileLayout, wanted: &FileSpec) -> FileSpec {
    let mut kept = wanted.clone();
    for want in &mut kept.ds {
        let Some(have) = found.ds.iter().find(|d| d.name == want.name) else {
            continue;
        };
        let Some(have_type) = DsType::from_rrd_str(&have.ds_type) else {
            continue;
        };
        if (have_type == DsType::Gauge) != (want.ds_type == DsType::Gauge) {
            want.ds_type = have_type;
            want.min = have.min;
            want.max = have.max;
        }
    }
    kept
}

/// What `tune` changes to bring DS `have` to `want`, in place.
fn ds_tunes(have: &FoundDs, want: &DsSpec) -> Vec<Tune> {
    let ds = want.name.clone();
    let mut tunes = Vec::new();
    if have.heartbeat_secs != u64::from(want.heartbeat_secs) {
        tunes.push(Tune::Heartbeat {
            ds: ds.clone(),
            secs: want.heartbeat_secs,
        });
    }
    if have.min != want.min {
        tunes.push(Tune::Min {
            ds: ds.clone(),
            min: want.min,
        });
    }
    if have.max != want.max {
        tunes.push(Tune::Max {
            ds: ds.clone(),
            max: want.max,
        });
    }
    if have.ds_type != want.ds_type.as_rrd_str() {
        tunes.push(Tune::Type {
            ds,
            ds_type: want.ds_type.as_rrd_str(),
        });
    }
    tunes
}

#[cfg(test)]
mod tests;
