//! One file's cached rows: samples go in, batches of finished rows come out.
//! Pure: the caller passes the time and does the writing.
//!
//! A row is the aggregate of one step for every DS of the file. Rows stay
//! here until librrd has accepted them: `take_batch` freezes the rows it
//! returns (late samples for them are refused, since the values on their way
//! to disk would not include them), and `on_written` drops them on success or
//! thaws them for a retry on failure.

mod rows;

use std::sync::Arc;

use self::rows::{Cell, Rows};
use super::snapshot::FileState;
use crate::model::{FileSpec, RejectReason, Row, RowValues, UnixMillis, row_end};

fn reach_ms(spec: &FileSpec) -> Option<i64> {
    spec.finest_reach_secs().map(|s| s.saturating_mul(1000))
}

/// The last value a DS wrote and when it was sampled, for `hold`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Held {
    value: f64,
    time_ms: UnixMillis,
}

#[derive(Debug)]
pub(crate) struct FileBuffer {
    pub spec: Arc<FileSpec>,
    /// The rows waiting to be written, by the end of their step.
    rows: Rows,
    /// End of the last row of the batch being written, if one is.
    frozen_upto: Option<i64>,
    /// End of the last row librrd accepted from this buffer.
    written_upto: Option<i64>,
    /// The end of a step a forced flush wrote before it ended (a graph
    /// asked for the file): samples still coming for that step go into
    /// the next one, instead of being refused as late.
    written_open: Option<i64>,
    held: Vec<Option<Held>>,
    /// The latest sample of each DS (by sample time), for the web UI.
    latest: Vec<Option<Held>>,
    /// When the oldest row still waiting here arrived (for `flush_after`).
    pub pending_since_ms: Option<UnixMillis>,
    /// When the last sample arrived (receive time: for `dead_after`).
    pub last_sample_ms: UnixMillis,
    /// A new layout to take once the batch in flight is answered.
    next_spec: Option<Arc<FileSpec>>,
    /// How far back the finest archive reaches, in ms (`FileSpec::
    /// finest_reach_secs`): kept, since every sample is checked against it.
    pub finest_reach_ms: Option<i64>,
}

impl FileBuffer {
    pub fn new(spec: Arc<FileSpec>) -> Self {
        let n = spec.ds.len();
        let finest_reach_ms = reach_ms(&spec);
        FileBuffer {
            rows: Rows::new(spec.step_secs, n),
            spec,
            frozen_upto: None,
            written_upto: None,
            written_open: None,
            held: vec![None; n],
            latest: vec![None; n],
            pending_since_ms: None,
            last_sample_ms: 0,
            next_spec: None,
            finest_reach_ms,
        }
    }

    /// Takes `spec`, a new layout with the same DS (names, in order): its
    /// step, archives or DS settings changed. Cached rows follow a new step
    /// (the rows that now fall in one step merge by each DS's aggregate).
    /// While a batch is in flight the change waits for its answer.
    pub fn respec(&mut self, spec: Arc<FileSpec>) {
        if self.is_writing() {
            self.next_spec = Some(spec);
            return;
        }
        self.next_spec = None;
        if spec.step_secs != self.spec.step_secs {
            let mut rows = Rows::new(spec.step_secs, spec.ds.len());
            for i in 0..self.rows.len() {
                let (from, to) = (
                    self.rows.end(i),
                    row_end(spec.step_secs, self.rows.end(i) * 1000),
                );
                // A finer step's number may not fit where the old one did
                // (after 2106): such a row could not be written anyway.
                let Ok(at) = rows.row_for(to) else { continue };
                for (k, (cell, ds)) in self.rows.cells(i).zip(&spec.ds).enumerate() {
                    let cell = cell.moved(from * 1000, to * 1000);
                    rows.cell_mut(at, k).absorb(cell, ds.aggregate);
                }
            }
            self.rows = rows;
        }
        self.finest_reach_ms = reach_ms(&spec);
        self.spec = spec;
    }

    /// Adds a sample that waited for the clock to be trusted: one whose
    /// step is already written (or being written) goes just after the last
    /// such step, rather than be refused as late.
    pub fn add_waited(
        &mut self,
        ds: usize,
        time_ms: UnixMillis,
        value: f64,
        now_ms: UnixMillis,
    ) -> Result<(), RejectReason> {
        let done_ms = self.frozen_upto.max(self.written_upto);
        let time_ms = done_ms.map_or(time_ms, |d| {
            time_ms.max(d.saturating_mul(1000).saturating_add(1))
        });
        self.add(ds, time_ms, value, now_ms)
    }

    /// Adds one sample of DS `ds`. Refused as late when its step is already
    /// written or being written.
    pub fn add(
        &mut self,
        ds: usize,
        time_ms: UnixMillis,
        value: f64,
        now_ms: UnixMillis,
    ) -> Result<(), RejectReason> {
        let mut end = row_end(self.spec.step_secs, time_ms);
        let done = self.frozen_upto.max(self.written_upto);
        // Its step was written early, for a graph: the next step takes it.
        if self.written_open == Some(end) && done.is_some_and(|d| end <= d) {
            end = end.saturating_add(i64::from(self.spec.step_secs));
        }
        if done.is_some_and(|d| end <= d) {
            return Err(RejectReason::Late);
        }
        let row = self.rows.row_for(end)?;
        self.rows
            .cell_mut(row, ds)
            .merge(self.spec.ds[ds].aggregate, value, time_ms, end * 1000);
        if self.latest[ds].is_none_or(|l| time_ms >= l.time_ms) {
            self.latest[ds] = Some(Held { value, time_ms });
        }
        self.pending_since_ms.get_or_insert(now_ms);
        self.last_sample_ms = now_ms;
        Ok(())
    }

    /// The latest sample of DS `ds` since start: (value, sample time).
    pub fn latest(&self, ds: usize) -> Option<(f64, UnixMillis)> {
        self.latest
            .get(ds)
            .copied()
            .flatten()
            .map(|l| (l.value, l.time_ms))
    }

    pub fn pending_rows(&self) -> usize {
        self.rows.len()
    }

    pub fn is_writing(&self) -> bool {
        self.frozen_upto.is_some()
    }

    /// End of the earliest cached row.
    pub fn first_row_end(&self) -> Option<i64> {
        self.rows.first_end()
    }

    /// Freezes and returns the rows to write now: those whose step has ended
    /// by `now_s`, or every row when `force` (SIGUSR1, shutdown). Steps
    /// between two rows that got no sample repeat held values (see `hold`).
    /// `None` when nothing is due or a batch is already in flight.
    pub fn take_batch(&mut self, now_s: i64, force: bool) -> Option<Vec<Row>> {
        if self.is_writing() {
            return None;
        }
        let cutoff = if force { i64::MAX } else { now_s };
        let due = self.rows.count_upto(cutoff);
        let last = self.rows.end(due.checked_sub(1)?);
        let step = self.spec.step_secs as i64;
        let mut held = self.held.clone();
        let mut prev = self.written_upto;
        let mut out = Vec::new();
        for i in 0..due {
            let end = self.rows.end(i);
            if let Some(p) = prev {
                self.fill_gap(p + step, end, &held, &mut out);
            }
            let values = self
                .rows
                .cells(i)
                .zip(&self.spec.ds)
                .zip(held.iter_mut())
                .map(|((cell, ds), h)| match cell.result(ds.aggregate) {
                    Some(v) => {
                        *h = Some(Held {
                            value: v,
                            time_ms: cell.time_ms(end * 1000),
                        });
                        Some(v)
                    }
                    None => self.held_value(*h, ds.hold, end),
                })
                .collect();
            out.push(Row {
                time_s: end,
                values,
            });
            prev = Some(end);
        }
        self.frozen_upto = Some(last);
        if last > now_s {
            self.written_open = Some(last);
        }
        Some(out)
    }

    /// Rows for the steps `from..to` that got no sample, while some DS still
    /// holds a value. Stops at the first step where none does.
    fn fill_gap(&self, from: i64, to: i64, held: &[Option<Held>], out: &mut Vec<Row>) {
        let step = self.spec.step_secs as i64;
        let mut t = from;
        while t < to {
            let values: RowValues = held
                .iter()
                .zip(&self.spec.ds)
                .map(|(h, ds)| self.held_value(*h, ds.hold, t))
                .collect();
            if values.iter().all(Option::is_none) {
                return;
            }
            out.push(Row { time_s: t, values });
            t += step;
        }
    }

    fn held_value(
        &self,
        held: Option<Held>,
        hold: std::time::Duration,
        row_end_s: i64,
    ) -> Option<f64> {
        let h = held?;
        let age_ms = row_end_s * 1000 - h.time_ms;
        (age_ms <= hold.as_millis() as i64).then_some(h.value)
    }

    /// Librrd's answer for the frozen batch: every row up to `done_upto`
    /// is on disk (or was refused for good, alone) and leaves the cache; the
    /// rest thaws, to be written again. Returns whether the whole batch is
    /// done.
    pub fn on_written(&mut self, done_upto: Option<i64>, now_ms: UnixMillis) -> bool {
        let Some(upto) = self.frozen_upto.take() else {
            return true;
        };
        let done_to = done_upto.map(|d| d.min(upto));
        let done = done_to.map_or(0, |d| self.rows.count_upto(d));
        // Held values follow what reached the file, as `take_batch` does.
        for i in 0..done {
            let end_ms = self.rows.end(i) * 1000;
            for ((cell, ds), h) in self
                .rows
                .cells(i)
                .zip(&self.spec.ds)
                .zip(self.held.iter_mut())
            {
                if let Some(value) = cell.result(ds.aggregate) {
                    *h = Some(Held {
                        value,
                        time_ms: cell.time_ms(end_ms),
                    });
                }
            }
        }
        self.rows.drop_first(done);
        self.written_upto = self.written_upto.max(done_to);
        self.pending_since_ms = (!self.rows.is_empty()).then_some(now_ms);
        if let Some(spec) = self.next_spec.take() {
            self.respec(spec);
        }
        done_to == Some(upto)
    }

    /// What a snapshot keeps of this file.
    pub fn to_state(&self) -> FileState {
        let spec = &self.spec;
        FileState {
            rel_path: spec.rel_path.clone(),
            template: spec.template.clone(),
            step_secs: spec.step_secs,
            ds: spec
                .ds
                .iter()
                .map(|d| (d.name.clone(), d.series.clone()))
                .collect(),
            written_upto: self.written_upto,
            held: self
                .held
                .iter()
                .map(|h| h.map(|h| (h.value, h.time_ms)))
                .collect(),
            rows: (0..self.rows.len())
                .map(|i| {
                    let end = self.rows.end(i);
                    let cells = self.rows.cells(i);
                    (
                        end,
                        cells
                            .map(|c| (c.raw_value(), c.n(), c.time_ms(end * 1000)))
                            .collect(),
                    )
                })
                .collect(),
        }
    }

    /// Takes the rows and state of a snapshot of this file, whose layout
    /// the caller has checked. Rows of another width are skipped.
    pub fn restore(&mut self, state: &FileState, now_ms: UnixMillis) {
        let width = self.spec.ds.len();
        self.written_upto = state.written_upto;
        if state.held.len() == width {
            self.held = state
                .held
                .iter()
                .map(|h| h.map(|(value, time_ms)| Held { value, time_ms }))
                .collect();
        }
        let mut kept: Vec<_> = state
            .rows
            .iter()
            .filter(|(end, cells)| {
                cells.len() == width && self.written_upto.is_none_or(|w| *end > w)
            })
            .collect();
        kept.sort_by_key(|r| r.0);
        kept.dedup_by_key(|r| r.0);
        let mut rows = Rows::new(self.spec.step_secs, width);
        for (end, cells) in kept {
            let cells = cells
                .iter()
                .map(|&(value, n, time_ms)| Cell::from_parts(value, n, time_ms, end * 1000));
            // A row at a time no step holds cannot be written anyway.
            let _ = rows.push(*end, cells);
        }
        self.rows = rows;
        self.frozen_upto = None;
        self.pending_since_ms = (!self.rows.is_empty()).then_some(now_ms);
        self.last_sample_ms = now_ms;
    }

    /// Tells the buffer the file's last update when it was already on disk,
    /// so that older samples are refused here rather than by librrd.
    /// Whether librrd has taken a row of this file (its file exists).
    pub fn ever_written(&self) -> bool {
        self.written_upto.is_some()
    }

    pub fn set_written_upto(&mut self, last_update_s: i64) {
        self.written_upto = self.written_upto.max(Some(last_update_s));
    }
}

#[cfg(test)]
mod tests;
