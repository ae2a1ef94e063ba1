//! One job's task: wait for its instant, take a slot, poll within the
//! timeout, hand what came to the intake (described series first, so that
//! a new file gets its DS type), and say how it went: in the status, and
//! in the log once per outage rather than once per round.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tracing::{info, warn};

use super::schedule::Schedule;
use super::status::JobsStatus;
use super::{PollError, Polled, munin, ping, prometheus, snmp};
use crate::cache::{CacheClosed, Intake, Journaled};
use crate::clock::Stamper;
use crate::config::poll::{PollJob, PollKind};
use crate::metrics::RateLimiter;
use crate::model::{SeriesMeta, UnixMillis};

pub(super) struct JobTask {
    pub job: PollJob,
    pub intake: Intake,
    pub stamper: Stamper,
    pub status: JobsStatus,
    pub slots: Arc<Semaphore>,
    pub stop: watch::Receiver<bool>,
}

impl JobTask {
    pub async fn run(mut self) {
        let mut schedule = Schedule::new(self.job.interval, self.job.jitter());
        let mut due = schedule.first(self.stamper.now_ms());
        // What the cache was told of each series: told again on change only.
        let mut described: HashMap<String, SeriesMeta> = HashMap::new();
        let mut partial_warn = RateLimiter::new(3_600_000);
        loop {
            self.status.change(&self.job.name, |s| {
                s.next_run_ms = Some(due);
            });
            let wait = Duration::from_millis((due - self.stamper.now_ms()).max(0) as u64);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.stop.changed() => return,
            }
            let permit = tokio::select! {
                p = self.slots.clone().acquire_owned() => p,
                _ = self.stop.changed() => return,
            };
            let started_ms = self.stamper.now_ms();
            // A stop abandons the round: what it fetched was never kept or
            // acknowledged to anyone, and a 30 s round must not hold the
            // daemon's shutdown deadline.
            let mut stop = self.stop.clone();
            let polled = tokio::select! {
                polled = self.poll_once(started_ms) => polled,
                _ = stop.changed() => return,
            };
            drop(permit);
            let ended_ms = self.stamper.now_ms();
            let answered = !polled.samples.is_empty() || polled.error.is_none();
            let error = polled.error.clone();
            let count = polled.samples.len();
            if self
                .hand_over(polled, started_ms, &mut described)
                .await
                .is_err()
            {
                return; // shutting down
            }
            let failing_before = self.status.get(&self.job.name).map_or(0, |s| s.failing);
            let next = schedule.after_round(due, ended_ms, answered);
            self.say(
                &error,
                answered,
                failing_before,
                &mut partial_warn,
                ended_ms,
            );
            self.status.change(&self.job.name, |s| {
                s.rounds_total += 1;
                s.last_duration_ms = Some((ended_ms - started_ms).max(0) as u64);
                s.last_samples = count;
                s.samples_total += count as u64;
                s.skipped_busy += next.skipped_busy;
                s.skipped_backoff += next.skipped_backoff;
                s.failing = schedule.failures();
                if answered {
                    s.last_success_ms = Some(ended_ms);
                }
                if let Some(e) = &error {
                    s.last_error = Some((ended_ms, e.kind, e.message.clone()));
                    *s.errors.entry(e.kind).or_default() += 1;
                }
            });
            due = next.at_ms;
        }
    }

    /// One round, never longer than the job's timeout: what came before
    /// the deadline is kept.
    async fn poll_once(&self, started_ms: UnixMillis) -> Polled {
        let deadline = tokio::time::Instant::now() + self.job.timeout;
        let round = async {
            match self.job.kind {
                PollKind::Munin => munin::poll(&self.job, started_ms, deadline).await,
                PollKind::Prometheus => prometheus::poll(&self.job, started_ms, deadline).await,
                PollKind::Ping => ping::poll(&self.job, started_ms, deadline).await,
                PollKind::Snmp => snmp::poll(&self.job, started_ms, deadline).await,
            }
        };
        // The clients keep to the deadline themselves; this is the net
        // under them.
        let net = deadline + Duration::from_secs(1);
        match tokio::time::timeout_at(net, round).await {
            Ok(polled) => polled,
            Err(_) => Polled::failed(PollError::timeout("the round")),
        }
    }

    /// Metadata that changed, then the samples (journaled, then cached),
    /// then a journal commit: a crash after this loses nothing polled.
    async fn hand_over(
        &self,
        polled: Polled,
        started_ms: UnixMillis,
        described: &mut HashMap<String, SeriesMeta>,
    ) -> Result<(), CacheClosed> {
        let mut changed: Vec<(String, Option<SeriesMeta>)> = Vec::new();
        for (series, meta) in polled.meta {
            if described.get(&series) != Some(&meta) {
                described.insert(series.clone(), meta.clone());
                changed.push((series, Some(meta)));
            }
        }
        if !changed.is_empty() {
            self.intake.cache().describe(changed).await?;
        }
        if polled.samples.is_empty() {
            return Ok(());
        }
        let held = self.stamper.held(started_ms);
        if let Journaled::Failed(e) = self.intake.add(polled.samples, held).await? {
            warn!(job = self.job.name, error = %e,
                "Cannot write the journal: this round's samples are in memory only.");
        }
        if let Err(e) = self.intake.commit().await {
            warn!(job = self.job.name, error = %e, "Cannot flush the journal.");
        }
        Ok(())
    }

    /// Logs a failing target once per outage, and when it answers again;
    /// a partly failed round (a plugin that timed out) once an hour.
    fn say(
        &self,
        error: &Option<PollError>,
        answered: bool,
        failing_before: u32,
        partial_warn: &mut RateLimiter,
        now_ms: UnixMillis,
    ) {
        let job = &self.job.name;
        match (error, answered) {
            (Some(e), false) if failing_before == 0 => {
                warn!(job, kind = %self.job.kind, host = self.job.host,
                error = %e, "Poll job's target does not answer; polling less often until it does (said once per outage).")
            }
            (Some(_), false) => {}
            (Some(e), true) => {
                if let Some(held_back) = partial_warn.allow(now_ms) {
                    warn!(job, error = %e, held_back, "Part of a poll round failed; the rest was kept.");
                }
            }
            (None, _) if failing_before > 0 => info!(
                job,
                failed_rounds = failing_before,
                "Poll job's target answers again."
            ),
            (None, _) => {}
        }
    }
}
