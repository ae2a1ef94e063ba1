use super::*;
use crate::model::{Cf, DsSpec, DsType, RraSpec};

fn ds(name: &str) -> DsSpec {
    DsSpec::test_gauge(name, &format!("s/{name}"))
}

fn spec(ds: Vec<DsSpec>, rows: u32) -> FileSpec {
    FileSpec {
        rel_path: "f".into(),
        template: "t".into(),
        step_secs: 60,
        ds,
        rras: vec![RraSpec {
            cf: Cf::Average,
            xff: 0.5,
            steps_per_row: 1,
            rows,
        }]
        .into(),
    }
}

fn found(names: &[&str], rows: u32) -> FileLayout {
    FileLayout {
        step_secs: 60,
        last_update: 1_000,
        ds: names
            .iter()
            .map(|n| FoundDs {
                name: (*n).into(),
                ds_type: "GAUGE".into(),
                heartbeat_secs: 120,
                min: None,
                max: None,
            })
            .collect(),
        rras: vec![format!("RRA:AVERAGE:0.5:1:{rows}")],
    }
}

#[test]
fn the_same_layout_needs_nothing() {
    assert_eq!(
        plan_change(&found(&["a"], 100), &spec(vec![ds("a")], 100)),
        Change::None
    );
}

#[test]
fn heartbeat_bounds_type_and_names_are_tuned_in_place() {
    let mut a = ds("a");
    a.heartbeat_secs = 600;
    a.min = Some(0.0);
    a.ds_type = DsType::Derive;
    let mut b = ds("b2");
    b.renamed_from = Some("b".into());
    let change = plan_change(&found(&["a", "b"], 100), &spec(vec![a, b], 100));
    assert_eq!(
        change,
        Change::Tune(vec![
            Tune::Heartbeat {
                ds: "a".into(),
                secs: 600
            },
            Tune::Min {
                ds: "a".into(),
                min: Some(0.0)
            },
            Tune::Type {
                ds: "a".into(),
                ds_type: "DERIVE"
            },
            Tune::Rename {
                from: "b".into(),
                to: "b2".into()
            },
        ])
    );
    let Change::Tune(tunes) = change else {
        unreachable!()
    };
    assert_eq!(tunes[1].args(), ["-i".to_owned(), "a:0".to_owned()]);
    assert_eq!(tunes[3].args(), ["-r".to_owned(), "b:b2".to_owned()]);
}

#[test]
fn step_ds_and_archive_changes_need_a_rebuild() {
    let rebuild = |change: Change| match change {
        Change::Rebuild(why) => why.join("; "),
        other => panic!("{other:?}"),
    };
    let mut wanted = spec(vec![ds("a")], 100);
    wanted.step_secs = 300;
    assert!(rebuild(plan_change(&found(&["a"], 100), &wanted)).contains("step 60s → 300s"));
    let why = rebuild(plan_change(
        &found(&["a"], 100),
        &spec(vec![ds("a"), ds("b")], 100),
    ));
    assert!(why.contains("DS b added"), "{why}");
    let why = rebuild(plan_change(
        &found(&["a", "b"], 100),
        &spec(vec![ds("a")], 100),
    ));
    assert!(why.contains("DS b removed"), "{why}");
    let why = rebuild(plan_change(&found(&["a"], 100), &spec(vec![ds("a")], 500)));
    assert!(
        why.contains("RRA:AVERAGE:0.5:1:100 → RRA:AVERAGE:0.5:1:500"),
        "{why}"
    );
}

#[test]
fn a_gauge_never_becomes_a_counter_in_place_nor_in_a_rebuild() {
    // A meter's readings kept as a gauge, now wanted as a counter with
    // bounds, in a file also missing rows: the history keeps its meaning.
    let mut meter = ds("a");
    meter.ds_type = DsType::Dderive;
    meter.min = Some(0.0);
    meter.max = Some(27.8);
    meter.heartbeat_secs = 21_600;
    let wanted = spec(vec![meter], 200);
    let have = found(&["a"], 100);
    let kept = keeping_kinds(&have, &wanted);
    assert_eq!(kept.ds[0].ds_type, DsType::Gauge);
    assert_eq!((kept.ds[0].min, kept.ds[0].max), (None, None));
    assert_eq!(kept.ds[0].heartbeat_secs, 21_600, "the rest is applied");
    match plan_change(&have, &kept) {
        Change::Rebuild(why) => assert!(!why.join(" ").contains("DS a"), "{why:?}"),
        other => panic!("{other:?}"),
    }
    // Between two kinds of counter the type is tuned as before.
    let mut derive = found(&["a"], 200);
    derive.ds[0].ds_type = "DERIVE".into();
    assert_eq!(
        keeping_kinds(&derive, &wanted).ds[0].ds_type,
        DsType::Dderive
    );
}
