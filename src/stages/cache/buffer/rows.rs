//! A file's cached rows, packed: 20 bytes per row of a one-DS file (a
//! 4-byte step number and a 16-byte cell) where a row with its cells in a
//! small vector of their own took 40. Rows are most of the cache's memory
//! while `flush_after` holds them, so this is the cost of a cached sample.

use std::collections::VecDeque;

use crate::model::{Aggregate, RejectReason, UnixMillis};

/// The running aggregate of one DS in one step. `n == 0` means no sample.
/// `value` is the last, the sum, the min or the max, by the DS's aggregate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Cell {
    value: f64,
    n: u32,
    /// When the latest sample was taken, in ms from the row's end (a
    /// sample lies in its row's step, so this is at most 0; a step of over
    /// 24 days saturates it, which only blurs which of two samples in that
    /// step was the later).
    at: i32,
}

/// `time_ms` as an offset from `end_ms`, saturated.
fn offset(time_ms: UnixMillis, end_ms: i64) -> i32 {
    let at = time_ms.saturating_sub(end_ms);
    at.clamp(i32::MIN.into(), i32::MAX.into()) as i32
}

impl Cell {
    pub const EMPTY: Cell = Cell {
        value: 0.0,
        n: 0,
        at: 0,
    };

    /// A cell as a snapshot keeps it (absolute sample time).
    pub fn from_parts(value: f64, n: u32, time_ms: UnixMillis, end_ms: i64) -> Cell {
        Cell {
            value,
            n,
            at: offset(time_ms, end_ms),
        }
    }

    pub fn n(&self) -> u32 {
        self.n
    }

    pub fn raw_value(&self) -> f64 {
        self.value
    }

    /// When the latest sample was taken, for a row ending at `end_ms`.
    pub fn time_ms(&self, end_ms: i64) -> UnixMillis {
        end_ms.saturating_add(self.at.into())
    }

    pub fn merge(&mut self, aggregate: Aggregate, value: f64, time_ms: UnixMillis, end_ms: i64) {
        self.absorb(
            Cell {
                value,
                n: 1,
                at: offset(time_ms, end_ms),
            },
            aggregate,
        );
    }

    /// Takes in another cell of the same row's samples (two steps becoming
    /// one: the caller moves `other` to this row's end first, [`Self::moved`]).
    pub fn absorb(&mut self, other: Cell, aggregate: Aggregate) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = other;
            return;
        }
        match aggregate {
            // Ties go to the later arrival: a republished value corrects.
            Aggregate::Last if other.at >= self.at => self.value = other.value,
            Aggregate::Last => {}
            Aggregate::Average => self.value += other.value,
            Aggregate::Min => self.value = self.value.min(other.value),
            Aggregate::Max => self.value = self.value.max(other.value),
        }
        self.n = self.n.saturating_add(other.n);
        self.at = self.at.max(other.at);
    }

    /// This cell of a row ending at `from_ms`, for a row ending at `to_ms`.
    pub fn moved(self, from_ms: i64, to_ms: i64) -> Cell {
        Cell {
            at: offset(self.time_ms(from_ms), to_ms),
            ..self
        }
    }

    pub fn result(&self, aggregate: Aggregate) -> Option<f64> {
        match (self.n, aggregate) {
            (0, _) => None,
            (n, Aggregate::Average) => Some(self.value / n as f64),
            _ => Some(self.value),
        }
    }
}

/// Rows by the end of their step, in increasing order, `width` cells each.
/// Samples come in time order almost always, so adding a row is an append;
/// a late sample costs a binary search. (A `BTreeMap` cost twice the
/// memory: its nodes stay half full when keys only grow.)
#[derive(Debug)]
pub(super) struct Rows {
    step_secs: i64,
    width: usize,
    /// Each row's end as a step number (end / step): a `u32` reaches 2106
    /// with one-second steps.
    steps: VecDeque<u32>,
    /// The rows' cells, `width` per row, in the order of `steps`.
    cells: VecDeque<Cell>,
}

impl Rows {
    pub fn new(step_secs: u32, width: usize) -> Rows {
        Rows {
            step_secs: step_secs.max(1).into(),
            width,
            steps: VecDeque::new(),
            cells: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The end of row `i`, in Unix seconds.
    pub fn end(&self, i: usize) -> i64 {
        i64::from(self.steps[i]) * self.step_secs
    }

    pub fn first_end(&self) -> Option<i64> {
        (!self.is_empty()).then(|| self.end(0))
    }

    /// How many rows end at or before `upto`.
    pub fn count_upto(&self, upto: i64) -> usize {
        self.steps
            .partition_point(|&s| i64::from(s) * self.step_secs <= upto)
    }

    /// The row ending at `end` (a multiple of the step), added without
    /// samples if there is none. A time no step number holds (before 1970,
    /// after 2106) is refused.
    pub fn row_for(&mut self, end: i64) -> Result<usize, RejectReason> {
        let step = u32::try_from(end / self.step_secs).map_err(|_| RejectReason::BadTimestamp)?;
        let found = match self.steps.back() {
            Some(&last) if last >= step => self.steps.binary_search(&step),
            _ => Err(self.steps.len()),
        };
        Ok(found.unwrap_or_else(|i| {
            self.steps.insert(i, step);
            for k in 0..self.width {
                self.cells.insert(i * self.width + k, Cell::EMPTY);
            }
            i
        }))
    }

    pub fn cell_mut(&mut self, row: usize, ds: usize) -> &mut Cell {
        &mut self.cells[row * self.width + ds]
    }

    /// The cells of row `i`.
    pub fn cells(&self, i: usize) -> impl Iterator<Item = &Cell> {
        self.cells.range(i * self.width..(i + 1) * self.width)
    }

    /// Appends a row after the last (snapshots and new steps come sorted).
    pub fn push(
        &mut self,
        end: i64,
        cells: impl IntoIterator<Item = Cell>,
    ) -> Result<(), RejectReason> {
        let i = self.row_for(end)?;
        for (k, cell) in cells.into_iter().take(self.width).enumerate() {
            *self.cell_mut(i, k) = cell;
        }
        Ok(())
    }

    /// Forgets the first `n` rows, and gives back what a burst took, so
    /// that idle files cost little.
    pub fn drop_first(&mut self, n: usize) {
        self.steps.drain(..n);
        self.cells.drain(..n * self.width);
        if self.steps.capacity() > 16 && self.steps.len() < self.steps.capacity() / 4 {
            self.steps.shrink_to(self.steps.len() * 2);
            self.cells.shrink_to(self.cells.len() * 2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_is_16_bytes_and_a_one_ds_row_20() {
        assert_eq!(std::mem::size_of::<Cell>(), 16);
        let mut rows = Rows::new(60, 1);
        for k in 1..=1000 {
            rows.row_for(1_763_633_700 + 60 * k).unwrap();
        }
        let bytes = rows.steps.capacity() * 4 + rows.cells.capacity() * 16;
        assert!(bytes <= 1024 * 20, "{bytes} bytes for 1000 rows");
    }

    #[test]
    fn rows_stay_sorted_with_their_cells_whatever_the_arrival_order() {
        let mut rows = Rows::new(60, 2);
        for (end, ds, v) in [(180, 0, 1.0), (60, 1, 2.0), (120, 0, 3.0), (60, 0, 4.0)] {
            let i = rows.row_for(end).unwrap();
            rows.cell_mut(i, ds)
                .merge(Aggregate::Last, v, end * 1000 - 5, end * 1000);
        }
        let got: Vec<(i64, Vec<Option<f64>>)> = (0..rows.len())
            .map(|i| {
                (
                    rows.end(i),
                    rows.cells(i).map(|c| c.result(Aggregate::Last)).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (60, vec![Some(4.0), Some(2.0)]),
                (120, vec![Some(3.0), None]),
                (180, vec![Some(1.0), None]),
            ]
        );
        assert_eq!(rows.count_upto(120), 2);
        rows.drop_first(2);
        assert_eq!(rows.first_end(), Some(180));
        assert_eq!(rows.cells(0).count(), 2);
    }

    #[test]
    fn a_time_no_step_number_holds_is_refused_not_a_panic() {
        let mut rows = Rows::new(1, 1);
        assert_eq!(rows.row_for(-1), Err(RejectReason::BadTimestamp));
        assert_eq!(rows.row_for(1 << 33), Err(RejectReason::BadTimestamp));
        assert!(rows.is_empty());
    }

    #[test]
    fn sample_times_come_back_exactly_and_the_latest_wins() {
        let end_ms = 1_763_633_760_000;
        let mut cell = Cell::EMPTY;
        cell.merge(Aggregate::Last, 1.0, end_ms - 59_999, end_ms);
        cell.merge(Aggregate::Last, 2.0, end_ms - 1, end_ms);
        cell.merge(Aggregate::Last, 3.0, end_ms - 30_000, end_ms);
        assert_eq!(
            (cell.result(Aggregate::Last), cell.time_ms(end_ms)),
            (Some(2.0), end_ms - 1)
        );
        // Moved to a coarser row, the sample keeps its time.
        let moved = cell.moved(end_ms, end_ms + 240_000);
        assert_eq!(moved.time_ms(end_ms + 240_000), end_ms - 1);
        // A step too long for the offset saturates instead of wrapping.
        let far = Cell::from_parts(5.0, 1, 0, end_ms);
        assert_eq!(far.time_ms(end_ms), end_ms + i64::from(i32::MIN));
    }
}
