//! Wall-clock time in Unix milliseconds, and the tokio instant at which a
//! given wall time comes.
//!
//! Rows are aligned to UTC, so the cache needs wall time; its timers need
//! tokio instants. `System` reads the real clock (no drift over months of
//! uptime). `Anchored` derives wall time from tokio's clock, so tests that
//! pause and advance tokio time move the wall clock with it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::model::UnixMillis;

#[derive(Debug, Clone, Copy)]
pub enum Clock {
    System,
    #[cfg(test)]
    Anchored {
        wall_ms: UnixMillis,
        at: Instant,
    },
}

impl Clock {
    /// A clock reading `wall_ms` now and advancing with tokio time.
    #[cfg(test)]
    pub fn anchored(wall_ms: UnixMillis) -> Clock {
        Clock::Anchored {
            wall_ms,
            at: Instant::now(),
        }
    }

    pub fn now_ms(&self) -> UnixMillis {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            #[cfg(test)]
            Clock::Anchored { wall_ms, at } => wall_ms + at.elapsed().as_millis() as i64,
        }
    }

    /// The tokio instant at which the wall clock reads `wall_ms`.
    pub fn instant_at(&self, wall_ms: UnixMillis) -> Instant {
        let ahead = wall_ms.saturating_sub(self.now_ms()).max(0) as u64;
        // Clamp: a due time centuries away must not overflow `Instant`.
        Instant::now() + Duration::from_millis(ahead.min(86_400_000 * 365))
    }
}
