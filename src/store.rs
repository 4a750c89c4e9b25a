//! Storage: one interface (`Store`), two backends (`sqlite`, `postgres`), one conformance suite.
//!
//! The store knows tables and transactions, never HTTP or the delivery engine's policy. Every
//! multi-row change (fan-out, result recording, delete) happens in one transaction, so a crash
//! leaves either all of it or none. Secrets arrive here already sealed: the store never sees them in
//! plain text.

pub mod access;
mod model;
mod postgres;
mod rows;
mod shared;
mod sql;
mod sqlite;
mod views;

pub use access::{
    AccessStore, ActivityRecord, ApiKeyCandidate, ApiKeySummary, SessionRecord, UserRecord,
};
pub use model::*;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use crate::domain::ids::{AttemptId, DeliveryId, ProgramId, WebhookId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// What can go wrong in storage, in terms callers act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken; `field` names the input that collided.
    #[error("{field} is already in use")]
    Conflict { field: &'static str },
    #[error("the database URL is not valid: {0}")]
    BadUrl(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Storage operations every backend provides with the same meaning (checked by the conformance
/// suite in `tests/store_conformance.rs`).
#[async_trait]
pub trait Store: AccessStore {
    /// Answers when the database does (health checks).
    async fn ping(&self) -> Result<()>;

    /// The backend's name, for the console's Settings page.
    fn backend(&self) -> &'static str;

    /// The program new installations work in (created by the first migration run).
    async fn default_program(&self) -> Result<ProgramId>;

    // --- webhooks ---------------------------------------------------------------------------
    /// Inserts a webhook and its subscriptions; `Conflict { field: "name" }` on a duplicate name.
    async fn insert_webhook(&self, webhook: &WebhookRecord) -> Result<()>;
    /// Replaces a webhook's settings and subscriptions (counters are untouched).
    async fn update_webhook(&self, webhook: &WebhookRecord) -> Result<()>;
    async fn get_webhook(&self, program: &ProgramId, id: &WebhookId) -> Result<Option<Webhook>>;
    async fn list_webhooks(
        &self,
        program: &ProgramId,
        query: &WebhookQuery,
    ) -> Result<Vec<Webhook>>;
    /// Removes a webhook from the list and cancels its pending deliveries; its attempts stay.
    async fn delete_webhook(&self, program: &ProgramId, id: &WebhookId) -> Result<bool>;

    // --- events and deliveries ----------------------------------------------------------------
    /// Stores an event and one delivery per webhook in `targets`, atomically. Returns `None` when
    /// the event id was already stored (nothing new is written).
    async fn ingest(&self, event: &StoredEvent, targets: &[WebhookId]) -> Result<Option<usize>> {
        let batch = [(event.clone(), targets.to_vec())];
        Ok(self.ingest_batch(&batch).await?.pop().flatten())
    }
    /// `ingest` for many events in one transaction (group commit): all are stored or none. Each
    /// result is the deliveries fanned out, or `None` for an event id already stored (including
    /// earlier in the same batch).
    async fn ingest_batch(
        &self,
        batch: &[(StoredEvent, Vec<WebhookId>)],
    ) -> Result<Vec<Option<usize>>>;
    /// Enabled webhooks of the program subscribed to `event_type` (fan-out candidates).
    async fn subscribers(&self, program: &ProgramId, event_type: &str) -> Result<Vec<Webhook>>;
    /// Claims up to `limit` due deliveries (pending and due, or in flight with an expired lease),
    /// marking them in flight with a lease of the webhook's timeout plus `lease_margin`.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease_margin: chrono::Duration,
    ) -> Result<Vec<ClaimedDelivery>>;
    /// Records attempts and moves their deliveries on, ignoring any result whose claim was
    /// superseded (its `claim_count` no longer matches). Returns how many were applied.
    async fn record_results(&self, results: &[DeliveryResult]) -> Result<usize>;
    /// Records a standalone attempt (tests and verifications) and, when `live`, moves counters.
    async fn insert_attempt(&self, attempt: &NewAttempt) -> Result<()>;
    /// Rings `wake` whenever another process announces new work (PostgreSQL `LISTEN/NOTIFY`);
    /// returns once listening has started. A no-op where one process owns the database.
    async fn listen_for_work(&self, wake: Arc<tokio::sync::Notify>) -> Result<()>;
    /// When the earliest pending delivery comes due, if any.
    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>>;
    /// Gives in-flight deliveries claimed by this process back (graceful shutdown).
    async fn release(&self, claims: &[(DeliveryId, i64)], now: DateTime<Utc>) -> Result<()>;
    async fn list_deliveries(
        &self,
        program: &ProgramId,
        query: &DeliveryQuery,
    ) -> Result<Vec<DeliverySummary>>;
    /// Puts a finished delivery back to pending with a fresh try budget.
    async fn replay_delivery(
        &self,
        program: &ProgramId,
        id: &DeliveryId,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    // --- audit log -----------------------------------------------------------------------------
    async fn list_attempts(&self, program: &ProgramId, query: &AttemptQuery)
        -> Result<AttemptPage>;
    async fn get_attempt(
        &self,
        program: &ProgramId,
        id: &AttemptId,
    ) -> Result<Option<AttemptDetail>>;
}

/// Opens the store a URL names (`sqlite:` or `postgres:`), running migrations.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(PgStore::connect(url).await?))
    } else {
        Err(StoreError::BadUrl(format!(
            "'{url}' should start with sqlite: or postgres://"
        )))
    }
}

/// Maps a unique-index violation to `Conflict`, keeping other errors.
fn conflict_on_unique(e: sqlx::Error, field: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict { field },
        _ => StoreError::Database(e),
    }
}

/// The current time at the precision both backends store (microseconds), so a value written and
/// read back compares equal on either.
pub fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
