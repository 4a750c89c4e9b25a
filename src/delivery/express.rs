//! Express dispatch: the process that commits an event already knows its deliveries, so while
//! the dispatcher has caught up with the queue it owns them from the insert (each row is stored
//! already claimed, `in_flight` with a lease) and hands them to the dispatcher in memory. That
//! skips the claim, a write transaction and a join of every delivery to its event and webhook, on
//! the hot path. Crash safety is the claim's: if the process dies before recording a result, the
//! lease runs out and any process claims the delivery again.
//!
//! Fairness decides when a delivery may skip the queue. Only when the dispatcher's latest claim
//! came back short (nothing more was due for the webhooks it did not leave out), only for a
//! webhook that claim did not leave out and that has had no delivery queued since, and only as
//! many as its free request slots take beside the deliveries already waiting in memory for it.
//! Everything else goes through the queue as before: a backlog, a retry, a webhook at its share
//! of slots or rate limit, ordered and switched-off webhooks. A webhook given a queued delivery
//! takes the queue until the next claim, so new events never overtake queued ones for long.

use super::queue::Claim;
use super::Engine;
use crate::domain::delivery::Trigger;
use crate::domain::ids::{DeliveryId, WebhookId};
use crate::store::{IngestItem, Lease, StoreError, Webhook};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Default)]
pub struct Express {
    /// The dispatcher's latest claim came back short.
    open: AtomicBool,
    /// Webhooks given a queued (not owned) delivery since that claim was made.
    queued: Mutex<HashSet<WebhookId>>,
    /// Rung when owned deliveries wait in memory for the dispatcher to plan them.
    pub ready: Notify,
}

impl Express {
    /// Called by the dispatcher just before it claims: what was queued until now, that claim
    /// sees.
    pub fn claiming(&self) {
        self.queued.lock().expect("express queued set").clear();
    }

    /// Called after a claim: `caught_up` when it came back short.
    pub fn claimed(&self, caught_up: bool) {
        self.open.store(caught_up, Ordering::SeqCst);
    }

    /// Stops owning new deliveries (on shutdown, or when the queue cannot be read).
    pub fn close(&self) {
        self.open.store(false, Ordering::SeqCst);
    }

    fn is_open(&self) -> bool {
        self.open.load(Ordering::SeqCst)
    }
}

/// Whether a webhook's deliveries may ever be owned at ingest: switched on (ingest's subscriber
/// list is checked against the database's version in the same transaction), not ordered (the
/// claim keeps one per key in flight) and not rate-limited (the claim spaces those out).
fn eligible(w: &Webhook) -> bool {
    w.record.enabled && w.record.ordering_key.is_none() && w.record.rate_limit_per_second.is_none()
}

impl Engine {
    /// Gives the batch's deliveries that may skip the queue a lease (see the module notes);
    /// `webhooks[i][j]` is the webhook of `batch[i].targets[j]`. Leases from an earlier try of
    /// the same batch are replaced.
    pub(super) fn own(&self, batch: &mut [IngestItem], webhooks: &[Vec<Arc<Webhook>>]) {
        let inner = &self.inner;
        let open = inner.config.express && inner.express.is_open();
        let mut taken: HashMap<&WebhookId, usize> = HashMap::new();
        let mut queued = inner.express.queued.lock().expect("express queued set");
        for (item, hooks) in batch.iter_mut().zip(webhooks) {
            for (target, w) in item.targets.iter_mut().zip(hooks) {
                target.lease = None;
                let id = &w.record.id;
                let timeout = Duration::from_secs(w.record.retry.timeout_seconds.into());
                let ok = open
                    && eligible(w)
                    && !queued.contains(id)
                    && !inner.held_back.holds(id)
                    && *taken.get(id).unwrap_or(&0) + inner.waiting.len(id) < inner.lanes.room(id);
                if !ok {
                    queued.insert(id.clone());
                    continue;
                }
                *taken.entry(id).or_default() += 1;
                let lease = chrono::Duration::from_std(timeout + inner.config.lease_margin)
                    .expect("small duration");
                target.lease = Some(Lease {
                    delivery: DeliveryId::generate(),
                    until: item.event.created_at + lease,
                });
            }
        }
    }

    /// After the commit: every owned delivery of a stored event waits in memory for the
    /// dispatcher, already claimed. If the dispatcher has stopped, they go back to the queue.
    pub(super) async fn hand_over(
        &self,
        batch: &[IngestItem],
        webhooks: &[Vec<Arc<Webhook>>],
        stored: &[Result<Option<usize>, StoreError>],
    ) {
        let mut refused = Vec::new();
        let (mut express, mut queued) = (0, 0);
        for ((item, hooks), stored) in batch.iter().zip(webhooks).zip(stored) {
            if !matches!(stored, Ok(Some(_))) {
                continue;
            }
            let e = &item.event;
            // One copy of the body for all of the event's deliveries.
            let body: Arc<str> = e.body.as_str().into();
            for (target, w) in item.targets.iter().zip(hooks) {
                let Some(lease) = &target.lease else {
                    queued += 1;
                    continue;
                };
                let claim = Claim {
                    delivery_id: lease.delivery.clone(),
                    claim_count: 1,
                    tries: 0,
                    interruptions: 0,
                    trigger: Trigger::Event,
                    event_id: e.id.clone(),
                    event_type: e.event_type.clone(),
                    body: body.clone(),
                    accepted_at: e.created_at,
                    webhook: w.clone(),
                };
                match self.inner.waiting.push_unless_closed(claim, e.created_at) {
                    Ok(()) => express += 1,
                    Err(key) => refused.push(key),
                }
            }
        }
        super::observe::routed(express, queued + refused.len());
        if express > 0 {
            self.inner.express.ready.notify_one();
        }
        self.give_back(&refused).await;
    }
}
