//! The recorder: writes delivery results (audit rows plus each delivery's next state) in batches.
//!
//! Invariant: one result can never block the others. A batch that fails for a reason other than
//! the database being unavailable is split and written one result at a time; a result that still
//! cannot be written is written again without the receiver's response (the usual culprit), with
//! an error saying why; if even that fails it is logged and given up, and its lease expiry brings
//! the delivery back (counted as an interruption). Only an unavailable database is waited out,
//! because then no write can succeed and nothing is gained by dropping results.

use super::aftermath::Aftermath;
use super::ingest::WriteJob;
use super::queue::Outcome;
use super::Engine;
use crate::store::Moved;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

fn any_retry(results: &[Outcome]) -> bool {
    results
        .iter()
        .any(|r| matches!(r.next, super::queue::NextStep::RetryAt(_)))
}

/// Most results written in one transaction.
const RESULTS_PER_COMMIT: usize = 512;

impl Engine {
    /// Records results as they arrive: whatever came in while the previous batch was written
    /// goes into the next transaction. A batch rides along with the next group commit of events
    /// (see `ingest`); one given back unwritten is written here.
    pub(super) async fn write_results(self, mut rx: mpsc::Receiver<Outcome>) {
        let mut batch = Vec::with_capacity(RESULTS_PER_COMMIT);
        while rx.recv_many(&mut batch, RESULTS_PER_COMMIT).await > 0 {
            let results = std::mem::take(&mut batch);
            let after = Aftermath::of(&results);
            let retries = any_retry(&results);
            let (done, written) = oneshot::channel();
            let unwritten = match self
                .inner
                .ingest_tx
                .send(WriteJob::Results(results, done, std::time::Instant::now()))
                .await
            {
                Err(mpsc::error::SendError(WriteJob::Results(results, _, _))) => Some(results),
                // Never: what was sent is what comes back.
                Err(mpsc::error::SendError(WriteJob::Ingest(_))) => continue,
                Ok(()) => match written.await {
                    Ok(Ok((results, moved))) => {
                        moved_on(&results, &moved);
                        None
                    }
                    Ok(Err(results)) => Some(results),
                    // The group-commit task is gone (the engine is being dropped): the leases
                    // of these deliveries bring them back, as after a crash.
                    Err(_) => {
                        tracing::error!("the group-commit task ended before recording results");
                        continue;
                    }
                },
            };
            match unwritten {
                Some(results) => self.record_batch(results).await,
                None => self.recorded(after, retries).await,
            }
        }
    }

    /// Writes one batch of results as described in the module documentation.
    pub(super) async fn record_batch(&self, batch: Vec<Outcome>) {
        if batch.is_empty() {
            return;
        }
        let retries = any_retry(&batch);
        let after = Aftermath::of(&batch);
        match self.write_waiting_out_outages(&batch).await {
            Ok(moved) => moved_on(&batch, &moved),
            Err(e) => {
                tracing::error!(error = %e, count = batch.len(), "recording a batch of results failed; recording them one by one");
                for result in batch {
                    self.record_alone(result).await;
                }
            }
        }
        self.recorded(after, retries).await;
    }

    /// What follows a written batch: alerts and automatic switch-offs, and a wake-up when a
    /// retry may now be due sooner than the dispatcher planned to wake.
    async fn recorded(&self, after: Aftermath, retries: bool) {
        self.follow_up(after).await;
        if retries {
            self.wake();
        }
    }

    /// Writes results, retrying while the database is unavailable (with backoff up to 5 s).
    /// Any other failure is returned at once.
    async fn write_waiting_out_outages(
        &self,
        results: &[Outcome],
    ) -> Result<Moved, crate::store::StoreError> {
        let mut delay = Duration::from_millis(100);
        loop {
            let start = std::time::Instant::now();
            let written = self.store().record_results(results, self.now()).await;
            if written.is_ok() {
                super::observe::wrote("results", start.elapsed(), 0, results.len());
                self.inner.write_health.succeeded(false);
            }
            match written {
                Err(e) if e.is_unavailable() => {
                    // A conflict with another transaction says nothing of the database's state.
                    if !e.is_conflict() {
                        self.inner
                            .write_health
                            .failed(e.unavailable_reason(), self.now(), false);
                    }
                    tracing::warn!(error = %e, "database unavailable while recording results; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                other => return other,
            }
        }
    }

    async fn record_alone(&self, result: Outcome) {
        let e = match self
            .write_waiting_out_outages(std::slice::from_ref(&result))
            .await
        {
            Ok(moved) => return moved_on(std::slice::from_ref(&result), &moved),
            Err(e) => e,
        };
        let mut safe = result;
        let a = &mut safe.attempt;
        tracing::error!(error = %e, attempt = %a.id, webhook = %a.webhook_id,
            "an attempt could not be recorded; recording it without the response");
        a.response_body = None;
        a.response_headers = None;
        a.error = Some(format!(
            "{}the receiver's response could not be stored ({e}) and was dropped",
            a.error
                .as_deref()
                .map(|err| format!("{err}; "))
                .unwrap_or_default()
        ));
        match self
            .write_waiting_out_outages(std::slice::from_ref(&safe))
            .await
        {
            Ok(moved) => moved_on(std::slice::from_ref(&safe), &moved),
            Err(e) => {
                tracing::error!(error = %e, attempt = %safe.attempt.id, delivery = %safe.delivery_id,
                    "giving up on recording an attempt; its lease will expire and the delivery will be tried again");
            }
        }
    }
}

/// Counts and logs what written results did to their deliveries: only a result that moved its
/// delivery finished it or scheduled its retry (a superseded one was a stale claim's, and the
/// current claim's result will tell).
fn moved_on(results: &[Outcome], moved: &Moved) {
    for (i, result) in results.iter().enumerate() {
        super::observe::recorded(result, moved.of(i));
    }
}
