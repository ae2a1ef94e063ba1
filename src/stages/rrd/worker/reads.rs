//! The RRD thread's reads for the web UI: graphs and exports, between
//! two writes (librrd's graph code must never run on two threads).

use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use super::super::read::{self, GraphReply, GraphRequest, ReadError, Xport, XportRequest};
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
        let started = Instant::now();
        let (props, elements) = read::graph_elements(req, &|rel| self.file_path(rel));
        let format = if req.svg {
            rrd::ops::graph::props::ImageFormat::Svg
        } else {
            read::IMAGE_FORMAT
        };
        let (bytes, axis_end) =
            ffi::graph(format, &props, &elements).map_err(|reason| ReadError::Librrd {
                path: path.display().to_string(),
                reason,
            })?;
        self.metrics.graphs_rendered.fetch_add(1, Relaxed);
        self.metrics
            .graph_render_micros
            .fetch_add(started.elapsed().as_micros() as u64, Relaxed);
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
}
