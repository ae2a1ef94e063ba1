//! Each kind of layout change on a real file, the old data fetched back
//! from the new one with rrdtool.

use std::process::Command;

use super::*;
use crate::model::{Cf, DsSpec, RraSpec};

/// 600 on a 60 s step: the old file holds two hours of 1-minute rows.
const T0: i64 = 1_763_633_700 / 3600 * 3600;

fn ds(name: &str) -> DsSpec {
    DsSpec::test_gauge(name, &format!("s/{name}"))
}

fn rra(cf: Cf, steps_per_row: u32, rows: u32) -> RraSpec {
    RraSpec {
        cf,
        xff: 0.5,
        steps_per_row,
        rows,
    }
}

fn spec(step_secs: u32, ds: Vec<DsSpec>, rras: Vec<RraSpec>) -> FileSpec {
    FileSpec {
        rel_path: "f".into(),
        template: "t".into(),
        step_secs,
        ds,
        rras: rras.into(),
    }
}

/// The old file: DS `a` (value i at minute i) and `b` (10 × i), two hours.
fn old_file(dir: &Path) -> (PathBuf, FileSpec) {
    let old = spec(
        60,
        vec![ds("a"), ds("b")],
        vec![rra(Cf::Average, 1, 600), rra(Cf::Max, 5, 100)],
    );
    let path = dir.join("f.rrd");
    ffi::create(&path, 60, T0 - 60, &old.create_args(), None).unwrap();
    let rows: Vec<String> = (0..120)
        .map(|i| format!("{}:{}:{}", T0 + i * 60, i, 10 * i))
        .collect();
    let status = Command::new("rrdtool")
        .arg("update")
        .arg(&path)
        .args(&rows)
        .status()
        .unwrap();
    assert!(status.success());
    (path, old)
}

/// `(time, value)` of DS `ds` over `[start, end]` at `resolution`, known rows only.
fn fetch(path: &Path, cf: &str, ds: &str, res: i64, start: i64, end: i64) -> Vec<(i64, f64)> {
    let out = Command::new("rrdtool")
        .arg("fetch")
        .arg(path)
        .args([
            cf,
            "-r",
            &res.to_string(),
            "-s",
            &start.to_string(),
            "-e",
            &end.to_string(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    let column = header
        .iter()
        .position(|h| *h == ds)
        .unwrap_or_else(|| panic!("{ds} in {header:?}"));
    lines
        .filter_map(|l| {
            let (t, values) = l.split_once(':')?;
            let v: f64 = values.split_whitespace().nth(column)?.parse().ok()?;
            (!v.is_nan()).then(|| (t.trim().parse().unwrap(), v))
        })
        .collect()
}

fn minutes(path: &Path, ds: &str) -> Vec<(i64, f64)> {
    fetch(path, "AVERAGE", ds, 60, T0 - 60, T0 + 119 * 60)
}

#[test]
fn a_ds_added_keeps_the_others_history() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut wanted) = old_file(dir.path());
    let before = minutes(&path, "a");
    assert_eq!(before.len(), 120);
    wanted.ds.push(ds("c"));
    let done = migrate_file(&path, &wanted, false).unwrap();
    assert!(matches!(done.change, Change::Rebuild(_)), "{done:?}");
    assert_eq!(minutes(&path, "a"), before);
    assert_eq!(minutes(&path, "b").len(), 120);
    assert!(minutes(&path, "c").is_empty());
    // The old file is kept, whole.
    assert_eq!(minutes(&done.backup.unwrap(), "a"), before);
    assert_eq!(read_layout(&path).unwrap().last_update, T0 + 119 * 60);
}

#[test]
fn a_ds_removed_keeps_the_others_history() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut wanted) = old_file(dir.path());
    let before = minutes(&path, "b");
    wanted.ds.remove(0);
    migrate_file(&path, &wanted, false).unwrap();
    assert_eq!(minutes(&path, "b"), before);
    assert_eq!(read_layout(&path).unwrap().ds.len(), 1);
}

#[test]
fn archives_added_lengthened_and_shortened() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut wanted) = old_file(dir.path());
    let before = minutes(&path, "a");
    let five_min = fetch(&path, "MAX", "a", 300, T0, T0 + 115 * 60);
    assert!(five_min.len() > 20);
    // Lengthened (600 → 5000 rows), and an hourly archive added.
    let mut rras = wanted.rras.to_vec();
    rras[0].rows = 5000;
    rras.push(rra(Cf::Average, 60, 100));
    wanted.rras = rras.into();
    migrate_file(&path, &wanted, false).unwrap();
    assert_eq!(minutes(&path, "a"), before);
    assert_eq!(fetch(&path, "MAX", "a", 300, T0, T0 + 115 * 60), five_min);
    // Shortened to the last 30 minutes: those stay.
    let mut rras = wanted.rras.to_vec();
    rras[0].rows = 30;
    wanted.rras = rras.into();
    let done = migrate_file(&path, &wanted, false).unwrap();
    assert_eq!(
        done.backup.unwrap(),
        dir.path().join("f.rrd.bak.1"),
        "a second backup"
    );
    let kept = fetch(&path, "AVERAGE", "a", 60, T0 + 90 * 60, T0 + 119 * 60);
    assert_eq!(kept, before[before.len() - kept.len()..].to_vec());
    assert!(kept.len() >= 29, "{kept:?}");
}

#[test]
fn a_step_change_resamples_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let (path, old) = old_file(dir.path());
    let wanted = spec(300, old.ds.clone(), vec![rra(Cf::Average, 1, 1000)]);
    migrate_file(&path, &wanted, false).unwrap();
    assert_eq!(read_layout(&path).unwrap().step_secs, 300);
    // Each 5-minute row is the mean of its five minutes: i-4..=i → i-2.
    let rows = fetch(&path, "AVERAGE", "a", 300, T0 + 300, T0 + 115 * 60);
    assert!(rows.len() >= 20, "{rows:?}");
    for (t, v) in rows {
        let i = ((t - T0) / 60) as f64;
        assert_eq!(v, i - 2.0, "at {t}");
    }
}

#[test]
fn heartbeat_bounds_and_names_change_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut wanted) = old_file(dir.path());
    let before = minutes(&path, "a");
    wanted.ds[0].heartbeat_secs = 600;
    wanted.ds[0].max = Some(1000.0);
    wanted.ds[1].name = "bee".into();
    wanted.ds[1].renamed_from = Some("b".into());
    let dry = migrate_file(&path, &wanted, true).unwrap();
    assert!(matches!(dry.change, Change::Tune(_)));
    assert_eq!(
        read_layout(&path).unwrap().ds[0].heartbeat_secs,
        120,
        "a dry run changes nothing"
    );
    let done = migrate_file(&path, &wanted, false).unwrap();
    assert_eq!(done.backup, None, "no rebuild");
    let layout = read_layout(&path).unwrap();
    assert_eq!(layout.ds[0].heartbeat_secs, 600);
    assert_eq!(layout.ds[0].max, Some(1000.0));
    assert_eq!(layout.ds[1].name, "bee");
    assert_eq!(minutes(&path, "a"), before);
    assert_eq!(minutes(&path, "bee").len(), 120);
    assert_eq!(
        migrate_file(&path, &wanted, false).unwrap().change,
        Change::None
    );
}

#[test]
fn a_rename_with_a_rebuild_keeps_the_renamed_history() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut wanted) = old_file(dir.path());
    let before = minutes(&path, "b");
    wanted.ds[1].name = "bee".into();
    wanted.ds[1].renamed_from = Some("b".into());
    let mut rras = wanted.rras.to_vec();
    rras[0].rows = 2000;
    wanted.rras = rras.into();
    let done = migrate_file(&path, &wanted, false).unwrap();
    assert!(matches!(done.change, Change::Rebuild(_)));
    assert_eq!(minutes(&path, "bee"), before);
    // The backup is the original: its DS still named b.
    assert_eq!(minutes(&done.backup.unwrap(), "b"), before);
    assert!(!dir.path().join("f.rrd.migrate-source").exists());
}
