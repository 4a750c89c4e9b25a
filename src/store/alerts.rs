//! Storage of alerts and their settings (see `domain::alerts`), both backends through one macro,
//! `impl_alert_store!`.
//!
//! Invariant: while an alert is unsent there is one row per webhook and kind (a partial unique
//! index), so occurrences from any number of processes are counted into it with one upsert, and
//! a row is sent by whichever process first stamps its `sent_at`.

use super::decode::from_row;
use super::Result;
use crate::domain::alerts::AlertKind;
use crate::domain::ids::{AlertId, ProgramId, WebhookId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Occurrences to count into a webhook's unsent alert of one kind.
#[derive(Debug, Clone)]
pub struct NewAlert {
    pub program: ProgramId,
    pub webhook: WebhookId,
    pub webhook_name: String,
    pub kind: AlertKind,
    pub count: i64,
    pub at: DateTime<Utc>,
    pub detail: String,
}

/// A stored alert.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRecord {
    pub id: AlertId,
    pub program: ProgramId,
    pub webhook: WebhookId,
    pub webhook_name: String,
    pub kind: AlertKind,
    pub count: i64,
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    pub detail: String,
    pub sent_at: Option<DateTime<Utc>>,
    pub email_error: Option<String>,
}

/// An unsent alert with when the last one of its webhook and kind went out.
#[derive(Debug, Clone)]
pub struct PendingAlert {
    pub alert: AlertRecord,
    pub last_sent: Option<DateTime<Utc>>,
}

/// A webhook whose outstanding alert a success just answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Recovered {
    pub program: ProgramId,
    pub webhook: WebhookId,
    pub name: String,
}

#[async_trait]
pub trait AlertStore: Send + Sync + 'static {
    /// The program's alert settings document (JSON), if it has one.
    async fn alert_settings(&self, program: &ProgramId) -> Result<Option<String>>;
    async fn set_alert_settings(&self, program: &ProgramId, document: &str) -> Result<()>;
    /// Counts occurrences into the webhook's unsent alert of that kind (creating it if there is
    /// none). Exhausted and disabled alerts also mark the webhook as owing a recovery notice.
    async fn raise_alert(&self, alert: &NewAlert) -> Result<()>;
    /// Unsent alerts, oldest first, each with when its webhook and kind last had one sent.
    async fn pending_alerts(&self, limit: i64) -> Result<Vec<PendingAlert>>;
    /// Stamps an unsent alert as sent; `false` if another process got there first.
    async fn claim_alert(&self, id: &AlertId, now: DateTime<Utc>) -> Result<bool>;
    /// Records why an alert's e-mail could not be sent.
    async fn alert_email_failed(&self, id: &AlertId, error: &str) -> Result<()>;
    /// The program's latest alerts, newest first.
    async fn recent_alerts(&self, program: &ProgramId, limit: i64) -> Result<Vec<AlertRecord>>;
    /// When the webhook last had an alert of `kind` raised (sent or not).
    async fn last_alert_at(
        &self,
        webhook: &WebhookId,
        kind: AlertKind,
    ) -> Result<Option<DateTime<Utc>>>;
    /// Of `ids` (webhooks that just delivered successfully), those owing a recovery notice,
    /// which they no longer owe once returned.
    async fn take_recoveries(&self, ids: &[WebhookId]) -> Result<Vec<Recovered>>;
}

pub(crate) mod sql {
    pub const RAISE: &str = "INSERT INTO alerts (id, program_id, webhook_id, webhook_name, kind, \
        count, first_at, last_at, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) \
        ON CONFLICT (webhook_id, kind) WHERE sent_at IS NULL DO UPDATE SET \
        count = alerts.count + excluded.count, last_at = excluded.last_at, \
        detail = excluded.detail, webhook_name = excluded.webhook_name";
    pub const OWE_RECOVERY: &str = "UPDATE webhooks SET alert_open = TRUE WHERE id = $1";
    pub const PENDING: &str = "SELECT a.id, a.program_id, a.webhook_id, a.webhook_name, a.kind, \
        a.count, a.first_at, a.last_at, a.detail, a.sent_at, a.email_error, \
        (SELECT MAX(b.sent_at) FROM alerts b WHERE b.webhook_id = a.webhook_id AND b.kind = a.kind \
         AND b.sent_at IS NOT NULL) AS last_sent \
        FROM alerts a WHERE a.sent_at IS NULL ORDER BY a.first_at LIMIT $1";
    pub const CLAIM: &str = "UPDATE alerts SET sent_at = $2 WHERE id = $1 AND sent_at IS NULL";
    pub const EMAIL_FAILED: &str = "UPDATE alerts SET email_error = $2 WHERE id = $1";
    pub const RECENT: &str = "SELECT id, program_id, webhook_id, webhook_name, kind, count, \
        first_at, last_at, detail, sent_at, email_error FROM alerts WHERE program_id = $1 \
        ORDER BY last_at DESC, id DESC LIMIT $2";
    pub const LAST: &str = "SELECT MAX(last_at) FROM alerts WHERE webhook_id = $1 AND kind = $2";
    pub const SETTINGS: &str = "SELECT alert_settings FROM programs WHERE id = $1";
    pub const SET_SETTINGS: &str = "UPDATE programs SET alert_settings = $2 WHERE id = $1";
}

pub(crate) struct AlertRow {
    id: String,
    program_id: String,
    webhook_id: String,
    webhook_name: String,
    kind: String,
    count: i64,
    first_at: DateTime<Utc>,
    last_at: DateTime<Utc>,
    detail: String,
    sent_at: Option<DateTime<Utc>>,
    email_error: Option<String>,
}
from_row!(AlertRow {
    id,
    program_id,
    webhook_id,
    webhook_name,
    kind,
    count,
    first_at,
    last_at,
    detail,
    sent_at,
    email_error
});

impl TryFrom<AlertRow> for AlertRecord {
    type Error = super::StoreError;

    fn try_from(r: AlertRow) -> Result<Self> {
        Ok(Self {
            kind: AlertKind::parse(&r.kind)
                .ok_or_else(|| super::StoreError::Corrupt(format!("alert kind {}", r.kind)))?,
            id: AlertId::from_trusted(r.id),
            program: ProgramId::from_trusted(r.program_id),
            webhook: WebhookId::from_trusted(r.webhook_id),
            webhook_name: r.webhook_name,
            count: r.count,
            first_at: r.first_at,
            last_at: r.last_at,
            detail: r.detail,
            sent_at: r.sent_at,
            email_error: r.email_error,
        })
    }
}

pub(crate) struct PendingRow {
    alert: AlertRow,
    last_sent: Option<DateTime<Utc>>,
}
from_row!(PendingRow { last_sent } flatten { alert });

impl TryFrom<PendingRow> for PendingAlert {
    type Error = super::StoreError;

    fn try_from(r: PendingRow) -> Result<Self> {
        Ok(Self {
            alert: r.alert.try_into()?,
            last_sent: r.last_sent,
        })
    }
}

macro_rules! impl_alert_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::alerts::AlertStore for $store {
            async fn alert_settings(&self, program: &ProgramId) -> Result<Option<String>> {
                let doc: Option<Option<String>> =
                    sqlx::query_scalar($crate::store::alerts::sql::SETTINGS)
                        .bind(program.as_str())
                        .fetch_optional(&self.reader)
                        .await?;
                Ok(doc.flatten())
            }

            async fn set_alert_settings(&self, program: &ProgramId, document: &str) -> Result<()> {
                sqlx::query($crate::store::alerts::sql::SET_SETTINGS)
                    .bind(program.as_str())
                    .bind(document)
                    .execute(self.writer()?)
                    .await?;
                Ok(())
            }

            async fn raise_alert(&self, a: &$crate::store::alerts::NewAlert) -> Result<()> {
                use $crate::domain::alerts::AlertKind;
                let mut tx = self.writer()?.begin().await?;
                sqlx::query($crate::store::alerts::sql::RAISE)
                    .bind($crate::domain::ids::AlertId::generate().to_string())
                    .bind(a.program.as_str())
                    .bind(a.webhook.as_str())
                    .bind(&a.webhook_name)
                    .bind(a.kind.as_str())
                    .bind(a.count)
                    .bind(a.at)
                    .bind(&a.detail)
                    .execute(&mut *tx)
                    .await?;
                if matches!(a.kind, AlertKind::Exhausted | AlertKind::Disabled) {
                    sqlx::query($crate::store::alerts::sql::OWE_RECOVERY)
                        .bind(a.webhook.as_str())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn pending_alerts(
                &self,
                limit: i64,
            ) -> Result<Vec<$crate::store::alerts::PendingAlert>> {
                let rows: Vec<$crate::store::alerts::PendingRow> =
                    sqlx::query_as($crate::store::alerts::sql::PENDING)
                        .bind(limit)
                        .fetch_all(self.writer()?)
                        .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn claim_alert(
                &self,
                id: &$crate::domain::ids::AlertId,
                now: DateTime<Utc>,
            ) -> Result<bool> {
                Ok(sqlx::query($crate::store::alerts::sql::CLAIM)
                    .bind(id.as_str())
                    .bind(now)
                    .execute(self.writer()?)
                    .await?
                    .rows_affected()
                    == 1)
            }

            async fn alert_email_failed(
                &self,
                id: &$crate::domain::ids::AlertId,
                error: &str,
            ) -> Result<()> {
                sqlx::query($crate::store::alerts::sql::EMAIL_FAILED)
                    .bind(id.as_str())
                    .bind(error)
                    .execute(self.writer()?)
                    .await?;
                Ok(())
            }

            async fn recent_alerts(
                &self,
                program: &ProgramId,
                limit: i64,
            ) -> Result<Vec<$crate::store::alerts::AlertRecord>> {
                let rows: Vec<$crate::store::alerts::AlertRow> =
                    sqlx::query_as($crate::store::alerts::sql::RECENT)
                        .bind(program.as_str())
                        .bind(limit)
                        .fetch_all(&self.reader)
                        .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn last_alert_at(
                &self,
                webhook: &WebhookId,
                kind: $crate::domain::alerts::AlertKind,
            ) -> Result<Option<DateTime<Utc>>> {
                Ok(sqlx::query_scalar($crate::store::alerts::sql::LAST)
                    .bind(webhook.as_str())
                    .bind(kind.as_str())
                    .fetch_one(self.writer()?)
                    .await?)
            }

            async fn take_recoveries(
                &self,
                ids: &[WebhookId],
            ) -> Result<Vec<$crate::store::alerts::Recovered>> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                // Almost always none owes a recovery: asking a reader first keeps this off the
                // writer (on SQLite, a statement and a commit after every batch of results).
                // A flag is set in a commit before the results that clear it are written, so a
                // reader sees it.
                let in_list = |head: &str, ids: &[String], tail: &str| {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(head);
                    $crate::store::sql::push_list(&mut qb, ids);
                    qb.push(tail);
                    qb
                };
                let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
                let owed: Vec<String> = in_list(
                    "SELECT id FROM webhooks WHERE alert_open AND id IN ",
                    &ids,
                    "",
                )
                .build_query_scalar()
                .fetch_all(&self.reader)
                .await?;
                if owed.is_empty() {
                    return Ok(Vec::new());
                }
                let rows: Vec<(String, String, String)> = in_list(
                    "UPDATE webhooks SET alert_open = FALSE WHERE alert_open AND id IN ",
                    &owed,
                    " RETURNING id, program_id, name",
                )
                .build_query_as()
                .fetch_all(self.writer()?)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, program, name)| $crate::store::alerts::Recovered {
                        program: ProgramId::from_trusted(program),
                        webhook: WebhookId::from_trusted(id),
                        name,
                    })
                    .collect())
            }
        }
    };
}
pub(crate) use impl_alert_store;
