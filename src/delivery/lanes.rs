//! Each webhook's share of the request slots. A webhook may hold at most `per_webhook` requests in
//! flight at once, and only `SLOW_LANE` while it is slow (its latest request hung for at least half
//! its timeout, or longer than `SLOW_AFTER`): endpoints that hang cannot take the slots healthy
//! ones need, however many deliveries they have queued. A webhook at its share is left out of
//! claims (its deliveries keep their place in the queue) until one of its requests finishes.

use crate::domain::ids::WebhookId;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Requests in flight at once for a webhook whose latest request hung.
pub const SLOW_LANE: usize = 2;

/// A request that takes this long (or half its timeout, if that is shorter) makes its webhook slow.
const SLOW_AFTER: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Lane {
    in_flight: usize,
    slow: bool,
}

pub struct Lanes {
    per_webhook: usize,
    lanes: Mutex<HashMap<WebhookId, Lane>>,
}

impl Lanes {
    pub fn new(per_webhook: usize) -> Self {
        Self {
            per_webhook: per_webhook.max(SLOW_LANE),
            lanes: Mutex::default(),
        }
    }

    fn share(&self, lane: &Lane) -> usize {
        if lane.slow {
            SLOW_LANE
        } else {
            self.per_webhook
        }
    }

    /// Webhooks holding their whole share now (to leave out of the next claim).
    pub fn full(&self) -> Vec<WebhookId> {
        let lanes = self.lanes.lock().expect("lanes");
        lanes
            .iter()
            .filter(|(_, lane)| lane.in_flight >= self.share(lane))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Takes a slot for one request of `webhook`; `false` (nothing taken) when its share is used.
    pub fn try_take(&self, webhook: &WebhookId) -> bool {
        let mut lanes = self.lanes.lock().expect("lanes");
        let lane = lanes.entry(webhook.clone()).or_default();
        if lane.in_flight >= self.share(lane) {
            return false;
        }
        lane.in_flight += 1;
        true
    }

    /// Gives back a slot taken for a request that was not made.
    pub fn give_back(&self, webhook: &WebhookId) {
        self.finish_with(webhook, None);
    }

    /// Gives back the slot of a request that took `took` with a timeout of `timeout`, and judges
    /// whether the webhook is slow. `true` when the webhook had been at its share (so its waiting
    /// deliveries can be claimed again).
    pub fn finish(&self, webhook: &WebhookId, took: Duration, timeout: Duration) -> bool {
        let slow = took >= SLOW_AFTER.min(timeout / 2).max(Duration::from_millis(100));
        self.finish_with(webhook, Some(slow))
    }

    fn finish_with(&self, webhook: &WebhookId, slow: Option<bool>) -> bool {
        let mut lanes = self.lanes.lock().expect("lanes");
        let Some(lane) = lanes.get_mut(webhook) else {
            return false;
        };
        let was_full = lane.in_flight >= self.share(lane);
        lane.in_flight = lane.in_flight.saturating_sub(1);
        if let Some(slow) = slow {
            lane.slow = slow;
        }
        if lane.in_flight == 0 && !lane.slow {
            lanes.remove(webhook);
        }
        was_full
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);

    #[test]
    fn a_webhook_gets_its_share_and_no_more() {
        let lanes = Lanes::new(3);
        let (a, b) = (WebhookId::generate(), WebhookId::generate());
        assert!((0..3).all(|_| lanes.try_take(&a)));
        assert!(!lanes.try_take(&a), "a fourth request for the same webhook");
        assert!(lanes.try_take(&b), "another webhook is not held up");
        assert_eq!(lanes.full(), vec![a.clone()]);
        assert!(lanes.finish(&a, Duration::from_millis(5), TIMEOUT));
        assert!(lanes.full().is_empty());
        assert!(lanes.try_take(&a));
    }

    #[test]
    fn a_hanging_webhook_is_narrowed_to_the_slow_lane_until_it_answers_quickly() {
        let lanes = Lanes::new(8);
        let a = WebhookId::generate();
        assert!(lanes.try_take(&a));
        lanes.finish(&a, TIMEOUT, TIMEOUT);
        assert!((0..SLOW_LANE).all(|_| lanes.try_take(&a)));
        assert!(!lanes.try_take(&a), "slow webhooks get the slow lane only");
        assert_eq!(lanes.full(), vec![a.clone()]);
        // A quick answer widens it again.
        assert!(lanes.finish(&a, Duration::from_millis(3), TIMEOUT));
        lanes.give_back(&a);
        assert!((0..8).all(|_| lanes.try_take(&a)));
    }

    #[test]
    fn unused_lanes_are_forgotten() {
        let lanes = Lanes::new(4);
        let a = WebhookId::generate();
        assert!(lanes.try_take(&a));
        lanes.give_back(&a);
        assert!(lanes.lanes.lock().unwrap().is_empty());
    }
}
