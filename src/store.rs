//! Storage: one interface (`Store`), two backends (`sqlite`, `postgres`), one conformance suite.
//!
//! The store knows tables and transactions, never HTTP or the delivery engine's policy. Every
//! multi-row change (fan-out, result recording, delete) happens in one transaction, so a crash
//! leaves either all of it or none. Secrets arrive here already sealed: the store never sees them in
//! plain text.

pub mod access;
pub mod alerts;
mod decode;
mod model;
mod page_cache;
mod postgres;
mod priority;
pub mod replay;
pub mod retention;
pub mod rollups;
mod rows;
mod shared;
mod sql;
mod sqlite;
mod views;
mod wal_writes;

pub use access::{
    AccessStore, ActivityRecord, ApiKeyCandidate, ApiKeySummary, MemberRecord, ProgramRecord,
    SessionRecord, UserRecord,
};
pub use alerts::AlertStore;
pub use model::*;
pub use postgres::PgStore;
pub use replay::{ReplayJobRecord, ReplayScope, ReplayStore};
pub use retention::{Prunable, RetentionStore};
pub use sql::storable;
pub use sql::{HELD_COUNT_LIMIT, HELD_PER_STEP};
pub use sqlite::SqliteStore;
pub use wal_writes::gathered_commits as wal_commits_gathered;

use crate::delivery::queue::{Claim, Outcome};
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
    Database(sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// An optimistic write named a version that is no longer current (someone else changed or
    /// deleted the record since it was read).
    #[error("the record was changed since it was read")]
    Stale,
    /// An ingest batch was routed with a subscriber list that a committed webhook change has
    /// replaced; nothing was written, route again.
    #[error("the webhooks changed while the events were routed")]
    StaleRouting,
    /// The database could not take the write (see `is_unavailable`); the text says why.
    #[error("{0}")]
    Unavailable(String),
    /// Text the database cannot hold (PostgreSQL refuses NUL, U+0000, in text and JSON); nothing
    /// was written. Input is checked before it gets here; this keeps anything missed a refusal
    /// rather than a server error.
    #[error("a text value holds the NUL character (U+0000), which cannot be stored")]
    Unstorable,
}

impl StoreError {
    /// Why the database cannot take work now, when that is what went wrong (unreachable,
    /// shutting down, out of resources, locked, disk full), and whether it could be reached at
    /// all; `None` for bugs and bad data.
    fn unavailability(&self) -> Option<(Reach, std::borrow::Cow<'_, str>)> {
        use Reach::{Reachable, Unreachable};
        let (reach, reason) = match self {
            Self::Unavailable(reason) => return Some((Reachable, reason.as_str().into())),
            Self::Database(sqlx::Error::PoolTimedOut) => {
                (Unreachable, "the database did not answer in time")
            }
            Self::Database(
                sqlx::Error::Io(_)
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::Tls(_),
            ) => (Unreachable, "the database cannot be reached"),
            Self::Database(sqlx::Error::Database(db)) => match sqlite::primary_code(db.as_ref()) {
                Some(13) => (Reachable, "the database's disk is full"),
                Some(5 | 6) => (Reachable, "the database is locked by another writer"),
                Some(10) => (Reachable, "the database cannot read or write its files"),
                Some(14) => (Reachable, "the database file cannot be opened"),
                Some(_) => return None,
                // PostgreSQL classes: connection exception, insufficient resources, operator
                // intervention (shutdown, cannot connect now, a statement cancelled), a server
                // that takes no writes (a standby: after a failover Herald may still be
                // connected to the old primary; or a database set read-only), and transactions
                // the server broke off that succeed when tried again (a conflict with another,
                // a lock not granted in the operator's `lock_timeout`).
                None => match db.code().unwrap_or_default().as_ref() {
                    c if c.starts_with("08") => (Unreachable, "the database cannot be reached"),
                    "53100" => (Reachable, "the database's disk is full"),
                    c if c.starts_with("53") => (Reachable, "the database is out of resources"),
                    c if c.starts_with("57P") => (Unreachable, "the database is shutting down"),
                    "25006" => (
                        Reachable,
                        "the database is read-only (a standby after a failover, or set read-only)",
                    ),
                    "57014" => (
                        Reachable,
                        "the database cancelled a statement (its statement_timeout, or an operator)",
                    ),
                    "55P03" => (
                        Reachable,
                        "the database timed out waiting for a lock (its lock_timeout)",
                    ),
                    "40001" | "40P01" => (
                        Reachable,
                        "the database broke off the write in a conflict with another \
                         (a serialization failure or a deadlock)",
                    ),
                    _ => return None,
                },
            },
            _ => return None,
        };
        Some((reach, reason.into()))
    }

    /// A transaction the database broke off in a collision with another (a serialization failure
    /// or a deadlock): unavailable to its caller, but sent again it succeeds, so ingest tries
    /// such a batch again at once rather than refusing it.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Database(sqlx::Error::Database(db))
            if matches!(db.code().as_deref(), Some("40001" | "40P01")))
    }

    /// Whether the database could not be reached or refused for lack of resources (connection
    /// lost, pool exhausted, disk full, database locked): worth a `503` and a later retry, as
    /// opposed to a bug or bad data.
    pub fn is_unavailable(&self) -> bool {
        self.unavailability().is_some()
    }

    /// The database cannot be reached at all (connection lost or refused, no connection within
    /// the pool's timeout, shutting down): any other write now would wait and fail the same way.
    pub fn is_unreachable(&self) -> bool {
        matches!(self.unavailability(), Some((Reach::Unreachable, _)))
    }

    /// Why the database cannot take work now, in words an operator can act on (meaningful when
    /// `is_unavailable`, and for routing that kept going stale).
    pub fn unavailable_reason(&self) -> String {
        match self {
            Self::StaleRouting => {
                "the webhooks kept changing while these events were routed".to_owned()
            }
            other => other.unavailability().map_or_else(
                || "the database cannot be reached".to_owned(),
                |(_, r)| r.into_owned(),
            ),
        }
    }
}

/// Whether an unavailable database could be reached at all (see `StoreError::is_unreachable`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reach {
    Reachable,
    Unreachable,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Told of a webhook changed by another process, with the version it reached.
pub type WebhookChanged = Arc<dyn Fn(WebhookId, i64) + Send + Sync>;

/// Storage operations every backend provides with the same meaning (checked by the conformance
/// suite in `tests/store_conformance.rs`).
/// Picks one event's deliveries from its type's subscriber list as read inside the transaction
/// that stores it (see `Store::ingest_routed`); called with the event's place in the batch.
pub type Router<'a> =
    dyn FnMut(usize, &StoredEvent, &Subscribers) -> Result<Vec<DeliveryTarget>> + Send + 'a;

#[async_trait]
pub trait Store: AccessStore + AlertStore + RetentionStore + ReplayStore {
    /// Answers when the database does (health checks).
    async fn ping(&self) -> Result<()>;

    /// The backend's name, for the console's Settings page.
    fn backend(&self) -> &'static str;

    /// The database file, for a backend that keeps one on this machine (SQLite), so the disk
    /// it is on can be watched (see `delivery::disk`); `None` on PostgreSQL.
    fn database_file(&self) -> Option<std::path::PathBuf>;

    /// The program new installations work in (created by the first migration run).
    async fn default_program(&self) -> Result<ProgramId>;

    // --- webhooks ---------------------------------------------------------------------------
    /// Inserts a webhook and its subscriptions; `Conflict { field: "name" }` on a duplicate name.
    async fn insert_webhook(&self, webhook: &WebhookRecord) -> Result<()>;
    /// Replaces a webhook's settings and subscriptions (counters are untouched) if its stored
    /// version is still `webhook.version`, moving the version on; `Stale` otherwise.
    async fn update_webhook(&self, webhook: &WebhookRecord) -> Result<()>;
    /// Inserts `new` and updates `changed` (each fenced on its version) of one program in one
    /// transaction: all of them, or (on any conflict or stale version) none.
    async fn import_webhooks(
        &self,
        program: &ProgramId,
        new: &[WebhookRecord],
        changed: &[WebhookRecord],
    ) -> Result<()>;
    async fn get_webhook(&self, program: &ProgramId, id: &WebhookId) -> Result<Option<Webhook>>;
    async fn list_webhooks(
        &self,
        program: &ProgramId,
        query: &WebhookQuery,
    ) -> Result<Vec<Webhook>>;
    /// Removes a webhook from the list and cancels its pending deliveries; its attempts stay.
    async fn delete_webhook(&self, program: &ProgramId, id: &WebhookId) -> Result<bool>;

    // --- events and deliveries ----------------------------------------------------------------
    /// Stores an event and one delivery per webhook in `targets`, routed against the current
    /// subscriber list (for callers that choose targets themselves: tools and tests). Returns
    /// `None` when the event id was already stored (nothing new is written).
    async fn ingest(&self, event: &StoredEvent, targets: &[WebhookId]) -> Result<Option<usize>> {
        let version = self
            .subscribers(&event.program_id, event.event_type.as_str())
            .await?
            .version;
        let batch = [IngestItem {
            event: event.clone(),
            targets: targets.iter().cloned().map(DeliveryTarget::from).collect(),
            routing_version: version,
        }];
        Ok(self.ingest_batch(&batch).await?.pop().flatten())
    }
    /// Stores many events, each with one delivery per target, in one transaction (group commit):
    /// all are stored or none. Inside the transaction each item's `routing_version` is checked
    /// against its program's current subscriber-list version (on PostgreSQL under a share lock
    /// that webhook changes wait for), so a webhook deleted, disabled or created by a committed
    /// change is never routed to from an older list: the batch fails with `StaleRouting` and
    /// nothing is written. Each result is the deliveries fanned out, or `None` for an event id
    /// already stored (including earlier in the same batch).
    async fn ingest_batch(&self, batch: &[IngestItem]) -> Result<Vec<Option<usize>>>;
    /// `ingest_batch` for a batch that lost the race with a webhook change: each program's
    /// subscriber-list version is locked against changes inside the transaction (PostgreSQL: a
    /// share lock the changes wait for; SQLite: the one writer connection is the transaction's),
    /// the lists are read there, and `route` picks each event's targets from them (setting
    /// `targets` and `routing_version`). No change can come between the lists and the write, so
    /// the batch is never stale, however many changes arrive. Slower than `ingest_batch` (a
    /// round trip per list, changes wait meanwhile), so only the fallback.
    async fn ingest_routed(
        &self,
        batch: &mut [IngestItem],
        route: &mut Router<'_>,
    ) -> Result<Vec<Option<usize>>>;
    /// Webhooks of the program subscribed to `event_type`, switched off or on (fan-out
    /// candidates; a switched-off one holds its deliveries), with the
    /// subscriber-list version they were read at.
    async fn subscribers(&self, program: &ProgramId, event_type: &str) -> Result<Subscribers>;
    /// Claims up to `limit` due deliveries (pending and due, or in flight with an expired lease),
    /// oldest first, marking them in flight with a lease of the webhook's timeout plus
    /// `lease_margin`. Reclaiming an expired lease counts an interruption. Deliveries of the
    /// webhooks in `exclude` are left alone (the caller is holding them back).
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease_margin: chrono::Duration,
        exclude: &[WebhookId],
    ) -> Result<Vec<Claim>>;
    /// Records every attempt and moves each delivery on whose claim is still current. An attempt
    /// whose claim was superseded (its `claim_count` no longer matches) is still recorded, marked
    /// superseded, and moves nothing. Returns which results moved their delivery.
    async fn record_results(&self, results: &[Outcome], now: DateTime<Utc>) -> Result<Moved>;
    /// `ingest_batch` and `record_results` in one transaction: all of it is stored or none.
    async fn ingest_and_record(
        &self,
        batch: &[IngestItem],
        results: &[Outcome],
        now: DateTime<Utc>,
    ) -> Result<(Vec<Option<usize>>, Moved)>;
    /// Records a standalone attempt (tests and verifications) and, when `live`, moves counters.
    async fn insert_attempt(&self, attempt: &NewAttempt) -> Result<()> {
        self.insert_attempts(std::slice::from_ref(attempt)).await
    }
    /// Records standalone attempts in one transaction, as `insert_attempt` does one (the scale
    /// seeder writes history this way).
    async fn insert_attempts(&self, attempts: &[NewAttempt]) -> Result<()>;

    /// Hourly roll-ups of a program's live attempts summed per group (see `rollups::RollupQuery`).
    async fn rollups(
        &self,
        program: &ProgramId,
        query: &rollups::RollupQuery,
    ) -> Result<Vec<(String, crate::domain::insights::Rollup)>>;

    /// Switches an enabled webhook off because of what its endpoint did, keeping `reason` until an
    /// admin switches it on again (which clears it). Its pending deliveries stay (claims skip
    /// disabled webhooks), to be held by `settle_held`. Returns the version it reached when it was on (`None`: it was
    /// off already, or gone).
    async fn auto_disable_webhook(
        &self,
        program: &ProgramId,
        id: &WebhookId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>>;

    /// Dead-letters, with `reason` as their last error, up to `limit` of the deliveries a
    /// switched-off webhook holds; does nothing once it is on. Returns how many.
    async fn discard_held(
        &self,
        program: &ProgramId,
        id: &WebhookId,
        reason: &str,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<u64>;

    /// One step of bringing a webhook's pending deliveries in line with its state: holds up to
    /// `limit` of them (at `sql::held_due()`) while it is off, releases up to `limit` held ones
    /// while it is on, ends up to `limit` as failed once it is deleted. A switch change or a
    /// deletion does not move them itself (see `sql::HELD_PER_STEP`). Returns how many moved:
    /// fewer than `limit` when it is settled.
    async fn settle_held(&self, id: &WebhookId, limit: i64) -> Result<u64>;

    /// Webhooks whose pending deliveries do not match their state yet.
    async fn unsettled_webhooks(&self) -> Result<Vec<WebhookId>>;

    /// How many deliveries each switched-off webhook among `ids` of `program` holds, counted up
    /// to `limit + 1` (a larger hold reads as that: "more than the limit"; see
    /// `HELD_COUNT_LIMIT`). Webhooks holding none may be absent.
    async fn held_counts(
        &self,
        program: &ProgramId,
        ids: &[WebhookId],
        limit: i64,
    ) -> Result<Vec<(WebhookId, i64)>>;

    /// Since when the oldest waiting delivery of each switched-on webhook among `ids` of
    /// `program` has waited (absent: nothing waiting): when it fell due, or when its webhook was
    /// last switched on if that is later (a released hold is due from its acceptance). Held
    /// deliveries (a switched-off webhook's) are not counted; one waiting for a later retry is
    /// not due yet.
    async fn oldest_due(
        &self,
        program: &ProgramId,
        ids: &[WebhookId],
    ) -> Result<Vec<(WebhookId, DateTime<Utc>)>>;

    /// Of `ids`, the webhooks still on whose live tries have all failed since `since` or earlier,
    /// at least `min_failures` in a row.
    async fn sustained_failures(
        &self,
        ids: &[WebhookId],
        since: DateTime<Utc>,
        min_failures: i64,
    ) -> Result<Vec<FailingWebhook>>;

    /// The event types whose `data` the program checks against the catalog schema at ingest.
    async fn validated_event_types(&self, program: &ProgramId) -> Result<Vec<String>>;

    /// Turns schema validation of one event type on or off for a program (and moves its
    /// subscriber-list version, so routing caches everywhere see it).
    async fn set_event_type_validation(
        &self,
        program: &ProgramId,
        event_type: &str,
        on: bool,
    ) -> Result<()>;

    /// Sizes of a program's accepted events per type over `[from_hour, to_hour)`.
    async fn event_sizes(
        &self,
        program: &ProgramId,
        from_hour: i64,
        to_hour: i64,
    ) -> Result<Vec<(String, crate::domain::insights::SizeStats)>>;
    /// Rings `wake` whenever another process announces new work, and calls `changed` with each
    /// webhook another process changed and the version it reached (PostgreSQL `LISTEN/NOTIFY`);
    /// returns once listening has started. A no-op where one process owns the database.
    async fn listen_for_work(
        &self,
        wake: Arc<tokio::sync::Notify>,
        changed: WebhookChanged,
    ) -> Result<()>;
    /// Queue and connection figures for monitoring (`/metrics`).
    async fn queue_gauges(&self) -> Result<QueueGauges>;
    /// When the earliest pending delivery comes due (or lease runs out), if any, leaving out
    /// the webhooks in `exclude`. With exclusions, anything already due answers `now` (the
    /// caller's clock) rather than its own due time.
    async fn next_due_at(
        &self,
        exclude: &[WebhookId],
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>>;
    /// Since when the longest-waiting delivery has waited: the earliest due time of a
    /// switched-on webhook's deliveries, or claim's lease expiry, where a delivery waits from
    /// the moment its webhook was last switched on at the earliest (as Falling behind counts).
    /// A hold released by switching its webhook on is due from its acceptance, but has waited
    /// only since the switch. `None`: nothing waiting.
    async fn waiting_since(&self) -> Result<Option<DateTime<Utc>>>;
    /// Gives in-flight deliveries claimed by this process back untried, keeping their due time
    /// (graceful shutdown, rate limits).
    async fn release(&self, claims: &[(DeliveryId, i64)], now: DateTime<Utc>) -> Result<()>;
    /// A page of deliveries, newest first, with the cursor of the next page when one follows.
    async fn list_deliveries(
        &self,
        program: &ProgramId,
        query: &DeliveryQuery,
    ) -> Result<DeliveryPage>;
    /// Puts a finished delivery back to pending with a fresh try budget, or makes a delivery
    /// waiting for a retry due now.
    async fn replay_delivery(
        &self,
        program: &ProgramId,
        id: &DeliveryId,
        now: DateTime<Utc>,
    ) -> Result<Replayed>;

    // --- audit log -----------------------------------------------------------------------------
    async fn list_attempts(&self, program: &ProgramId, query: &AttemptQuery)
        -> Result<AttemptPage>;
    async fn get_attempt(
        &self,
        program: &ProgramId,
        id: &AttemptId,
    ) -> Result<Option<AttemptDetail>>;

    /// One step of the walk that gives events stored before migration 0027 their member, read
    /// from their bodies (see `delivery::backfill`): the next `limit` events in key order after
    /// where the last step stopped, in one write transaction. `None` once the walk is done (and
    /// every step after).
    async fn backfill_members(&self, limit: i64) -> Result<Option<BackfillStep>>;
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
        _ => e.into(),
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        sqlite::note_failure(&e);
        // PostgreSQL: 22021, NUL in text ("invalid byte sequence for encoding UTF8: 0x00");
        // 22P05, NUL in JSON ("unsupported Unicode escape sequence").
        if let sqlx::Error::Database(db) = &e {
            if matches!(db.code().as_deref(), Some("22021" | "22P05")) {
                return Self::Unstorable;
            }
        }
        Self::Database(e)
    }
}

/// The current time at the precision both backends store (microseconds), so a value written and
/// read back compares equal on either.
pub fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

/// Since when a switched-on webhook's first waiting delivery (`due`, from its pending index)
/// has waited: its due time, or the webhook's last switch-on if later. `None`: nothing waiting,
/// or only held deliveries (still at `held_due`, mid-release).
fn waiting_from(switched_on: DateTime<Utc>, due: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    due.filter(|at| *at < sql::held_due())
        .map(|at| at.max(switched_on))
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::StoreError;

    /// Only a database that cannot be reached at all is unreachable: one that answers but
    /// cannot take the write (a full disk, a lock) is unavailable, and worth trying apart.
    #[test]
    fn unreachable_is_the_outage_every_write_would_wait_out() {
        let timed_out = StoreError::Database(sqlx::Error::PoolTimedOut);
        assert!(timed_out.is_unavailable() && timed_out.is_unreachable());
        let lost = StoreError::Database(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert!(lost.is_unavailable() && lost.is_unreachable());
        let full = StoreError::Unavailable("the database's disk is full".into());
        assert!(full.is_unavailable() && !full.is_unreachable());
        assert!(!StoreError::StaleRouting.is_unreachable());
        assert_eq!(
            timed_out.unavailable_reason(),
            "the database did not answer in time"
        );
    }
}
