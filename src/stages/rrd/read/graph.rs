//! A [`GraphRequest`] as librrd's typed graph properties and elements: per
//! line a DEF, its drawing and its legend's figures; then events as
//! vertical rules and thresholds as horizontal ones. Labels come from
//! payloads and discovery, so every text is escaped for librrd here.

use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use rrd::ops::graph::Color;
use rrd::ops::graph::elements::{
    Area, AreaColor, CDef, ColorWithLegend, Comment, Def, GPrint, GraphElement, HRule, Line, Print,
    PrintFormatMode, VDef, VRule, Value, VarName,
};
use rrd::ops::graph::props::{
    GraphProps, Labels, Limits, Size, TimeRange, UnitsExponent, YAxis, YAxisGrid,
};

use super::{GraphLine, GraphRequest};
use crate::model::{Cf, Draw};

/// Colours for successive DS: distinct and readable on white.
pub const PALETTE: [(u8, u8, u8); 8] = [
    (0x1f, 0x77, 0xb4),
    (0xd6, 0x27, 0x28),
    (0x2c, 0xa0, 0x2c),
    (0xff, 0x7f, 0x0e),
    (0x94, 0x67, 0xbd),
    (0x8c, 0x56, 0x4b),
    (0xe3, 0x77, 0xc2),
    (0x17, 0xbe, 0xcf),
];

/// The colour of events' rules.
const MARK_COLOR: (u8, u8, u8) = (0x94, 0x67, 0xbd);

/// The graph's properties and elements: one averaged line per DS, with its
/// last, minimum, average and maximum over the range in the legend.
/// `path_of` gives the path of an index file (the request's, or a line's).
pub fn graph_elements(
    req: &GraphRequest,
    path_of: &dyn Fn(&str) -> PathBuf,
) -> (GraphProps, Vec<GraphElement>) {
    let mut elements = Vec::with_capacity(req.lines.len() * 10);
    for (i, line) in req.lines.iter().enumerate() {
        let file = path_of(line.style.file.as_deref().unwrap_or(&req.rel_path));
        line_elements(&mut elements, i, line, file, req.step_s);
    }
    if req.empty {
        // Figures of nothing would read "-nan": words instead.
        elements.retain(|e| !matches!(e, GraphElement::GPrint(_)));
        elements.push(GraphElement::Comment(Comment {
            text: "No values in this range\\l".into(),
        }));
    }
    if !req.lines.is_empty() {
        axis_end_element(&mut elements);
    }
    mark_elements(&mut elements, req);
    threshold_elements(&mut elements, req);
    (props(req), elements)
}

/// `PRINT` (not drawn) of the last row's time as librrd's clock reads it:
/// the local time at the right end of the axis, for the web UI to say and
/// tests to compare.
fn axis_end_element(elements: &mut Vec<GraphElement>) {
    elements.push(GraphElement::CDef(CDef {
        var_name: var("tcol".into()),
        rpn: "v0,POP,TIME".into(),
    }));
    elements.push(GraphElement::VDef(VDef {
        var_name: var("tend".into()),
        rpn: "tcol,LAST".into(),
    }));
    elements.push(GraphElement::Print(Print {
        var_name: var("tend".into()),
        format: "%Y-%m-%d %H\\:%M".into(),
        format_mode: Some(PrintFormatMode::StrfTime),
    }));
}

/// A graph's range, title, vertical label and size.
pub(super) fn base_props(
    (start_s, end_s): (i64, i64),
    title: &str,
    vertical_label: Option<&str>,
    (width, height): (u32, u32),
) -> GraphProps {
    GraphProps {
        time_range: TimeRange {
            start: Some(timestamp(start_s)),
            end: Some(timestamp(end_s)),
            step_seconds: None,
        },
        labels: Labels {
            title: Some(legend_text(title)),
            vertical_label: vertical_label.map(legend_text),
        },
        size: Size {
            width: Some(width),
            height: Some(height),
            ..Size::default()
        },
        ..GraphProps::default()
    }
}

fn props(req: &GraphRequest) -> GraphProps {
    let mut props = base_props(
        (req.start_s, req.end_s),
        &req.title,
        common_unit(&req.lines).as_deref(),
        (req.width, req.height),
    );
    if req.compact {
        props.labels.title = None;
        props.legend.no_legend = true;
    }
    // Step drawing, not slopes: each row is drawn as the step it stands
    // for, so a series with a single value (or one between gaps) still
    // shows, as a short level line; with slopes librrd draws nothing for
    // a point without a known neighbour.
    props.misc.slope_mode = false;
    // Plain numbers on the axis: librrd's SI prefixes made 0.4 A read
    // "400 m", and an on/off share "333.33m".
    props.y_axis = YAxis {
        units_exponent: UnitsExponent::new(0).ok(),
        // Six significant digits, no more: 0.217, 231, 123456.
        format: Some("%.6lg".into()),
        ..YAxis::default()
    };
    if !req.lines.is_empty() && req.lines.iter().all(|l| l.binary) {
        // On/off states: a band between 0 (off) and 1 (on), nothing else.
        props.limits = Limits {
            lower_limit: Some(0.0),
            upper_limit: Some(1.0),
            rigid: true,
            ..Limits::default()
        };
        props.y_axis.grid = Some(YAxisGrid::Custom {
            grid_step: 1,
            label_factor: 1,
        });
        props.labels.vertical_label = Some("1 = on".into());
    }
    props
}

/// Line `i`: its DEF (`v<i>`), its line or area, and its legend's last,
/// minimum, average and maximum.
fn line_elements(
    elements: &mut Vec<GraphElement>,
    i: usize,
    line: &GraphLine,
    file: PathBuf,
    step_s: Option<u32>,
) {
    let avg = format!("v{i}");
    // Scaled: the file's values under another name, `v<i>` their product.
    let read = match line.scale {
        Some(_) => format!("r{i}"),
        None => avg.clone(),
    };
    elements.push(GraphElement::Def(Def {
        var_name: var(read.clone()),
        rrd: file,
        ds_name: line.ds.clone(),
        consolidation_fn: match line.style.cf.unwrap_or(Cf::Average) {
            Cf::Average => rrd::ConsolidationFn::Avg,
            Cf::Min => rrd::ConsolidationFn::Min,
            Cf::Max => rrd::ConsolidationFn::Max,
            Cf::Last => rrd::ConsolidationFn::Last,
        },
        step: step_s,
        start: None,
        end: None,
        reduce: None,
    }));
    if let Some(scale) = line.scale {
        elements.push(GraphElement::CDef(CDef {
            var_name: var(avg.clone()),
            rpn: format!("{read},{scale},*"),
        }));
    }
    let color = rgb(line.style.color.unwrap_or(PALETTE[i % PALETTE.len()]));
    let legend = Some(format!("{:<24}", legend_text(&line.legend)).into());
    if line.binary {
        return state_elements(elements, &avg, color, legend);
    }
    elements.push(match line.style.draw {
        Draw::Line => GraphElement::Line(Line {
            width: 2.0,
            value: var(avg.clone()),
            color: Some(ColorWithLegend { color, legend }),
            stack: false,
            skip_scale: false,
            dashes: None,
        }),
        draw => GraphElement::Area(Area {
            value: var(avg.clone()),
            color: Some(ColorWithLegend {
                color: AreaColor::Color(color),
                legend,
            }),
            stack: draw == Draw::Stack && i > 0,
            skip_scale: false,
        }),
    });
    let unit = line.unit.as_deref().map(gprint_text).unwrap_or_default();
    for (suffix, rpn, label) in [
        ("last", "LAST", "last"),
        ("min", "MINIMUM", "min"),
        ("avg", "AVERAGE", "avg"),
        ("max", "MAXIMUM", "max"),
    ] {
        let name = format!("v{i}{suffix}");
        elements.push(GraphElement::VDef(VDef {
            var_name: var(name.clone()),
            rpn: format!("{avg},{rpn}"),
        }));
        // `\l` ends the legend line (GPRINT formats are not escaped).
        let end = if suffix == "max" { "\\l" } else { "" };
        elements.push(GraphElement::GPrint(GPrint {
            var_name: var(name),
            format: format!("{label} %9.6lg{unit}{end}"),
        }));
    }
}

/// An on/off state (`avg` holds 0 or 1 per step, the share of steps on
/// once consolidated): a filled band, and in the legend the share of the
/// range it was on.
fn state_elements(
    elements: &mut Vec<GraphElement>,
    avg: &str,
    color: Color,
    legend: Option<rrd::ops::graph::elements::Legend>,
) {
    elements.push(GraphElement::Area(Area {
        value: var(avg.to_owned()),
        color: Some(ColorWithLegend {
            color: AreaColor::Color(color),
            legend,
        }),
        stack: false,
        skip_scale: false,
    }));
    let percent = format!("{avg}pct");
    elements.push(GraphElement::CDef(CDef {
        var_name: var(percent.clone()),
        rpn: format!("{avg},100,*"),
    }));
    let share = format!("{avg}on");
    elements.push(GraphElement::VDef(VDef {
        var_name: var(share.clone()),
        rpn: format!("{percent},AVERAGE"),
    }));
    elements.push(GraphElement::GPrint(GPrint {
        var_name: var(share),
        format: "on %3.0lf%% of the time\\l".into(),
    }));
}

/// Events in the range: a vertical rule each, with its time and text in
/// the legend (none on compact graphs).
fn mark_elements(elements: &mut Vec<GraphElement>, req: &GraphRequest) {
    let in_range = |time_s: &i64| (req.start_s..=req.end_s).contains(time_s);
    for m in req.marks.iter().filter(|m| in_range(&m.time_s)) {
        elements.push(GraphElement::VRule(VRule {
            value: Value::Constant(m.time_s as f64),
            color: rgb(MARK_COLOR),
            legend: (!req.compact)
                .then(|| legend_text(&format!("{} {}", form_time(m.time_s), m.text)).into()),
            dashes: None,
        }));
    }
}

/// Thresholds as horizontal rules with their legends.
fn threshold_elements(elements: &mut Vec<GraphElement>, req: &GraphRequest) {
    for t in &req.thresholds {
        elements.push(GraphElement::HRule(HRule {
            value: Value::Constant(t.value),
            color: rgb(t.color),
            legend: Some(legend_text(&t.legend).into()),
            dashes: None,
        }));
    }
}

pub(super) fn rgb((red, green, blue): (u8, u8, u8)) -> Color {
    Color {
        red,
        green,
        blue,
        alpha: None,
    }
}

fn timestamp(unix_s: i64) -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix_s.max(0) as u64)
}

/// Text for a GPRINT format: `%` and `:` would otherwise be read by librrd
/// as a conversion or a field separator, and a backslash, even escaped,
/// as a legend control code once the format is printed (`\l`, `\g`…).
fn gprint_text(s: &str) -> String {
    legend_text(s).replace('%', "%%").replace(':', "\\:")
}

/// Text for a legend or title: backslashes become `/`, since librrd reads
/// control codes at the end of legends even where the rrd crate escaped
/// them. Labels come from payloads and discovery, so anything can be in
/// them.
pub(super) fn legend_text(s: &str) -> String {
    s.replace('\\', "/")
}

pub(super) fn var(name: String) -> VarName {
    VarName::new(name).expect("generated variable names are [a-z0-9]")
}

/// `YYYY-MM-DD HH:MM` UTC, for an event's legend.
fn form_time(t_s: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(t_s, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// The unit every line shares, for the vertical axis.
fn common_unit(lines: &[GraphLine]) -> Option<String> {
    let first = lines.first()?.unit.clone()?;
    lines
        .iter()
        .all(|l| l.unit.as_deref() == Some(&first))
        .then_some(first)
}

#[cfg(test)]
mod tests {
    use super::super::{IMAGE_FORMAT, LineStyle, Mark, Threshold};
    use super::*;

    fn request(units: [Option<&str>; 2]) -> GraphRequest {
        GraphRequest {
            rel_path: "home/climate".into(),
            title: "home/climate".into(),
            lines: vec![
                GraphLine {
                    ds: "temp".into(),
                    legend: "Temperature: living".into(),
                    unit: units[0].map(Into::into),
                    style: Default::default(),
                    binary: false,
                    scale: None,
                },
                GraphLine {
                    ds: "hum".into(),
                    legend: "Humidity".into(),
                    unit: units[1].map(Into::into),
                    style: Default::default(),
                    binary: false,
                    scale: None,
                },
            ],
            start_s: 1_700_000_000,
            end_s: 1_700_086_400,
            width: 600,
            height: 200,
            step_s: None,
            unless_last_update: None,
            thresholds: Vec::new(),
            compact: false,
            marks: Vec::new(),
            svg: false,
            empty: false,
        }
    }

    #[test]
    fn graph_arguments_escape_legends_and_units() {
        let req = request([Some("°C"), Some("%")]);
        let (props, elements) =
            graph_elements(&req, &|rel| PathBuf::from(format!("/data/{rel}.rrd")));
        let args = rrd::ops::graph::graph_args(Some(IMAGE_FORMAT), &props, &elements).unwrap();
        let text = args.join("\n");
        assert!(text.contains("DEF:v0=/data/home/climate.rrd:temp:AVERAGE"));
        assert!(text.contains("Temperature\\: living"), "{text}");
        // Plain numbers: no SI prefix (0.4 A read "400 m").
        assert!(text.contains("GPRINT:v1max:max %9.6lg%%\\l"), "{text}");
        assert!(text.contains("--units-exponent\n0"), "{text}");
        assert_eq!(gprint_text(r"a:b%c\l"), r"a\:b%%c/l");
        assert!(text.contains("--start\n1700000000"), "{text}");
        // Units differ: no vertical label.
        assert_eq!(props.labels.vertical_label, None);
        let (props, _) = graph_elements(&request([Some("W"), Some("W")]), &|rel| {
            PathBuf::from(format!("/data/{rel}.rrd"))
        });
        assert_eq!(props.labels.vertical_label.as_deref(), Some("W"));
    }

    #[test]
    fn views_draw_lines_of_any_file_areas_stacks_and_thresholds() {
        let mut req = request([Some("°C"), Some("°C")]);
        req.lines[1].style = LineStyle {
            file: Some("cellar/climate".into()),
            color: Some((0xff, 0x00, 0x10)),
            draw: crate::model::Draw::Area,
            cf: Some(Cf::Max),
        };
        req.thresholds = vec![Threshold {
            value: 30.0,
            color: (0xd6, 0x27, 0x28),
            legend: "critical 30: CROSSED by cellar 31".into(),
        }];
        let (props, elements) =
            graph_elements(&req, &|rel| PathBuf::from(format!("/data/{rel}.rrd")));
        let args = rrd::ops::graph::graph_args(Some(IMAGE_FORMAT), &props, &elements).unwrap();
        let text = args.join("\n");
        assert!(
            text.contains("DEF:v0=/data/home/climate.rrd:temp:AVERAGE"),
            "{text}"
        );
        assert!(
            text.contains("DEF:v1=/data/cellar/climate.rrd:hum:MAX"),
            "{text}"
        );
        assert!(text.contains("AREA:v1#FF0010"), "{text}");
        assert!(
            text.ends_with("HRULE:30#D62728:critical 30\\: CROSSED by cellar 31"),
            "{text}"
        );
        assert!(text.contains("--title") && !text.contains("--no-legend"));
        // Events in the range: a vertical rule each, with time and text.
        req.start_s = 1_764_000_000;
        req.end_s = 1_764_086_400;
        req.marks = vec![
            Mark {
                time_s: 1_764_043_200,
                text: "Boiler: serviced".into(),
            },
            Mark {
                time_s: 1_700_000_000,
                text: "long ago".into(),
            },
        ];
        let (props, elements) =
            graph_elements(&req, &|rel| PathBuf::from(format!("/data/{rel}.rrd")));
        let text = rrd::ops::graph::graph_args(Some(IMAGE_FORMAT), &props, &elements)
            .unwrap()
            .join("\n");
        assert!(
            text.contains("VRULE:1764043200#9467BD:2025-11-25 04\\:00 Boiler\\: serviced"),
            "{text}"
        );
        assert!(!text.contains("long ago"), "{text}");
        req.marks.clear();
        // The overview's small graphs: no title, no legend.
        req.compact = true;
        let (props, elements) =
            graph_elements(&req, &|rel| PathBuf::from(format!("/data/{rel}.rrd")));
        let args = rrd::ops::graph::graph_args(Some(IMAGE_FORMAT), &props, &elements).unwrap();
        assert!(args.contains(&"--no-legend".to_owned()), "{args:?}");
        assert!(!args.contains(&"--title".to_owned()), "{args:?}");
    }
}
