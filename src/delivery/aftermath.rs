//! What recorded results set off: a webhook whose endpoint answered `410 Gone` or that has
//! failed every try for too long is switched off (its deliveries held), and alerts are raised for
//! dead letters, for webhooks switched off, and for a troubled webhook that delivers again.
//!
//! Runs after the results are written, never inside their transaction: a failure here is logged
//! and costs an alert or a switch-off, never a result.

use super::queue::{NextStep, Outcome};
use super::Engine;
use crate::domain::alerts::AlertKind;
use crate::domain::delivery::AttemptStatus;
use crate::domain::ids::{ProgramId, WebhookId};
use crate::store::alerts::NewAlert;
use std::collections::{BTreeMap, BTreeSet};

/// What one batch of results calls for, gathered before it is written.
#[derive(Debug, Default)]
pub(super) struct Aftermath {
    /// Webhooks whose endpoint answered a live delivery with `410 Gone`.
    gone: BTreeMap<WebhookId, (ProgramId, String)>,
    /// Other webhooks with failed live tries (candidates for the sustained-failure rule).
    failing: BTreeSet<WebhookId>,
    /// Dead letters per webhook.
    exhausted: BTreeMap<WebhookId, NewAlert>,
    /// Webhooks with a successful live try and no dead letter in the batch.
    succeeded: BTreeSet<WebhookId>,
}

impl Aftermath {
    pub(super) fn of(batch: &[Outcome]) -> Self {
        let mut after = Self::default();
        for r in batch {
            let a = &r.attempt;
            if !a.is_live() {
                continue;
            }
            if a.status == AttemptStatus::Success {
                after.succeeded.insert(a.webhook_id.clone());
            } else if a.status_code == Some(410) {
                after
                    .gone
                    .entry(a.webhook_id.clone())
                    .or_insert_with(|| (a.program_id.clone(), a.webhook_name.clone()));
            } else {
                after.failing.insert(a.webhook_id.clone());
            }
            let operational = crate::domain::catalog::is_operational(a.event_type.as_str());
            if matches!(r.next, NextStep::Failed) && !operational {
                let detail = match (&a.error, a.status_code) {
                    (Some(e), _) => e.clone(),
                    (None, Some(code)) => format!("HTTP {code}"),
                    (None, None) => "failed".to_owned(),
                };
                let alert = after
                    .exhausted
                    .entry(a.webhook_id.clone())
                    .or_insert_with(|| NewAlert {
                        program: a.program_id.clone(),
                        webhook: a.webhook_id.clone(),
                        webhook_name: a.webhook_name.clone(),
                        kind: AlertKind::Exhausted,
                        count: 0,
                        at: a.created_at,
                        detail: String::new(),
                    });
                alert.count += 1;
                alert.at = alert.at.max(a.created_at);
                alert.detail = detail;
            }
            if operational {
                // A recovery of an alert receiver is not itself announced.
                after.succeeded.remove(&a.webhook_id);
            }
        }
        for id in after.exhausted.keys() {
            after.succeeded.remove(id);
        }
        after
    }
}

impl Engine {
    /// Acts on what a written batch called for (see the module documentation).
    pub(super) async fn follow_up(&self, after: Aftermath) {
        let now = self.now();
        let mut alerts: Vec<NewAlert> = after.exhausted.into_values().collect();
        if !after.succeeded.is_empty() {
            let ids: Vec<WebhookId> = after.succeeded.into_iter().collect();
            match self.store().take_recoveries(&ids).await {
                Ok(recovered) => alerts.extend(recovered.into_iter().map(|r| NewAlert {
                    program: r.program,
                    webhook: r.webhook,
                    webhook_name: r.name,
                    kind: AlertKind::Recovered,
                    count: 1,
                    at: now,
                    detail: "delivered successfully again".to_owned(),
                })),
                Err(e) => tracing::error!(error = %e, "could not check webhooks for recovery"),
            }
        }
        for (id, (program, name)) in after.gone {
            let reason = format!(
                "endpoint answered 410 Gone at {}",
                now.format("%Y-%m-%d %H:%M UTC")
            );
            alerts.extend(
                self.disable_automatically(&program, &id, &name, &reason)
                    .await,
            );
        }
        let failing: Vec<WebhookId> = after.failing.into_iter().collect();
        alerts.extend(self.disable_sustained_failures(&failing).await);
        if !alerts.is_empty() {
            self.raise_alerts(&alerts).await;
        }
    }

    /// Switches off, among `ids` (webhooks with failed tries in the batch just written), those
    /// whose every try has failed for the configured window (see `SustainedFailure`).
    async fn disable_sustained_failures(&self, ids: &[WebhookId]) -> Vec<NewAlert> {
        let Some(policy) = self.inner.config.auto_disable else {
            return Vec::new();
        };
        if ids.is_empty() {
            return Vec::new();
        }
        let since = self.now() - policy.after;
        let failing = match self
            .store()
            .sustained_failures(ids, since, policy.min_failures)
            .await
        {
            Ok(failing) => failing,
            Err(e) => {
                tracing::error!(error = %e, "could not check webhooks for sustained failure");
                return Vec::new();
            }
        };
        let mut alerts = Vec::new();
        for w in failing {
            let reason = format!(
                "failing since {}: all {} tries failed",
                w.since.format("%Y-%m-%d %H:%M UTC"),
                w.failures
            );
            alerts.extend(
                self.disable_automatically(&w.program, &w.id, &w.name, &reason)
                    .await,
            );
        }
        alerts
    }

    /// Switches off a webhook because of what its endpoint did, records why in the activity log,
    /// and holds its deliveries until an admin switches it on again. Returns the alert to raise
    /// when it was on.
    async fn disable_automatically(
        &self,
        program: &ProgramId,
        id: &WebhookId,
        name: &str,
        reason: &str,
    ) -> Option<NewAlert> {
        let now = self.now();
        match self
            .store()
            .auto_disable_webhook(program, id, reason, now)
            .await
        {
            Ok(Some(version)) => {
                tracing::warn!(webhook = %id, reason, "webhook disabled by Herald");
                // What it still has waiting in memory goes back to the queue, held there, and
                // the queue's pending ones are held on a task of their own (claims skip them
                // already; a deep backlog must not keep results waiting).
                self.inner.changes.changed(id, version);
                let (engine, webhook) = (self.clone(), id.clone());
                tokio::spawn(async move { engine.settle_after_change(&webhook).await });
                super::observe::auto_disabled(if reason.contains("410") {
                    "gone"
                } else {
                    "failing"
                });
                self.inner.subscribers.clear();
                let herald = crate::auth::Actor {
                    program: program.clone(),
                    name: "Herald".to_owned(),
                    role: crate::domain::account::Role::Admin,
                    user: None,
                };
                crate::auth::access::record_activity(
                    self.store().as_ref(),
                    &herald,
                    "disabled",
                    &format!("webhook {name}"),
                    reason,
                )
                .await;
                Some(NewAlert {
                    program: program.clone(),
                    webhook: id.clone(),
                    webhook_name: name.to_owned(),
                    kind: AlertKind::Disabled,
                    count: 1,
                    at: now,
                    detail: reason.to_owned(),
                })
            }
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, webhook = %id, "could not disable a webhook automatically");
                None
            }
        }
    }
}
