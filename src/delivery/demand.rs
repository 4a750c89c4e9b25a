//! Whether new work is worth a claim. A claim walks the due index from its oldest entry and
//! skips the webhooks the dispatcher is holding back (slots all taken, deliveries waiting in
//! memory, a rate limit out of reach). With a deep backlog for such a webhook, a claim that finds
//! nothing else costs a walk over the whole backlog, and ingest used to ring the dispatcher after
//! every commit: one such walk per group commit, on the single SQLite writer.
//!
//! Before each claim the dispatcher records the webhooks it leaves out. Ingest rings it only when
//! a commit gave work to some other webhook: work for a held-back webhook is found when that
//! webhook is let in again (a finished request or its rate-limit slot rings the dispatcher then).
//! Recording before the claim closes the race with a commit the claim did not see: that commit's
//! check comes after the record and rings if its webhooks were not left out.

use crate::domain::ids::WebhookId;
use std::collections::HashSet;
use std::sync::Mutex;

#[derive(Default)]
pub struct HeldBack {
    /// The webhooks the latest claim left out (none before the first).
    webhooks: Mutex<HashSet<WebhookId>>,
}

impl HeldBack {
    /// Called by the dispatcher just before it claims, leaving out `held`.
    pub fn claiming_without(&self, held: &[WebhookId]) {
        let mut webhooks = self.webhooks.lock().expect("held-back set poisoned");
        webhooks.clear();
        webhooks.extend(held.iter().cloned());
    }

    /// Whether the latest claim left `webhook` out.
    pub fn holds(&self, webhook: &WebhookId) -> bool {
        self.webhooks
            .lock()
            .expect("held-back set poisoned")
            .contains(webhook)
    }

    /// Whether work for `webhooks` could be claimed now (so the dispatcher should be rung).
    pub fn claimable<'a>(&self, mut webhooks: impl Iterator<Item = &'a WebhookId>) -> bool {
        let held = self.webhooks.lock().expect("held-back set poisoned");
        webhooks.any(|w| !held.contains(w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_work_for_webhooks_left_in_is_claimable() {
        let held = HeldBack::default();
        let (a, b) = (WebhookId::generate(), WebhookId::generate());
        assert!(
            held.claimable([&a].into_iter()),
            "nothing held before a claim"
        );
        held.claiming_without(std::slice::from_ref(&a));
        assert!(!held.claimable([&a, &a].into_iter()));
        assert!(held.claimable([&a, &b].into_iter()));
        assert!(!held.claimable(std::iter::empty()));
        held.claiming_without(&[]);
        assert!(held.claimable([&a].into_iter()));
    }
}
