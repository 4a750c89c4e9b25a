//! The member backfill: events stored before migration 0027 name their member only in their
//! body, so the audit log's search by member did not find them. After an upgrade this background
//! task walks every event once, a page at a time in key order, and gives those that name one
//! their member (`Store::backfill_members`); where it stands is stored, so a restart resumes the
//! walk, and once it is done it does nothing at all. A new installation's first step finds
//! nothing to do. Pages are small and spaced out, so ingest and results get the database between
//! them (a page is read on a reader connection; on SQLite the single writer is held only for the
//! page's one UPDATE and the cursor's move).

use super::{Engine, Result};
use std::time::Duration;

/// Events read per step (one write transaction).
const PAGE: i64 = 200;

/// Pause between two steps of the background task.
const BREATHER: Duration = Duration::from_millis(20);

/// Wait before trying again after a step failed (the database unavailable, say).
const AFTER_FAILURE: Duration = Duration::from_secs(60);

/// What a whole walk did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backfilled {
    /// Events read.
    pub read: u64,
    /// Those given a member.
    pub filled: u64,
}

impl Engine {
    /// Walks on from where the backfill stands until it is done, `pause` between steps.
    pub async fn backfill_members(&self, pause: Duration) -> Result<Backfilled> {
        let mut total = Backfilled::default();
        while let Some(step) = self.store().backfill_members(PAGE).await? {
            total.read += step.read;
            total.filled += step.filled;
            if step.done {
                break;
            }
            tokio::time::sleep(pause).await;
        }
        Ok(total)
    }

    /// Runs the walk from Herald's start until it is done or `shutdown` turns true; a step that
    /// fails (the database unavailable, say) is tried again a minute later.
    pub async fn run_member_backfill(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                walked = self.backfill_members(BREATHER) => match walked {
                    Ok(walked) => {
                        if walked.filled > 0 {
                            tracing::info!(
                                read = walked.read,
                                filled = walked.filled,
                                "earlier events' members filled in: the audit log finds them by member"
                            );
                        }
                        return;
                    }
                    Err(e) => tracing::warn!(
                        error = %e,
                        "filling in earlier events' members failed; trying again in a minute"
                    ),
                },
                _ = shutdown.wait_for(|s| *s) => return,
            }
            tokio::select! {
                _ = tokio::time::sleep(AFTER_FAILURE) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    }
}
