//! Every librrd call the daemon makes, in one place: those the `rrd` crate
//! does not wrap in the form we need, made through `rrd-sys`, and the two
//! it wraps well (`info`, `graph`), so that errors come out alike (librrd's
//! message as a `String`) and one module holds what touches C. Only the RRD
//! thread calls these (and `check-config`/`migrate`, before it runs).

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char};
use std::fmt::Write;
use std::path::Path;

use rrd::ops::graph::elements::GraphElement;
use rrd::ops::graph::props::{GraphProps, ImageFormat};
use rrd::ops::info::InfoValue;

use super::plan::Update;

/// Creates `path` with librrd's own argument strings (`DS:…`, `RRA:…`),
/// refusing to overwrite; pre-filled from `source` when given (as
/// `rrdtool create --source`: matching DS by name, archives by CF). Strings
/// rather than the `rrd` crate's typed builders, whose integer-only bounds
/// cannot express every DS we accept.
pub(crate) fn create(
    path: &Path,
    step_secs: u32,
    start_s: i64,
    args: &[String],
    source: Option<&Path>,
) -> Result<(), String> {
    let filename = cstring(&path.to_string_lossy())?;
    let args: Vec<CString> = args.iter().map(|a| cstring(a)).collect::<Result<_, _>>()?;
    let mut argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
    let source = source.map(|s| cstring(&s.to_string_lossy())).transpose()?;
    let mut sources: [*const c_char; 2] = [
        source.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
        std::ptr::null(),
    ];
    let argc = i32::try_from(argv.len()).map_err(|_| "too many arguments".to_owned())?;
    let start = to_time_t(start_s)?;
    // SAFETY: every pointer is to a NUL-terminated string that outlives the
    // call; `sources` is a NULL-terminated array, as librrd expects.
    let rc = unsafe {
        rrd_sys::rrd_create_r2(
            filename.as_ptr(),
            step_secs.into(),
            start,
            1,
            sources.as_mut_ptr(),
            std::ptr::null(),
            argc,
            argv.as_mut_ptr(),
        )
    };
    if rc == 0 { Ok(()) } else { Err(take_error()) }
}

/// Writes `updates` (times strictly increasing, one value per name of
/// `ds_names` each) in one `rrd_updatex_r` call. The names go to librrd as
/// the update's template, so values land in their DS whatever order the
/// file has them in (a janitoo file, one made by hand, a config whose `ds`
/// were reordered). The arguments are formatted into a single buffer: one
/// allocation per batch instead of several per row.
pub(crate) fn update(path: &Path, ds_names: &str, updates: &[Update]) -> Result<(), String> {
    let filename = cstring(&path.to_string_lossy())?;
    let template = cstring(ds_names)?;
    let width = ds_names.split(':').count();
    let mut text = String::with_capacity(updates.len() * (12 + 12 * width));
    let mut ends = Vec::with_capacity(updates.len());
    for u in updates {
        let _ = write!(text, "{}", u.time());
        match u {
            Update::Values(_, values) => {
                for v in values.iter() {
                    match v {
                        Some(v) => {
                            let _ = write!(text, ":{v}");
                        }
                        None => text.push_str(":U"),
                    }
                }
            }
            Update::Unknown(_) => (0..width).for_each(|_| text.push_str(":U")),
        }
        text.push('\0');
        ends.push(text.len());
    }
    let base = text.as_ptr() as *const c_char;
    let mut argv: Vec<*const c_char> = std::iter::once(0)
        .chain(ends.iter().copied())
        .take(ends.len())
        // SAFETY: each offset is the start of a NUL-terminated argument
        // inside `text`, which outlives the call.
        .map(|start| unsafe { base.add(start) })
        .collect();
    let argc = i32::try_from(argv.len()).map_err(|_| "too many rows".to_owned())?;
    // SAFETY: `filename`, `template` and every argv entry are
    // NUL-terminated strings alive for the call.
    let rc = unsafe {
        rrd_sys::rrd_updatex_r(
            filename.as_ptr(),
            template.as_ptr(),
            0,
            argc,
            argv.as_mut_ptr(),
        )
    };
    if rc == 0 { Ok(()) } else { Err(take_error()) }
}

/// `rrdtool tune path args…`: changes made in place (heartbeat, bounds,
/// DS type, DS name).
pub(crate) fn tune(path: &Path, args: &[String]) -> Result<(), String> {
    let mut all = vec![cstring("tune")?, cstring(&path.to_string_lossy())?];
    for a in args {
        all.push(cstring(a)?);
    }
    let mut argv: Vec<*mut c_char> = all.iter().map(|a| a.as_ptr() as *mut c_char).collect();
    let argc = i32::try_from(argv.len()).map_err(|_| "too many arguments".to_owned())?;
    // SAFETY: argv points to NUL-terminated strings that outlive the call;
    // librrd's option parser may reorder the pointers, never the bytes.
    let rc = unsafe { rrd_sys::rrd_tune(argc, argv.as_mut_ptr()) };
    if rc == 0 { Ok(()) } else { Err(take_error()) }
}

/// The file's last update (`rrd_last_r`).
pub(crate) fn last_update(path: &Path) -> Result<i64, String> {
    let filename = cstring(&path.to_string_lossy())?;
    // SAFETY: a NUL-terminated path alive for the call.
    let t = unsafe { rrd_sys::rrd_last_r(filename.as_ptr()) };
    if t < 0 {
        Err(take_error())
    } else {
        Ok(from_time_t(t))
    }
}

/// Each DS's last value as librrd keeps it (`rrdtool lastupdate`), by DS
/// name: what the last update gave it (a COUNTER's count, not its rate),
/// `None` when that was unknown.
pub(crate) fn last_values(path: &Path) -> Result<Vec<(String, Option<f64>)>, String> {
    let filename = cstring(&path.to_string_lossy())?;
    let mut last: rrd_sys::time_t = 0;
    let mut count: std::ffi::c_ulong = 0;
    let mut names: *mut *mut c_char = std::ptr::null_mut();
    let mut values: *mut *mut c_char = std::ptr::null_mut();
    // SAFETY: a NUL-terminated path alive for the call; librrd fills the
    // four out-pointers on success.
    let rc = unsafe {
        rrd_sys::rrd_lastupdate_r(
            filename.as_ptr(),
            &mut last,
            &mut count,
            &mut names,
            &mut values,
        )
    };
    if rc != 0 {
        return Err(take_error());
    }
    let mut out = Vec::with_capacity(count as usize);
    // SAFETY: on success librrd returns `count` malloc'ed strings in each
    // malloc'ed array; each is read once and freed with librrd's free.
    unsafe {
        for i in 0..count as usize {
            let name = *names.add(i);
            let value = *values.add(i);
            let text = |p: *mut c_char| {
                if p.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr(p).to_string_lossy().into_owned()
                }
            };
            let parsed = text(value).parse::<f64>().ok().filter(|v| v.is_finite());
            out.push((text(name), parsed));
            rrd_sys::rrd_freemem(name.cast());
            rrd_sys::rrd_freemem(value.cast());
        }
        rrd_sys::rrd_freemem(names.cast());
        rrd_sys::rrd_freemem(values.cast());
    }
    Ok(out)
}

/// `rrdtool info path`: every key and its value.
pub(crate) fn info(path: &Path) -> Result<HashMap<String, InfoValue>, String> {
    rrd::ops::info::info(path).map_err(|e| e.to_string())
}

/// `rrdtool graph`: the image's bytes, and what its first `PRINT` printed.
pub(crate) fn graph(
    format: ImageFormat,
    props: &GraphProps,
    elements: &[GraphElement],
) -> Result<(Vec<u8>, Option<String>), String> {
    let (bytes, meta) =
        rrd::ops::graph::graph(format, props, elements).map_err(|e| e.to_string())?;
    // graph_elements prints the axis' end first.
    let printed = match meta.extra_info.get("print[0]") {
        Some(InfoValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    Ok((bytes, printed))
}

/// What `rrd_xport` returns.
pub(crate) struct Xported {
    pub start_s: i64,
    pub end_s: i64,
    pub step_s: i64,
    pub columns: Vec<String>,
    /// Row by row, `columns.len()` values each, NaN for unknown.
    pub values: Vec<f64>,
}

/// `rrd_xport` with `args` (its first being "xport").
pub(crate) fn xport(args: &[String]) -> Result<Xported, String> {
    let args: Vec<CString> = args.iter().map(|a| cstring(a)).collect::<Result<_, _>>()?;
    let mut argv: Vec<*mut c_char> = args.iter().map(|a| a.as_ptr() as *mut c_char).collect();
    let argc = i32::try_from(argv.len()).map_err(|_| "too many arguments".to_owned())?;
    let mut xsize: std::ffi::c_int = 0;
    let (mut start, mut end): (rrd_sys::time_t, rrd_sys::time_t) = (0, 0);
    let (mut step, mut col_cnt): (std::ffi::c_ulong, std::ffi::c_ulong) = (0, 0);
    let mut legend_v: *mut *mut c_char = std::ptr::null_mut();
    let mut data: *mut rrd_sys::rrd_value_t = std::ptr::null_mut();
    // SAFETY: argv points to NUL-terminated strings that outlive the call
    // (librrd's option parser may reorder the pointers, never the bytes);
    // every out-pointer is a valid local.
    let rc = unsafe {
        rrd_sys::rrd_xport(
            argc,
            argv.as_mut_ptr(),
            &mut xsize,
            &mut start,
            &mut end,
            &mut step,
            &mut col_cnt,
            &mut legend_v,
            &mut data,
        )
    };
    if rc != 0 {
        return Err(take_error());
    }
    let (start, end) = (from_time_t(start), from_time_t(end));
    let cols = col_cnt as usize;
    let rows = if step == 0 {
        0
    } else {
        ((end - start) / step as i64).max(0) as usize
    };
    // SAFETY: on success librrd hands over `col_cnt` malloc'd legend
    // strings in a malloc'd array and `rows * col_cnt` malloc'd values; we
    // copy them out and free each exactly once.
    unsafe {
        let mut columns = Vec::with_capacity(cols);
        if !legend_v.is_null() {
            for i in 0..cols {
                let p = *legend_v.add(i);
                if !p.is_null() {
                    columns.push(CStr::from_ptr(p).to_string_lossy().into_owned());
                    libc::free(p.cast());
                }
            }
            libc::free(legend_v.cast());
        }
        let values = if data.is_null() {
            Vec::new()
        } else {
            let v = std::slice::from_raw_parts(data, rows * cols).to_vec();
            libc::free(data.cast());
            v
        };
        Ok(Xported {
            start_s: start,
            end_s: end,
            step_s: step as i64,
            columns,
            values,
        })
    }
}

/// librrd's `time_t` is 64 bits on amd64 and arm64 but 32 bits on Debian
/// 12's armhf: times cross the boundary through these two, never `as`.
fn to_time_t(t: i64) -> Result<rrd_sys::time_t, String> {
    rrd_sys::time_t::try_from(t).map_err(|_| format!("time {t} does not fit this system's time_t"))
}

#[allow(clippy::useless_conversion, reason = "time_t is i32 on armhf")]
fn from_time_t(t: rrd_sys::time_t) -> i64 {
    i64::from(t)
}

fn cstring(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("{s:?} contains a NUL byte"))
}

/// librrd's error message for this thread, cleared so that the next call
/// does not report it again.
fn take_error() -> String {
    // SAFETY: librrd returns a thread-local, NUL-terminated buffer (or NULL).
    unsafe {
        let p = rrd_sys::rrd_get_error();
        let msg = if p.is_null() {
            String::new()
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        };
        rrd_sys::rrd_clear_error();
        if msg.is_empty() {
            "unknown librrd error".into()
        } else {
            msg
        }
    }
}
