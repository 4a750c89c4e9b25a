//! Requests made on demand, outside the queue: Send Test (the catalog example of an event type)
//! and Verify (a signed `webhook.verification` ping, for a saved webhook or a wizard draft). Both
//! go through `dispatch::attempt`, exactly like queued deliveries, so what a receiver sees cannot
//! differ; both are recorded in the audit log but move no figures.

use super::dispatch::{self, Message, Target};
use super::secrets::WebhookSecrets;
use super::webhooks::admin;
use super::{Engine, Result};
use crate::auth::Actor;
use crate::domain::catalog;
use crate::domain::delivery::Trigger;
use crate::domain::event::{EventType, NewEvent};
use crate::domain::ids::{EventId, WebhookId};
use crate::domain::settings::{AuthSettings, WebhookDraft};
use crate::domain::views::{TestOutcome, VerifyOutcome};
use crate::domain::ValidationError;
use crate::store::Webhook;
use std::time::Duration;

impl Engine {
    /// Sends the catalog example of `event_type` (default: the first subscribed type) now.
    pub async fn send_test(
        &self,
        actor: &Actor,
        id: &WebhookId,
        event_type: Option<&str>,
    ) -> Result<TestOutcome> {
        let w = self.get_webhook(admin(actor)?, id).await?;
        let event_type = event_type
            .or_else(|| w.record.event_types.first().map(String::as_str))
            .unwrap_or(catalog::EVENT_NAMES[0]);
        let example = catalog::event_type(event_type).ok_or_else(|| {
            ValidationError::new("event_type", format!("Unknown event type '{event_type}'"))
        })?;
        let event = NewEvent::parse(event_type, example.example, None, None, self.now())?;
        let body = serde_json::to_string(&event.envelope()).expect("plain data");
        let secrets = self.open_secrets(&w)?;
        let attempted = self
            .perform(
                &w,
                &secrets,
                &event.event_id,
                &event.event_type,
                &body,
                Trigger::Test,
            )
            .await;
        self.store().insert_attempt(&attempted.row).await?;
        let row = attempted.row;
        self.record(actor, "sent a test to", &w.record, event_type)
            .await;
        Ok(TestOutcome {
            success: row.status == crate::domain::delivery::AttemptStatus::Success,
            sandboxed: row.status == crate::domain::delivery::AttemptStatus::Sandboxed,
            status_code: row.status_code,
            latency_ms: row.latency_ms,
            error: row.error,
            response_body: row.response_body,
            attempt_id: row.id.to_string(),
        })
    }

    /// Sends a signed `webhook.verification` ping to a saved webhook (recorded in the audit log).
    pub async fn verify(&self, actor: &Actor, id: &WebhookId) -> Result<VerifyOutcome> {
        let w = self.get_webhook(admin(actor)?, id).await?;
        let secrets = self.open_secrets(&w)?;
        let (msg_id, body) = verification_body(id.as_str());
        let attempted = self
            .perform(
                &w,
                &secrets,
                &msg_id,
                &EventType::verification(),
                &body,
                Trigger::Verify,
            )
            .await;
        self.store().insert_attempt(&attempted.row).await?;
        self.record(actor, "verified", &w.record, "").await;
        Ok(verify_outcome(&attempted.row))
    }

    /// Verifies the wizard's draft as it stands. A new draft signs with its own secret and leaves
    /// no audit row. When editing (`saved` names the webhook), a secret or password the draft
    /// leaves out is the stored one, and the ping is recorded in that webhook's audit log.
    pub async fn verify_draft(
        &self,
        actor: &Actor,
        draft: &WebhookDraft,
        saved: Option<&WebhookId>,
    ) -> Result<VerifyOutcome> {
        let program = admin(actor)?;
        let auth = draft.validate_endpoint(saved.is_none())?;
        self.check_target(draft.url.trim()).await?;
        let stored = match saved {
            Some(id) => Some(self.open_secrets(&self.get_webhook(program, id).await?)?),
            None => None,
        };
        let secrets = match &auth {
            AuthSettings::Signature { secret }
            | AuthSettings::Jwt { secret }
            | AuthSettings::Hmac { secret, .. } => match (secret, &stored) {
                (Some(s), _) => WebhookSecrets::with_secret(s.clone()),
                (None, Some(st)) if st.current().is_some() => st.clone(),
                _ => {
                    return Err(ValidationError::new(
                        "auth.secret",
                        "The draft has no secret to sign with",
                    )
                    .into())
                }
            },
            AuthSettings::Basic { password, .. } => match (password, &stored) {
                (Some(p), _) => WebhookSecrets::with_password(p.0.clone()),
                (None, Some(st)) if st.basic_password.is_some() => st.clone(),
                _ => {
                    return Err(ValidationError::new(
                        "auth.password",
                        "Password is required for Basic Auth",
                    )
                    .into())
                }
            },
            AuthSettings::None => WebhookSecrets::default(),
        };
        // The draft's custom headers go along once they are valid (they are filled in step 3,
        // after Verify is first offered); a secret one left empty is the stored value.
        let custom = draft_headers(draft, stored.as_ref()).unwrap_or_default();
        let url = crate::domain::webhook::TargetUrl::parse(&draft.url)?;
        let parsed = url
            .parsed()
            .map_err(|e| ValidationError::new("url", format!("URL cannot be used: {e}")))?;
        let draft_id = WebhookId::generate();
        let auth_param = match &auth {
            AuthSettings::Basic { username, .. } => Some(username.as_str()),
            AuthSettings::Hmac { header, .. } => Some(header.as_str()),
            _ => None,
        };
        let target = Target {
            guard: self.config().guard,
            blocked: None,
            program_id: program,
            webhook_id: saved.unwrap_or(&draft_id),
            webhook_name: draft.name.trim(),
            url: &parsed,
            auth_kind: auth.kind(),
            auth_param,
            secrets: &secrets,
            timeout: Duration::from_secs(draft.retry.timeout_seconds.clamp(1, 60) as u64),
            sandbox: false,
            custom,
        };
        let (msg_id, body) = verification_body(saved.map_or("draft", WebhookId::as_str));
        let verification = EventType::verification();
        let msg = Message {
            id: &msg_id,
            event_type: &verification,
            body: &body,
            delivery_id: None,
            attempt: 1,
            trigger: Trigger::Verify,
        };
        let attempted = self.send(&target, &msg).await;
        if saved.is_some() {
            self.store().insert_attempt(&attempted.row).await?;
        }
        Ok(verify_outcome(&attempted.row))
    }

    /// One request for a stored webhook, outside the queue (tests and verifications).
    async fn perform(
        &self,
        w: &Webhook,
        secrets: &WebhookSecrets,
        msg_id: &EventId,
        event_type: &EventType,
        body: &str,
        trigger: Trigger,
    ) -> dispatch::Attempted {
        let r = &w.record;
        let target = Target {
            guard: self.config().guard,
            blocked: None,
            program_id: &r.program_id,
            webhook_id: &r.id,
            webhook_name: r.name.as_str(),
            url: &w.target,
            auth_kind: r.auth_kind,
            auth_param: r.auth_param.as_deref(),
            secrets,
            timeout: Duration::from_secs(r.retry.timeout_seconds.into()),
            sandbox: r.sandbox,
            custom: dispatch::custom_headers(&r.headers, secrets),
        };
        let msg = Message {
            id: msg_id,
            event_type,
            body,
            delivery_id: None,
            attempt: 1,
            trigger,
        };
        self.send(&target, &msg).await
    }
}

/// The draft's custom headers with their values, or `None` while they are not valid yet.
fn draft_headers(
    draft: &WebhookDraft,
    stored: Option<&WebhookSecrets>,
) -> Option<Vec<dispatch::SentHeader>> {
    let headers = draft.validate_headers().ok()?;
    let mut with_values = stored.cloned().unwrap_or_default();
    with_values.set_headers(&headers).ok()?;
    let listed: Vec<_> = headers.into_iter().map(|h| h.stored()).collect();
    Some(dispatch::custom_headers(&listed, &with_values))
}

fn verification_body(webhook: &str) -> (EventId, String) {
    let id = EventId::generate();
    let body = serde_json::json!({
        "event_id": id,
        "event_type": catalog::VERIFICATION_EVENT,
        "event_timestamp": crate::store::now(),
        "schema_version": crate::domain::event::SCHEMA_VERSION,
        "data": {"webhook_id": webhook},
    });
    (id, body.to_string())
}

fn verify_outcome(row: &crate::store::NewAttempt) -> VerifyOutcome {
    VerifyOutcome {
        verified: row.status == crate::domain::delivery::AttemptStatus::Success,
        status_code: row.status_code,
        error: row.error.clone(),
    }
}
