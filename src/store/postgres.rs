//! The PostgreSQL backend: how Herald scales past one machine. Many processes share one database;
//! claims use `FOR UPDATE SKIP LOCKED`, so workers never wait on each other's rows, and each claim
//! carries a lease so a crashed process's work is taken over when the lease runs out.

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
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::types::Json;
use sqlx::{PgPool, Postgres};
use std::str::FromStr;
use std::time::Duration;

/// The `LISTEN/NOTIFY` channel on which processes announce new work.
const WORK_CHANNEL: &str = "herald_work";

/// The channel on which a change to a webhook is announced: `<webhook id> <version reached>`.
const CHANGE_CHANNEL: &str = "herald_webhook_changed";

pub struct PgStore {
    /// Writes (and claims) on connections of their own, with generic plans (see `connect`);
    /// PostgreSQL handles concurrent writers itself.
    writer: PgPool,
    reader: PgPool,
    program: ProgramId,
    /// Signs this store's work notifications, so its own listener can tell them from other
    /// processes': this process's engine already knows about its own work (and, unlike a
    /// notification, knows whether it can claim it now).
    instance: String,
    /// Background tasks (the statistics keeper) stop once the store is gone.
    _alive: std::sync::Arc<()>,
}

/// Connections per process: writes and claims (ingest and results take one or two each at a
/// time), and reads (the console, the API and the dispatcher's look-ups).
const WRITER_CONNECTIONS: u32 = 8;
const READER_CONNECTIONS: u32 = 8;

/// How often the statistics keeper looks at the busy tables.
const STATISTICS_EVERY: Duration = Duration::from_secs(5);

/// Tables whose planner statistics must follow their growth: the claim and ingest queries join
/// them by key, and with stale statistics (a young table believed empty) PostgreSQL may pick an
/// index that scans every event of the program for each delivery claimed (measured: 450 ms per
/// claim of 256 after 20,000 events, deliveries falling minutes behind at 1,000 events/s).
const BUSY_TABLES: [&str; 3] = ["events", "deliveries", "attempts"];

impl PgStore {
    /// Connects, migrates (migrations take an advisory lock, so concurrent starts are safe) and
    /// seeds the catalog.
    const BACKEND: &'static str = "PostgreSQL";
    /// Ingest reads the subscriber-list version under a share lock: a webhook change (which
    /// updates that row) waits for ingests in progress, and ingests wait for a change in progress.
    const SHARE_LOCK: &'static str = " FOR SHARE";
    /// Ingest and results commit on connections of their own, side by side.
    const ONE_WRITER: bool = false;

    pub async fn connect(url: &str) -> Result<Self> {
        let options =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::BadUrl(format!("{e}")))?;
        // While the database is away a request waits this long for a connection, then answers
        // 503 (rather than holding the caller for half a minute).
        let pool = |connections| {
            PgPoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(Duration::from_secs(5))
        };
        // The writes' statements have one best plan whatever their values (multi-row inserts,
        // updates and claims by key or by a literal status), so PostgreSQL's fresh plan for
        // each execution is planning for nothing: the writer's connections use the cached
        // generic plan (measured: write transactions 10-15% shorter flat out). Reads keep a
        // plan per execution, as their best index can depend on the values (date ranges,
        // filters).
        let writer = pool(WRITER_CONNECTIONS)
            .connect_with(
                options
                    .clone()
                    .options([("plan_cache_mode", "force_generic_plan")]),
            )
            .await?;
        super::decode::migrator(super::decode::POSTGRES)
            .run(&writer)
            .await?;
        let reader = pool(READER_CONNECTIONS).connect_with(options).await?;
        let program = Self::seed(&writer).await?;
        let alive = std::sync::Arc::new(());
        Self::start_statistics_keeper(reader.clone(), std::sync::Arc::downgrade(&alive));
        Ok(Self {
            writer,
            reader,
            program,
            instance: uuid::Uuid::new_v4().to_string(),
            _alive: alive,
        })
    }

    /// Autovacuum re-analyzes a table once a tenth of it changed, but looks only once a minute:
    /// a young install taking a burst runs on statistics that say its tables are empty. Every
    /// few seconds this analyzes a busy table that changed by more than a fifth (at least 1,000
    /// rows) since its last analysis. `SKIP_LOCKED`: another process already analyzing it is
    /// enough.
    fn start_statistics_keeper(pool: PgPool, alive: std::sync::Weak<()>) {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(STATISTICS_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if alive.upgrade().is_none() {
                    break;
                }
                let stale: Vec<String> = match sqlx::query_scalar(
                    "SELECT relname::text FROM pg_stat_user_tables \
                     WHERE schemaname = current_schema() AND relname = ANY($1) \
                       AND n_mod_since_analyze > GREATEST(1000, n_live_tup / 5)",
                )
                .bind(&BUSY_TABLES[..])
                .fetch_all(&pool)
                .await
                {
                    Ok(names) => names,
                    Err(e) => {
                        tracing::debug!(error = %e, "could not read table statistics");
                        continue;
                    }
                };
                for table in stale {
                    // The name is one of BUSY_TABLES (matched above), never user input.
                    if let Some(known) = BUSY_TABLES.iter().find(|t| **t == table) {
                        let analyze = format!("ANALYZE (SKIP_LOCKED) {known}");
                        if let Err(e) = sqlx::query(&analyze).execute(&pool).await {
                            tracing::debug!(error = %e, table = known, "ANALYZE failed");
                        }
                    }
                }
            }
        });
    }

    /// Tells every Herald process listening that deliveries may be due. Inside a transaction the
    /// notification is sent on commit (and repeats within one are folded into one).
    async fn announce<'e, E: sqlx::PgExecutor<'e>>(&self, executor: E) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(WORK_CHANNEL)
            .bind(&self.instance)
            .execute(executor)
            .await?;
        Ok(())
    }

    /// Tells every Herald process listening that webhook `id` changed and reached `version`
    /// (sent on commit), so deliveries they claimed under an older version are not sent with it.
    async fn announce_change<'e, E: sqlx::PgExecutor<'e>>(
        executor: E,
        id: &WebhookId,
        version: i64,
    ) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANGE_CHANNEL)
            .bind(format!("{id} {version}"))
            .execute(executor)
            .await?;
        Ok(())
    }

    /// Listens on the work and change channels in a background task. After a lost connection
    /// the listener reconnects by itself and catches up on what it may have missed: it reads
    /// every webhook's version (changes made meanwhile reach this process's claims at once, not
    /// through their leases) and rings the dispatcher (work announced meanwhile).
    async fn listen(
        &self,
        wake: std::sync::Arc<tokio::sync::Notify>,
        changed: super::WebhookChanged,
    ) -> Result<()> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.writer).await?;
        listener.listen_all([WORK_CHANNEL, CHANGE_CHANNEL]).await?;
        let own = self.instance.clone();
        let reader = self.reader.clone();
        tokio::spawn(async move {
            loop {
                let caught_up = match listener.try_recv().await {
                    Ok(Some(n)) if n.channel() == CHANGE_CHANNEL => {
                        let parsed = n.payload().split_once(' ').and_then(|(id, v)| {
                            Some((WebhookId::parse(id)?, v.parse::<i64>().ok()?))
                        });
                        match parsed {
                            Some((id, version)) => changed(id, version),
                            None => tracing::warn!(
                                payload = n.payload(),
                                "unreadable webhook change notification"
                            ),
                        }
                        continue;
                    }
                    Ok(Some(n)) if n.payload() == own => continue,
                    Ok(Some(_)) => {
                        wake.notify_one();
                        continue;
                    }
                    // The connection closed and `try_recv` opened a new one, listening again.
                    Ok(None) => {
                        tracing::warn!("LISTEN connection lost; listening again");
                        catch_up(&reader, &changed).await
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "LISTEN connection lost; reconnecting");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        // Any statement on the listener connects it again (and listens again).
                        match sqlx::query("SELECT 1").execute(&mut listener).await {
                            Ok(_) => catch_up(&reader, &changed).await,
                            Err(_) => continue,
                        }
                    }
                };
                if let Err(e) = caught_up {
                    tracing::warn!(error = %e, "could not read webhook versions after reconnecting; changes made meanwhile reach claims through their leases");
                }
                wake.notify_one();
            }
        });
        Ok(())
    }

    async fn claim(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease_margin: chrono::Duration,
        exclude: &[WebhookId],
    ) -> Result<Vec<Claim>> {
        if !exclude.is_empty() {
            let any: bool = sql::any_claimable_query::<Postgres>(now, exclude)
                .build_query_scalar()
                .fetch_one(&self.reader)
                .await?;
            if !any {
                return Ok(Vec::new());
            }
        }
        let mut qb = sqlx::QueryBuilder::<Postgres>::new(
            "WITH due AS ( \
                SELECT d.id FROM deliveries d \
                WHERE d.status IN ('pending', 'in_flight') \
                  AND EXISTS (SELECT 1 FROM webhooks pw WHERE pw.id = d.webhook_id AND pw.enabled) \
                  AND d.next_attempt_at <= ",
        );
        qb.push_bind(now)
            .push(" AND (d.status = 'pending' OR d.lease_expires_at <= ")
            .push_bind(now)
            .push(")");
        sql::push_exclusion(&mut qb, exclude);
        qb.push(sql::ORDERED_CLAIMABLE);
        qb.push(" ORDER BY d.next_attempt_at, d.id LIMIT ")
            .push_bind(i64::from(limit))
            .push(
                " FOR UPDATE SKIP LOCKED) \
             UPDATE deliveries d SET status = 'in_flight', claim_count = d.claim_count + 1, \
                interruptions = d.interruptions + CASE WHEN d.status = 'in_flight' THEN 1 ELSE 0 END, \
                lease_expires_at = ",
            )
            .push_bind(now)
            .push(" + make_interval(secs => w.timeout_seconds + ")
            .push_bind(lease_margin.as_seconds_f64())
            .push("), updated_at = ")
            .push_bind(now)
            .push(format!(
                " FROM due, webhooks w, events e \
             WHERE d.id = due.id AND w.id = d.webhook_id \
               AND e.program_id = d.program_id AND e.id = d.event_id \
             RETURNING {}",
                sql::claimed_columns()
            ));
        let rows: Vec<ClaimedRow> = qb.build_query_as().fetch_all(&self.writer).await?;
        let mut claimed: Vec<Claim> = sql::convert(rows)?;
        // RETURNING has no order; hand work out oldest first.
        claimed.sort_by(|a, b| a.delivery_id.cmp(&b.delivery_id));
        Ok(claimed)
    }
}

/// Tells `changed` every webhook's current version: what a listener that lost its connection
/// does once it listens again, as the announcements made meanwhile are gone.
async fn catch_up(reader: &PgPool, changed: &super::WebhookChanged) -> Result<()> {
    let versions: Vec<(String, i64)> = sqlx::query_as("SELECT id, version FROM webhooks")
        .fetch_all(reader)
        .await?;
    for (id, version) in versions {
        if let Some(id) = WebhookId::parse(&id) {
            changed(id, version);
        }
    }
    Ok(())
}

super::shared::impl_store!(PgStore, Postgres);
super::access::impl_access_store!(PgStore, Postgres);
super::alerts::impl_alert_store!(PgStore, Postgres);
super::retention::impl_retention_store!(PgStore, Postgres);
super::replay::impl_replay_store!(PgStore, Postgres);
