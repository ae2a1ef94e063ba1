//! The scheduler alone: no cache, no tokio. A small world stands in for the
//! cache (which files have rows, whose batch is in flight).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

const WINDOW: usize = 4;
const T0: UnixMillis = 1_763_633_700_000;

/// What the cache would be: files with rows not in flight, and batches in
/// flight in order (a batch takes all of its file's rows; a batch that
/// fails gives them back).
#[derive(Default)]
struct World {
    rows: BTreeSet<FileId>,
    writing: Vec<FileId>,
    /// Batches started, in order, with why.
    started: Vec<(FileId, Flush)>,
    released: Vec<Waiter>,
    /// The step of the test at which each batch in flight started.
    op_index: usize,
    started_at: BTreeMap<FileId, usize>,
    /// Each file's due time as the scheduler holds it (its retry time
    /// after a failure), until a batch serves it.
    due: BTreeMap<FileId, UnixMillis>,
}

impl World {
    /// As the cache does: `file` is due at `at` (`None`: not at all).
    fn set_due(&mut self, s: &mut Scheduler, file: FileId, at: Option<UnixMillis>) {
        s.set_due(file, at);
        match s.due_of.get(&file) {
            Some(&effective) => self.due.insert(file, effective),
            None => self.due.remove(&file),
        };
    }

    /// What the task does after any event: start what the scheduler says.
    /// Checks that a batch for a due time comes at or after it, once.
    fn pump(&mut self, s: &mut Scheduler, now: UnixMillis) {
        s.take_due(now);
        while let Some((file, flush)) = {
            let writing = &self.writing;
            s.next_write(|f| writing.contains(&f))
        } {
            assert!(
                !self.writing.contains(&file),
                "a file in flight was given again"
            );
            if flush == Flush::Due {
                let at = self.due.remove(&file);
                assert!(
                    at.is_some_and(|at| at <= now),
                    "file {file} written for a due time it did not have: {at:?} at {now}"
                );
            }
            if self.rows.contains(&file) {
                self.due.remove(&file);
                s.started(file);
                self.rows.remove(&file);
                self.writing.push(file);
                self.started_at.insert(file, self.op_index);
                self.started.push((file, flush));
                assert!(s.in_flight() <= WINDOW, "the window was exceeded");
            } else {
                self.released.extend(s.nothing_to_write(file, flush));
            }
        }
        self.released.extend(s.forcing_done());
    }

    /// librrd answers the oldest batch in flight.
    fn answer(&mut self, s: &mut Scheduler, complete: bool, now: UnixMillis) -> Option<FileId> {
        if self.writing.is_empty() {
            return None;
        }
        let file = self.writing.remove(0);
        if !complete {
            self.rows.insert(file);
        }
        self.released.extend(s.answered(file, complete, now));
        // As the cache does: what is left waits for its due time.
        let at = self.rows.contains(&file).then_some(now + 300_000);
        self.set_due(s, file, at);
        Some(file)
    }
}

fn scheduler() -> Scheduler {
    Scheduler::new(WINDOW, Duration::from_secs(300))
}

#[test]
fn due_files_wait_for_their_time_and_the_window() {
    let mut s = scheduler();
    let mut w = World::default();
    for f in 0..10 {
        w.rows.insert(f);
        w.set_due(&mut s, f, Some(T0 + 1_000 * f as i64));
    }
    w.pump(&mut s, T0 - 1);
    assert!(w.started.is_empty(), "none is due yet");
    assert_eq!(s.next_due(), Some(T0));
    w.pump(&mut s, T0 + 20_000);
    assert_eq!(w.started.len(), WINDOW, "at most the window in flight");
    while w.answer(&mut s, true, T0 + 20_000).is_some() {
        w.pump(&mut s, T0 + 20_000);
    }
    let order: Vec<FileId> = w.started.iter().map(|(f, _)| *f).collect();
    assert_eq!(order, (0..10).collect::<Vec<_>>(), "each once, by due time");
    assert!(w.started.iter().all(|(_, why)| *why == Flush::Due));
}

#[test]
fn a_forced_file_goes_first_and_its_waiter_after_its_batch() {
    let mut s = scheduler();
    let mut w = World::default();
    for f in 0..6 {
        w.rows.insert(f);
        w.set_due(&mut s, f, Some(T0));
    }
    s.take_due(T0);
    s.force_file(5, false, Waiter(1));
    w.pump(&mut s, T0);
    assert_eq!(w.started[0], (5, Flush::Forced));
    assert!(w.released.is_empty());
    // Batches are answered in order: file 5's first.
    w.answer(&mut s, true, T0);
    assert_eq!(w.released, vec![Waiter(1)]);
}

#[test]
fn forced_while_in_flight_owes_a_batch_after_the_answer() {
    let mut s = scheduler();
    let mut w = World::default();
    w.rows.insert(7);
    w.set_due(&mut s, 7, Some(T0));
    w.pump(&mut s, T0);
    assert_eq!(w.started, vec![(7, Flush::Due)]);
    // Rows arrive while it is written, and someone wants them drawn.
    s.force_file(7, true, Waiter(1));
    s.force_all([(7, true)], Waiter(2));
    w.pump(&mut s, T0);
    assert_eq!(w.started.len(), 1, "not twice in flight");
    w.answer(&mut s, true, T0);
    assert!(
        w.released.is_empty(),
        "the rows that came meanwhile are not written yet"
    );
    w.rows.insert(7);
    w.pump(&mut s, T0);
    assert_eq!(w.started[1], (7, Flush::Forced));
    w.answer(&mut s, true, T0);
    w.pump(&mut s, T0);
    assert_eq!(w.released, vec![Waiter(1), Waiter(2)]);
}

#[test]
fn a_failing_file_backs_off_and_never_starves_the_others() {
    let mut s = scheduler();
    let mut w = World::default();
    w.rows.insert(0);
    w.set_due(&mut s, 0, Some(T0));
    w.pump(&mut s, T0);
    // File 0 fails: tried again 5 s later, then 10, 20… up to 5 min.
    let mut now = T0;
    let mut delays = Vec::new();
    for _ in 0..9 {
        w.answer(&mut s, false, now);
        let at = s.next_due().unwrap();
        delays.push((at - now) / 1000);
        now = at;
        w.pump(&mut s, now);
    }
    assert_eq!(delays, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
    assert_eq!(s.failures(0), 9);
    // Meanwhile other files are written when due.
    for f in 1..4 {
        w.rows.insert(f);
        w.set_due(&mut s, f, Some(now + 1));
    }
    w.pump(&mut s, now + 1);
    let others: Vec<FileId> = w
        .started
        .iter()
        .map(|(f, _)| *f)
        .filter(|f| *f != 0)
        .collect();
    assert_eq!(others, [1, 2, 3]);
    // A success resets the backoff.
    assert_eq!(w.answer(&mut s, true, now), Some(0));
    assert_eq!(s.failures(0), 0);
}

#[derive(Debug, Clone)]
enum Op {
    /// A file gets rows (and, if not scheduled, a due time `ms` ahead).
    Rows(FileId, i64),
    Tick(i64),
    ForceAll,
    ForceFile(FileId),
    Answer(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..6usize, 0..10_000i64).prop_map(|(f, ms)| Op::Rows(f, ms)),
        2 => (0..20_000i64).prop_map(Op::Tick),
        1 => Just(Op::ForceAll),
        1 => (0..6usize).prop_map(Op::ForceFile),
        3 => any::<bool>().prop_map(Op::Answer),
    ]
}

proptest! {
    /// Whatever happens: the window holds, no file is in flight twice, a
    /// forced flush is answered only once every file that had rows when
    /// it was asked for has had a batch started after that and answered by
    /// librrd (written, or refused for now: then kept for a retry, and a
    /// reader's lock must not hang a graph), and once librrd answers
    /// everything, every flush is answered. And every due time gets
    /// exactly one batch, never before it (a forced batch serves it early,
    /// and no due batch follows for it).
    #[test]
    fn forced_flushes_wait_for_exactly_their_rows(ops in proptest::collection::vec(op(), 1..80)) {
        let mut s = scheduler();
        let mut w = World::default();
        let mut now = T0;
        let mut next_waiter = 0;
        // Per waiter: each file it waits for, and the earliest start (test
        // step) of a batch whose answer covers what the file had when asked:
        // the batch in flight then if the file had nothing more, else one
        // started after the request.
        let mut owed: BTreeMap<u64, BTreeMap<FileId, usize>> = BTreeMap::new();
        let covering = |w: &World, f: FileId, index: usize| {
            if w.rows.contains(&f) { index } else { w.started_at.get(&f).copied().unwrap_or(index) }
        };
        for (index, op) in ops.into_iter().enumerate() {
            w.op_index = index;
            match op {
                Op::Rows(f, ms) => {
                    // A file's first waiting row sets its due time, unless
                    // its batch is in flight (the answer sets it then).
                    if w.rows.insert(f) && !w.writing.contains(&f) && !s.is_scheduled(f) {
                        w.set_due(&mut s, f, Some(now + ms));
                    }
                }
                Op::Tick(ms) => now += ms,
                Op::ForceAll => {
                    next_waiter += 1;
                    let files: Vec<(FileId, bool)> = w
                        .rows
                        .iter()
                        .chain(&w.writing)
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .map(|&f| (f, w.writing.contains(&f)))
                        .collect();
                    owed.insert(next_waiter, files.iter().map(|&(f, _)| (f, covering(&w, f, index))).collect());
                    s.force_all(files, Waiter(next_waiter));
                }
                Op::ForceFile(f) => {
                    next_waiter += 1;
                    if w.rows.contains(&f) || w.writing.contains(&f) {
                        owed.insert(next_waiter, BTreeMap::from([(f, covering(&w, f, index))]));
                        s.force_file(f, w.writing.contains(&f), Waiter(next_waiter));
                    }
                }
                Op::Answer(complete) => {
                    let oldest = w.writing.first().copied();
                    let started_at = oldest.and_then(|f| w.started_at.get(&f).copied());
                    if let (Some(f), Some(started_at)) = (w.answer(&mut s, complete, now), started_at) {
                        for files in owed.values_mut() {
                            if files.get(&f).is_some_and(|&needed| started_at >= needed) {
                                files.remove(&f);
                            }
                        }
                    }
                }
            }
            w.pump(&mut s, now);
            for Waiter(id) in w.released.drain(..) {
                let left = owed.remove(&id).unwrap_or_default();
                prop_assert!(left.is_empty(), "waiter {id} answered with {left:?} not written");
            }
        }
        // librrd answers everything; nothing fails any more.
        for _ in 0..200 {
            now += 600_000;
            if w.answer(&mut s, true, now).is_none() {
                w.pump(&mut s, now);
                if w.writing.is_empty() {
                    break;
                }
            }
            w.pump(&mut s, now);
        }
        for Waiter(id) in w.released.drain(..) {
            owed.remove(&id);
        }
        prop_assert!(owed.is_empty(), "never answered: {owed:?}");
        prop_assert!(w.due.is_empty() && w.rows.is_empty(), "due times never served: {:?}", w.due);
    }
}
