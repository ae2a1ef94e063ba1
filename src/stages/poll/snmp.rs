//! SNMP as a source (MRTG's job): v2c with a community, or v3 authPriv
//! (a user, SHA and AES), over UDP with a timeout and one retry per
//! request, through the `snmp2` crate.
//!
//! - `oids = ["1.3.6.1.4.1.2021.10.1.5.1", …]`: each value a series
//!   `<prefix>/<oid>` (GET).
//! - `profile = "if"`: the interface table walked (GETBULK): each
//!   interface's traffic, `<prefix>/if/<ifName>/in` and `/out` in bytes per
//!   second, labelled with `ifAlias`, one chart per interface. The 64-bit
//!   `ifHCInOctets`/`ifHCOutOctets` when the agent has them (DDERIVE min 0:
//!   a reset is a gap, not a spike), else the 32-bit `ifInOctets`/
//!   `ifOutOctets` as COUNTER, whose wrap past 2³² librrd itself turns
//!   into the right rate. `include`/`exclude` pick interfaces by name.
//!
//! Value types: counters as above, gauges, integers and timeticks (in
//! seconds) as GAUGE; text and other types are skipped.

use std::collections::BTreeMap;
use std::time::Duration;

use snmp2::{AsyncSession, Oid, Value, v3};
use tokio::time::Instant;

use super::{PollError, PollErrorKind, Polled};
use crate::config::poll::PollJob;
use crate::model::{Chart, DsType, Sample, SeriesMeta, UnixMillis};

/// One value as the agent typed it, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    Counter32(u32),
    Counter64(u64),
    Gauge(f64),
    Text(String),
}

const IF_NAME: &[u64] = &[1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1];
const IF_ALIAS: &[u64] = &[1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 18];
const IF_HC_IN: &[u64] = &[1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6];
const IF_HC_OUT: &[u64] = &[1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 10];
const IF_DESCR: &[u64] = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 2];
const IF_IN: &[u64] = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 10];
const IF_OUT: &[u64] = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 16];

/// The most rows a walk reads: a switch's interface table fits many times.
const MAX_WALK: usize = 10_000;

/// One round against `job`'s agent, by `deadline`.
pub async fn poll(job: &PollJob, started_ms: UnixMillis, deadline: Instant) -> Polled {
    let mut agent = match Agent::open(job, deadline).await {
        Ok(a) => a,
        Err(e) => return Polled::failed(e),
    };
    let result = if job.profile.as_deref() == Some("if") {
        interfaces(&mut agent, deadline)
            .await
            .map(|table| if_polled(job, &table, started_ms))
    } else {
        oids(&mut agent, job, deadline)
            .await
            .map(|values| oid_polled(job, &values, started_ms))
    };
    result.unwrap_or_else(Polled::failed)
}

struct Agent {
    session: AsyncSession,
    /// Per request, retried once.
    wait: Duration,
}

impl Agent {
    async fn open(job: &PollJob, deadline: Instant) -> Result<Agent, PollError> {
        let address = job.address();
        let io = |e: std::io::Error| PollError::io(&format!("snmp {address}"), &e);
        let wait = (job.timeout / 4).clamp(Duration::from_millis(200), Duration::from_secs(5));
        let session = match &job.credentials {
            None => AsyncSession::new_v2c(address.as_str(), job.community.as_bytes(), 1)
                .await
                .map_err(io)?,
            Some((user, password)) => {
                // One line: the password for both keys; two: auth, privacy.
                let (auth, privacy) = password.split_once('\n').unwrap_or((password, password));
                let security = v3::Security::new(user.as_bytes(), auth.trim().as_bytes())
                    .with_auth_protocol(v3::AuthProtocol::Sha1)
                    .with_auth(v3::Auth::AuthPriv {
                        cipher: v3::Cipher::Aes128,
                        privacy_password: privacy.trim().as_bytes().to_vec(),
                    });
                let mut session = AsyncSession::new_v3(address.as_str(), 1, security)
                    .await
                    .map_err(io)?;
                match tokio::time::timeout_at(
                    deadline.min(Instant::now() + wait * 2),
                    session.init(),
                )
                .await
                {
                    Err(_) => return Err(PollError::timeout(&format!("snmp {address}"))),
                    Ok(Err(e)) => {
                        return Err(PollError::protocol(format!("snmp v3 {address}: {e:?}")));
                    }
                    Ok(Ok(())) => {}
                }
                session
            }
        };
        Ok(Agent { session, wait })
    }

    /// GETBULK from `base` while the answers stay under it: (index arcs
    /// below `base`, reading).
    async fn walk(
        &mut self,
        base: &[u64],
        deadline: Instant,
    ) -> Result<Vec<(Vec<u64>, Reading)>, PollError> {
        let mut rows = Vec::new();
        let mut next: Vec<u64> = base.to_vec();
        'walk: while rows.len() < MAX_WALK {
            let oid = Oid::from(&next).map_err(|_| PollError::protocol("a bad OID"))?;
            let mut got = None;
            for _attempt in 0..2 {
                let by = deadline.min(Instant::now() + self.wait);
                match tokio::time::timeout_at(by, self.session.getbulk(&[&oid], 0, 25)).await {
                    Ok(Ok(pdu)) => {
                        got = Some(
                            pdu.varbinds
                                .map(|(o, v)| (arcs(&o), reading(&v)))
                                .collect::<Vec<_>>(),
                        );
                        break;
                    }
                    Ok(Err(e)) => return Err(PollError::protocol(format!("snmp: {e:?}"))),
                    Err(_) if Instant::now() >= deadline => break,
                    Err(_) => continue,
                }
            }
            let Some(batch) = got else {
                return Err(PollError::timeout("snmp agent"));
            };
            if batch.is_empty() {
                break;
            }
            for (arcs, reading) in batch {
                let Some(index) = arcs.strip_prefix(base).filter(|i| !i.is_empty()) else {
                    break 'walk;
                };
                let Some(reading) = reading else {
                    break 'walk; // endOfMibView
                };
                rows.push((index.to_vec(), reading));
                next = arcs;
            }
        }
        Ok(rows)
    }

    /// GET of one OID.
    async fn get(&mut self, oid: &[u64], deadline: Instant) -> Result<Option<Reading>, PollError> {
        let o = Oid::from(oid).map_err(|_| PollError::protocol("a bad OID"))?;
        for _attempt in 0..2 {
            let by = deadline.min(Instant::now() + self.wait);
            match tokio::time::timeout_at(by, self.session.get(&o)).await {
                Ok(Ok(mut pdu)) => return Ok(pdu.varbinds.next().and_then(|(_, v)| reading(&v))),
                Ok(Err(e)) => return Err(PollError::protocol(format!("snmp: {e:?}"))),
                Err(_) if Instant::now() >= deadline => break,
                Err(_) => continue,
            }
        }
        Err(PollError::timeout("snmp agent"))
    }
}

fn arcs(oid: &Oid<'_>) -> Vec<u64> {
    oid.iter().map(Iterator::collect).unwrap_or_default()
}

fn reading(v: &Value<'_>) -> Option<Reading> {
    Some(match v {
        Value::Counter32(n) => Reading::Counter32(*n),
        Value::Counter64(n) => Reading::Counter64(*n),
        Value::Unsigned32(n) => Reading::Gauge(f64::from(*n)),
        Value::Integer(n) => Reading::Gauge(*n as f64),
        Value::Timeticks(n) => Reading::Gauge(f64::from(*n) / 100.0),
        Value::OctetString(s) => Reading::Text(String::from_utf8_lossy(s).into_owned()),
        _ => return None,
    })
}

/// One interface's row of the table.
#[derive(Debug, Default, PartialEq)]
pub struct Interface {
    pub name: String,
    pub alias: String,
    pub octets_in: Option<Reading>,
    pub octets_out: Option<Reading>,
}

/// The interface table: names (ifName, else ifDescr), aliases, and the
/// 64-bit counters, else the 32-bit ones.
async fn interfaces(
    agent: &mut Agent,
    deadline: Instant,
) -> Result<BTreeMap<Vec<u64>, Interface>, PollError> {
    let mut table: BTreeMap<Vec<u64>, Interface> = BTreeMap::new();
    let text = |r: Reading| match r {
        Reading::Text(t) => t,
        _ => String::new(),
    };
    let mut names = agent.walk(IF_NAME, deadline).await?;
    if names.is_empty() {
        names = agent.walk(IF_DESCR, deadline).await?;
    }
    for (index, r) in names {
        table.entry(index).or_default().name = text(r);
    }
    for (index, r) in agent.walk(IF_ALIAS, deadline).await? {
        table.entry(index).or_default().alias = text(r);
    }
    let mut counters = [
        agent.walk(IF_HC_IN, deadline).await?,
        agent.walk(IF_HC_OUT, deadline).await?,
    ];
    if counters[0].is_empty() {
        counters = [
            agent.walk(IF_IN, deadline).await?,
            agent.walk(IF_OUT, deadline).await?,
        ];
    }
    let [ins, outs] = counters;
    for (index, r) in ins {
        table.entry(index).or_default().octets_in = Some(r);
    }
    for (index, r) in outs {
        table.entry(index).or_default().octets_out = Some(r);
    }
    Ok(table)
}

async fn oids(
    agent: &mut Agent,
    job: &PollJob,
    deadline: Instant,
) -> Result<Vec<(String, Reading)>, PollError> {
    let mut values = Vec::new();
    for oid in &job.oids {
        let arcs: Vec<u64> = oid.split('.').filter_map(|a| a.parse().ok()).collect();
        if let Some(r) = agent.get(&arcs, deadline).await? {
            values.push((oid.clone(), r));
        }
    }
    Ok(values)
}

/// The type and value a reading is logged as.
fn logged(r: &Reading) -> Option<(DsType, f64)> {
    match r {
        Reading::Counter32(n) => Some((DsType::Counter, f64::from(*n))),
        Reading::Counter64(n) => Some((DsType::Dderive, *n as f64)),
        Reading::Gauge(v) => Some((DsType::Gauge, *v)),
        Reading::Text(_) => None,
    }
}

/// The interface table as samples. Pure.
pub fn if_polled(
    job: &PollJob,
    table: &BTreeMap<Vec<u64>, Interface>,
    started_ms: UnixMillis,
) -> Polled {
    let mut polled = Polled::default();
    for (index, i) in table {
        let name = if i.name.is_empty() {
            index
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(".")
        } else {
            i.name.clone()
        };
        if !job.select.keeps(&name) {
            continue;
        }
        let level: String = name
            .chars()
            .map(|c| if matches!(c, '/' | '+' | '#') { '_' } else { c })
            .collect();
        for (dir, order, reading) in [("in", 0u16, &i.octets_in), ("out", 1, &i.octets_out)] {
            let Some((ds_type, value)) = reading.as_ref().and_then(logged) else {
                continue;
            };
            // Drawn as bits/s, as MRTG and routers say traffic: a 64-bit
            // counter is kept in bits (x 8 is exact in a double). A 32-bit
            // one stays in bytes: librrd's COUNTER undoes its wrap at 2^32
            // only as the agent counts it.
            let (value, unit) = if ds_type == DsType::Dderive {
                (value * 8.0, "bit/s")
            } else {
                (value, "B/s")
            };
            let about = if i.alias.is_empty() {
                String::new()
            } else {
                format!(" ({})", i.alias)
            };
            let meta = SeriesMeta {
                label: Some(format!("{name} {dir}{about}")),
                unit: Some(unit.into()),
                chart: Some(Chart {
                    id: format!("if/{level}"),
                    title: format!("Traffic of {name}{about}"),
                    order,
                    ..Chart::default()
                }),
                ..SeriesMeta::default()
            };
            let name = format!("if/{level}/{dir}");
            push(&mut polled, job, name, (ds_type, value), meta, started_ms);
        }
    }
    polled
}

/// A sample of `<prefix>/<name>` and its metadata: `meta` with the type,
/// the device, and min 0 for a counter.
fn push(
    polled: &mut Polled,
    job: &PollJob,
    name: String,
    (ds_type, value): (DsType, f64),
    meta: SeriesMeta,
    started_ms: UnixMillis,
) {
    let series = format!("{}/{name}", job.prefix);
    polled.samples.push(Sample {
        series: series.clone(),
        time_ms: started_ms,
        value,
    });
    let meta = SeriesMeta {
        ds_type: Some(ds_type),
        min: (ds_type != DsType::Gauge).then_some(0.0),
        device: Some(job.host.clone()),
        ..meta
    };
    polled.meta.push((series, meta));
}

/// Plain OIDs as samples. Pure.
pub fn oid_polled(job: &PollJob, values: &[(String, Reading)], started_ms: UnixMillis) -> Polled {
    let mut polled = Polled::default();
    for (oid, r) in values {
        let Some((ds_type, value)) = logged(r) else {
            continue;
        };
        let meta = SeriesMeta {
            label: Some(oid.clone()),
            ..SeriesMeta::default()
        };
        push(
            &mut polled,
            job,
            oid.clone(),
            (ds_type, value),
            meta,
            started_ms,
        );
    }
    if polled.samples.is_empty() && !values.is_empty() {
        polled.error = Some(PollError::new(PollErrorKind::Protocol, "no numeric value"));
    }
    polled
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::poll::PollKind;

    #[test]
    fn interfaces_become_traffic_series() {
        let job = crate::poll::test_job(PollKind::Snmp, "192.0.2.1");
        let mut table = BTreeMap::new();
        table.insert(
            vec![2],
            Interface {
                name: "eth0".into(),
                alias: "uplink".into(),
                octets_in: Some(Reading::Counter64(1 << 40)),
                octets_out: Some(Reading::Counter64(5)),
            },
        );
        table.insert(
            vec![3],
            Interface {
                name: "wl/0".into(),
                alias: String::new(),
                octets_in: Some(Reading::Counter32(u32::MAX)),
                octets_out: None,
            },
        );
        let polled = if_polled(&job, &table, 1000);
        let got: Vec<(&str, f64)> = polled
            .samples
            .iter()
            .map(|s| (s.series.as_str(), s.value))
            .collect();
        assert_eq!(
            got,
            [
                ("snmp/192.0.2.1/if/eth0/in", (1u64 << 43) as f64),
                ("snmp/192.0.2.1/if/eth0/out", 40.0),
                ("snmp/192.0.2.1/if/wl_0/in", f64::from(u32::MAX)),
            ]
        );
        // 64-bit: in bits, a reset is a gap; 32-bit: in bytes, as
        // librrd's COUNTER takes the wrap only of what the agent counts.
        assert_eq!(polled.meta[0].1.ds_type, Some(DsType::Dderive));
        assert_eq!(polled.meta[0].1.unit.as_deref(), Some("bit/s"));
        assert_eq!(polled.meta[2].1.ds_type, Some(DsType::Counter));
        assert_eq!(polled.meta[2].1.unit.as_deref(), Some("B/s"));
        assert_eq!(polled.meta[0].1.label.as_deref(), Some("eth0 in (uplink)"));
        assert_eq!(
            polled.meta[0].1.chart.as_ref().unwrap().title,
            "Traffic of eth0 (uplink)"
        );
    }

    #[test]
    fn plain_oids_keep_their_numbers() {
        let job = crate::poll::test_job(PollKind::Snmp, "192.0.2.1");
        let polled = oid_polled(
            &job,
            &[
                ("1.3.6.1.2.1.1.3.0".into(), Reading::Gauge(12.5)),
                ("1.3.6.1.2.1.1.1.0".into(), Reading::Text("Linux".into())),
            ],
            1000,
        );
        assert_eq!(polled.samples.len(), 1);
        assert_eq!(polled.samples[0].series, "snmp/192.0.2.1/1.3.6.1.2.1.1.3.0");
        assert_eq!(polled.error, None);
    }
}
