//! munin-node as a source: `list`, then `config` and `fetch` per plugin
//! over one connection, each field a series
//! `<prefix>/<plugin>/<field>` (a multigraph `a.b` is `<prefix>/a/b/…`).
//!
//! One file per field, as Munin itself keeps them
//! (`<host>-<plugin>-<field>-g.rrd`), not one per plugin: plugins add and
//! drop fields as disks and interfaces come and go, and a multi-DS file
//! would need rebuilding each time; Munin's own files can then be
//! continued as they are (`datalog-rrd import-munin`). The web UI draws a
//! plugin's fields together all the same, from the chart each field's
//! metadata names.
//!
//! A plugin that hangs costs its own command's share of the round: after
//! it the connection is opened again for the plugins that follow.

mod client;
pub mod protocol;

use std::time::Duration;

use tokio::time::Instant;

use self::client::Conversation;
use self::protocol::{Graph, Value, parse_config, parse_fetch, parse_list};
use super::{PollError, Polled};
use crate::config::poll::PollJob;
use crate::model::{Chart, DsType, Sample, SeriesMeta, UnixMillis};

/// The longest a single command may take: munin-node itself stops a
/// plugin after 10 s by default.
const MAX_COMMAND: Duration = Duration::from_secs(10);

/// One round against `job`'s node, by `deadline`.
pub async fn poll(job: &PollJob, started_ms: UnixMillis, deadline: Instant) -> Polled {
    let address = job.address();
    let command_time = (job.timeout / 4).clamp(Duration::from_millis(500), MAX_COMMAND);
    let by = |deadline: Instant| deadline.min(Instant::now() + command_time);
    let mut conversation = match Conversation::open(&address, by(deadline)).await {
        Ok(c) => c,
        Err(e) => return Polled::failed(e),
    };
    let plugins: Vec<String> = match conversation.list(by(deadline)).await {
        Ok(line) => parse_list(&line)
            .into_iter()
            .filter(|p| job.select.keeps(p))
            .collect(),
        Err(e) => return Polled::failed(e),
    };
    let node = conversation.node.clone();
    let mut round = Round::new(job, &node, started_ms);
    let mut open = Some(conversation);
    for (i, plugin) in plugins.iter().enumerate() {
        if Instant::now() >= deadline {
            round.failed(PollError::timeout(&format!(
                "the round ({} of {} plugins not polled)",
                plugins.len() - i,
                plugins.len()
            )));
            break;
        }
        let c = match open.take() {
            Some(c) => c,
            None => match Conversation::open(&address, by(deadline)).await {
                Ok(c) => c,
                Err(e) => {
                    round.failed(e);
                    break;
                }
            },
        };
        match one_plugin(c, plugin, by(deadline)).await {
            Ok((c, graphs, values)) => {
                round.add(&graphs, &values);
                open = Some(c);
            }
            // The connection is dropped: a late answer must not be read as
            // the next plugin's.
            Err(e) => round.failed(PollError {
                message: format!("plugin {plugin}: {}", e.message),
                ..e
            }),
        }
    }
    if let Some(c) = open {
        c.quit().await;
    }
    round.polled
}

/// `config`, then `fetch` unless the config carried the values.
async fn one_plugin(
    mut c: Conversation,
    plugin: &str,
    deadline: Instant,
) -> Result<(Conversation, Vec<Graph>, Vec<(String, String, Value)>), PollError> {
    let config = c.ask("config", plugin, deadline).await?;
    let graphs = parse_config(plugin, &config);
    let dirty: Vec<(String, String, Value)> = graphs
        .iter()
        .flat_map(|g| {
            g.fields
                .iter()
                .filter_map(|f| Some((g.name.clone(), f.name.clone(), f.value?)))
        })
        .collect();
    let values = if dirty.is_empty() {
        parse_fetch(plugin, &c.ask("fetch", plugin, deadline).await?)
    } else {
        dirty
    };
    Ok((c, graphs, values))
}

/// A round's samples and metadata, as plugins answer. Pure.
pub struct Round<'j> {
    job: &'j PollJob,
    node: &'j str,
    started_ms: UnixMillis,
    pub polled: Polled,
}

impl<'j> Round<'j> {
    pub fn new(job: &'j PollJob, node: &'j str, started_ms: UnixMillis) -> Round<'j> {
        Round {
            job,
            node,
            started_ms,
            polled: Polled::default(),
        }
    }

    /// The first failure is the round's error; later ones add to its count.
    fn failed(&mut self, e: PollError) {
        match &mut self.polled.error {
            None => self.polled.error = Some(e),
            Some(first) => first.message.push_str(&format!("; {}", e.message)),
        }
    }

    /// One plugin's graphs and values.
    pub fn add(&mut self, graphs: &[Graph], values: &[(String, String, Value)]) {
        for g in graphs {
            for (i, f) in g.fields.iter().enumerate() {
                let series = self.series(&g.name, &f.name);
                let order = g
                    .order
                    .iter()
                    .position(|o| *o == f.name)
                    .unwrap_or(g.order.len() + i);
                let meta = SeriesMeta {
                    label: Some(f.label.clone().unwrap_or_else(|| f.name.clone())),
                    unit: unit(g.vlabel.as_deref()),
                    ds_type: Some(float_type(f.ds_type.unwrap_or(DsType::Gauge))),
                    min: f.min,
                    max: f.max,
                    device: Some(self.node.to_owned()),
                    chart: Some(Chart {
                        id: g.name.clone(),
                        title: g.title.clone().unwrap_or_else(|| g.name.clone()),
                        category: g.category.clone(),
                        draw: f.draw.unwrap_or_default(),
                        colour: f.colour,
                        warning: f.warning,
                        critical: f.critical,
                        order: order.min(u16::MAX as usize) as u16,
                    }),
                    ..SeriesMeta::default()
                };
                self.polled.meta.push((series, meta));
            }
        }
        for (graph, field, value) in values {
            let scale = graphs
                .iter()
                .find(|g| g.name == *graph)
                .and_then(|g| g.fields.iter().find(|f| f.name == *field))
                .and_then(|f| f.scale)
                .unwrap_or(1.0);
            let (time_ms, value) = match *value {
                Value::Unknown => continue,
                Value::Number(v) => (self.started_ms, v),
                Value::At(t, v) => (t.saturating_mul(1000), v),
            };
            self.polled.samples.push(Sample {
                series: self.series(graph, field),
                time_ms,
                value: value * scale,
            });
        }
    }

    fn series(&self, graph: &str, field: &str) -> String {
        format!("{}/{}/{field}", self.job.prefix, graph.replace('.', "/"))
    }
}

/// The type that takes what the field sends: librrd's COUNTER and DERIVE
/// refuse a value with a fraction ("not a simple signed integer"), which a
/// scaled field (`cdef x,1000,/`) or a plugin printing `12.5` sends; their
/// D variants take any number and count the same.
fn float_type(t: DsType) -> DsType {
    match t {
        DsType::Counter => DsType::Dcounter,
        DsType::Derive => DsType::Dderive,
        other => other,
    }
}

/// A graph's vertical label as a unit, when it is short enough to be one
/// (`%`, `load`, `bytes/second`), with `${graph_period}` said.
fn unit(vlabel: Option<&str>) -> Option<String> {
    let text = vlabel?.replace("${graph_period}", "second");
    (text.chars().count() <= 20).then_some(text)
}

#[cfg(test)]
mod tests;
