//! `/rrd/energy`: meters as people read them. The overview lists every
//! meter the user may see with what it counted today and this month;
//! `/rrd/energy/<file>` shows one meter's consumption per local hour, day
//! or month as bars (a PNG drawn by librrd, an interactive chart, a
//! table, CSV and JSON), with the total of each period and of the range,
//! and its cost when `[[energy.tariff]]` prices its unit.
//!
//! Every figure comes from the file's archives, read by the RRD thread
//! after the file's cached rows are written (`rrd::read::MeterArchives`),
//! and from `energy`'s pure sums over local periods.

mod exports;

use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use chrono::Local;
use serde::Deserialize;

use super::access::Access;
use super::chrome::Chrome;
use super::pages::url_escape;
use super::{State, WebError, tree};
use crate::energy::{self, Bar, Meter, Per, Stored, Tariffs};
use crate::rrd::index::IndexEntry;
use crate::rrd::read::ArchivesRequest;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct EnergyParams {
    per: Option<String>,
    ds: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
}

/// One meter's consumption over a view's periods.
pub(crate) struct Consumption {
    meter: Meter,
    per: Per,
    bars: Vec<Bar>,
    tariffs: Option<Tariffs>,
    /// What the file's archives lack for these views, in words.
    lacking: Vec<String>,
}

impl Consumption {
    /// The unit amounts are shown in, and the factor from the meter's.
    fn shown(&self) -> (&'static str, f64) {
        self.meter.shown()
    }

    fn total(&self) -> f64 {
        self.bars.iter().map(|b| b.amount).sum::<f64>() * self.shown().1
    }

    fn total_cost(&self) -> Option<f64> {
        self.bars.iter().map(|b| b.cost).sum()
    }
}

/// The meter DS of `entry` the request names (`ds`), or its first.
fn meter_ds<'e>(
    entry: &'e IndexEntry,
    ds: Option<&str>,
) -> Result<(&'e crate::rrd::index::IndexDs, Meter), WebError> {
    entry
        .ds
        .iter()
        .filter(|d| ds.is_none_or(|name| d.name == name))
        .find_map(|d| d.meter().map(|m| (d, m)))
        .ok_or_else(|| {
            WebError::NotFound(format!(
                "{:?} holds no meter (a counter of energy, gas or water)",
                entry.path
            ))
        })
}

fn per_of(params: &EnergyParams) -> Result<Per, WebError> {
    match params.per.as_deref() {
        None => Ok(Per::Day),
        Some(s) => Per::parse(s)
            .ok_or_else(|| WebError::BadQuery(format!("per: {s:?} is not hour, day or month"))),
    }
}

/// Reads the meter's archives over `count` periods of `per` up to now and
/// sums them per local period.
async fn consumption(
    state: &State,
    entry: &IndexEntry,
    ds: &str,
    meter: Meter,
    per: Per,
    count: usize,
) -> Result<Consumption, WebError> {
    let now = state.now_s();
    let periods = energy::periods(per, count, now, &Local);
    let start_s = periods.first().map_or(now, |p| p.start_s);
    let archives = {
        let _slot = state.render_slot()?;
        state.flush(&entry.path).await;
        state
            .rrd
            .meter_archives(ArchivesRequest {
                rel_path: entry.path.clone(),
                ds: ds.to_owned(),
                start_s,
                end_s: now,
            })
            .await?
    };
    // The file decides how it holds the meter (an index of an older
    // version may not have said).
    let stored = if archives.ds_type == crate::model::DsType::Gauge {
        Stored::Readings
    } else {
        Stored::Rate
    };
    let meter = Meter { stored, ..meter };
    let config = state.config.borrow().clone();
    let tariffs = Tariffs::for_unit(
        &config.energy.tariffs,
        &config.energy.currency,
        meter.price_unit,
    );
    let pieces = energy::pieces(stored, &archives.archives);
    let bars = energy::bars(
        &pieces,
        &periods,
        tariffs.as_ref().map(|t| (t, meter.in_price_unit)),
        &Local,
    );
    Ok(Consumption {
        meter,
        per,
        bars,
        tariffs,
        lacking: energy::lacking(&archives.layout),
    })
}

/// A figure as people read it: three significant digits or so.
pub(crate) fn amount_text(x: f64) -> String {
    let a = x.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 0.1 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn cost_text(cost: f64, currency: &str) -> String {
    format!("{currency}\u{a0}{cost:.2}")
}

/// A period's name in local time: `Thu 3 Dec, 14:00`, `Thu 3 Dec 2026`,
/// `December 2026`.
fn period_text(per: Per, start_s: i64) -> String {
    let Some(t) = chrono::DateTime::from_timestamp(start_s, 0) else {
        return String::new();
    };
    let t = t.with_timezone(&Local);
    match per {
        Per::Hour => t.format("%a %-d %b, %H:%M").to_string(),
        Per::Day => t.format("%a %-d %b %Y").to_string(),
        Per::Month => t.format("%B %Y").to_string(),
    }
}

pub(crate) struct BarRow {
    period: String,
    amount: String,
    cost: String,
    /// "partial", "no data", or empty.
    note: String,
    /// The bar's share of the largest, in percent: a bar in the table.
    share: u32,
}

pub(crate) struct Tab {
    per: &'static str,
    title: &'static str,
    current: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "energy.html")]
pub(crate) struct EnergyPage {
    chrome: Chrome,
    path: String,
    ds: String,
    device: String,
    device_name: String,
    title: String,
    per: &'static str,
    tabs: Vec<Tab>,
    unit: String,
    flow_unit: String,
    /// The file keeps the meter's readings (a gauge), drawn as they are.
    readings: bool,
    /// The counter's last reading, in words.
    reading: Option<String>,
    /// The running period's amount, and the range's total and mean.
    current: String,
    total: String,
    mean: String,
    cost_total: Option<String>,
    tariff_note: Option<String>,
    rows: Vec<BarRow>,
    notes: Vec<String>,
    dygraphs: bool,
    width: u32,
    height: u32,
}

/// `GET /rrd/energy/<file>[.png|.json|.csv]`
pub(crate) async fn meter(
    state: web::Data<State>,
    access: Access,
    path: web::Path<String>,
    params: web::Query<EnergyParams>,
) -> Result<HttpResponse, WebError> {
    // The query first: a bad one is a 400 whatever the file.
    per_of(&params)?;
    exports::size(&params)?;
    let path = path.into_inner();
    for (suffix, kind) in [
        (".png", exports::Kind::Png),
        (".json", exports::Kind::Json),
        (".csv", exports::Kind::Csv),
    ] {
        if path.ends_with(suffix) {
            let entry = state.entry(&access, &path, suffix).await?;
            return exports::export(&state, &entry, &params, kind).await;
        }
    }
    let entry = state.entry(&access, &path, "").await?;
    let page = meter_page(&state, &access, &entry, &params).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page.render()?))
}

async fn meter_page(
    state: &State,
    access: &Access,
    entry: &IndexEntry,
    params: &EnergyParams,
) -> Result<EnergyPage, WebError> {
    let per = per_of(params)?;
    let (d, meter) = meter_ds(entry, params.ds.as_deref())?;
    let (width, height) = exports::size(params)?;
    let c = consumption(state, entry, &d.name, meter, per, per.count()).await?;
    let (unit, factor) = c.shown();
    let currency = c.tariffs.as_ref().map(|t| t.currency.clone());
    // The periods before the meter's first reading are left out of the
    // table (the chart still spans the view).
    let first_known = c
        .bars
        .iter()
        .position(Bar::is_known)
        .unwrap_or(c.bars.len());
    let rows = table_rows(per, &c.bars[first_known..], factor, currency.as_deref());
    // The mean of the periods known whole (not the running one, nor the
    // meter's first and last, which it reported for a part of).
    let whole: Vec<&Bar> = c
        .bars
        .iter()
        .filter(|b| b.known_s == b.period.end_s - b.period.start_s)
        .collect();
    let mean = if whole.is_empty() {
        "–".into()
    } else {
        amount_text(whole.iter().map(|b| b.amount).sum::<f64>() * factor / whole.len() as f64)
    };
    let current = match c.bars.last() {
        Some(b) if b.is_known() => amount_text(b.amount * factor),
        _ => "–".into(),
    };
    let mut notes = c.lacking.clone();
    if first_known > 0 && first_known < c.bars.len() {
        let first = period_text(per, c.bars[first_known].period.start_s);
        notes.push(match per {
            Per::Hour => format!("The meter's readings start at {first}: the table starts there."),
            Per::Day => format!("The meter's readings start on {first}: the table starts there."),
            Per::Month => format!("The meter's readings start in {first}: the table starts there."),
        });
    }
    if c.meter.stored == Stored::Readings {
        notes.push(
            "This file keeps the meter's readings (it was made before datalog-rrd knew the \
             series counts): consumption is the rise of its readings from row to row, power is \
             not drawn. New files keep meters as counters."
                .into(),
        );
    }
    let tariff_note = c.tariffs.as_ref().map(|t| {
        format!(
            "Costs at the [[energy.tariff]] prices per {} in {}, by local time of day.",
            t.unit, state.time_zone
        )
    });
    Ok(EnergyPage {
        chrome: Chrome::of(state, access),
        path: url_escape(&entry.path),
        ds: url_escape(&d.name),
        device: tree::device_of(&entry.path).to_owned(),
        device_name: tree::device_name(entry),
        title: super::graph::title_of(entry),
        per: per.as_str(),
        tabs: Per::ALL
            .into_iter()
            .map(|p| Tab {
                per: p.as_str(),
                title: match p {
                    Per::Hour => "Per hour",
                    Per::Day => "Per day",
                    Per::Month => "Per month",
                },
                current: p == per,
            })
            .collect(),
        unit: unit.to_owned(),
        flow_unit: c.meter.flow_unit.to_owned(),
        readings: c.meter.stored == Stored::Readings,
        reading: d
            .last_value
            .map(|v| format!("{} {}", amount_text(v), c.meter.unit)),
        current,
        total: amount_text(c.total()),
        mean,
        cost_total: c
            .total_cost()
            .zip(currency.as_deref())
            .map(|(cost, cur)| cost_text(cost, cur)),
        tariff_note,
        rows,
        notes,
        dygraphs: state.dygraphs.is_some(),
        width,
        height,
    })
}

/// The total of what is known, or a dash when nothing is.
fn known_total(c: &Consumption) -> String {
    if c.bars.iter().any(Bar::is_known) {
        amount_text(c.total())
    } else {
        "–".into()
    }
}

/// The table's rows, newest first; three or more periods in a row with
/// nothing known are one row ("03:00 – 18:00, no data").
fn table_rows(per: Per, bars: &[Bar], factor: f64, currency: Option<&str>) -> Vec<BarRow> {
    let largest = bars.iter().map(|b| b.amount).fold(0.0, f64::max);
    let mut rows = Vec::with_capacity(bars.len());
    let mut newest = bars.len();
    while newest > 0 {
        let b = &bars[newest - 1];
        let quiet = bars[..newest]
            .iter()
            .rev()
            .take_while(|b| !b.is_known())
            .count();
        if quiet >= 3 {
            let oldest = &bars[newest - quiet];
            rows.push(BarRow {
                period: format!(
                    "{} – {}",
                    period_text(per, oldest.period.start_s),
                    period_text(per, b.period.start_s)
                ),
                amount: "–".into(),
                cost: String::new(),
                note: "no data".into(),
                share: 0,
            });
            newest -= quiet;
            continue;
        }
        let span = b.period.end_s - b.period.start_s;
        rows.push(BarRow {
            period: period_text(per, b.period.start_s),
            amount: if b.is_known() {
                amount_text(b.amount * factor)
            } else {
                "–".into()
            },
            cost: match (b.cost, currency) {
                (Some(cost), Some(cur)) if b.is_known() => cost_text(cost, cur),
                _ => String::new(),
            },
            note: if !b.is_known() {
                "no data".into()
            } else if b.known_s < span {
                format!("{}% of it known", b.known_s * 100 / span.max(1))
            } else {
                String::new()
            },
            share: if largest > 0.0 {
                (b.amount / largest * 100.0).round() as u32
            } else {
                0
            },
        });
        newest -= 1;
    }
    rows
}

/// A meter on the overview.
pub(crate) struct MeterRow {
    href: String,
    name: String,
    device: String,
    unit: String,
    today: String,
    month: String,
    month_cost: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "energy_overview.html")]
pub(crate) struct OverviewPage {
    chrome: Chrome,
    meters: Vec<MeterRow>,
    /// Meters beyond the page's bound.
    more: usize,
}

/// At most this many meters are summed on the overview (each costs a
/// read of its archives).
const OVERVIEW_METERS: usize = 40;

/// `GET /rrd/energy`: every meter the user sees, with today's and this
/// month's consumption.
pub(crate) async fn overview(
    state: web::Data<State>,
    access: Access,
) -> Result<OverviewPage, WebError> {
    let index = state.index(&access);
    let found: Vec<(&IndexEntry, &crate::rrd::index::IndexDs, Meter)> = index
        .iter()
        .flat_map(|e| {
            e.ds.iter()
                .filter_map(move |d| d.meter().map(|m| (e, d, m)))
        })
        .collect();
    let mut meters = Vec::new();
    for &(entry, d, meter) in found.iter().take(OVERVIEW_METERS) {
        let month = consumption(&state, entry, &d.name, meter, Per::Month, 1).await?;
        let day = consumption(&state, entry, &d.name, meter, Per::Day, 1).await?;
        let (unit, _) = month.shown();
        let currency = month.tariffs.as_ref().map(|t| t.currency.clone());
        meters.push(MeterRow {
            href: format!(
                "/rrd/energy/{}?ds={}",
                url_escape(&entry.path),
                url_escape(&d.name)
            ),
            name: tree::series_name(&d.series, d.label.as_deref()),
            device: tree::device_name(entry),
            unit: unit.to_owned(),
            today: known_total(&day),
            month: known_total(&month),
            month_cost: month
                .total_cost()
                .zip(currency.as_deref())
                .map(|(c, cur)| cost_text(c, cur))
                .unwrap_or_default(),
        });
    }
    Ok(OverviewPage {
        chrome: Chrome::of(&state, &access),
        more: found.len().saturating_sub(OVERVIEW_METERS),
        meters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_runs_are_one_row_and_short_gaps_stay() {
        let bar = |start_s: i64, amount: Option<f64>| Bar {
            period: energy::Period {
                start_s,
                end_s: start_s + 3600,
            },
            amount: amount.unwrap_or(0.0),
            known_s: if amount.is_some() { 3600 } else { 0 },
            cost: None,
        };
        let bars: Vec<Bar> = [Some(1.0), None, Some(2.0), None, None, None, None]
            .iter()
            .enumerate()
            .map(|(i, a)| bar(i as i64 * 3600, *a))
            .collect();
        let rows = table_rows(Per::Hour, &bars, 1.0, None);
        let said: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.amount.as_str(), r.note.as_str()))
            .collect();
        assert_eq!(
            said,
            [
                ("–", "no data"),
                ("2.00", ""),
                ("–", "no data"),
                ("1.00", "")
            ]
        );
        assert!(rows[0].period.contains(" – "), "{}", rows[0].period);
        assert_eq!((rows[1].share, rows[3].share), (100, 50));
    }

    #[test]
    fn amounts_read_with_about_three_figures() {
        assert_eq!(amount_text(1593.33), "1593");
        assert_eq!(amount_text(12.345), "12.3");
        assert_eq!(amount_text(1.2345), "1.23");
        assert_eq!(amount_text(0.01234), "0.012");
        assert_eq!(amount_text(0.0), "0");
        assert_eq!(cost_text(3.456, "€"), "€\u{a0}3.46");
    }
}
