//! The SQLite backend: a file in WAL mode, the zero-configuration default.
//!
//! SQLite allows one writer at a time, so all writes go through a pool of exactly one connection
//! (no `SQLITE_BUSY` between our own transactions, and claims need no row locks: the writer *is*
//! the lock), while reads use a separate read-only pool and never wait for writes. One Herald
//! process per database file; PostgreSQL is for many.

use super::access;
use super::model::*;
use super::sql::{self, AttemptDetailRow, AttemptSummaryRow, ClaimedRow, DeliveryRow, WebhookRow};
use super::{conflict_on_unique, Result, StoreError};
use crate::delivery::queue::{Claim, Outcome};
use crate::domain::catalog;
use crate::domain::ids::{
    ActivityId, ApiKeyId, AttemptId, DeliveryId, ProgramId, UserId, WebhookId,
};
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::types::Json;
use sqlx::{Sqlite, SqlitePool};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub struct SqliteStore {
    /// The single connection every write goes through.
    writer: SqlitePool,
    /// Read-only connections for lists and lookups.
    reader: SqlitePool,
    program: ProgramId,
    /// Keeps the background checkpointer alive; it stops once the store is dropped.
    _alive: std::sync::Arc<()>,
}

/// SQLite errors seen in this process (constraint violations aside). After such an error, SQLite
/// may have rolled a transaction back on its own (disk full, I/O error, busy) while sqlx still
/// counts it as open: later `BEGIN`s then become savepoints inside a transaction that is never
/// committed, so writes "succeed" and vanish (reproduced on a full disk by
/// `server/tests/sqlite_full.rs`). The writer compares this count before every use and replaces
/// its connection when it moved: closing a connection ends whatever transaction it was in.
static FAILURES: AtomicU64 = AtomicU64::new(0);

/// The primary result code (the low byte of the extended code) of a SQLite error; `None` for
/// other databases' errors.
pub(super) fn primary_code(db: &dyn sqlx::error::DatabaseError) -> Option<i32> {
    db.try_downcast_ref::<sqlx::sqlite::SqliteError>()?;
    let code = db.code()?.parse::<i32>().ok()?;
    Some(code & 0xff)
}

/// Counts `e` if it may have left a SQLite connection's transaction state unknown.
pub(super) fn note_failure(e: &sqlx::Error) {
    let suspect = match e {
        sqlx::Error::Database(db) => {
            primary_code(db.as_ref()).is_some_and(|code| code != SQLITE_CONSTRAINT)
        }
        sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => true,
        _ => false,
    };
    if suspect {
        FAILURES.fetch_add(1, Ordering::AcqRel);
    }
}

/// SQLite's primary result code for a broken constraint (unique, foreign key, check): the
/// statement fails, the transaction stays as it was.
const SQLITE_CONSTRAINT: i32 = 19;

/// Page caches (negative: KiB). Each connection has its own, and once the database outgrows
/// them they stay full: with 32 MB on each of six connections a deep backlog held ~190 MB in
/// caches alone. The writer's cache holds the hot index pages of ingest, claims and results;
/// readers' pages come from the OS page cache cheaply when missed.
const WRITER_CACHE: &str = "-16000";
const READER_CACHE: &str = "-4000";

/// How often the background checkpointer copies the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

impl SqliteStore {
    /// Opens (creating if `mode=rwc`) the database file, migrates it and seeds the catalog.
    const BACKEND: &'static str = "SQLite";
    /// The single writer serialises ingest and webhook changes; no row lock is needed.
    const SHARE_LOCK: &'static str = "";

    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::BadUrl(format!("{url}: {e}")))?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("temp_store", "memory")
            .pragma("cache_size", WRITER_CACHE)
            .pragma("wal_autocheckpoint", "0");
        let seen = std::sync::Arc::new(AtomicU64::new(FAILURES.load(Ordering::Acquire)));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            // A fresh connection after any SQLite failure (see `FAILURES`).
            .before_acquire(move |_, _| {
                let seen = seen.clone();
                Box::pin(async move {
                    let now = FAILURES.load(Ordering::Acquire);
                    Ok(seen.swap(now, Ordering::AcqRel) == now)
                })
            })
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(
                options
                    .clone()
                    .read_only(true)
                    .pragma("cache_size", READER_CACHE),
            )
            .await?;
        let program = Self::seed(&writer).await?;
        let alive = std::sync::Arc::new(());
        // Checkpoints copy WAL frames without the page cache: the small one will do.
        let checkpointer = options.pragma("cache_size", READER_CACHE);
        Self::start_checkpointer(checkpointer, std::sync::Arc::downgrade(&alive)).await?;
        Ok(Self {
            writer,
            reader,
            program,
            _alive: alive,
        })
    }

    /// Checkpoints the WAL from a connection of its own. The writer does not checkpoint
    /// (`wal_autocheckpoint = 0`), so a commit never waits for the checkpoint's copy and fsync;
    /// PASSIVE checkpoints never block the writer or readers either.
    async fn start_checkpointer(
        options: SqliteConnectOptions,
        alive: std::sync::Weak<()>,
    ) -> Result<()> {
        use sqlx::ConnectOptions;
        let mut conn = options.connect().await?;
        tokio::spawn(async move {
            let mut every = tokio::time::interval(CHECKPOINT_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if alive.upgrade().is_none() {
                    break;
                }
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&mut conn)
                    .await
                {
                    tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
                }
            }
        });
        Ok(())
    }

    /// Other processes never share a SQLite file with us, so there is no one to tell.
    async fn announce<'e, E: sqlx::SqliteExecutor<'e>>(&self, _executor: E) -> Result<()> {
        Ok(())
    }

    async fn listen(&self, _wake: std::sync::Arc<tokio::sync::Notify>) -> Result<()> {
        Ok(())
    }

    async fn claim(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease_margin: chrono::Duration,
        exclude: &[WebhookId],
    ) -> Result<Vec<Claim>> {
        // The single writer connection serialises claims, so select-then-update is race-free.
        let mut tx = self.writer.begin().await?;
        let mut select = sqlx::QueryBuilder::<Sqlite>::new(format!(
            "SELECT {} FROM deliveries d \
             JOIN events e ON e.program_id = d.program_id AND e.id = d.event_id \
             JOIN webhooks w ON w.id = d.webhook_id \
             WHERE d.status IN ('pending', 'in_flight') AND w.enabled AND d.next_attempt_at <= ",
            sql::claimed_columns()
        ));
        select
            .push_bind(now)
            .push(" AND (d.status = 'pending' OR d.lease_expires_at <= ")
            .push_bind(now)
            .push(")");
        sql::push_exclusion(&mut select, exclude);
        select.push(sql::ORDERED_CLAIMABLE);
        select
            .push(" ORDER BY d.next_attempt_at, d.id LIMIT ")
            .push_bind(i64::from(limit));
        let rows: Vec<ClaimedRow> = select.build_query_as().fetch_all(&mut *tx).await?;
        let mut claimed: Vec<Claim> = sql::convert(rows)?;
        // One UPDATE per distinct timeout (usually one or two per batch) rather than per row.
        let mut by_timeout: std::collections::BTreeMap<u32, Vec<&str>> = Default::default();
        for c in &claimed {
            by_timeout
                .entry(c.webhook.record.retry.timeout_seconds)
                .or_default()
                .push(c.delivery_id.as_str());
        }
        let mut counts = std::collections::HashMap::new();
        for (timeout, ids) in by_timeout {
            let lease = now + chrono::Duration::seconds(timeout.into()) + lease_margin;
            let mut qb = sqlx::QueryBuilder::<Sqlite>::new(
                "UPDATE deliveries SET claim_count = claim_count + 1, \
                 interruptions = interruptions + CASE WHEN status = 'in_flight' THEN 1 ELSE 0 END, \
                 status = 'in_flight', lease_expires_at = ",
            );
            qb.push_bind(lease)
                .push(", updated_at = ")
                .push_bind(now)
                .push(" WHERE id IN (");
            let mut list = qb.separated(", ");
            for id in ids {
                list.push_bind(id.to_owned());
            }
            qb.push(") RETURNING id, claim_count, interruptions");
            let rows: Vec<(String, i64, i64)> = qb.build_query_as().fetch_all(&mut *tx).await?;
            counts.extend(rows.into_iter().map(|(id, c, i)| (id, (c, i))));
        }
        for c in &mut claimed {
            (c.claim_count, c.interruptions) = counts[c.delivery_id.as_str()];
        }
        tx.commit().await?;
        Ok(claimed)
    }
}

super::shared::impl_store!(SqliteStore, Sqlite);
super::access::impl_access_store!(SqliteStore, Sqlite);
super::alerts::impl_alert_store!(SqliteStore, Sqlite);
super::retention::impl_retention_store!(SqliteStore, Sqlite);
super::replay::impl_replay_store!(SqliteStore, Sqlite);
