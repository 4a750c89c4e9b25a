//! A switched-off webhook's pending deliveries are held (due at `sql::held_due()`, the far end of
//! the due index) and released when it is switched on; a deleted webhook's end as failed. The
//! change commits first; its deliveries then follow in steps of `HELD_PER_STEP`, each its own
//! short transaction, so a backlog of millions never keeps the program's ingest waiting. Claims
//! skip a switched-off (or deleted) webhook whatever its deliveries' due times, so the steps are
//! about where those deliveries sit in the queue, not about whether they go out. What a stopped
//! process left unsettled is found by the sweep at start and every few minutes.

use super::{Engine, Result};
use crate::domain::ids::WebhookId;
use crate::store::HELD_PER_STEP;
use std::time::Duration;

/// How often the background sweep looks for webhooks left unsettled.
const SWEEP_EVERY: Duration = Duration::from_secs(300);

impl Engine {
    /// Moves the webhook's pending deliveries to match its state, a step at a time, waking the
    /// dispatcher for what is released. Runs on a task of its own, so a caller that goes away
    /// (a closed request) does not stop it halfway. Returns how many moved.
    pub async fn settle_held(&self, id: &WebhookId) -> Result<u64> {
        let engine = self.clone();
        let id = id.clone();
        let steps = tokio::spawn(async move {
            in_steps(|| async {
                let n = engine.store().settle_held(&id, HELD_PER_STEP).await?;
                if n > 0 {
                    engine.wake();
                }
                Ok(n)
            })
            .await
        });
        steps.await.map_err(|e| {
            super::EngineError::Unavailable(format!("holding or releasing deliveries failed: {e}"))
        })?
    }

    /// `settle_held` after a switch change or deletion that is already committed: a failure is
    /// logged, not returned (the change stands; the sweep finishes the job).
    pub(crate) async fn settle_after_change(&self, id: &WebhookId) {
        if let Err(e) = self.settle_held(id).await {
            tracing::warn!(webhook = %id, error = %e, "could not yet hold or release the webhook's deliveries; the sweep will");
        }
    }

    /// Settles every webhook whose deliveries do not match its switch. Returns how many
    /// deliveries moved.
    pub async fn settle_all_held(&self) -> Result<u64> {
        let mut moved = 0;
        for id in self.store().unsettled_webhooks().await? {
            moved += self.settle_held(&id).await?;
        }
        Ok(moved)
    }

    /// Sweeps at start and then every few minutes until `shutdown` turns true.
    pub async fn run_hold_sweeps(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            match self.settle_all_held().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    deliveries = n,
                    "held or released the deliveries of webhooks left unsettled"
                ),
                Err(e) => tracing::warn!(error = %e, "could not sweep for unsettled webhooks"),
            }
            tokio::select! {
                _ = tokio::time::sleep(SWEEP_EVERY) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    }
}

/// Runs `step` (one transaction moving up to `HELD_PER_STEP` rows) until one moves nothing: all
/// are moved. Returns how many in all.
///
/// A step that moves fewer than it could is not the end: on PostgreSQL a concurrent settler of
/// the same webhook (the sweep, another process) can take rows a step picked, and the step then
/// skips them. Stopping there left both settlers short of the end and the rest where it was
/// until the next sweep, up to 5 minutes later. The cost is one step that finds nothing.
pub(crate) async fn in_steps<F, Fut>(mut step: F) -> Result<u64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64>>,
{
    let mut moved = 0;
    loop {
        match step().await? {
            0 => return Ok(moved),
            n => moved += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Steps as a racing settler sees them: a full step, then two short ones (rows the other
    /// settler took), then the end.
    #[tokio::test]
    async fn short_steps_go_on_until_one_moves_nothing() {
        let full = HELD_PER_STEP as u64;
        let script = Mutex::new(vec![full, 3_000, 1_200, 0, 999]);
        let moved = in_steps(|| async { Ok(script.lock().unwrap().remove(0)) })
            .await
            .unwrap();
        assert_eq!(moved, full + 4_200);
        assert_eq!(*script.lock().unwrap(), [999], "stopped at the empty step");
    }
}
