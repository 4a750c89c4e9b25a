//! The dispatcher: claims due deliveries in batches, runs their requests concurrently (bounded by
//! a semaphore, so one slow endpoint holds one permit, never the queue), and hands results to a
//! single writer that records them in batches (group commit).
//!
//! It sleeps until the earliest due time, a wake-up (ingest, replay, a retry being scheduled, or
//! a PostgreSQL notification from another process) or the idle poll, whichever is first: no busy
//! polling. On shutdown it stops claiming, lets requests in flight finish within a grace period,
//! and gives back the claims of any that did not.

use super::dispatch::{self, Message, Target};
use super::secrets::WebhookSecrets;
use super::{retry, Engine};
use crate::domain::delivery::Trigger;
use crate::domain::ids::DeliveryId;
use crate::store::{now, ClaimedDelivery, DeliveryResult, NextStep};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

/// Claims this process holds, so a shutdown can give back those still in flight.
type InFlight = Arc<Mutex<HashMap<DeliveryId, i64>>>;

/// How far ahead a rate-limited delivery may wait in memory; later slots go back to the queue.
const MAX_IN_MEMORY_WAIT: Duration = Duration::from_secs(1);

impl Engine {
    /// Runs the dispatcher until `shutdown` turns true, then drains as described above.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let cfg = self.config().clone();
        if let Err(e) = self.store().listen_for_work(self.inner.wake.clone()).await {
            tracing::warn!(error = %e, "cannot listen for other processes' work; polling instead");
        }
        let permits = Arc::new(Semaphore::new(cfg.concurrency));
        let in_flight: InFlight = Arc::default();
        let (results_tx, results_rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(self.clone().write_results(results_rx));
        let mut tasks = JoinSet::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            while tasks.try_join_next().is_some() {}
            let free = permits.available_permits().min(cfg.claim_batch as usize);
            if free == 0 {
                tokio::select! {
                    _ = tasks.join_next() => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let margin = chrono::Duration::from_std(cfg.lease_margin).expect("small duration");
            let claimed = match self.store().claim_due(now(), free as u32, margin).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "claiming deliveries failed; retrying shortly");
                    self.idle(&mut shutdown, Duration::from_secs(1)).await;
                    continue;
                }
            };
            if claimed.is_empty() {
                let wait = self.until_next_due().await.min(cfg.idle_poll);
                self.idle(&mut shutdown, wait).await;
                continue;
            }
            for c in claimed {
                let permit = permits
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("semaphore open");
                in_flight
                    .lock()
                    .expect("in-flight map")
                    .insert(c.delivery_id.clone(), c.claim_count);
                let (engine, tx, held) = (self.clone(), results_tx.clone(), in_flight.clone());
                tasks.spawn(async move {
                    let id = c.delivery_id.clone();
                    if let Some(result) = engine.deliver(c).await {
                        let _ = tx.send(result);
                    }
                    held.lock().expect("in-flight map").remove(&id);
                    drop(permit);
                });
            }
        }
        self.drain(tasks, in_flight, cfg.shutdown_grace).await;
        drop(results_tx);
        let _ = writer.await;
    }

    async fn idle(&self, shutdown: &mut watch::Receiver<bool>, wait: Duration) {
        tokio::select! {
            _ = self.inner.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }

    async fn until_next_due(&self) -> Duration {
        match self.store().next_due_at().await {
            Ok(Some(at)) => (at - now()).to_std().unwrap_or(Duration::ZERO),
            Ok(None) => Duration::MAX,
            Err(_) => Duration::from_secs(1),
        }
    }

    async fn drain(&self, mut tasks: JoinSet<()>, in_flight: InFlight, grace: Duration) {
        let finished =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if finished.is_err() {
            tasks.abort_all();
            let held: Vec<_> = in_flight.lock().expect("in-flight map").drain().collect();
            tracing::warn!(
                count = held.len(),
                "shutdown grace ran out; releasing unfinished deliveries"
            );
            if let Err(e) = self.store().release(&held, now()).await {
                tracing::error!(error = %e, "could not release claims; their leases will expire instead");
            }
        }
    }

    /// Makes one try of a claimed delivery and decides what follows. `None` when the delivery was
    /// handed back to the queue untried (a rate-limit slot too far ahead).
    async fn deliver(&self, c: ClaimedDelivery) -> Option<DeliveryResult> {
        let w = &c.webhook.record;
        if let Some(limit) = w.rate_limit_per_second {
            let slot = self.inner.rate.reserve(&w.id, limit);
            let wait = slot.saturating_duration_since(tokio::time::Instant::now());
            if wait > MAX_IN_MEMORY_WAIT {
                let at = now() + chrono::Duration::from_std(wait).expect("small duration");
                if let Err(e) = self
                    .store()
                    .release(&[(c.delivery_id.clone(), c.claim_count)], at)
                    .await
                {
                    tracing::warn!(error = %e, "could not requeue a rate-limited delivery");
                }
                self.wake();
                return None;
            }
            tokio::time::sleep_until(slot).await;
        }
        // Never send unsigned: a webhook whose secrets cannot be opened fails its attempt instead.
        let (secrets, blocked) = match WebhookSecrets::open(&w.sealed_secrets, &self.inner.sealer) {
            Ok(s) => (s, None),
            Err(e) => {
                tracing::error!(webhook = %w.id, error = %e, "cannot open webhook secrets");
                (WebhookSecrets::default(), Some(e.to_string()))
            }
        };
        let target = Target {
            guard: self.config().guard,
            blocked,
            program_id: &w.program_id,
            webhook_id: &w.id,
            webhook_name: w.name.as_str(),
            url: w.url.as_str(),
            auth_kind: w.auth_kind,
            auth_username: w.auth_username.as_deref(),
            secrets: &secrets,
            timeout: Duration::from_secs(w.retry.timeout_seconds.into()),
            sandbox: w.sandbox,
        };
        let msg = Message {
            id: &c.event_id,
            event_type: &c.event_type,
            body: &c.body,
            delivery_id: Some(&c.delivery_id),
            attempt: c.tries + 1,
            trigger: if c.tries == 0 {
                c.trigger
            } else {
                Trigger::Retry
            },
        };
        let attempted = dispatch::attempt(&self.inner.http, &target, &msg).await;
        let next = if attempted.succeeded() {
            NextStep::Succeeded
        } else {
            let at = now();
            let retry_after = attempted
                .retry_after
                .as_deref()
                .and_then(|v| retry::parse_retry_after(v, at));
            retry::after_failure(&w.retry, c.tries, at, retry_after, retry::jitter())
        };
        Some(DeliveryResult {
            delivery_id: c.delivery_id,
            claim_count: c.claim_count,
            next,
            attempt: attempted.row,
        })
    }

    /// Records results in batches: whatever has arrived while the previous batch was written goes
    /// into the next transaction. A failed write is retried; results are never dropped while the
    /// process lives (and if it dies, the leases expire and the deliveries are tried again).
    async fn write_results(self, mut rx: mpsc::UnboundedReceiver<DeliveryResult>) {
        const MAX_BATCH: usize = 512;
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let retries = batch.iter().any(|r| matches!(r.next, NextStep::RetryAt(_)));
            let mut delay = Duration::from_millis(100);
            while let Err(e) = self.store().record_results(&batch).await {
                tracing::error!(error = %e, count = batch.len(), "recording results failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            batch.clear();
            if retries {
                // A retry may now be due sooner than the dispatcher planned to wake.
                self.wake();
            }
        }
    }
}
