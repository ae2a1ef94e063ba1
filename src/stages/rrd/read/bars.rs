//! A meter's consumption as bars, drawn by librrd: one bar per local hour,
//! day or month, its height the amount the web UI computed from the same
//! file's archives (`energy::bars`). librrd cannot sum over local periods
//! itself (its archives' rows are UTC), so each bar's amount goes into the
//! graph as a constant of a CDEF over the file's own time axis:
//! `TIME` within a bar's period gives that bar's amount.

use std::path::Path;

use rrd::ops::graph::elements::{
    Area, AreaColor, CDef, ColorWithLegend, Comment, Def, GraphElement,
};
use rrd::ops::graph::props::{GraphProps, Limits, UnitsExponent, YAxis};

use super::graph::{PALETTE, base_props, legend_text, rgb, var};

/// The bars of one meter over a range.
#[derive(Debug, Clone, PartialEq)]
pub struct BarsRequest {
    pub rel_path: String,
    /// The DS whose time axis the bars are drawn on.
    pub ds: String,
    pub title: String,
    /// The vertical axis: `kWh per day`.
    pub axis_label: String,
    /// `(start_s, end_s, amount)`, oldest first; `None`: nothing known.
    pub bars: Vec<(i64, i64, Option<f64>)>,
    pub start_s: i64,
    pub end_s: i64,
    /// Seconds per row of the data the bars are drawn on: fine enough
    /// that a bar's edges fall on its period's.
    pub step_s: u32,
    pub width: u32,
    pub height: u32,
    /// Said under the graph: the range's total, and its cost.
    pub notes: Vec<String>,
}

/// A gap between bars, as a share of a bar's time, so that two bars of
/// the same height read as two.
const GAP: f64 = 0.12;

/// The graph's properties and elements.
pub fn bars_elements(req: &BarsRequest, file: &Path) -> (GraphProps, Vec<GraphElement>) {
    let mut elements = vec![GraphElement::Def(Def {
        var_name: var("t".into()),
        rrd: file.to_owned(),
        ds_name: req.ds.clone(),
        consolidation_fn: rrd::ConsolidationFn::Avg,
        step: Some(req.step_s),
        start: None,
        end: None,
        reduce: None,
    })];
    elements.push(GraphElement::CDef(CDef {
        var_name: var("bars".into()),
        rpn: bars_rpn(&req.bars, i64::from(req.step_s), pixel_s(req)),
    }));
    elements.push(GraphElement::Area(Area {
        value: var("bars".into()),
        color: Some(ColorWithLegend {
            color: AreaColor::Color(rgb(PALETTE[0])),
            legend: Some(legend_text(&req.axis_label).into()),
        }),
        stack: false,
        skip_scale: false,
    }));
    // One COMMENT after the legend: librrd places it on the legend's line
    // (a `\l` to end a line would reach librrd escaped by the rrd crate).
    if !req.notes.is_empty() {
        let text: Vec<String> = req.notes.iter().map(|n| legend_text(n)).collect();
        elements.push(GraphElement::Comment(Comment {
            text: text.join(", "),
        }));
    }
    let mut props = base_props(
        (req.start_s, req.end_s),
        &req.title,
        Some(&req.axis_label),
        (req.width, req.height),
    );
    props.limits = Limits {
        lower_limit: Some(0.0),
        ..Limits::default()
    };
    props.y_axis = YAxis {
        units_exponent: UnitsExponent::new(0).ok(),
        format: Some("%.4lg".into()),
        ..YAxis::default()
    };
    (props, elements)
}

/// Seconds per pixel of the plotting area.
fn pixel_s(req: &BarsRequest) -> i64 {
    (req.end_s - req.start_s) / i64::from(req.width.max(1))
}

/// `t,POP` then, for each bar, `TIME` within its period (less a gap at
/// its end) → its amount, else the bars before: nested `IF`s, unknown
/// outside every bar. Numbers only.
fn bars_rpn(bars: &[(i64, i64, Option<f64>)], step_s: i64, pixel_s: i64) -> String {
    let mut rpn = String::from("t,POP,UNKN");
    for &(start, end, amount) in bars {
        let Some(amount) = amount.filter(|a| a.is_finite()) else {
            continue;
        };
        // At least two pixels, whole rows.
        let wanted = (((end - start) as f64 * GAP) as i64).max(2 * pixel_s);
        let gap = (wanted + step_s - 1) / step_s * step_s;
        let last = (end - gap).max(start + step_s);
        // `TIME` is a row's end: rows ending in (start, last] are the bar.
        rpn = format!("TIME,{start},GT,TIME,{last},LE,*,{amount},{rpn},IF");
    }
    rpn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bar_is_its_amount_within_its_period_and_unknown_elsewhere() {
        let bars = [
            (0, 3600, Some(1.5)),
            (3600, 7200, None),
            (7200, 10_800, Some(2.0)),
        ];
        // 12% of an hour is 432 s: 600 s in whole rows of 300 s.
        assert_eq!(
            bars_rpn(&bars, 300, 10),
            "TIME,7200,GT,TIME,10200,LE,*,2,TIME,0,GT,TIME,3000,LE,*,1.5,t,POP,UNKN,IF,IF"
        );
        // At least two pixels of 400 s: 900 s.
        assert!(bars_rpn(&bars, 300, 400).starts_with("TIME,7200,GT,TIME,9900,LE"));
    }
}
