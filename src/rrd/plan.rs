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

#[derive(Debug, PartialEq)]
pub(crate) struct UpdatePlan {
    /// `(time, values)` in increasing time; `None` values are `U`.
    pub updates: Vec<(i64, Vec<Option<f64>>)>,
    /// Rows dropped because the file already has their time.
    pub stale: Vec<i64>,
}

pub(crate) fn plan_updates(
    rows: &[Row],
    last_update: Option<i64>,
    step: i64,
    min_heartbeat: i64,
) -> UpdatePlan {
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
                updates.push((step_start, vec![None; row.values.len()]));
            }
        }
        updates.push((row.time_s, row.values.clone()));
        last = Some(row.time_s);
    }
    UpdatePlan { updates, stale }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(t: i64, v: f64) -> Row {
        Row {
            time_s: t,
            values: vec![Some(v)],
        }
    }

    #[test]
    fn consecutive_rows_pass_as_they_are() {
        let plan = plan_updates(&[r(120, 1.0), r(180, 2.0)], Some(60), 60, 120);
        assert_eq!(
            plan.updates,
            vec![(120, vec![Some(1.0)]), (180, vec![Some(2.0)])]
        );
        assert!(plan.stale.is_empty());
    }

    #[test]
    fn gaps_beyond_the_heartbeat_get_an_unknown_row() {
        let plan = plan_updates(&[r(120, 1.0), r(600, 2.0)], Some(60), 60, 120);
        assert_eq!(
            plan.updates,
            vec![
                (120, vec![Some(1.0)]),
                (540, vec![None]),
                (600, vec![Some(2.0)])
            ]
        );
        // Within the heartbeat librrd spreads the value itself.
        let plan = plan_updates(&[r(180, 1.0)], Some(60), 60, 120);
        assert_eq!(plan.updates, vec![(180, vec![Some(1.0)])]);
    }

    #[test]
    fn rows_the_file_already_has_are_set_aside() {
        let plan = plan_updates(&[r(60, 1.0), r(120, 2.0), r(180, 3.0)], Some(120), 60, 120);
        assert_eq!(plan.updates, vec![(180, vec![Some(3.0)])]);
        assert_eq!(plan.stale, vec![60, 120]);
    }

    #[test]
    fn a_new_file_starts_at_its_first_row() {
        let plan = plan_updates(&[r(600, 1.0)], None, 60, 120);
        assert_eq!(plan.updates, vec![(600, vec![Some(1.0)])]);
    }
}
