//! The RRD thread's reads for the web UI: graphs and exports, between
//! two writes (librrd's graph code must never run on two threads).

use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use super::super::read::{
    self, ArchivesRequest, BarsRequest, GraphReply, GraphRequest, MeterArchives, ReadError, Xport,
    XportRequest,
};
use super::Worker;
use crate::rrd::ffi;

impl Worker {
    /// The last update of a file this thread may not have written yet.
    fn last_update_of(&self, rel_path: &str, path: &Path) -> Result<i64, ReadError> {
        if let Some(&Some(t)) = self.last_update.get(rel_path) {
            return Ok(t);
        }
        if !path.exists() {
            return Err(ReadError::NotFound(rel_path.to_owned()));
        }
        ffi::last_update(path).map_err(|reason| ReadError::Librrd {
            path: path.display().to_string(),
            reason,
        })
    }

    pub(super) fn graph(&mut self, req: &GraphRequest) -> Result<GraphReply, ReadError> {
        let path = self.file_path(&req.rel_path);
        // The newest of the files it draws (a dashboard's view has several).
        let mut last_update = self.last_update_of(&req.rel_path, &path)?;
        for file in req.lines.iter().filter_map(|l| l.style.file.as_deref()) {
            if file != req.rel_path {
                let t = self.last_update_of(file, &self.file_path(file))?;
                last_update = last_update.max(t);
            }
        }
        if req.unless_last_update == Some(last_update) {
            return Ok(GraphReply::Unchanged);
        }
        let (props, elements) = read::graph_elements(req, &|rel| self.file_path(rel));
        let format = if req.svg {
            rrd::ops::graph::props::ImageFormat::Svg
        } else {
            read::IMAGE_FORMAT
        };
        let (bytes, axis_end) = self.render(&path, format, &props, &elements)?;
        Ok(GraphReply::Image {
            bytes,
            last_update,
            axis_end,
        })
    }

    pub(super) fn xport(&mut self, req: &XportRequest) -> Result<Xport, ReadError> {
        let path = self.file_path(&req.rel_path);
        if !path.exists() {
            return Err(ReadError::NotFound(req.rel_path.clone()));
        }
        let x = ffi::xport(&read::xport_args(req, &path)).map_err(|reason| ReadError::Librrd {
            path: path.display().to_string(),
            reason,
        })?;
        let width = x.columns.len().max(1);
        let rows = x
            .values
            .chunks(width)
            .enumerate()
            .map(|(i, row)| {
                let t = x.start_s + (i as i64 + 1) * x.step_s;
                (t, row.iter().map(|v| v.is_finite().then_some(*v)).collect())
            })
            .collect();
        Ok(Xport {
            start_s: x.start_s,
            end_s: x.end_s,
            step_s: x.step_s,
            columns: x.columns,
            rows,
        })
    }

    /// Every AVERAGE archive of the meter's DS over the request's range,
    /// finest first, each read where no finer one reaches (librrd's fetch
    /// picks the archive whose step is asked for when it covers the range).
    pub(super) fn meter_archives(
        &mut self,
        req: &ArchivesRequest,
    ) -> Result<MeterArchives, ReadError> {
        let path = self.file_path(&req.rel_path);
        if !path.exists() {
            return Err(ReadError::NotFound(req.rel_path.clone()));
        }
        let librrd = |reason: String| ReadError::Librrd {
            path: path.display().to_string(),
            reason,
        };
        let layout = super::super::migrate::read_layout(&path).map_err(librrd)?;
        let ds_type = layout
            .ds
            .iter()
            .find(|d| d.name == req.ds)
            .and_then(|d| crate::model::DsType::from_rrd_str(&d.ds_type))
            .ok_or_else(|| ReadError::NotFound(format!("{}: DS {}", req.rel_path, req.ds)))?;
        let mut steps: Vec<(i64, i64)> = layout
            .rras
            .iter()
            .filter_map(|r| {
                let mut parts = r.split(':').skip(1);
                let cf = parts.next()?;
                let steps: i64 = parts.nth(1)?.parse().ok()?;
                let rows: i64 = parts.next()?.parse().ok()?;
                (cf == "AVERAGE").then_some((steps * layout.step_secs as i64, rows))
            })
            .collect();
        steps.sort_unstable();
        let mut archives = Vec::new();
        let mut covered_from = req.end_s.min(layout.last_update);
        for &(step, rows) in &steps {
            let newest = layout.last_update.div_euclid(step) * step;
            // The oldest row may be overwritten while we read: skip it.
            let start = req.start_s.max(newest - (rows - 1) * step).div_euclid(step) * step;
            // Up to the finer archive's first row, or past it: `pieces`
            // counts the part of a row it does not cover.
            let end = (covered_from + step - 1).div_euclid(step) * step;
            let end = end.min(newest);
            if end <= start {
                continue;
            }
            let x = self.xport(&XportRequest {
                rel_path: req.rel_path.clone(),
                ds: vec![req.ds.clone()],
                scales: vec![None],
                cf: crate::model::Cf::Average,
                start_s: start,
                end_s: end,
                max_rows: u32::try_from(rows + 2).unwrap_or(u32::MAX),
                step_s: u32::try_from(step).ok(),
            })?;
            covered_from = covered_from.min(x.start_s);
            archives.push(crate::energy::Archive {
                step_s: x.step_s,
                rows: x
                    .rows
                    .into_iter()
                    .map(|(t, values)| (t, values.first().copied().flatten()))
                    .collect(),
            });
        }
        Ok(MeterArchives {
            ds_type,
            last_update: layout.last_update,
            layout: steps,
            archives,
        })
    }

    /// A meter's bars, drawn by librrd.
    pub(super) fn bars(&mut self, req: &BarsRequest) -> Result<Vec<u8>, ReadError> {
        let path = self.file_path(&req.rel_path);
        if !path.exists() {
            return Err(ReadError::NotFound(req.rel_path.clone()));
        }
        let (props, elements) = read::bars_elements(req, &path);
        let (bytes, _) = self.render(&path, read::IMAGE_FORMAT, &props, &elements)?;
        Ok(bytes)
    }

    /// librrd draws; the time it took is counted.
    fn render(
        &self,
        path: &Path,
        format: rrd::ops::graph::props::ImageFormat,
        props: &rrd::ops::graph::props::GraphProps,
        elements: &[rrd::ops::graph::elements::GraphElement],
    ) -> Result<(Vec<u8>, Option<String>), ReadError> {
        let started = Instant::now();
        let drawn = ffi::graph(format, props, elements).map_err(|reason| ReadError::Librrd {
            path: path.display().to_string(),
            reason,
        })?;
        self.metrics.graphs_rendered.fetch_add(1, Relaxed);
        self.metrics
            .graph_render_micros
            .fetch_add(started.elapsed().as_micros() as u64, Relaxed);
        Ok(drawn)
    }
}
