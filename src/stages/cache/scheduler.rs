//! Which file goes to librrd next, and who is told when. Pure: no I/O, no
//! tokio; the cache task tells it what happened, with the time, and does
//! what it answers.
//!
//! - Each file with rows has a due time, computed by the cache
//!   (`Cache::due_at`: `flush_after` plus jitter after its oldest waiting
//!   row, not before that row's step ends), or an explicit `retry_at` after
//!   a write librrd could not finish (5 s, doubling up to 5 min).
//! - Due files, and files someone forces (SIGUSR1, a graph, shutdown), wait
//!   in one queue for a write slot: at most `window` batches are in flight.
//!   A forced file goes first when one waits to draw it.
//! - A file forced while its batch is in flight owes a forced batch: it is
//!   queued when the answer comes, so that what existed when the flush was
//!   asked for is written.
//! - Waiters are answered once librrd has answered for the rows that
//!   existed when they asked (written, or refused for now and kept for a
//!   retry: a reader's lock must not hang a graph): a file's when its forced
//!   batch is answered (or it had nothing), everyone's when nothing forced
//!   is queued, owed or in flight.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;

use super::state::FileId;
use crate::model::UnixMillis;

/// Someone waiting for a forced flush: the task's token for its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Waiter(pub u64);

/// Why a file goes to librrd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flush {
    /// Its rows are due: the finished ones are written.
    Due,
    /// Someone asked for all of its rows, now.
    Forced,
}

pub(crate) struct Scheduler {
    window: usize,
    /// The first retry's delay (the shorter of 5 s and `flush_after`).
    retry_first: Duration,
    /// `(due time, file)` for every file that waits for its time.
    due: BTreeSet<(UnixMillis, FileId)>,
    due_of: HashMap<FileId, UnixMillis>,
    /// After a write that could not finish: not before then.
    retry_at: HashMap<FileId, UnixMillis>,
    failures: HashMap<FileId, u32>,
    /// Files waiting for a write slot, in order.
    ready: VecDeque<(FileId, Flush)>,
    /// The files queued in `ready` for their due time. A batch started
    /// for a file (a forced one, ahead of it) serves its due time: the
    /// file leaves this set, and its `Due` entry, left in the queue (a
    /// scan would cost too much), is skipped when it comes up. So each due
    /// time gets exactly one batch, never an early second one.
    due_queued: HashSet<FileId>,
    forced_queued: usize,
    in_flight: usize,
    /// Forced while a batch was in flight: a forced batch follows.
    owed: HashSet<FileId>,
    /// Waiting for everything forced to be written.
    all_waiters: Vec<Waiter>,
    /// Waiting for one file's forced batch.
    file_waiters: HashMap<FileId, Vec<Waiter>>,
}

/// The longest wait between two tries of a file that keeps failing.
pub(crate) const RETRY_MAX: Duration = Duration::from_secs(300);
/// How soon rows a write could not take are tried again.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(5);

impl Scheduler {
    pub fn new(window: usize, flush_after: Duration) -> Self {
        Scheduler {
            window,
            retry_first: RETRY_AFTER.min(flush_after),
            due: BTreeSet::new(),
            due_of: HashMap::new(),
            retry_at: HashMap::new(),
            failures: HashMap::new(),
            ready: VecDeque::new(),
            due_queued: HashSet::new(),
            forced_queued: 0,
            in_flight: 0,
            owed: HashSet::new(),
            all_waiters: Vec::new(),
            file_waiters: HashMap::new(),
        }
    }

    /// Sets when `file` is due (`None`: it has nothing to wait for). After
    /// a write that could not finish, its retry time takes the place of
    /// `at`.
    pub fn set_due(&mut self, file: FileId, at: Option<UnixMillis>) {
        if let Some(old) = self.due_of.remove(&file) {
            self.due.remove(&(old, file));
        }
        if let Some(at) = at {
            let at = self.retry_at.get(&file).copied().unwrap_or(at);
            self.due.insert((at, file));
            self.due_of.insert(file, at);
        }
    }

    pub fn is_scheduled(&self, file: FileId) -> bool {
        self.due_of.contains_key(&file)
    }

    /// Batches in flight.
    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// When the next file is due, if any.
    pub fn next_due(&self) -> Option<UnixMillis> {
        self.due.first().map(|&(at, _)| at)
    }

    /// Queues the files due by `now_ms`.
    pub fn take_due(&mut self, now_ms: UnixMillis) {
        while let Some(&(at, file)) = self.due.first()
            && at <= now_ms
        {
            self.due.pop_first();
            self.due_of.remove(&file);
            if self.due_queued.insert(file) {
                self.ready.push_back((file, Flush::Due));
            }
        }
    }

    /// Forces `files` (every file that has rows; `writing` says whose batch
    /// is in flight); `waiter` is answered once all of it is written.
    pub fn force_all(&mut self, files: impl IntoIterator<Item = (FileId, bool)>, waiter: Waiter) {
        for (file, writing) in files {
            if writing {
                self.owed.insert(file);
            } else {
                self.ready.push_back((file, Flush::Forced));
                self.forced_queued += 1;
            }
        }
        self.all_waiters.push(waiter);
    }

    /// Forces one file ahead of every other (someone waits to draw it);
    /// `waiter` is answered once its forced batch is.
    pub fn force_file(&mut self, file: FileId, writing: bool, waiter: Waiter) {
        self.file_waiters.entry(file).or_default().push(waiter);
        if writing {
            self.owed.insert(file);
        } else {
            self.ready.push_front((file, Flush::Forced));
            self.forced_queued += 1;
        }
    }

    /// The next file to write, while the window has room. `is_writing`
    /// says whose batch is in flight: a due file in flight is skipped (it
    /// is scheduled again after its answer), a forced one owes a batch.
    /// The caller then calls [`Self::started`] or [`Self::nothing_to_write`].
    pub fn next_write(&mut self, is_writing: impl Fn(FileId) -> bool) -> Option<(FileId, Flush)> {
        while self.in_flight < self.window {
            let (file, flush) = self.ready.pop_front()?;
            match flush {
                Flush::Forced => self.forced_queued = self.forced_queued.saturating_sub(1),
                // Served already by a batch started since it was queued.
                Flush::Due if !self.due_queued.remove(&file) => continue,
                Flush::Due => {}
            }
            if is_writing(file) {
                if flush == Flush::Forced {
                    self.owed.insert(file);
                }
                continue;
            }
            return Some((file, flush));
        }
        None
    }

    /// A batch of `file` went to librrd: it serves the file's due time,
    /// waiting or queued.
    pub fn started(&mut self, file: FileId) {
        self.in_flight += 1;
        if let Some(at) = self.due_of.remove(&file) {
            self.due.remove(&(at, file));
        }
        self.due_queued.remove(&file);
    }

    /// `file` had nothing to write for `flush`: its waiters, if forced (a
    /// due file with only an open row is scheduled again by the caller).
    pub fn nothing_to_write(&mut self, file: FileId, flush: Flush) -> Vec<Waiter> {
        match flush {
            Flush::Due => Vec::new(),
            Flush::Forced => self.file_waiters.remove(&file).unwrap_or_default(),
        }
    }

    /// librrd answered `file`'s batch at `now_ms`: `complete` if every row
    /// is on disk. Returns the file's waiters whose forced batch this was.
    pub fn answered(&mut self, file: FileId, complete: bool, now_ms: UnixMillis) -> Vec<Waiter> {
        self.in_flight = self.in_flight.saturating_sub(1);
        if complete {
            self.failures.remove(&file);
            self.retry_at.remove(&file);
        } else {
            // Most failures are a reader holding the file's lock: try again
            // soon, then less and less often (a full disk, a bad file).
            let n = self.failures.entry(file).or_default();
            let delay = self
                .retry_first
                .saturating_mul(1 << (*n).min(16))
                .min(RETRY_MAX);
            *n += 1;
            self.retry_at
                .insert(file, now_ms + delay.as_millis() as i64);
        }
        if self.owed.remove(&file) {
            self.ready.push_front((file, Flush::Forced));
            self.forced_queued += 1;
            return Vec::new();
        }
        // (The queue is scanned only when someone waits for this file: with
        // thousands of files due, a scan per answer would add up.)
        if !self.file_waiters.contains_key(&file) || self.ready.contains(&(file, Flush::Forced)) {
            return Vec::new();
        }
        self.file_waiters.remove(&file).unwrap_or_default()
    }

    /// Everyone waiting for all forced work, once none is queued, owed or
    /// in flight.
    pub fn forcing_done(&mut self) -> Vec<Waiter> {
        if self.in_flight == 0 && self.owed.is_empty() && self.forced_queued == 0 {
            std::mem::take(&mut self.all_waiters)
        } else {
            Vec::new()
        }
    }

    /// `flush_after` changed (a reload): the first retry follows it.
    pub fn set_flush_after(&mut self, flush_after: Duration) {
        self.retry_first = RETRY_AFTER.min(flush_after);
    }

    /// Consecutive writes of `file` librrd could not finish.
    #[cfg(test)]
    pub fn failures(&self, file: FileId) -> u32 {
        self.failures.get(&file).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests;
