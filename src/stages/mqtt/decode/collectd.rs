//! collectd's MQTT plugin: `<time|N>:<v1>[:<v2>…]` on
//! `collectd/<host>/<plugin>/<type>`. One value is the series `<topic>`;
//! several (load's short, mid and long term) are `<topic>/0`, `<topic>/1`…
//! `U` (unknown) values are skipped. collectd itself accepts nothing else
//! (collectd#4100); we take a bare number too, through the generic decoder.

use crate::model::{RejectReason, Sample, UnixMillis};

use super::{DecodeLimits, epoch_to_ms, parse_scalar};

pub(crate) fn decode(
    topic: &str,
    text: &str,
    received_ms: UnixMillis,
    limits: &DecodeLimits,
) -> Result<Vec<Sample>, RejectReason> {
    let Some((time, values)) = text.split_once(':') else {
        return Err(RejectReason::NotNumeric);
    };
    let time_ms = match time.trim() {
        "N" => received_ms,
        t => t
            .parse::<f64>()
            .ok()
            .and_then(epoch_to_ms)
            .ok_or(RejectReason::BadTimestamp)?,
    };
    let values: Vec<&str> = values.split(':').collect();
    if values.len() > limits.max_json_leaves {
        return Err(RejectReason::TooManyLeaves);
    }
    let several = values.len() > 1;
    let mut samples = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        let v = v.trim();
        if v == "U" {
            continue;
        }
        samples.push(Sample {
            series: if several {
                format!("{topic}/{i}")
            } else {
                topic.to_owned()
            },
            time_ms,
            value: parse_scalar(v)?,
        });
    }
    if samples.is_empty() {
        return Err(RejectReason::NotNumeric);
    }
    Ok(samples)
}
