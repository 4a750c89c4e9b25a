//! Per-webhook rate limits: each limited webhook gets evenly spaced send slots (1/N s apart), so
//! its deliveries queue behind each other without holding up any other webhook.
//!
//! A slot is reserved only for a delivery that will wait for it in memory (at most a short
//! horizon); one whose slot would be further away goes back to the queue without reserving
//! anything, so requeues never push the schedule out, and its webhook is left out of claims until
//! its next slot comes within the horizon. The queue, not this map, keeps the order (claims are
//! oldest first), so a restart loses only the spacing, never anyone's place in line. Limits are
//! per process; with several Herald processes each enforces the limit on its own share.

use crate::domain::ids::WebhookId;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::time::{Duration, Instant};

#[derive(Default)]
pub struct RateLimits {
    /// The next free send slot of each limited webhook that has sent recently.
    next_slot: Mutex<HashMap<WebhookId, Instant>>,
}

impl RateLimits {
    /// Reserves the next send slot of a webhook limited to `per_second`, if it is no more than
    /// `horizon` away; `None` (nothing reserved) otherwise.
    pub fn try_reserve(
        &self,
        webhook: &WebhookId,
        per_second: u32,
        horizon: Duration,
    ) -> Option<Instant> {
        self.try_reserve_at(webhook, per_second, horizon, Instant::now())
    }

    /// `try_reserve` as of `now`.
    fn try_reserve_at(
        &self,
        webhook: &WebhookId,
        per_second: u32,
        horizon: Duration,
        now: Instant,
    ) -> Option<Instant> {
        let spacing = Duration::from_secs(1) / per_second.max(1);
        let mut slots = self.next_slot.lock().expect("rate-limit map poisoned");
        if slots.len() > 10_000 {
            slots.retain(|_, t| *t > now);
        }
        let slot = slots
            .get(webhook)
            .copied()
            .filter(|t| *t > now)
            .unwrap_or(now);
        if slot > now + horizon {
            return None;
        }
        slots.insert(webhook.clone(), slot + spacing);
        Some(slot)
    }

    /// Webhooks whose next slot is more than `horizon` away, each with the moment it comes
    /// within reach again.
    pub fn held_back(&self, horizon: Duration) -> Vec<(WebhookId, Instant)> {
        self.held_back_at(horizon, Instant::now())
    }

    /// `held_back` as of `now`.
    fn held_back_at(&self, horizon: Duration, now: Instant) -> Vec<(WebhookId, Instant)> {
        self.next_slot
            .lock()
            .expect("rate-limit map poisoned")
            .iter()
            .filter(|(_, slot)| **slot > now + horizon)
            .map(|(id, slot)| (id.clone(), *slot - horizon))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HORIZON: Duration = Duration::from_secs(1);

    #[test]
    fn slots_are_spaced_per_webhook() {
        let r = RateLimits::default();
        let now = Instant::now();
        let (a, b) = (WebhookId::generate(), WebhookId::generate());
        let t0 = r.try_reserve_at(&a, 4, HORIZON, now).unwrap();
        assert_eq!(
            r.try_reserve_at(&a, 4, HORIZON, now).unwrap() - t0,
            Duration::from_millis(250)
        );
        assert_eq!(
            r.try_reserve_at(&a, 4, HORIZON, now).unwrap() - t0,
            Duration::from_millis(500)
        );
        assert_eq!(
            r.try_reserve_at(&b, 4, HORIZON, now),
            Some(t0),
            "other webhooks are not held up"
        );
    }

    #[test]
    fn a_refused_slot_reserves_nothing_and_holds_the_webhook_back() {
        let r = RateLimits::default();
        let mut now = Instant::now();
        let a = WebhookId::generate();
        let t0 = r.try_reserve_at(&a, 1, HORIZON, now).unwrap();
        assert_eq!(r.try_reserve_at(&a, 1, HORIZON, now).unwrap() - t0, HORIZON);
        assert!(r.held_back_at(HORIZON, now).iter().any(|(id, _)| *id == a));
        // However often a delivery is refused, the schedule does not move.
        for _ in 0..100 {
            assert_eq!(r.try_reserve_at(&a, 1, HORIZON, now), None);
        }
        let back = r.held_back_at(HORIZON, now);
        assert_eq!(back, vec![(a.clone(), t0 + Duration::from_secs(1))]);
        now += Duration::from_secs(1);
        assert!(r.held_back_at(HORIZON, now).is_empty());
        assert_eq!(
            r.try_reserve_at(&a, 1, HORIZON, now).unwrap() - t0,
            Duration::from_secs(2)
        );
    }
}
