//! What a previous run left, read before the cache starts: its snapshot,
//! the journal records after the snapshot's sequence, and each file's last
//! update from the index. A torn last journal record is what a crash
//! leaves: it was never acknowledged, and is skipped.

use std::collections::HashMap;

use anyhow::Context;
use tracing::{error, info};

use super::snapshot::{self, Snapshot};
use crate::config::Config;
use crate::journal::Reader;
use crate::model::{DsType, HeldClock, Sample, SeriesMeta, UnixMillis};
use crate::rrd::index::IndexEntry;

/// What a previous run left, for [`super::spawn`].
#[derive(Default)]
pub struct Recovered {
    pub snapshot: Option<Snapshot>,
    pub replayed: Vec<Sample>,
    /// Records received while the clock was not trusted: they wait again.
    pub held: Vec<(HeldClock, Vec<Sample>)>,
    /// The newest time of data already written (snapshot, journal, files),
    /// as evidence against a clock that reads earlier.
    pub newest_data_ms: UnixMillis,
    /// Each file's last update, from the index (rel path → Unix seconds).
    pub last_updates: HashMap<String, i64>,
    /// The meters' files the index says hold a family's counter as a gauge
    /// (made by an older version): written as such from the first batch.
    pub kinds_on_disk: HashMap<String, crate::rrd::DsKinds>,
    /// The last journal record seen (covered once the cache has taken all).
    pub journal_seq: u64,
    /// What discovery said of each series (`discovered.json`).
    pub discovered: HashMap<String, SeriesMeta>,
}

/// Reads the snapshot, the journal records after it, and from `index` (as
/// the RRD thread loaded it) the files' last updates.
pub fn recover(config: &Config, index: &[IndexEntry]) -> anyhow::Result<Recovered> {
    let snapshot = load_snapshot(config);
    let after = snapshot.as_ref().map_or(0, |s| s.journal_seq);
    let mut recovered = Recovered {
        newest_data_ms: snapshot.as_ref().map_or(0, |s| s.taken_at_ms),
        snapshot,
        journal_seq: after,
        discovered: super::discovered::DiscoveredFile::new(&config.data_dir).read(),
        ..Recovered::default()
    };
    // Payload times may run ahead of the clock by up to max_future, and a
    // file's last update by one step more (a forced flush writes the open
    // step at its end).
    let ahead_ms = i64::try_from(config.limits.max_future.as_millis()).unwrap_or(0);
    recovered.note_last_updates(index, ahead_ms);
    if let Some(j) = &config.journal {
        let reader =
            Reader::open(&j.dir, after).with_context(|| format!("journal {}", j.dir.display()))?;
        recovered
            .replay(reader, after, ahead_ms)
            .with_context(|| format!("journal {}", j.dir.display()))?;
    }
    Ok(recovered)
}

impl Recovered {
    fn note_last_updates(&mut self, index: &[IndexEntry], ahead_ms: i64) {
        for entry in index {
            let Some(last_update) = entry.last_update else {
                continue;
            };
            // Saturating: the index is a file anyone could have edited.
            let newest_ms = last_update
                .saturating_sub(i64::from(entry.step_secs))
                .saturating_mul(1000)
                .saturating_sub(ahead_ms);
            self.newest_data_ms = self.newest_data_ms.max(newest_ms);
            self.last_updates.insert(entry.path.clone(), last_update);
            let gauges: crate::rrd::DsKinds = entry
                .ds
                .iter()
                .filter(|d| {
                    d.meter()
                        .is_some_and(|m| m.stored == crate::energy::Stored::Readings)
                })
                .map(|d| (d.name.clone(), DsType::Gauge))
                .collect();
            if !gauges.is_empty() {
                self.kinds_on_disk.insert(entry.path.clone(), gauges);
            }
        }
    }

    /// The journal's records after `after`: replayed, or held again if they
    /// came while the clock was not trusted.
    fn replay(&mut self, mut reader: Reader, after: u64, ahead_ms: i64) -> std::io::Result<()> {
        while let Some((_, samples, held)) = reader.next_record()? {
            match held {
                // Stamped by an untrusted clock: no evidence, and waits.
                Some(held) => self.held.push((held, samples)),
                None => {
                    let newest = samples
                        .iter()
                        .map(|s| s.time_ms.saturating_sub(ahead_ms))
                        .max();
                    self.newest_data_ms = self.newest_data_ms.max(newest.unwrap_or(0));
                    self.replayed.extend(samples);
                }
            }
        }
        let stats = reader.stats();
        if stats.records > 0 || stats.torn > 0 {
            info!(
                records = stats.records,
                samples = stats.samples,
                torn = stats.torn,
                after_seq = after,
                "Journal read for replay."
            );
        }
        self.journal_seq = stats.last_seq.max(after);
        Ok(())
    }
}

/// The snapshot a previous run left, if any. One that cannot be trusted is
/// renamed aside (for a post-mortem) and reported: the daemon still starts.
fn load_snapshot(config: &Config) -> Option<Snapshot> {
    if config.cache.snapshot_every.is_zero() {
        return None;
    }
    let path = config.snapshot_path();
    match snapshot::read(&path) {
        Ok(found) => found,
        Err(e) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let aside = path.with_extension(format!("snapshot.unusable-{now}"));
            let kept = std::fs::rename(&path, &aside).is_ok();
            error!(path = %path.display(), error = %e, kept_as = kept.then(|| aside.display().to_string()),
                "Cache snapshot unusable: the rows it held are lost.");
            None
        }
    }
}
