//! Express dispatch: the process that commits an event already knows its deliveries, so while
//! the dispatcher has caught up with the queue it owns them from the insert (each row is stored
//! already claimed, `in_flight` with a lease) and hands them to the dispatcher in memory. That
//! skips the claim, a write transaction and a join of every delivery to its event and webhook, on
//! the hot path. Crash safety is the claim's: if the process dies before recording a result, the
//! lease runs out and any process claims the delivery again.
//!
//! Fairness decides when a delivery may skip the queue. Only when the dispatcher's latest claim
//! came back short (nothing more was due for the webhooks it did not leave out), and only for a
//! webhook that claim did not leave out and that has had no delivery queued since. Everything
//! else goes through the queue as before: a backlog, a retry, a webhook at its share of slots or
//! rate limit, ordered and switched-off webhooks. A webhook given a queued delivery takes the
//! queue until the next claim, so new events never overtake queued ones for long.
//!
//! How many: as many as the webhook's free request slots take beside the deliveries already
//! waiting in memory for it, and beyond that, for a burst, as many as keep in line while its
//! line keeps up. A line keeps up while the delivery at its head has waited less than a quarter
//! of the lease margin and none of the webhook's requests has run that long: owned deliveries
//! then go out well within half the margin, the point where the dispatcher gives a waiting
//! delivery back to the queue (its lease must still cover a whole request). A receiver that slows
//! down or starts hanging stops its line within that quarter, so what it was given in memory is
//! bounded by what it was taking in that time; a new webhook's first burst, which has no pace to
//! judge by, may wait in memory (up to `MAX_OWNED_WAITING` for all webhooks together) instead of
//! sending the webhook to the queue, and with it every later event until the queue is drained.
//! On PostgreSQL this relies on the statistics keeper analyzing a young table right after its
//! first burst (see `PgStore`): with a whole burst in flight on plans made for empty tables,
//! recording results was slower than the claims it saved.

use super::queue::Claim;
use super::Engine;
use crate::domain::delivery::Trigger;
use crate::domain::ids::{DeliveryId, WebhookId};
use crate::store::{IngestItem, Lease, Webhook};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Deliveries ingest may own beyond their webhooks' free request slots, waiting in memory, all
/// webhooks together (each a few hundred bytes, the event's body shared): the bound on what
/// bursts take in memory.
pub const MAX_OWNED_WAITING: usize = 32_768;

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

/// What ingest may still own of one webhook's new deliveries in a batch.
#[derive(Debug)]
struct Budget {
    /// Request slots free beside the deliveries already waiting for it.
    free: usize,
    /// Its line keeps up: more may wait in memory beyond the free slots, from `spare`.
    beyond: bool,
}

impl Budget {
    /// Takes one delivery into the budget; `false` when it must take the queue.
    fn take(&mut self, spare: &mut usize) -> bool {
        if self.free > 0 {
            self.free -= 1;
            true
        } else if self.beyond && *spare > 0 {
            *spare -= 1;
            true
        } else {
            false
        }
    }
}

/// Whether a webhook's line keeps up (see the module notes): the delivery at its head has waited
/// `head` (`None`: nobody waits), its longest request in flight has run `running`.
fn keeps_up(head: Option<Duration>, running: Duration, quarter: Duration) -> bool {
    head.is_none_or(|waited| waited < quarter) && running < quarter
}

impl Engine {
    /// Gives the batch's deliveries that may skip the queue a lease (see the module notes);
    /// `webhooks[i][j]` is the webhook of `batch[i].targets[j]`. Leases from an earlier try of
    /// the same batch are replaced.
    pub(super) fn own(&self, batch: &mut [IngestItem], webhooks: &[Vec<Arc<Webhook>>]) {
        let inner = &self.inner;
        let open = inner.config.express && inner.express.is_open();
        let now = self.now();
        let quarter = inner.config.lease_margin / 4;
        let mut budgets: HashMap<&WebhookId, Budget> = HashMap::new();
        // Room left in memory beyond free slots (read with the first webhook's line).
        let mut spare = None;
        let mut queued = inner.express.queued.lock().expect("express queued set");
        for (item, hooks) in batch.iter_mut().zip(webhooks) {
            for (target, w) in item.targets.iter_mut().zip(hooks) {
                target.lease = None;
                let id = &w.record.id;
                let ok = open
                    && eligible(w)
                    && !queued.contains(id)
                    && !inner.held_back.holds(id)
                    && budgets
                        .entry(id)
                        .or_insert_with(|| {
                            let (waiting, head, all) = inner.waiting.line_of(id);
                            spare.get_or_insert(MAX_OWNED_WAITING.saturating_sub(all));
                            Budget {
                                free: inner.lanes.room(id).saturating_sub(waiting),
                                beyond: keeps_up(
                                    head.map(|at| (now - at).to_std().unwrap_or_default()),
                                    inner.lanes.running_longest(id),
                                    quarter,
                                ),
                            }
                        })
                        .take(spare.as_mut().expect("read with the first line"));
                if !ok {
                    queued.insert(id.clone());
                    continue;
                }
                let timeout = Duration::from_secs(w.record.retry.timeout_seconds.into());
                let lease = chrono::Duration::from_std(timeout + inner.config.lease_margin)
                    .expect("small duration");
                target.lease = Some(Lease {
                    delivery: DeliveryId::generate(),
                    until: item.event.created_at + lease,
                });
            }
        }
    }

    /// After the commit: every owned delivery of a stored event (`stored`: each event of `batch`
    /// was stored now, not a duplicate nor refused) waits in memory for the dispatcher, already
    /// claimed. If the dispatcher has stopped, they go back to the queue. Returns whether any
    /// wait: the caller rings the dispatcher (`Express::ready`) once it has answered the senders,
    /// so their answers are not queued behind the dispatcher's planning on the worker that rang.
    pub(super) async fn hand_over(
        &self,
        batch: &[IngestItem],
        webhooks: &[Vec<Arc<Webhook>>],
        stored: &[bool],
    ) -> bool {
        let mut refused = Vec::new();
        let (mut express, mut queued) = (0, 0);
        for ((item, hooks), stored) in batch.iter().zip(webhooks).zip(stored) {
            if !stored {
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
        self.give_back(&refused).await;
        express > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUARTER: Duration = Duration::from_millis(2500);

    #[test]
    fn free_slots_first_then_memory_while_the_line_keeps_up() {
        let mut spare = 3;
        let mut b = Budget {
            free: 2,
            beyond: true,
        };
        let taken = std::iter::from_fn(|| b.take(&mut spare).then_some(())).count();
        assert_eq!(taken, 5, "two free slots, then the three left in memory");
        assert_eq!(spare, 0);
        let mut other = Budget {
            free: 1,
            beyond: true,
        };
        assert!(
            other.take(&mut spare),
            "a free slot needs no memory to spare"
        );
        assert!(!other.take(&mut spare), "memory is shared by all webhooks");
        let mut spare = 100;
        let mut lagging = Budget {
            free: 1,
            beyond: false,
        };
        assert!(lagging.take(&mut spare));
        assert!(
            !lagging.take(&mut spare),
            "a lagging line gets its free slots only"
        );
        assert_eq!(spare, 100);
    }

    #[test]
    fn a_line_keeps_up_until_its_head_or_a_request_takes_a_quarter_of_the_margin() {
        let ms = Duration::from_millis;
        assert!(keeps_up(None, Duration::ZERO, QUARTER), "nobody waiting");
        assert!(keeps_up(Some(ms(2499)), ms(2499), QUARTER));
        assert!(
            !keeps_up(Some(QUARTER), ms(1), QUARTER),
            "the head waited too long"
        );
        assert!(
            !keeps_up(None, QUARTER, QUARTER),
            "a request runs long: hanging?"
        );
    }
}
