//! The cache task with paused tokio time and a stand-in for the RRD thread:
//! flush timing, forced flushes, retries and the drain on shutdown.

use super::*;
use crate::rrd::RrdCommand;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

const T0_MS: i64 = 1_763_633_700_000; // a multiple of 60 s

struct Harness {
    cache: CacheHandle,
    task: JoinHandle<()>,
    rrd_rx: std_mpsc::Receiver<RrdCommand>,
}

fn start(flush_after: &str) -> Harness {
    let text = format!(
        "[cache]\nflush_after = \"{flush_after}\"\nflush_jitter = \"0s\"\nstats_every = \"1h\""
    );
    let config = Arc::new(Config::parse(&text, "t").unwrap());
    let (tx, rrd_rx) = std_mpsc::channel();
    let clock = Clock::anchored(T0_MS);
    let (cache, task) = spawn(
        config,
        RrdHandle::from_sender(tx),
        Arc::new(Metrics::default()),
        clock,
    );
    Harness {
        cache,
        task,
        rrd_rx,
    }
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
        })
        .unwrap();
}

/// Adds samples and waits until the task has taken them (a stats round
/// trip), so that time advanced afterwards counts from their arrival.
async fn add(cache: &CacheHandle, samples: Vec<Sample>) {
    cache.add(samples).await.unwrap();
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

#[tokio::test(start_paused = true)]
async fn flush_all_also_covers_rows_that_arrived_during_a_write() {
    let h = start("1m");
    add(&h.cache, vec![sample("a", 0, 1.0)]).await;
    tokio::time::advance(Duration::from_secs(60)).await;
    let (first, r1) = next_write(&h.rrd_rx).await.unwrap();
    add(&h.cache, vec![sample("a", 61_000, 2.0)]).await;
    let cache = h.cache.clone();
    let flush = tokio::spawn(async move { cache.flush_all().await });
    tokio::task::yield_now().await;
    answer(&first, &r1, true);
    let (second, r2) = next_write(&h.rrd_rx).await.expect("owed forced write");
    assert_eq!(second.rows.last().unwrap().values.as_slice(), &[Some(2.0)]);
    answer(&second, &r2, true);
    flush.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn closing_the_input_drains_every_row() {
    let Harness {
        cache,
        task,
        rrd_rx,
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
