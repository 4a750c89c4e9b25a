//! Alerts: raised when results are recorded (deliveries dead-lettered, a webhook switched off by
//! Herald, a troubled webhook delivering again), sent by `flush_alerts` as operational events
//! (`delivery.exhausted`, `endpoint.disabled`, `endpoint.recovered`, fanned out, signed and retried
//! like any other event) and, when configured, as e-mail.
//!
//! Grouping: occurrences are counted into one unsent alert per webhook and kind; an alert goes
//! out only when its webhook and kind have had none sent within the program's window, so a burst
//! of thousands of failures makes one message per window, saying how many. Deliveries of
//! operational events never raise alerts themselves (no alert loops).

use super::mail::{self, Mail};
use super::webhooks::admin;
use super::{Engine, EngineError, Result};
use crate::auth::seal::Sealer;
use crate::auth::Actor;
use crate::domain::alerts::{
    AlertKind, AlertSettings, AlertSettingsDraft, AlertSettingsView, AlertView,
};
use crate::domain::event::NewEvent;
use crate::domain::ids::{AlertId, ProgramId};
use crate::store::alerts::{AlertRecord, NewAlert};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// Most unsent alerts looked at in one flush.
const FLUSH_BATCH: i64 = 200;

/// How often the background task flushes.
const FLUSH_EVERY: Duration = Duration::from_secs(10);

/// How often the background task looks for flagged webhooks (flags move with hourly roll-ups).
const FLAG_CHECK_EVERY: u32 = 90; // flushes, i.e. 15 minutes

/// A webhook that stays flagged is announced again after this long.
const FLAG_REMINDER_HOURS: i64 = 24;

/// A program's alert settings as stored: the settings, and the SMTP password sealed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Stored {
    pub(super) settings: AlertSettings,
    #[serde(default)]
    sealed_password: Option<String>,
}

impl Stored {
    pub(super) fn password(&self, sealer: &Sealer) -> Result<Option<String>> {
        self.sealed_password
            .as_deref()
            .map(|s| {
                let plain = sealer.open(s)?;
                Ok(String::from_utf8_lossy(&plain).into_owned())
            })
            .transpose()
    }
}

impl Engine {
    pub(super) async fn stored_alert_settings(&self, program: &ProgramId) -> Result<Stored> {
        match self.store().alert_settings(program).await? {
            Some(doc) => serde_json::from_str(&doc).map_err(|e| {
                EngineError::Store(crate::store::StoreError::Corrupt(format!(
                    "alert settings: {e}"
                )))
            }),
            None => Ok(Stored::default()),
        }
    }

    /// The program's alert settings (admins only: they name mail servers and accounts).
    pub async fn alert_settings(&self, actor: &Actor) -> Result<AlertSettingsView> {
        let program = admin(actor)?;
        let stored = self.stored_alert_settings(program).await?;
        let set = stored.sealed_password.is_some();
        Ok(AlertSettingsView::new(stored.settings, set))
    }

    /// Validates and saves the program's alert settings; a password left out is kept, an empty
    /// one removed.
    pub async fn save_alert_settings(
        &self,
        actor: &Actor,
        draft: &AlertSettingsDraft,
    ) -> Result<AlertSettingsView> {
        let program = admin(actor)?;
        let settings = draft.validate()?;
        let mut stored = self.stored_alert_settings(program).await?;
        match draft.smtp_password.as_deref() {
            None => {}
            Some("") => stored.sealed_password = None,
            Some(p) => stored.sealed_password = Some(self.inner.sealer.seal(p.as_bytes())),
        }
        stored.settings = settings;
        let doc = serde_json::to_string(&stored).expect("plain data");
        self.store().set_alert_settings(program, &doc).await?;
        crate::auth::access::record_activity(
            self.store().as_ref(),
            actor,
            "changed",
            "alert settings",
            if stored.settings.email_enabled {
                "e-mail on"
            } else {
                "e-mail off"
            },
        )
        .await;
        self.alert_settings(actor).await
    }

    /// Sends a test message with the saved settings at once and says where it went, or why the
    /// SMTP server refused it.
    pub async fn send_test_alert(&self, actor: &Actor) -> Result<String> {
        let program = admin(actor)?;
        let stored = self.stored_alert_settings(program).await?;
        if !stored.settings.email_enabled {
            return Err(EngineError::Refused(
                "E-mail alerts are off: switch them on and save first".into(),
            ));
        }
        let mail = Mail {
            subject: "[Herald] Test alert".into(),
            body: format!(
                "This is a test alert from Herald, sent by {} at {}.\n\nAlerts for this program \
                 will arrive like this one.\n",
                actor.name,
                self.now().format("%Y-%m-%d %H:%M UTC")
            ),
        };
        let password = stored.password(&self.inner.sealer)?;
        mail::send(&stored.settings, password.as_deref(), &mail)
            .await
            .map_err(EngineError::Refused)?;
        Ok(format!(
            "Test alert sent to {}",
            stored.settings.recipients.join(", ")
        ))
    }

    /// The program's latest alerts, newest first.
    pub async fn recent_alerts(&self, actor: &Actor, limit: i64) -> Result<Vec<AlertView>> {
        let rows = self
            .store()
            .recent_alerts(&actor.program, limit.clamp(1, 200))
            .await?;
        Ok(rows.into_iter().map(view).collect())
    }

    /// Counts occurrences into their alerts; a failure is logged (alerts never hold up results).
    pub(super) async fn raise_alerts(&self, alerts: &[NewAlert]) {
        for a in alerts {
            if let Err(e) = self.store().raise_alert(a).await {
                tracing::error!(error = %e, webhook = %a.webhook, kind = %a.kind, "could not raise an alert");
            }
        }
    }

    /// Sends every alert whose window allows it. Returns how many went out.
    pub async fn flush_alerts(&self) -> Result<usize> {
        let now = self.now();
        let pending = self.store().pending_alerts(FLUSH_BATCH).await?;
        let mut settings: HashMap<ProgramId, Stored> = HashMap::new();
        let mut sent = 0;
        for p in pending {
            let program = p.alert.program.clone();
            if !settings.contains_key(&program) {
                let s = self.stored_alert_settings(&program).await?;
                settings.insert(program.clone(), s);
            }
            let stored = &settings[&program];
            let window = chrono::Duration::minutes(stored.settings.window_minutes.into());
            if p.last_sent.is_some_and(|last| now < last + window) {
                continue;
            }
            // The operational event first, under the alert's own id: if it cannot be stored the
            // alert stays unsent and the next flush tries again; a second try, or another
            // process flushing the same alert, finds the event already stored (one event).
            if !self.raise_operational_event(&p.alert).await {
                continue;
            }
            if !self.store().claim_alert(&p.alert.id, now).await? {
                continue;
            }
            self.email_alert(&p.alert, stored).await;
            super::observe::alert_sent(p.alert.kind);
            sent += 1;
        }
        Ok(sent)
    }

    /// Stores the alert's operational event (fanned out to the program's subscribers like any
    /// event), its event id the alert's own UUID. False when it could not be stored for now.
    async fn raise_operational_event(&self, a: &AlertRecord) -> bool {
        let data = serde_json::json!({
            "webhook_id": a.webhook.as_str(),
            "webhook_name": a.webhook_name,
            "count": a.count,
            "first_at": a.first_at,
            "last_at": a.last_at,
            "detail": a.detail,
        });
        let id = a.id.as_str().trim_start_matches(AlertId::PREFIX);
        let stored = match NewEvent::parse(a.kind.event_type(), data, Some(id), None, self.now()) {
            Ok(event) => self.ingest(&a.program, event).await.map(drop),
            Err(e) => Err(e.into()),
        };
        match stored {
            Ok(()) => true,
            // The database, for now: the next flush tries again.
            Err(e @ (EngineError::Unavailable(_) | EngineError::Store(_))) => {
                tracing::warn!(error = %e, alert = %a.id, "could not raise an operational event; trying again at the next flush");
                false
            }
            // Refused for good (never for a well-formed alert): sending the e-mail beats trying
            // the same event again forever.
            Err(e) => {
                tracing::error!(error = %e, alert = %a.id, "operational event refused");
                true
            }
        }
    }

    /// E-mails the alert if e-mail is on, recording a failure on the alert.
    async fn email_alert(&self, a: &AlertRecord, stored: &Stored) {
        if !stored.settings.email_enabled {
            return;
        }
        let result = match stored.password(&self.inner.sealer) {
            Ok(password) => mail::send(&stored.settings, password.as_deref(), &message(a)).await,
            Err(e) => Err(format!("the SMTP password could not be opened: {e}")),
        };
        if let Err(why) = result {
            tracing::warn!(alert = %a.id, error = %why, "alert e-mail not sent");
            if let Err(e) = self.store().alert_email_failed(&a.id, &why).await {
                tracing::error!(error = %e, "could not record an alert e-mail failure");
            }
        }
    }

    /// Raises an `endpoint.flagged` alert for every switched-on webhook of every active program
    /// that an insight rule flags now (see `domain::insights`), unless it had one within the
    /// last day. Returns how many were raised.
    pub async fn check_flags(&self) -> Result<usize> {
        let now = self.now();
        let mut raised = Vec::new();
        for program in self.store().list_programs().await? {
            if program.archived_at.is_some() {
                continue;
            }
            let hooks = self
                .store()
                .list_webhooks(&program.id, &Default::default())
                .await?;
            let views = self
                .webhook_views(
                    &program.id,
                    &hooks,
                    crate::domain::insights::Window::Day,
                    false,
                )
                .await?;
            for v in views
                .into_iter()
                .filter(|v| v.enabled && !v.flags.is_empty())
            {
                let id = crate::domain::ids::WebhookId::from_trusted(v.id);
                let last = self.store().last_alert_at(&id, AlertKind::Flagged).await?;
                if last.is_some_and(|at| now - at < chrono::Duration::hours(FLAG_REMINDER_HOURS)) {
                    continue;
                }
                let detail: Vec<String> = v.flags.into_iter().map(|f| f.sentence).collect();
                raised.push(NewAlert {
                    program: program.id.clone(),
                    webhook: id,
                    webhook_name: v.name,
                    kind: AlertKind::Flagged,
                    count: 1,
                    at: now,
                    detail: detail.join(" "),
                });
            }
        }
        self.raise_alerts(&raised).await;
        Ok(raised.len())
    }

    /// Watches the writes (see `write_alarm`) and the database's disk (see `disk`) and flushes
    /// alerts every few seconds, and checks for flagged webhooks every quarter of an hour, until
    /// `shutdown` turns true.
    pub async fn run_alerts(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut every = tokio::time::interval(FLUSH_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks: u32 = 0;
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            // First, since the rest needs the database to take writes.
            self.watch_writes().await;
            self.watch_disk().await;
            if ticks.is_multiple_of(FLAG_CHECK_EVERY) {
                if let Err(e) = self.check_flags().await {
                    tracing::warn!(error = %e, "could not check webhooks for flags");
                }
                if let Err(e) = self.refresh_alarm_recipients().await {
                    tracing::warn!(error = %e, "could not read the alert settings for the write alarm");
                }
            }
            ticks = ticks.wrapping_add(1);
            if let Err(e) = self.flush_alerts().await {
                tracing::warn!(error = %e, "could not send alerts");
            }
        }
    }
}

/// The e-mail for one alert.
fn message(a: &AlertRecord) -> Mail {
    let when = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let (subject, what) = match a.kind {
        AlertKind::Exhausted if a.count == 1 => (
            format!("[Herald] {}: a delivery was dead-lettered", a.webhook_name),
            "One delivery used up its retries and was dead-lettered.".to_owned(),
        ),
        AlertKind::Exhausted => (
            format!(
                "[Herald] {}: {} deliveries dead-lettered",
                a.webhook_name, a.count
            ),
            format!(
                "{} deliveries used up their retries and were dead-lettered between {} and {}.",
                a.count,
                when(a.first_at),
                when(a.last_at)
            ),
        ),
        AlertKind::Disabled => (
            format!("[Herald] {} was switched off", a.webhook_name),
            "Herald switched the webhook off. New events are held for it (not dropped) until an \
             admin switches it on again."
                .to_owned(),
        ),
        AlertKind::Flagged => (
            format!("[Herald] {} looks unusual", a.webhook_name),
            "An insight rule flagged the webhook (see the README's Insights for the rules)."
                .to_owned(),
        ),
        AlertKind::Recovered => (
            format!("[Herald] {} recovered", a.webhook_name),
            format!(
                "The webhook delivered successfully again at {}.",
                when(a.last_at)
            ),
        ),
    };
    Mail {
        subject,
        body: format!(
            "{what}\n\nWebhook: {} ({})\nLatest: {}\n\nOpen the Herald console to see its delivery log.\n",
            a.webhook_name, a.webhook, a.detail
        ),
    }
}

fn view(a: AlertRecord) -> AlertView {
    AlertView {
        id: a.id.to_string(),
        kind: a.kind,
        webhook_id: a.webhook.to_string(),
        webhook_name: a.webhook_name,
        count: a.count,
        first_at: a.first_at,
        last_at: a.last_at,
        detail: a.detail,
        sent_at: a.sent_at,
        email_error: a.email_error,
    }
}
