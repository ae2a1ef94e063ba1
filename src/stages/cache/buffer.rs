//! One file's cached rows: samples go in, batches of finished rows come out.
//! Pure: the caller passes the time and does the writing.
//!
//! A row is the aggregate of one step for every DS of the file. Rows stay
//! here until librrd has accepted them: `take_batch` freezes the rows it
//! returns (late samples for them are refused, since the values on their way
//! to disk would not include them), and `on_written` drops them on success or
//! thaws them for a retry on failure.

use std::collections::VecDeque;
use std::sync::Arc;

use smallvec::SmallVec;

use super::snapshot::FileState;
use crate::model::{Aggregate, FileSpec, RejectReason, Row, RowValues, UnixMillis, row_end};

/// The cells of one row, inline for single-DS files (the common case):
/// no heap block per cached row.
type Cells = SmallVec<[Cell; 1]>;

/// The running aggregate of one DS in one step. `n == 0` means no sample.
/// `value` is the last, the sum, the min or the max, by the DS's aggregate.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cell {
    value: f64,
    n: u32,
    time_ms: UnixMillis,
}

impl Cell {
    const EMPTY: Cell = Cell {
        value: 0.0,
        n: 0,
        time_ms: 0,
    };

    fn merge(&mut self, aggregate: Aggregate, value: f64, time_ms: UnixMillis) {
        if self.n == 0 {
            *self = Cell {
                value,
                n: 1,
                time_ms,
            };
            return;
        }
        match aggregate {
            // Ties go to the later arrival: a republished value corrects.
            Aggregate::Last if time_ms >= self.time_ms => self.value = value,
            Aggregate::Last => {}
            Aggregate::Average => self.value += value,
            Aggregate::Min => self.value = self.value.min(value),
            Aggregate::Max => self.value = self.value.max(value),
        }
        self.n = self.n.saturating_add(1);
        self.time_ms = self.time_ms.max(time_ms);
    }

    /// Takes in another cell's samples (two steps becoming one).
    fn absorb(&mut self, other: Cell, aggregate: Aggregate) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = other;
            return;
        }
        match aggregate {
            Aggregate::Last if other.time_ms >= self.time_ms => self.value = other.value,
            Aggregate::Last => {}
            Aggregate::Average => self.value += other.value,
            Aggregate::Min => self.value = self.value.min(other.value),
            Aggregate::Max => self.value = self.value.max(other.value),
        }
        self.n = self.n.saturating_add(other.n);
        self.time_ms = self.time_ms.max(other.time_ms);
    }

    fn result(&self, aggregate: Aggregate) -> Option<f64> {
        match (self.n, aggregate) {
            (0, _) => None,
            (n, Aggregate::Average) => Some(self.value / n as f64),
            _ => Some(self.value),
        }
    }
}

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
    /// Rows by the end of their step, in increasing order. Samples come in
    /// time order almost always, so this is an append; a late sample
    /// costs a binary search. (A `BTreeMap` cost twice the memory: its
    /// nodes stay half full when keys only grow.)
    rows: VecDeque<(i64, Cells)>,
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
            spec,
            rows: VecDeque::new(),
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
            let mut rows: VecDeque<(i64, Cells)> = VecDeque::with_capacity(self.rows.len());
            for (end, cells) in self.rows.drain(..) {
                let end = row_end(spec.step_secs, end * 1000);
                match rows.back_mut() {
                    Some((last, merged)) if *last == end => {
                        for ((m, c), ds) in merged.iter_mut().zip(cells).zip(&spec.ds) {
                            m.absorb(c, ds.aggregate);
                        }
                    }
                    _ => rows.push_back((end, cells)),
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
        let width = self.spec.ds.len();
        let index = match self.rows.back() {
            Some(&(last, _)) if last >= end => self.rows.binary_search_by_key(&end, |r| r.0),
            _ => Err(self.rows.len()),
        };
        let index = index.unwrap_or_else(|i| {
            self.rows
                .insert(i, (end, SmallVec::from_elem(Cell::EMPTY, width)));
            i
        });
        let cells = &mut self.rows[index].1;
        cells[ds].merge(self.spec.ds[ds].aggregate, value, time_ms);
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
        self.rows.front().map(|r| r.0)
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
        let due = self.rows.partition_point(|r| r.0 <= cutoff);
        let last = self.rows.get(due.checked_sub(1)?)?.0;
        let step = self.spec.step_secs as i64;
        let mut held = self.held.clone();
        let mut prev = self.written_upto;
        let mut out = Vec::new();
        for (end, cells) in self.rows.range(..due) {
            let end = *end;
            if let Some(p) = prev {
                self.fill_gap(p + step, end, &held, &mut out);
            }
            let values = cells
                .iter()
                .zip(&self.spec.ds)
                .zip(held.iter_mut())
                .map(|((cell, ds), h)| match cell.result(ds.aggregate) {
                    Some(v) => {
                        *h = Some(Held {
                            value: v,
                            time_ms: cell.time_ms,
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
        let done = done_to.map_or(0, |d| self.rows.partition_point(|r| r.0 <= d));
        // Held values follow what reached the file, as `take_batch` does.
        for (_, cells) in self.rows.range(..done) {
            for ((cell, ds), h) in cells.iter().zip(&self.spec.ds).zip(self.held.iter_mut()) {
                if let Some(value) = cell.result(ds.aggregate) {
                    *h = Some(Held {
                        value,
                        time_ms: cell.time_ms,
                    });
                }
            }
        }
        self.rows.drain(..done);
        // Give back what a burst took, so idle files cost little.
        if self.rows.capacity() > 16 && self.rows.len() < self.rows.capacity() / 4 {
            self.rows.shrink_to(self.rows.len() * 2);
        }
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
            rows: self
                .rows
                .iter()
                .map(|(end, cells)| {
                    (
                        *end,
                        cells.iter().map(|c| (c.value, c.n, c.time_ms)).collect(),
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
        let mut rows: Vec<(i64, Cells)> = state
            .rows
            .iter()
            .filter(|(end, cells)| {
                cells.len() == width && self.written_upto.is_none_or(|w| *end > w)
            })
            .map(|(end, cells)| {
                (
                    *end,
                    cells
                        .iter()
                        .map(|&(value, n, time_ms)| Cell { value, n, time_ms })
                        .collect(),
                )
            })
            .collect();
        rows.sort_by_key(|r| r.0);
        rows.dedup_by_key(|r| r.0);
        self.rows = rows.into();
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
