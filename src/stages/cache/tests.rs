//! The cache task with paused tokio time and a stand-in for the RRD thread:
//! flush timing, forced flushes, retries and the drain on shutdown.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use super::snapshot::Snapshot;
use super::state::WRITE_WINDOW;
use super::*;
use crate::model::Sample;
use crate::rrd::{RrdCommand, WriteBatch, WriteReport};

const T0_MS: i64 = 1_763_633_700_000; // a multiple of 60 s

struct Harness {
    cache: CacheHandle,
    task: JoinHandle<()>,
    rrd_rx: std_mpsc::Receiver<RrdCommand>,
    /// The data dir (snapshots), removed on drop.
    dir: tempfile::TempDir,
}

fn start(flush_after: &str) -> Harness {
    start_with(flush_after, "0s", None, tempfile::tempdir().unwrap())
}

fn start_with(
    flush_after: &str,
    snapshot_every: &str,
    restored: Option<Snapshot>,
    dir: tempfile::TempDir,
) -> Harness {
    let config = test_config(&dir, flush_after, snapshot_every, "");
    let (tx, rrd_rx) = std_mpsc::channel();
    let clock = Clock::anchored(T0_MS);
    let metrics = Arc::new(Metrics::default());
    let (cache, task) = spawn(
        config,
        RrdHandle::from_sender(tx),
        metrics.clone(),
        clock,
        ClockWatch::always_trusted(clock, metrics),
        Recovered {
            snapshot: restored,
            ..Recovered::default()
        },
    );
    Harness {
        cache,
        task,
        rrd_rx,
        dir,
    }
}

/// A config writing into `dir`, without a journal; `cache_extra`: more
/// `[cache]` lines.
fn test_config(
    dir: &tempfile::TempDir,
    flush_after: &str,
    snapshot_every: &str,
    cache_extra: &str,
) -> Arc<Config> {
    let text = format!(
        "data_dir = \"{}\"\n[cache]\nflush_after = \"{flush_after}\"\nflush_jitter = \"0s\"\nstats_every = \"1h\"\n\
         snapshot_every = \"{snapshot_every}\"\n{cache_extra}[journal]\nenabled = false\n",
        dir.path().display()
    );
    Arc::new(Config::parse(&text, "t").unwrap())
}

/// The next write the cache sends, letting its task run first. Bounded: a
/// missing write is a failure, not a hang.
async fn next_write(
    rx: &std_mpsc::Receiver<RrdCommand>,
) -> Option<(WriteBatch, mpsc::UnboundedSender<WriteReport>)> {
    for _ in 0..100 {
        if let Ok(RrdCommand::Write { batch, reply }) = rx.try_recv() {
            return Some((batch, reply));
        }
        tokio::task::yield_now().await;
    }
    None
}

/// Answers a write as librrd would: all of it, or nothing.
fn answer(batch: &WriteBatch, reply: &mpsc::UnboundedSender<WriteReport>, written: bool) {
    let last = batch.rows.last().map(|r| r.time_s).filter(|_| written);
    reply
        .send(WriteReport {
            file: batch.file,
            done_upto: last,
            last_update_s: last,
            kept_kinds: Vec::new(),
        })
        .unwrap();
}

/// Adds samples and waits until the task has taken them (a stats round
/// trip), so that time advanced afterwards counts from their arrival.
async fn add(cache: &CacheHandle, samples: Vec<Sample>) {
    cache.add(0, samples, None).await.unwrap();
    cache.stats().await.unwrap();
}

fn sample(series: &str, offset_ms: i64, value: f64) -> Sample {
    Sample {
        series: series.into(),
        time_ms: T0_MS + offset_ms,
        value,
    }
}

#[tokio::test(start_paused = true)]
async fn rows_are_written_once_flush_after_has_passed() {
    let h = start("5m");
    add(&h.cache, vec![sample("a", 0, 1.0), sample("b", 0, 2.0)]).await;
    tokio::time::advance(Duration::from_secs(299)).await;
    assert!(
        next_write(&h.rrd_rx).await.is_none(),
        "written before flush_after"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    let (b1, r1) = next_write(&h.rrd_rx).await.expect("first file written");
    let (b2, r2) = next_write(&h.rrd_rx).await.expect("second file written");
    assert_eq!(b1.rows.len() + b2.rows.len(), 2);
    answer(&b1, &r1, true);
    answer(&b2, &r2, true);
    let stats = h.cache.stats().await.unwrap();
    assert_eq!(
        stats,
        CacheStats {
            files: 2,
            series: 2,
            pending_rows: 0
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_write_is_retried_and_nothing_is_lost() {
    let h = start("1m");
    add(&h.cache, vec![sample("a", 0, 1.0)]).await;
    tokio::time::advance(Duration::from_secs(60)).await;
    let (batch, reply) = next_write(&h.rrd_rx).await.unwrap();
    answer(&batch, &reply, false);
    assert_eq!(h.cache.stats().await.unwrap().pending_rows, 1);
    // Not in a tight loop, but within seconds (a busy file is routine).
    tokio::time::advance(Duration::from_millis(4_999)).await;
    assert!(
        next_write(&h.rrd_rx).await.is_none(),
        "retried in a tight loop"
    );
    tokio::time::advance(Duration::from_millis(1)).await;
    let (again, reply) = next_write(&h.rrd_rx).await.expect("retried");
    assert_eq!(again.rows, batch.rows);
    answer(&again, &reply, true);
    assert_eq!(h.cache.stats().await.unwrap().pending_rows, 0);
}

#[tokio::test(start_paused = true)]
async fn flush_all_writes_open_rows_and_waits_for_librrd() {
    let h = start("1h");
    add(&h.cache, vec![sample("a", 5_000, 1.0)]).await; // open step
    let cache = h.cache.clone();
    let flush = tokio::spawn(async move { cache.flush_all().await });
    let (batch, reply) = next_write(&h.rrd_rx).await.expect("forced write");
    assert_eq!(batch.rows[0].time_s, T0_MS / 1000 + 60);
    assert!(!flush.is_finished(), "answered before librrd did");
    answer(&batch, &reply, true);
    flush.await.unwrap().unwrap();
}

/// A flush asked while a batch of the file is with librrd: answered only
/// once the rows that came after that batch are written too.
async fn a_flush_during_a_write_waits_for_the_rows_after_it(file_only: bool) {
    let h = start("1m");
    add(&h.cache, vec![sample("a", 0, 1.0)]).await;
    tokio::time::advance(Duration::from_secs(60)).await;
    let (first, r1) = next_write(&h.rrd_rx).await.unwrap();
    add(&h.cache, vec![sample("a", 61_000, 2.0)]).await;
    let cache = h.cache.clone();
    let flush = tokio::spawn(async move {
        if file_only {
            cache.flush_file("a".into()).await
        } else {
            cache.flush_all().await
        }
    });
    tokio::task::yield_now().await;
    answer(&first, &r1, true);
    let (second, r2) = next_write(&h.rrd_rx).await.expect("owed forced write");
    assert!(!flush.is_finished(), "answered after the first batch only");
    assert_eq!(second.rows.last().unwrap().values.as_slice(), &[Some(2.0)]);
    answer(&second, &r2, true);
    flush.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn flush_all_also_covers_rows_that_arrived_during_a_write() {
    a_flush_during_a_write_waits_for_the_rows_after_it(false).await;
}

#[tokio::test(start_paused = true)]
async fn flush_file_writes_only_that_file_and_waits_for_librrd() {
    let h = start("1h");
    add(
        &h.cache,
        vec![sample("a", 5_000, 1.0), sample("b", 5_000, 2.0)],
    )
    .await;
    let cache = h.cache.clone();
    let flush = tokio::spawn(async move { cache.flush_file("b".into()).await });
    let (batch, reply) = next_write(&h.rrd_rx).await.expect("forced write of b");
    assert_eq!(batch.spec.rel_path, "b");
    assert!(next_write(&h.rrd_rx).await.is_none(), "a was written too");
    assert!(!flush.is_finished(), "answered before librrd did");
    answer(&batch, &reply, true);
    flush.await.unwrap().unwrap();
    // Nothing cached, or an unknown file: answered at once.
    h.cache.flush_file("b".into()).await.unwrap();
    h.cache.flush_file("nowhere".into()).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn flush_file_during_a_write_waits_for_the_rows_that_came_after_it() {
    a_flush_during_a_write_waits_for_the_rows_after_it(true).await;
}

#[tokio::test(start_paused = true)]
async fn latest_gives_each_series_newest_sample() {
    let h = start("1h");
    add(
        &h.cache,
        vec![
            sample("a", 2_000, 3.0),
            sample("a", 1_000, 9.0),
            sample("b", 0, 2.0),
        ],
    )
    .await;
    let latest = h
        .cache
        .latest(vec!["a".into(), "b".into(), "c".into()])
        .await
        .unwrap();
    assert_eq!(
        latest,
        vec![Some((3.0, T0_MS + 2_000)), Some((2.0, T0_MS)), None]
    );
}

#[tokio::test(start_paused = true)]
async fn closing_the_input_drains_every_row() {
    let Harness {
        cache,
        task,
        rrd_rx,
        ..
    } = start("1h");
    add(&cache, vec![sample("a", 0, 1.0), sample("b", 30_000, 2.0)]).await;
    drop(cache);
    let mut written = 0;
    while let Some((batch, reply)) = next_write(&rrd_rx).await {
        written += batch.rows.len();
        answer(&batch, &reply, true);
    }
    assert_eq!(written, 2);
    tokio::time::timeout(Duration::from_secs(1), task)
        .await
        .expect("task ends")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn at_most_a_window_of_batches_is_handed_to_librrd() {
    let h = start("1m");
    let names: Vec<String> = (0..10).map(|i| format!("f/{i}")).collect();
    add(&h.cache, names.iter().map(|n| sample(n, 0, 1.0)).collect()).await;
    tokio::time::advance(Duration::from_secs(60)).await;
    let mut first = Vec::new();
    while let Some(w) = next_write(&h.rrd_rx).await {
        first.push(w);
    }
    assert_eq!(first.len(), WRITE_WINDOW);
    // Rows that arrive while a file waits for its slot join its batch.
    add(&h.cache, vec![sample("f/9", 60_000, 2.0)]).await;
    let mut rows = first.iter().map(|(b, _)| b.rows.len()).sum::<usize>();
    for (batch, reply) in first {
        answer(&batch, &reply, true);
    }
    let mut files = WRITE_WINDOW;
    while let Some((batch, reply)) = next_write(&h.rrd_rx).await {
        files += 1;
        rows += batch.rows.len();
        answer(&batch, &reply, true);
    }
    assert_eq!((files, rows), (10, 11));
    assert_eq!(h.cache.stats().await.unwrap().pending_rows, 0);
}

/// The snapshot at `path` once it holds `rows` rows. It is written on the
/// blocking pool, and paused time does not move while a blocking task
/// runs: each short sleep here ends only once the write is done.
async fn snapshot_on_disk(path: &std::path::Path, rows: usize) -> Snapshot {
    for _ in 0..200 {
        if let Ok(Some(s)) = snapshot::read(path)
            && s.row_count() == rows
        {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("no snapshot with {rows} rows at {}", path.display());
}

#[tokio::test(start_paused = true)]
async fn snapshots_carry_cached_rows_into_the_next_run() {
    let h = start_with("1h", "60s", None, tempfile::tempdir().unwrap());
    let path = h.dir.path().join("datalog-rrd.snapshot");
    add(
        &h.cache,
        vec![
            sample("a", 0, 1.0),
            sample("a", 60_000, 2.0),
            sample("b", 0, 3.0),
        ],
    )
    .await;
    tokio::time::advance(Duration::from_secs(60)).await;
    let snapshot = snapshot_on_disk(&path, 3).await;
    assert!(
        next_write(&h.rrd_rx).await.is_none(),
        "a snapshot writes no RRD row"
    );

    // A crash now: a new cache starts from the snapshot and writes its rows.
    let Harness { dir, .. } = h;
    let h2 = start_with("1h", "60s", Some(snapshot), dir);
    assert_eq!(h2.cache.stats().await.unwrap().pending_rows, 3);
    let cache = h2.cache.clone();
    let flush = tokio::spawn(async move { cache.flush_all().await });
    let mut rows = Vec::new();
    while let Some((batch, reply)) = next_write(&h2.rrd_rx).await {
        rows.extend(
            batch
                .rows
                .iter()
                .map(|r| (batch.spec.rel_path.clone(), r.time_s, r.values[0])),
        );
        answer(&batch, &reply, true);
    }
    flush.await.unwrap().unwrap();
    rows.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let t0 = T0_MS / 1000;
    assert_eq!(
        rows,
        vec![
            ("a".into(), t0, Some(1.0)),
            ("a".into(), t0 + 60, Some(2.0)),
            ("b".into(), t0, Some(3.0))
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_clean_stop_leaves_an_empty_snapshot() {
    let Harness {
        cache,
        task,
        rrd_rx,
        dir,
    } = start_with("1h", "60s", None, tempfile::tempdir().unwrap());
    add(&cache, vec![sample("a", 0, 1.0)]).await;
    tokio::time::advance(Duration::from_secs(60)).await;
    let path = dir.path().join("datalog-rrd.snapshot");
    snapshot_on_disk(&path, 1).await;
    drop(cache);
    while let Some((batch, reply)) = next_write(&rrd_rx).await {
        answer(&batch, &reply, true);
    }
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    // The rows are in the files now: a restart must not send them again.
    assert_eq!(snapshot::read(&path).unwrap().unwrap().row_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn rows_of_a_file_whose_layout_changed_are_reported_not_misplaced() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = Snapshot {
        taken_at_ms: T0_MS,
        journal_seq: 0,
        files: vec![snapshot::FileState {
            rel_path: "a".into(),
            template: "default".into(),
            step_secs: 300,
            ds: vec![("value".into(), "a".into())],
            written_upto: None,
            held: vec![None],
            rows: vec![(T0_MS / 1000, vec![(1.0, 1, T0_MS)])],
        }],
    };
    let h = start_with("1h", "0s", Some(snapshot), dir);
    assert_eq!(h.cache.stats().await.unwrap().pending_rows, 0);
}

#[tokio::test(start_paused = true)]
async fn forgotten_series_are_reported_to_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&dir, "1s", "0s", "dead_after = \"1h\"\n");
    let (tx, rrd_rx) = std_mpsc::channel();
    let clock = Clock::anchored(T0_MS);
    let metrics = Arc::new(Metrics::default());
    let (cache, _task) = spawn(
        config,
        RrdHandle::from_sender(tx),
        metrics.clone(),
        clock,
        ClockWatch::always_trusted(clock, metrics),
        Recovered::default(),
    );
    add(&cache, vec![sample("quiet", 0, 1.0)]).await;
    tokio::time::advance(Duration::from_secs(1)).await;
    let (batch, reply) = next_write(&rrd_rx).await.unwrap();
    answer(&batch, &reply, true);
    tokio::time::advance(Duration::from_secs(3600 + 900)).await;
    let mut stale = None;
    for _ in 0..100 {
        if let Ok(RrdCommand::MarkStale(paths)) = rrd_rx.try_recv() {
            stale = Some(paths);
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(stale, Some(vec!["quiet".to_owned()]));
    assert_eq!(cache.stats().await.unwrap().series, 0);
}

/// Samples stamped by an untrusted clock wait, in no file, until the
/// clock is trusted (here: a sync flag appears), then go at their true
/// time: the step of the wall clock since they came undone.
#[tokio::test(start_paused = true)]
async fn samples_wait_for_the_clock_and_go_at_their_true_time() {
    use crate::clock::{ClockConfig, EvidenceSources, TrustPolicy};
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&dir, "1m", "0s", "");
    let evidence = EvidenceSources {
        sync_flag: dir.path().join("synchronized"),
        sync_services: Vec::new(),
        kernel_status: false,
    };
    let clock_config = ClockConfig {
        trust: TrustPolicy::WaitForSync,
        evidence: evidence.clone(),
        max_wait: Duration::from_secs(3600),
    };
    let clock = Clock::anchored(T0_MS);
    let metrics = Arc::new(Metrics::default());
    let watch = ClockWatch::start(&clock_config, clock, 0, metrics.clone());
    let stamper = watch.stamper();
    assert!(!stamper.status.trusted());
    let (tx, rrd_rx) = std_mpsc::channel();
    let (cache, _task) = spawn(
        config,
        RrdHandle::from_sender(tx),
        metrics.clone(),
        clock,
        watch,
        Recovered::default(),
    );
    // Received at a fake time 3 days behind, since stepped to the truth.
    let fake_ms = T0_MS - 3 * 86_400_000;
    // The anchored clock reads T0 now and is never stepped: a receipt at
    // the fake time is one 3 days before a step to the truth.
    let held = stamper.held(fake_ms).expect("not trusted: held");
    let at_fake = Sample {
        series: "a".into(),
        time_ms: fake_ms,
        value: 7.5,
    };
    // A sample with a time of its own goes on at once.
    let own = sample("b", 0, 1.0);
    cache.add(1, vec![at_fake, own], Some(held)).await.unwrap();
    let stats = cache.stats().await.unwrap();
    assert_eq!(stats.series, 1, "only the sample with its own time");
    assert_eq!(metrics.clock_waiting_samples.load(Relaxed), 1);
    tokio::time::advance(Duration::from_secs(120)).await;
    let (batch, reply) = next_write(&rrd_rx).await.expect("b written");
    assert_eq!(batch.rows.len(), 1);
    answer(&batch, &reply, true);
    assert!(
        next_write(&rrd_rx).await.is_none(),
        "a written while waiting"
    );

    // The sync: at the next check, trusted; "a" goes at its true time.
    std::fs::write(&evidence.sync_flag, "").unwrap();
    tokio::time::advance(Duration::from_secs(10)).await;
    cache.stats().await.unwrap();
    assert!(stamper.status.trusted());
    assert_eq!(metrics.clock_waiting_samples.load(Relaxed), 0);
    let latest = cache.latest(vec!["a".into()]).await.unwrap();
    assert_eq!(latest, vec![Some((7.5, T0_MS))]);
}
