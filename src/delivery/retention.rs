//! Retention: the background task that deletes what is older than the configured window
//! (`EngineConfig::retention`), in small batches per program and kind, pausing between batches so
//! ingest and result writes get the database in between. See `store::retention` for what is kept.

use super::{Engine, Result};
use crate::store::Prunable;
use std::time::Duration;

/// Rows deleted per statement: small enough that one batch holds the write lock for milliseconds.
const BATCH: i64 = 500;

/// Pause between two batches of the background task.
const BREATHER: Duration = Duration::from_millis(20);

/// How often the background task runs.
const EVERY: Duration = Duration::from_secs(3_600);

/// Hourly roll-ups outlive the retention window by this much, so the 30-day figures and the 7-day
/// baselines of flags stay whole.
const ROLLUP_EXTRA_DAYS: i64 = 38;

/// What one pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub attempts: u64,
    pub deliveries: u64,
    pub events: u64,
    pub alerts: u64,
    pub rollup_rows: u64,
}

impl Pruned {
    pub fn total(&self) -> u64 {
        self.attempts + self.deliveries + self.events + self.alerts + self.rollup_rows
    }
}

impl Engine {
    /// Deletes everything older than the retention window, batch by batch (`pause` between
    /// batches). Does nothing when retention is off.
    pub async fn prune(&self, pause: Duration) -> Result<Pruned> {
        let Some(keep) = self.inner.config.retention else {
            return Ok(Pruned::default());
        };
        let now = self.now();
        let cutoff = now - keep;
        let rollup_hour =
            (now - keep.max(chrono::Duration::days(ROLLUP_EXTRA_DAYS))).timestamp() / 3_600;
        let mut pruned = Pruned::default();
        for program in self.store().list_programs().await? {
            // Order matters: deliveries before events, so an event whose deliveries are gone is
            // free to go in the same pass.
            for (what, count) in [
                (Prunable::Attempts, &mut pruned.attempts),
                (Prunable::Deliveries, &mut pruned.deliveries),
                (Prunable::Events, &mut pruned.events),
                (Prunable::Alerts, &mut pruned.alerts),
            ] {
                loop {
                    let n = self.store().prune(&program.id, what, cutoff, BATCH).await?;
                    *count += n;
                    if n < BATCH as u64 {
                        break;
                    }
                    tokio::time::sleep(pause).await;
                }
            }
            pruned.rollup_rows += self.store().prune_rollups(&program.id, rollup_hour).await?;
        }
        for (what, rows) in [
            ("attempts", pruned.attempts),
            ("deliveries", pruned.deliveries),
            ("events", pruned.events),
            ("alerts", pruned.alerts),
            ("rollups", pruned.rollup_rows),
        ] {
            super::observe::retention_deleted(what, rows);
        }
        Ok(pruned)
    }

    /// Prunes once an hour (the first pass a minute after start) until `shutdown` turns true.
    pub async fn run_retention(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        if self.inner.config.retention.is_none() {
            return;
        }
        let mut next = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            next += EVERY;
            match self.prune(BREATHER).await {
                Ok(p) if p.total() > 0 => tracing::info!(
                    attempts = p.attempts,
                    deliveries = p.deliveries,
                    events = p.events,
                    alerts = p.alerts,
                    rollup_rows = p.rollup_rows,
                    "retention: deleted what is older than the window"
                ),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "retention pass failed; trying again next hour")
                }
            }
        }
    }
}
