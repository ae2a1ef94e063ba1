use super::*;
use crate::config::poll::{PollKind, RawPoll};

const EXPOSITION: &str = "\
# TYPE node_load1 gauge
node_load1 0.5
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 100
node_cpu_seconds_total{cpu=\"0\",mode=\"nice\"} 1
# TYPE node_filesystem_avail_bytes gauge
node_filesystem_avail_bytes{device=\"/dev/sda1\",fstype=\"ext4\",mountpoint=\"/\"} 5e9
node_filesystem_avail_bytes{device=\"tmpfs\",fstype=\"tmpfs\",mountpoint=\"/run\"} 1e6
# TYPE node_network_receive_bytes_total counter
node_network_receive_bytes_total{device=\"lo\"} 10
node_network_receive_bytes_total{device=\"eth0\"} 20
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile=\"0.5\"} 0.001
go_gc_duration_seconds_sum 0.5
go_gc_duration_seconds_count 7
# TYPE node_hwmon_temp_celsius gauge
node_hwmon_temp_celsius{chip=\"cpu\",sensor=\"temp1\"} NaN
";

fn job(extra: &str) -> PollJob {
    let raw: RawPoll = toml::from_str(&format!(
        "name = \"pi\"\nkind = \"prometheus\"\ntarget = \"http://127.0.0.1:9100/metrics\"\ninterval = \"1m\"\n{extra}"
    ))
    .unwrap();
    crate::config::check_poll(&raw).unwrap()
}

fn series(polled: &Polled) -> Vec<&str> {
    polled.samples.iter().map(|s| s.series.as_str()).collect()
}

#[test]
fn the_node_profile_picks_the_usual_series() {
    let polled = to_polled(&job("profile = \"node\""), EXPOSITION, false, 1000);
    assert_eq!(
        series(&polled),
        [
            "prometheus/127.0.0.1/node_load1",
            "prometheus/127.0.0.1/node_cpu_seconds_total/0/idle",
            "prometheus/127.0.0.1/node_filesystem_avail_bytes/_dev_sda1/ext4/_",
            "prometheus/127.0.0.1/node_network_receive_bytes_total/eth0",
        ]
    );
    let meta = |i: usize| &polled.meta[i].1;
    assert_eq!(meta(0).ds_type, Some(DsType::Gauge));
    assert_eq!(meta(1).ds_type, Some(DsType::Dderive));
    assert_eq!(meta(1).min, Some(0.0));
    assert_eq!(meta(1).unit, None);
    assert_eq!(meta(2).unit.as_deref(), Some("B"));
    assert_eq!(meta(3).unit.as_deref(), Some("B/s"));
    assert_eq!(
        meta(3).label.as_deref(),
        Some("node_network_receive_bytes_total{device=\"eth0\"}")
    );
    assert_eq!(meta(0).device.as_deref(), Some("127.0.0.1"));
    assert_eq!(polled.error, None);
}

#[test]
fn without_a_selection_everything_but_buckets_and_unknowns() {
    let polled = to_polled(&job(""), EXPOSITION, false, 1000);
    let names = series(&polled);
    assert_eq!(names.len(), 9, "{names:?}");
    assert!(!names.iter().any(|s| s.contains("0.5")), "{names:?}");
    assert!(names.contains(&"prometheus/127.0.0.1/go_gc_duration_seconds_count"));
    let sum = polled
        .meta
        .iter()
        .find(|(s, _)| s.ends_with("_sum"))
        .unwrap();
    assert_eq!(sum.1.ds_type, Some(DsType::Dderive));
}

#[test]
fn include_exclude_and_label_matchers() {
    let j = job(
        "include = [\"node_.*\", \"go_gc_duration_seconds\"]\nexclude = [\"node_load1\"]\nlabels = { device = \"eth0|/dev/.*|\" }",
    );
    let polled = to_polled(&j, EXPOSITION, false, 1000);
    assert_eq!(
        series(&polled),
        [
            "prometheus/127.0.0.1/node_cpu_seconds_total/0/idle",
            "prometheus/127.0.0.1/node_cpu_seconds_total/0/nice",
            "prometheus/127.0.0.1/node_filesystem_avail_bytes/_dev_sda1/ext4/_",
            "prometheus/127.0.0.1/node_network_receive_bytes_total/eth0",
            // Asked for by name: the quantile too.
            "prometheus/127.0.0.1/go_gc_duration_seconds/0.5",
        ]
    );
}

#[test]
fn bad_lines_are_reported_and_the_rest_kept() {
    let polled = to_polled(
        &job(""),
        "a 1\nnot a sample\nb 2 1700000000000\n",
        false,
        1000,
    );
    assert_eq!(series(&polled).len(), 2);
    assert_eq!(polled.samples[1].time_ms, 1_700_000_000_000);
    assert!(polled.error.unwrap().message.contains("1 lines"));
    let _ = PollKind::Prometheus;
}
