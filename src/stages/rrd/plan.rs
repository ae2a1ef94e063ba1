//! What to send librrd for a batch, given the file's last update. Pure.
//!
//! Two librrd rules shape it:
//! - an update not newer than the file's last update is an error: such rows
//!   are set aside (counted) instead of failing the batch;
//! - when more than a heartbeat passes between two updates, librrd marks the
//!   whole interval unknown, including the step the later value belongs to.
//!   A `U` update at the start of that step ends the unknown interval there,
//!   so the value still fills its own step.

use crate::model::Row;

/// One librrd update: a time and its values (`None` values are `U`), or
/// `Unknown` for a row of `U` only. Borrowed from the batch: no copies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Update<'a> {
    Values(i64, &'a [Option<f64>]),
    Unknown(i64),
}

impl Update<'_> {
    pub fn time(&self) -> i64 {
        match *self {
            Update::Values(t, _) | Update::Unknown(t) => t,
        }
    }
}

#[derive(Debug, PartialEq)]
pub(crate) struct UpdatePlan<'a> {
    /// In strictly increasing time.
    pub updates: Vec<Update<'a>>,
    /// Rows dropped because the file already has their time.
    pub stale: Vec<i64>,
}

pub(crate) fn plan_updates(
    rows: &[Row],
    last_update: Option<i64>,
    step: i64,
    min_heartbeat: i64,
) -> UpdatePlan<'_> {
    let mut updates = Vec::with_capacity(rows.len() + 1);
    let mut stale = Vec::new();
    let mut last = last_update;
    for row in rows {
        if last.is_some_and(|l| row.time_s <= l) {
            stale.push(row.time_s);
            continue;
        }
        if let Some(l) = last {
            let step_start = row.time_s - step;
            if row.time_s - l > min_heartbeat && step_start > l {
                updates.push(Update::Unknown(step_start));
            }
        }
        updates.push(Update::Values(row.time_s, &row.values));
        last = Some(row.time_s);
    }
    UpdatePlan { updates, stale }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plans rows of `(time, value)` and returns `(time, value)` updates and
    /// the stale times.
    fn plan(rows: &[(i64, f64)], last: Option<i64>) -> (Vec<(i64, Option<f64>)>, Vec<i64>) {
        let rows: Vec<Row> = rows
            .iter()
            .map(|&(t, v)| Row {
                time_s: t,
                values: [Some(v)].into_iter().collect(),
            })
            .collect();
        let p = plan_updates(&rows, last, 60, 120);
        let updates = p
            .updates
            .iter()
            .map(|u| match *u {
                Update::Values(t, v) => (t, v[0]),
                Update::Unknown(t) => (t, None),
            })
            .collect();
        (updates, p.stale)
    }

    #[test]
    fn consecutive_rows_pass_as_they_are() {
        let (updates, stale) = plan(&[(120, 1.0), (180, 2.0)], Some(60));
        assert_eq!(updates, vec![(120, Some(1.0)), (180, Some(2.0))]);
        assert!(stale.is_empty());
    }

    #[test]
    fn gaps_beyond_the_heartbeat_get_an_unknown_row() {
        let (updates, _) = plan(&[(120, 1.0), (600, 2.0)], Some(60));
        assert_eq!(
            updates,
            vec![(120, Some(1.0)), (540, None), (600, Some(2.0))]
        );
        // Within the heartbeat librrd spreads the value itself.
        assert_eq!(plan(&[(180, 1.0)], Some(60)).0, vec![(180, Some(1.0))]);
    }

    #[test]
    fn rows_the_file_already_has_are_set_aside() {
        let (updates, stale) = plan(&[(60, 1.0), (120, 2.0), (180, 3.0)], Some(120));
        assert_eq!(updates, vec![(180, Some(3.0))]);
        assert_eq!(stale, vec![60, 120]);
    }

    #[test]
    fn a_new_file_starts_at_its_first_row() {
        assert_eq!(plan(&[(600, 1.0)], None).0, vec![(600, Some(1.0))]);
    }
}
