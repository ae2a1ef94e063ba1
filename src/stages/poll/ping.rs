//! Ping as a source (Grafolean's ping bot): `packets` ICMP echo requests
//! a round, logged as `<prefix>/rtt_min`, `rtt_avg`, `rtt_max` (ms) and
//! `loss` (%). A dead host is 100 % loss, logged every round (no backoff:
//! the outage is the data).
//!
//! Without capabilities: the kernel's unprivileged ICMP sockets
//! (`SOCK_DGRAM`, `IPPROTO_ICMP`), allowed to the groups in
//! `net.ipv4.ping_group_range`. systemd opens that range to every group on
//! a normal boot; where it is closed (`1 0`), the round fails with a
//! message saying what to set.

use std::net::IpAddr;
use std::time::Duration;

use surge_ping::{Client, Config, ICMP, PingIdentifier, PingSequence, SurgeError};
use tokio::time::Instant;

use super::{PollError, PollErrorKind, Polled};
use crate::config::poll::PollJob;
use crate::model::{Chart, DsType, Sample, SeriesMeta, UnixMillis};

/// The longest a single echo is waited for.
const MAX_WAIT: Duration = Duration::from_secs(2);

/// One round against `job`'s host, by `deadline`.
pub async fn poll(job: &PollJob, started_ms: UnixMillis, deadline: Instant) -> Polled {
    let address = match resolve(&job.host, deadline).await {
        Ok(a) => a,
        Err(e) => return Polled::failed(e),
    };
    let kind = if address.is_ipv4() {
        ICMP::V4
    } else {
        ICMP::V6
    };
    let config = Config::builder()
        .kind(kind)
        .sock_type_hint(socket2::Type::DGRAM)
        .build();
    let client = match Client::new(&config) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Polled::failed(PollError::new(
                PollErrorKind::Connect,
                "ICMP sockets are not allowed to this user: add its group to \
                 net.ipv4.ping_group_range (sysctl -w net.ipv4.ping_group_range=\"0 2147483647\", \
                 as systemd sets it at boot; keep it in /etc/sysctl.d/)",
            ));
        }
        Err(e) => {
            return Polled::failed(PollError::io("cannot open an ICMP socket", &e));
        }
    };
    let mut pinger = client
        .pinger(address, PingIdentifier(rand_ident(started_ms)))
        .await;
    let wait = (job.timeout / job.packets.max(1)).min(MAX_WAIT);
    pinger.timeout(wait);
    let mut rtts = Vec::new();
    let mut error = None;
    for seq in 0..job.packets {
        if Instant::now() + wait > deadline {
            break;
        }
        match pinger.ping(PingSequence(seq as u16), &[0; 16]).await {
            Ok((_, rtt)) => rtts.push(rtt),
            Err(SurgeError::Timeout { .. }) => {}
            Err(e) => {
                error = Some(PollError::new(
                    PollErrorKind::Io,
                    format!("ping {address}: {e}"),
                ));
                break;
            }
        }
    }
    let mut polled = summary(job, &rtts, job.packets, started_ms);
    polled.error = error.or_else(|| {
        rtts.is_empty()
            .then(|| PollError::timeout(&format!("ping {address}")))
    });
    polled
}

async fn resolve(host: &str, deadline: Instant) -> Result<IpAddr, PollError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    let found = tokio::time::timeout_at(deadline, tokio::net::lookup_host((host, 0)))
        .await
        .map_err(|_| PollError::timeout(&format!("resolve {host}")))?
        .map_err(|e| PollError::io(&format!("resolve {host}"), &e))?;
    found
        .map(|a| a.ip())
        .next()
        .ok_or_else(|| PollError::new(PollErrorKind::Connect, format!("{host}: no address")))
}

/// An identifier per round, so that a late reply of the last round is not
/// taken for this one's.
fn rand_ident(started_ms: UnixMillis) -> u16 {
    let mut bytes = [0u8; 2];
    if getrandom::fill(&mut bytes).is_ok() {
        u16::from_le_bytes(bytes)
    } else {
        (started_ms / 1000) as u16
    }
}

/// The round's samples: min, average and max round-trip times of the
/// replies (none without a reply) and the share of `sent` lost. Pure.
pub fn summary(job: &PollJob, rtts: &[Duration], sent: u32, started_ms: UnixMillis) -> Polled {
    let ms: Vec<f64> = rtts.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    let mut values = vec![(
        "loss",
        100.0 * (1.0 - ms.len() as f64 / f64::from(sent.max(1))),
    )];
    if !ms.is_empty() {
        let min = ms.iter().copied().fold(f64::INFINITY, f64::min);
        let max = ms.iter().copied().fold(0.0, f64::max);
        let avg = ms.iter().sum::<f64>() / ms.len() as f64;
        values.extend([("rtt_min", min), ("rtt_avg", avg), ("rtt_max", max)]);
    }
    let mut polled = Polled::default();
    for (name, value) in values {
        let series = format!("{}/{name}", job.prefix);
        polled.samples.push(Sample {
            series: series.clone(),
            time_ms: started_ms,
            value: value.max(0.0),
        });
    }
    for (name, label, order) in [
        ("rtt_min", "minimum", 0),
        ("rtt_avg", "average", 1),
        ("rtt_max", "maximum", 2),
        ("loss", "loss", 0),
    ] {
        let loss = name == "loss";
        polled.meta.push((
            format!("{}/{name}", job.prefix),
            SeriesMeta {
                label: Some(format!("{label} ({})", job.host)),
                unit: Some(if loss { "%" } else { "ms" }.to_owned()),
                ds_type: Some(DsType::Gauge),
                min: Some(0.0),
                max: loss.then_some(100.0),
                device: Some(job.host.clone()),
                chart: Some(Chart {
                    id: if loss { "loss" } else { "rtt" }.to_owned(),
                    title: if loss {
                        format!("Packet loss to {}", job.host)
                    } else {
                        format!("Round-trip time to {}", job.host)
                    },
                    order,
                    ..Chart::default()
                }),
                ..SeriesMeta::default()
            },
        ));
    }
    polled
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::poll::PollKind;

    #[test]
    fn replies_give_times_and_loss() {
        let job = crate::poll::test_job(PollKind::Ping, "192.0.2.1");
        let ms = Duration::from_millis;
        let polled = summary(&job, &[ms(2), ms(4), ms(6)], 4, 1000);
        let got: Vec<(&str, f64)> = polled
            .samples
            .iter()
            .map(|s| (s.series.rsplit('/').next().unwrap(), s.value))
            .collect();
        assert_eq!(
            got,
            [
                ("loss", 25.0),
                ("rtt_min", 2.0),
                ("rtt_avg", 4.0),
                ("rtt_max", 6.0)
            ]
        );
        assert_eq!(polled.samples[0].series, "ping/192.0.2.1/loss");
        let loss = &polled.meta[3].1;
        assert_eq!((loss.unit.as_deref(), loss.max), (Some("%"), Some(100.0)));
    }

    #[test]
    fn no_reply_is_all_lost_and_no_time() {
        let job = crate::poll::test_job(PollKind::Ping, "192.0.2.1");
        let polled = summary(&job, &[], 5, 1000);
        assert_eq!(polled.samples.len(), 1);
        assert_eq!(polled.samples[0].value, 100.0);
    }
}
