//! Managing webhooks: turning validated settings into stored records (generating and sealing
//! secrets on the way), edits (fenced by version), rotation and reveal. Send Test and Verify live in
//! `probe`.

use super::secrets::WebhookSecrets;
use super::{Engine, EngineError, Result};
use crate::auth::Actor;
use crate::domain::ids::{ProgramId, WebhookId};
use crate::domain::settings::{
    AuthDraft, AuthSettings, WebhookDraft, WebhookPatch, WebhookSettings,
};
use crate::domain::webhook::SigningSecret;
use crate::domain::ValidationError;
use crate::store::{Webhook, WebhookRecord, HELD_PER_STEP};

/// How often a change that names no version is applied again after losing a race with another
/// write, before giving up with `Stale`.
const MAX_REAPPLY: usize = 5;

/// A webhook just saved, with its signing secret when Herald generated or was given a new one
/// (shown once).
/// The version each webhook reached with the latest change this process knows of (an admin's
/// edit, switching it off or on, an import, Herald switching it off; made here, or announced by
/// another process sharing a PostgreSQL database). A claim carries a snapshot
/// of its webhook; one taken before such a change (waiting in memory for a request slot, or
/// handed over by ingest) is given back to the queue rather than sent with the old settings: a
/// webhook just switched off sends nothing more than the requests already under way, and one
/// given a new URL sends the rest there. The queue then claims them again under the new version,
/// or holds them while the webhook is off. (A change announced while this process's listening
/// connection was down reaches its claims only through their leases.)
#[derive(Default)]
pub(super) struct Changes {
    latest: std::sync::Mutex<std::collections::HashMap<WebhookId, i64>>,
    /// Rung whenever a change is learned.
    learned: tokio::sync::Notify,
}

impl Changes {
    /// `id` now stands at `version` (or later).
    pub(super) fn changed(&self, id: &WebhookId, version: i64) {
        {
            let mut latest = self.latest.lock().expect("webhook changes");
            let at = latest.entry(id.clone()).or_insert(version);
            *at = (*at).max(version);
        }
        self.learned.notify_waiters();
    }

    fn knows(&self, id: &WebhookId, version: i64) -> bool {
        self.latest
            .lock()
            .expect("webhook changes")
            .get(id)
            .is_some_and(|v| *v >= version)
    }

    /// Whether `w` is older than a change this process knows of.
    pub(super) fn outdated(&self, w: &WebhookRecord) -> bool {
        self.knows(&w.id, w.version + 1)
    }
}

pub struct Saved {
    pub webhook: Webhook,
    pub secret: Option<String>,
}

/// A draft filled from a stored webhook (the edit wizard's starting point; no secrets in it).
pub fn draft_of(w: &Webhook) -> WebhookDraft {
    let r = &w.record;
    WebhookDraft {
        name: r.name.as_str().to_owned(),
        url: r.url.as_str().to_owned(),
        method: r.method.clone(),
        description: r.description.clone(),
        auth: AuthDraft {
            kind: r.auth_kind.as_str().to_owned(),
            username: r.basic_username(),
            header: r.signature_header(),
            password: None,
            secret: None,
        },
        event_types: r.event_types.clone(),
        filter: r.filter.to_json(),
        retry: r.retry.into(),
        rate_limit_per_second: r.rate_limit_per_second.map(i64::from),
        sandbox: r.sandbox,
        enabled: r.enabled,
        headers: r.headers.iter().map(|h| h.draft()).collect(),
        ordering_key: r.ordering_key.clone().unwrap_or_default(),
    }
}

impl Engine {
    /// Starts listening for other processes' announcements: new work (rings the dispatcher) and
    /// changes to webhooks (see `Changes`). A no-op on SQLite. The dispatcher calls it as it
    /// starts.
    pub async fn listen_to_other_processes(&self) -> Result<()> {
        let changes = self.inner.changes.clone();
        self.store()
            .listen_for_work(
                self.inner.wake.clone(),
                std::sync::Arc::new(move |id, version| changes.changed(&id, version)),
            )
            .await?;
        Ok(())
    }

    /// Waits until this process knows webhook `id` reached `version` or later (its own change,
    /// or another process's announcement).
    pub async fn learn_change(&self, id: &WebhookId, version: i64) {
        let changes = &self.inner.changes;
        loop {
            let learned = changes.learned.notified();
            tokio::pin!(learned);
            learned.as_mut().enable();
            if changes.knows(id, version) {
                return;
            }
            learned.await;
        }
    }

    pub async fn get_webhook(&self, program: &ProgramId, id: &WebhookId) -> Result<Webhook> {
        self.store()
            .get_webhook(program, id)
            .await?
            .ok_or(EngineError::NotFound("webhook"))
    }

    /// Refuses URLs the outbound guard would refuse at send time, naming the URL field.
    pub(super) async fn check_target(&self, url: &str) -> Result<()> {
        self.config()
            .guard
            .check_url(url)
            .await
            .map_err(|e| ValidationError::new("url", e.to_string()).into())
    }

    pub async fn create_webhook(&self, actor: &Actor, draft: &WebhookDraft) -> Result<Saved> {
        let program = admin(actor)?;
        let (record, shown) = self.prepare_new(program, draft).await?;
        self.store().insert_webhook(&record).await?;
        self.inner.subscribers.clear();
        self.record(actor, "created", &record, "").await;
        let webhook = self.get_webhook(program, &record.id).await?;
        Ok(Saved {
            webhook,
            secret: shown,
        })
    }

    /// A new webhook's record from `draft` (validated, its target checked, its secrets generated
    /// or taken from the draft and sealed), not yet stored; with the secret to show once.
    pub(super) async fn prepare_new(
        &self,
        program: &ProgramId,
        draft: &WebhookDraft,
    ) -> Result<(WebhookRecord, Option<String>)> {
        let s = draft.validate(true)?;
        self.check_target(s.url.as_str()).await?;
        let (secrets, shown) = match &s.auth {
            AuthSettings::Signature { secret }
            | AuthSettings::Jwt { secret }
            | AuthSettings::Hmac { secret, .. } => {
                let secret = secret
                    .clone()
                    .unwrap_or_else(WebhookSecrets::generate_secret);
                let shown = secret.expose().to_owned();
                (WebhookSecrets::with_secret(secret), Some(shown))
            }
            AuthSettings::Basic { password, .. } => (
                WebhookSecrets::with_password(password.clone().map(|p| p.0).unwrap_or_default()),
                None,
            ),
            AuthSettings::None => (WebhookSecrets::default(), None),
        };
        let mut secrets = secrets;
        secrets.set_headers(&s.headers)?;
        let at = self.now();
        let record = record_of(
            WebhookId::generate(),
            program,
            s,
            secrets.seal(&self.inner.sealer),
            at,
            at,
        );
        Ok((record, shown))
    }

    /// Applies a partial update. Switching to Signature or JWT from a method without a secret
    /// generates one (returned once); a provided secret becomes current, the old one overlapping.
    ///
    /// Optimistic concurrency: a patch naming the `version` it read is refused (`Stale`) once the
    /// webhook has moved on. A patch without a version only sets the fields it names, so when a
    /// concurrent write wins the race it is applied again to the newer settings.
    pub async fn update_webhook(
        &self,
        actor: &Actor,
        id: &WebhookId,
        patch: WebhookPatch,
    ) -> Result<Saved> {
        let program = admin(actor)?;
        let mut tries = 0;
        loop {
            let current = self.get_webhook(program, id).await?;
            if patch.version.is_some_and(|v| v != current.record.version) {
                return Err(EngineError::Stale);
            }
            match self.apply_patch(actor, current, patch.clone()).await {
                Err(EngineError::Stale) if patch.version.is_none() && tries < MAX_REAPPLY => {
                    tries += 1;
                }
                Ok((record, shown, change)) => {
                    self.inner.subscribers.clear();
                    // Switched off: its pending deliveries are held; on again: what it held
                    // resumes (the dispatcher is woken as they are released).
                    self.settle_after_change(id).await;
                    self.record(actor, "changed", &record, &change).await;
                    self.wake();
                    return Ok(Saved {
                        webhook: self.get_webhook(program, id).await?,
                        secret: shown,
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Validates `patch` over `current` and writes it, fenced on `current`'s version. Returns the
    /// record written, a secret to show once, and the changed fields for the activity log.
    async fn apply_patch(
        &self,
        actor: &Actor,
        current: Webhook,
        patch: WebhookPatch,
    ) -> Result<(WebhookRecord, Option<String>, String)> {
        let discard = patch.discard_held == Some(true)
            && patch.enabled == Some(true)
            && !current.record.enabled;
        let (record, shown, mut change) =
            self.prepare_patch(&actor.program, current, patch).await?;
        if discard {
            // While it is still off, so no held delivery can have been claimed yet.
            let now = self.now();
            let reason = format!(
                "discarded by {} when switching the webhook on at {}",
                actor.name,
                now.format("%Y-%m-%d %H:%M UTC")
            );
            let n = super::hold::in_steps(|| async {
                Ok(self
                    .store()
                    .discard_held(&actor.program, &record.id, &reason, now, HELD_PER_STEP)
                    .await?)
            })
            .await?;
            change = format!("{change}; discarded {n} held deliveries");
        }
        self.store().update_webhook(&record).await?;
        // The write is fenced on `record.version` and moves it by one.
        self.inner.changes.changed(&record.id, record.version + 1);
        Ok((record, shown, change))
    }

    /// `patch` applied over `current`: the record to write (fenced on `current`'s version), a
    /// secret to show once, and the changed fields for the activity log. Writes nothing.
    pub(super) async fn prepare_patch(
        &self,
        program: &ProgramId,
        current: Webhook,
        patch: WebhookPatch,
    ) -> Result<(WebhookRecord, Option<String>, String)> {
        let url_changed = patch.url.is_some();
        let before = draft_of(&current);
        let after = patch.apply(before.clone());
        let change = changed_fields(&before, &after);
        let s = after.validate(false)?;
        if url_changed {
            self.check_target(s.url.as_str()).await?;
        }
        let mut secrets = self.open_secrets(&current)?;
        let mut shown = None;
        match &s.auth {
            AuthSettings::Signature { secret }
            | AuthSettings::Jwt { secret }
            | AuthSettings::Hmac { secret, .. } => {
                secrets.basic_password = None;
                if let Some(given) = secret {
                    secrets.rotate(given.clone(), self.now());
                    shown = Some(given.expose().to_owned());
                } else if secrets.current().is_none() {
                    let fresh = WebhookSecrets::generate_secret();
                    shown = Some(fresh.expose().to_owned());
                    secrets = WebhookSecrets::with_secret(fresh);
                }
            }
            AuthSettings::Basic { password, .. } => match (password, &secrets.basic_password) {
                (Some(p), _) => secrets.basic_password = Some(p.0.clone()),
                (None, Some(_)) => {}
                (None, None) => {
                    return Err(ValidationError::new(
                        "auth.password",
                        "Password is required for Basic Auth",
                    )
                    .into())
                }
            },
            AuthSettings::None => {}
        }
        secrets.set_headers(&s.headers)?;
        let mut record = record_of(
            current.record.id.clone(),
            program,
            s,
            secrets.seal(&self.inner.sealer),
            current.record.created_at,
            self.now(),
        );
        record.version = current.record.version;
        Ok((record, shown, change))
    }

    pub async fn delete_webhook(&self, actor: &Actor, id: &WebhookId) -> Result<()> {
        let program = admin(actor)?;
        let w = self.get_webhook(program, id).await?;
        let deleted = self.store().delete_webhook(program, id).await?;
        self.inner.subscribers.clear();
        if deleted {
            // Its pending deliveries end as failed, a step at a time.
            self.settle_after_change(id).await;
            self.record(actor, "deleted", &w.record, "").await;
            Ok(())
        } else {
            Err(EngineError::NotFound("webhook"))
        }
    }

    pub(super) fn open_secrets(&self, w: &Webhook) -> Result<WebhookSecrets> {
        Ok(WebhookSecrets::open(
            &w.record.sealed_secrets,
            &self.inner.sealer,
        )?)
    }

    /// The current signing secret, for an admin who asked to see it.
    pub async fn reveal_secret(&self, actor: &Actor, id: &WebhookId) -> Result<String> {
        let w = self.get_webhook(admin(actor)?, id).await?;
        let secrets = self.open_secrets(&w)?;
        match secrets.current() {
            Some(s) if w.record.auth_kind.uses_secret() => {
                self.record(actor, "revealed secret of", &w.record, "")
                    .await;
                Ok(s.expose().to_owned())
            }
            _ => Err(no_secret(&w)),
        }
    }

    /// A new signing secret; the old one keeps signing for 24 hours. A rotation racing another
    /// change is applied again on top of it, never lost.
    pub async fn rotate_secret(&self, actor: &Actor, id: &WebhookId) -> Result<String> {
        let program = admin(actor)?;
        let fresh = WebhookSecrets::generate_secret();
        let mut tries = 0;
        let record = loop {
            let w = self.get_webhook(program, id).await?;
            if !w.record.auth_kind.uses_secret() {
                return Err(no_secret(&w));
            }
            let mut secrets = self.open_secrets(&w)?;
            secrets.rotate(fresh.clone(), self.now());
            let mut record = w.record.clone();
            record.sealed_secrets = secrets.seal(&self.inner.sealer);
            record.updated_at = self.now();
            match self.store().update_webhook(&record).await {
                Ok(()) => break record,
                Err(crate::store::StoreError::Stale) if tries < MAX_REAPPLY => tries += 1,
                Err(e) => return Err(e.into()),
            }
        };
        self.record(
            actor,
            "rotated secret of",
            &record,
            "the old secret signs for 24 hours",
        )
        .await;
        Ok(fresh.expose().to_owned())
    }

    /// Generates the secret a new wizard draft signs its Verify ping with (and Save keeps).
    pub fn draft_secret() -> SigningSecret {
        WebhookSecrets::generate_secret()
    }
}

fn no_secret(w: &Webhook) -> EngineError {
    EngineError::Refused(format!(
        "this webhook uses {} and has no signing secret",
        w.record.auth_kind.label()
    ))
}

fn record_of(
    id: WebhookId,
    program: &ProgramId,
    s: WebhookSettings,
    sealed_secrets: String,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
) -> WebhookRecord {
    let auth_param = match &s.auth {
        AuthSettings::Basic { username, .. } => Some(username.clone()),
        AuthSettings::Hmac { header, .. } => Some(header.clone()),
        _ => None,
    };
    WebhookRecord {
        id,
        program_id: program.clone(),
        auth_kind: s.auth.kind(),
        auth_param,
        name: s.name,
        url: s.url,
        method: s.method,
        description: s.description,
        sealed_secrets,
        event_types: s.event_types,
        filter: s.filter,
        headers: s.headers.into_iter().map(|h| h.stored()).collect(),
        ordering_key: s.ordering_key,
        retry: s.retry,
        rate_limit_per_second: s.rate_limit_per_second,
        sandbox: s.sandbox,
        enabled: s.enabled,
        version: 1,
        created_at,
        updated_at,
    }
}

/// The actor's program, when the actor may change things.
pub(super) fn admin(actor: &Actor) -> Result<&ProgramId> {
    if actor.role.can_manage() {
        Ok(&actor.program)
    } else {
        Err(EngineError::Forbidden)
    }
}

impl Engine {
    /// Appends a change to the admin activity log.
    pub(super) async fn record(
        &self,
        actor: &Actor,
        action: &str,
        webhook: &WebhookRecord,
        detail: &str,
    ) {
        crate::auth::access::record_activity(
            self.store().as_ref(),
            actor,
            action,
            &format!("webhook {}", webhook.name.as_str()),
            detail,
        )
        .await;
    }
}

/// Names the settings an edit changed (values stay out of the activity log: some are secrets).
pub(super) fn changed_fields(before: &WebhookDraft, after: &WebhookDraft) -> String {
    let (serde_json::Value::Object(b), serde_json::Value::Object(a)) = (
        serde_json::to_value(before).unwrap_or_default(),
        serde_json::to_value(after).unwrap_or_default(),
    ) else {
        return String::new();
    };
    let changed: Vec<&str> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, _)| k.as_str())
        .collect();
    match changed.as_slice() {
        [] => "no changes".into(),
        ["enabled"] if after.enabled => "enabled".into(),
        ["enabled"] => "disabled".into(),
        fields => fields.join(", "),
    }
}
