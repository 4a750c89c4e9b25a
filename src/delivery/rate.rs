//! Per-webhook rate limits: each limited webhook gets evenly spaced send slots (1/N s apart), so
//! its deliveries queue behind each other without holding up any other webhook. Limits are per
//! process; with several Herald processes each enforces the limit on its own share.

use crate::domain::ids::WebhookId;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::time::{Duration, Instant};

#[derive(Default)]
pub struct RateLimits {
    next_slot: Mutex<HashMap<WebhookId, Instant>>,
}

impl RateLimits {
    /// Reserves the next send slot of a webhook limited to `per_second`.
    pub fn reserve(&self, webhook: &WebhookId, per_second: u32) -> Instant {
        let spacing = Duration::from_secs(1) / per_second.max(1);
        let now = Instant::now();
        let mut slots = self.next_slot.lock().expect("rate-limit map poisoned");
        if slots.len() > 10_000 {
            slots.retain(|_, t| *t > now);
        }
        let slot = slots
            .get(webhook)
            .copied()
            .filter(|t| *t > now)
            .unwrap_or(now);
        slots.insert(webhook.clone(), slot + spacing);
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slots_are_spaced_per_webhook() {
        let r = RateLimits::default();
        let (a, b) = (WebhookId::generate(), WebhookId::generate());
        let t0 = r.reserve(&a, 4);
        assert_eq!(r.reserve(&a, 4) - t0, Duration::from_millis(250));
        assert_eq!(r.reserve(&a, 4) - t0, Duration::from_millis(500));
        assert!(
            r.reserve(&b, 4) - t0 < Duration::from_millis(1),
            "other webhooks are not held up"
        );
    }
}
