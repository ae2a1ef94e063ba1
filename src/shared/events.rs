//! Events: short notes at a time ("boiler serviced", "window open"),
//! optionally about one device, drawn on graphs as vertical rules and on
//! charts as annotations. They come from an MQTT topic (`mqtt.events_topic`,
//! JSON `{"text": …, "ts": …, "device": …}`) and from editors in the web
//! UI, and are kept in one JSON document under `data_dir` (`events.json`),
//! written atomically before the message is acknowledged, at most
//! [`MAX_EVENTS`] of them (the oldest go first).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tracing::warn;

/// The most events kept.
pub const MAX_EVENTS: usize = 1000;
/// The most events taken a minute: each is a write of the whole document
/// (up to ~100 KB) before the message is acknowledged, so a flood on the
/// events topic must not slow the samples behind it.
pub const MAX_PER_MINUTE: u32 = 30;
const MAX_TEXT: usize = 200;
const FILE_NAME: &str = "events.json";
const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unix seconds.
    pub time_s: i64,
    pub text: String,
    /// A device (a directory of the data tree, as the web UI groups files),
    /// or none: about everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Document {
    version: u32,
    events: Vec<Event>,
}

/// The events, in time order, and where they are kept.
pub struct Events {
    path: PathBuf,
    list: Mutex<VecDeque<Event>>,
    /// Held from taking the list to writing it: two writers must not put
    /// an older document on disk last.
    writing: tokio::sync::Mutex<()>,
    /// The current minute (Unix seconds at its start) and the events
    /// taken in it.
    minute: Mutex<(i64, u32)>,
}

impl Events {
    /// Reads `<data_dir>/events.json` (an unreadable one is set aside as
    /// `.bad` and logged).
    pub fn load(data_dir: &Path) -> Events {
        let path = data_dir.join(FILE_NAME);
        let list = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Document>(&bytes) {
                Ok(doc) if doc.version == VERSION => doc.events.into(),
                other => {
                    let why = other
                        .err()
                        .map_or("unknown version".into(), |e| e.to_string());
                    let moved = std::fs::rename(&path, path.with_extension("json.bad"));
                    warn!(path = %path.display(), why, set_aside = moved.is_ok(), "Events not readable; starting without them.");
                    VecDeque::new()
                }
            },
            Err(_) => VecDeque::new(),
        };
        Events {
            path,
            list: Mutex::new(list),
            writing: tokio::sync::Mutex::const_new(()),
            minute: Mutex::new((i64::MIN, 0)),
        }
    }

    /// Keeps `event` (dropping the oldest beyond [`MAX_EVENTS`]) and writes
    /// the document; returns once it is on disk.
    pub async fn add(&self, event: Event) -> std::io::Result<()> {
        self.change(|list| {
            let at = list.partition_point(|e| e.time_s <= event.time_s);
            list.insert(at, event);
            while list.len() > MAX_EVENTS {
                list.pop_front();
            }
            true
        })
        .await
        .map(|_| ())
    }

    /// Forgets the events at `time_s` with `text` and writes the document;
    /// `false` when there was none.
    pub async fn remove(&self, time_s: i64, text: &str) -> std::io::Result<bool> {
        self.change(|list| {
            let before = list.len();
            list.retain(|e| !(e.time_s == time_s && e.text == text));
            list.len() != before
        })
        .await
    }

    /// Applies `change` to the list; when it says it changed something,
    /// writes the document (one writer at a time, so that an older document
    /// never lands last) and returns once it is on disk.
    async fn change(
        &self,
        change: impl FnOnce(&mut VecDeque<Event>) -> bool,
    ) -> std::io::Result<bool> {
        let _one_writer = self.writing.lock().await;
        let bytes = {
            let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
            if !change(&mut list) {
                return Ok(false);
            }
            serde_json::to_vec(&Document {
                version: VERSION,
                events: list.iter().cloned().collect(),
            })
            .map_err(std::io::Error::other)?
        };
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || crate::atomic_file::write_atomic(&path, &bytes))
            .await
            .map_err(std::io::Error::other)??;
        Ok(true)
    }

    /// Whether one more event may be taken at `now_s` (at most
    /// [`MAX_PER_MINUTE`] a minute).
    pub fn admit(&self, now_s: i64) -> bool {
        let mut minute = self.minute.lock().unwrap_or_else(|e| e.into_inner());
        if now_s.saturating_sub(minute.0) >= 60 {
            *minute = (now_s, 0);
        }
        minute.1 += 1;
        minute.1 <= MAX_PER_MINUTE
    }

    /// The events from `start_s` to `end_s` that `wanted` keeps.
    pub fn between(&self, start_s: i64, end_s: i64, wanted: impl Fn(&Event) -> bool) -> Vec<Event> {
        let list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        let from = list.partition_point(|e| e.time_s < start_s);
        list.iter()
            .skip(from)
            .take_while(|e| e.time_s <= end_s)
            .filter(|e| wanted(e))
            .cloned()
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    text: String,
    #[serde(default)]
    ts: Option<f64>,
    #[serde(default)]
    device: Option<String>,
}

/// An event from an MQTT payload, or why not. `ts` is Unix seconds or
/// milliseconds (by magnitude), absent: now; it may be up to
/// `max_future_s` ahead, as samples may.
pub fn from_payload(payload: &[u8], now_s: i64, max_future_s: i64) -> Result<Event, String> {
    let p: Payload = serde_json::from_slice(payload).map_err(|e| format!("not an event: {e}"))?;
    let time_s = match p.ts {
        None => now_s,
        Some(t) if t.is_finite() && t >= 0.0 => {
            if t < 1e11 {
                t as i64
            } else {
                (t / 1000.0) as i64
            }
        }
        Some(t) => return Err(format!("ts {t} is not a time")),
    };
    checked(
        Event {
            time_s,
            text: p.text,
            device: p.device,
        },
        now_s,
        max_future_s,
    )
}

/// Bounds every field: the text and device are short, printable, the time
/// not far ahead.
pub fn checked(mut event: Event, now_s: i64, max_future_s: i64) -> Result<Event, String> {
    event.text = event.text.trim().to_owned();
    if event.text.is_empty() || event.text.chars().count() > MAX_TEXT {
        return Err(format!("text: 1 to {MAX_TEXT} characters"));
    }
    if event.text.chars().any(char::is_control) {
        return Err("text: no control characters".into());
    }
    if let Some(d) = &event.device {
        let d = d.trim().trim_matches('/');
        if d.is_empty() || d.len() > MAX_TEXT || d.chars().any(char::is_control) {
            return Err("device: a device's path, as the web UI shows it".into());
        }
        event.device = Some(d.to_owned());
    }
    if event.time_s > now_s + max_future_s {
        return Err("ts: in the future".into());
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_000_000;

    #[test]
    fn payloads_are_read_and_bounded() {
        let e = from_payload(
            br#"{"text": " Boiler serviced ", "ts": 1763999000, "device": "/home/boiler/"}"#,
            NOW,
            300,
        )
        .unwrap();
        assert_eq!(
            e,
            Event {
                time_s: 1_763_999_000,
                text: "Boiler serviced".into(),
                device: Some("home/boiler".into())
            }
        );
        assert_eq!(
            from_payload(br#"{"text": "x", "ts": 1763999000123}"#, NOW, 300)
                .unwrap()
                .time_s,
            1_763_999_000
        );
        assert_eq!(
            from_payload(br#"{"text": "now"}"#, NOW, 300)
                .unwrap()
                .time_s,
            NOW
        );
        for bad in [
            &br#"{"text": ""}"#[..],
            br#"{"text": "a\u0007b"}"#,
            br#"{"text": "x", "ts": 1999999999}"#,
            br#"{"text": "x", "ts": -5}"#,
            br#"{"text": "x", "colour": "red"}"#,
            b"not json",
        ] {
            assert!(
                from_payload(bad, NOW, 300).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = format!(r#"{{"text": "{}"}}"#, "x".repeat(MAX_TEXT + 1));
        assert!(from_payload(long.as_bytes(), NOW, 300).is_err());
    }

    #[tokio::test]
    async fn events_are_kept_in_order_bounded_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let events = Events::load(dir.path());
        for i in (0..MAX_EVENTS as i64 + 5).rev() {
            events
                .add(Event {
                    time_s: NOW + i,
                    text: format!("e{i}"),
                    device: None,
                })
                .await
                .unwrap();
        }
        let all = events.between(i64::MIN, i64::MAX, |_| true);
        assert_eq!(all.len(), MAX_EVENTS, "bounded");
        assert!(
            all.windows(2).all(|w| w[0].time_s <= w[1].time_s),
            "in time order"
        );
        assert_eq!(all[0].text, "e5", "the oldest went first");
        assert!((0..MAX_PER_MINUTE).all(|_| events.admit(NOW)));
        assert!(!events.admit(NOW + 59), "a flood waits for the next minute");
        assert!(events.admit(NOW + 60));
        let again = Events::load(dir.path());
        assert_eq!(again.between(NOW + 10, NOW + 12, |_| true).len(), 3);
        std::fs::write(dir.path().join(FILE_NAME), "{").unwrap();
        assert!(
            Events::load(dir.path())
                .between(i64::MIN, i64::MAX, |_| true)
                .is_empty()
        );
        assert!(dir.path().join("events.json.bad").exists(), "set aside");
    }
}
