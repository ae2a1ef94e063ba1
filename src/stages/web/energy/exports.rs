//! A meter's consumption as a PNG (bars drawn by librrd), as JSON (the
//! interactive chart's data) and as CSV.

use std::fmt::Write;

use actix_web::HttpResponse;
use serde::Serialize;

use super::{Consumption, EnergyParams, amount_text, consumption, meter_ds, per_of};
use crate::clock::local;
use crate::energy::Per;
use crate::rrd::index::IndexEntry;
use crate::rrd::read::BarsRequest;
use crate::web::query::{GraphParams, graph_size, utc_text};
use crate::web::{State, WebError};

pub(super) enum Kind {
    Png,
    Json,
    Csv,
}

pub(super) fn size(params: &EnergyParams) -> Result<(u32, u32), WebError> {
    Ok(graph_size(&GraphParams {
        width: params.width,
        height: params.height,
        ..GraphParams::default()
    })?)
}

pub(super) async fn export(
    state: &State,
    entry: &IndexEntry,
    params: &EnergyParams,
    kind: Kind,
) -> Result<HttpResponse, WebError> {
    let per = per_of(params)?;
    let (d, meter) = meter_ds(entry, params.ds.as_deref())?;
    let c = consumption(state, entry, &d.name, meter, per, per.count()).await?;
    match kind {
        Kind::Png => png(state, entry, &d.name, params, &c).await,
        Kind::Json => Ok(HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-cache"))
            .json(json(state, entry, &d.name, &c))),
        Kind::Csv => {
            let name = entry.path.rsplit('/').next().unwrap_or("meter");
            Ok(HttpResponse::Ok()
                .content_type("text/csv; charset=utf-8")
                .insert_header((
                    "Content-Disposition",
                    format!("attachment; filename=\"{name}-per-{}.csv\"", per.as_str()),
                ))
                .body(csv(&c)))
        }
    }
}

fn per_words(per: Per) -> &'static str {
    match per {
        Per::Hour => "hour",
        Per::Day => "day",
        Per::Month => "month",
    }
}

async fn png(
    state: &State,
    entry: &IndexEntry,
    ds: &str,
    params: &EnergyParams,
    c: &Consumption,
) -> Result<HttpResponse, WebError> {
    let (width, height) = size(params)?;
    let (unit, factor) = c.shown();
    let mut notes = vec![format!(
        "Total {} {unit} in {} {}s",
        amount_text(c.total()),
        c.bars.len(),
        per_words(c.per)
    )];
    if let (Some(cost), Some(t)) = (c.total_cost(), &c.tariffs) {
        notes.push(format!("cost {} {cost:.2}", t.currency));
    }
    let request = BarsRequest {
        rel_path: entry.path.clone(),
        ds: ds.to_owned(),
        title: format!(
            "{} per {}",
            super::super::graph::title_of(entry),
            per_words(c.per)
        ),
        axis_label: format!("{unit} per {}", per_words(c.per)),
        bars: c
            .bars
            .iter()
            .map(|b| {
                (
                    b.period.start_s,
                    b.period.end_s,
                    b.is_known().then_some(b.amount * factor),
                )
            })
            .collect(),
        start_s: c.bars.first().map_or(0, |b| b.period.start_s),
        end_s: c.bars.last().map_or(0, |b| b.period.end_s),
        step_s: c.per.drawing_step(),
        width,
        height,
        notes,
    };
    let bytes = {
        let _slot = state.render_slot()?;
        state.rrd.bars(request).await?
    };
    Ok(HttpResponse::Ok()
        .content_type("image/png")
        .insert_header(("Cache-Control", "no-cache"))
        .body(bytes))
}

/// `[start, end, amount or null, cost or null, known share]`.
type BarJson = (i64, i64, Option<f64>, Option<f64>, f64);

#[derive(Serialize)]
struct EnergyJson<'a> {
    file: &'a str,
    ds: &'a str,
    /// `hour`, `day` or `month`: local periods, in `time_zone`.
    per: &'static str,
    time_zone: &'a str,
    /// The unit of `bars`' amounts.
    unit: &'static str,
    /// The meter's flow, as its graphs draw it.
    flow_unit: &'static str,
    currency: Option<&'a str>,
    /// `[start, end, amount or null, cost or null, known share 0..1]`,
    /// oldest first; times in Unix seconds.
    bars: Vec<BarJson>,
    total: f64,
    cost_total: Option<f64>,
}

fn json<'a>(
    state: &'a State,
    entry: &'a IndexEntry,
    ds: &'a str,
    c: &'a Consumption,
) -> EnergyJson<'a> {
    let (unit, factor) = c.shown();
    EnergyJson {
        file: &entry.path,
        ds,
        per: c.per.as_str(),
        time_zone: &state.time_zone,
        unit,
        flow_unit: c.meter.flow_unit,
        currency: c.tariffs.as_ref().map(|t| t.currency.as_str()),
        bars: c
            .bars
            .iter()
            .map(|b| {
                let span = (b.period.end_s - b.period.start_s).max(1) as f64;
                (
                    b.period.start_s,
                    b.period.end_s,
                    b.is_known().then_some(b.amount * factor),
                    b.cost.filter(|_| b.is_known()),
                    b.known_s as f64 / span,
                )
            })
            .collect(),
        total: c.total(),
        cost_total: c.total_cost(),
    }
}

fn csv(c: &Consumption) -> String {
    let (unit, factor) = c.shown();
    let mut out = format!(
        "start_local,end_local,start_utc,start_unix,end_unix,consumption_{unit},known_share"
    );
    if let Some(t) = &c.tariffs {
        let _ = write!(out, ",cost_{}", t.currency);
    }
    out.push('\n');
    for b in &c.bars {
        let span = (b.period.end_s - b.period.start_s).max(1) as f64;
        let _ = write!(
            out,
            "{},{},{},{},{},{},{:.4}",
            local::text_with_offset(b.period.start_s),
            local::text_with_offset(b.period.end_s),
            utc_text(b.period.start_s),
            b.period.start_s,
            b.period.end_s,
            if b.is_known() {
                format!("{}", b.amount * factor)
            } else {
                String::new()
            },
            b.known_s as f64 / span,
        );
        if let Some(cost) = b.cost.filter(|_| b.is_known()) {
            let _ = write!(out, ",{cost:.4}");
        } else if c.tariffs.is_some() {
            out.push(',');
        }
        out.push('\n');
    }
    out
}
