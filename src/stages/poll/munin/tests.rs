use super::protocol::{parse_config, parse_fetch};
use super::*;
use crate::config::poll::PollKind;
use crate::model::Draw;
use crate::poll::test_job;

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

#[test]
fn fields_become_series_with_what_config_says() {
    let job = test_job(PollKind::Munin, "127.0.0.1:4949");
    let mut round = Round::new(&job, "pi", 1_700_000_000_000);
    let graphs = parse_config(
        "if_eth0",
        &lines(
            "graph_order down up\ngraph_title eth0 traffic\ngraph_vlabel bits/${graph_period}\n\
             down.label received\ndown.type DERIVE\ndown.min 0\ndown.cdef down,8,*\n\
             up.label sent\nup.type DERIVE\nup.draw AREA\nup.colour 0000ff\nup.warning 800",
        ),
    );
    let values = parse_fetch("if_eth0", &lines("down.value 1000\nup.value U\n"));
    round.add(&graphs, &values);
    let polled = round.polled;
    assert_eq!(polled.error, None);
    assert_eq!(
        polled.samples,
        vec![Sample {
            series: "munin/127.0.0.1/if_eth0/down".into(),
            time_ms: 1_700_000_000_000,
            value: 8000.0,
        }]
    );
    let (series, down) = &polled.meta[0];
    assert_eq!(series, "munin/127.0.0.1/if_eth0/down");
    assert_eq!(down.ds_type, Some(DsType::Dderive));
    assert_eq!(down.min, Some(0.0));
    assert_eq!(down.label.as_deref(), Some("received"));
    assert_eq!(down.unit.as_deref(), Some("bits/second"));
    assert_eq!(down.device.as_deref(), Some("pi"));
    let up = polled.meta[1].1.chart.clone().unwrap();
    assert_eq!(up.id, "if_eth0");
    assert_eq!(up.title, "eth0 traffic");
    assert_eq!(
        (up.draw, up.colour, up.warning),
        (Draw::Area, Some((0, 0, 255)), Some(800.0))
    );
    assert_eq!(up.order, 1);
}

#[test]
fn multigraphs_nest_and_munin_times_are_kept() {
    let job = test_job(PollKind::Munin, "pi");
    let mut round = Round::new(&job, "pi", 5_000);
    let graphs = parse_config(
        "diskstats",
        &lines("multigraph diskstats_iops.sda\ngraph_title IOs\nrdio.label read\n"),
    );
    let values = parse_fetch(
        "diskstats",
        &lines("multigraph diskstats_iops.sda\nrdio.value 1700000000:3.5\n"),
    );
    round.add(&graphs, &values);
    let s = &round.polled.samples[0];
    assert_eq!(s.series, "munin/pi/diskstats_iops/sda/rdio");
    assert_eq!((s.time_ms, s.value), (1_700_000_000_000, 3.5));
    // A field with no type is a gauge, as in munin.
    assert_eq!(round.polled.meta[0].1.ds_type, Some(DsType::Gauge));
}

#[test]
fn long_vertical_labels_are_not_units() {
    assert_eq!(unit(Some("%")).as_deref(), Some("%"));
    assert_eq!(
        unit(Some("bits in (-) / out (+) per ${graph_period}")),
        None
    );
    assert_eq!(unit(None), None);
}
