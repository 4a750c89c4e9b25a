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
use sqlx::ConnectOptions as _;
use sqlx::{PgPool, Postgres};
use std::str::FromStr;
use std::time::Duration;

/// The `LISTEN/NOTIFY` channel on which processes announce new work.
const WORK_CHANNEL: &str = "herald_work";

/// The channel on which a change to a webhook is announced: `<webhook id> <version reached>`.
const CHANGE_CHANNEL: &str = "herald_webhook_changed";

/// Ingest's one statement. Every array holds one value per distinct event (`$3`-`$11`, `n` its
/// place) or per delivery (`$12`-`$16`, `n` its event's place), so the text is the same whatever
/// the batch and PostgreSQL plans it once per connection. Nothing is written unless every
/// program's subscriber-list version is still the one the batch was routed with (read under a
/// share lock: a webhook change waits for this ingest, or this ingest sees the change) and every
/// delivery names a webhook of its event's program. An event already stored is skipped with its
/// deliveries; the sizes roll-up counts only the events stored. `$17` is when held deliveries
/// are due (`sql::held_due`); with `$18` the other processes are told about new work (`$19`,
/// `$20`: channel and this store's signature) once it commits. `$21` is each event's member.
static INGEST: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH {} SELECT {INGEST_ANSWER} FROM (SELECT count(*) FROM announced) AS a",
        *INGEST_STEPS
    )
});

/// What `INGEST` answers (and `WRITE_TOGETHER` first): whether every program's list was current,
/// whether every webhook was the event's program's, and the places of the events stored.
const INGEST_ANSWER: &str = "(SELECT count(*) FROM routed) = cardinality($1::text[]), \
    EXISTS (SELECT 1 FROM ok), ARRAY(SELECT n FROM fresh)";

/// `INGEST`'s steps, its common table expressions.
static INGEST_STEPS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "routed AS ( \
        SELECT p.id FROM programs p \
        JOIN unnest($1::text[], $2::bigint[]) AS r (id, version) \
          ON p.id = r.id AND p.webhooks_version = r.version \
        FOR SHARE OF p), \
    v AS (SELECT * FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], \
            $7::timestamptz[], $8::text[], $9::timestamptz[], $10::bigint[], $11::bigint[], \
            $21::text[]) \
        AS v (n, program_id, id, event_type, event_timestamp, body, created_at, hour, bytes, \
            member)), \
    d AS (SELECT * FROM unnest($12::bigint[], $13::text[], $14::text[], $15::text[], \
            $16::timestamptz[]) \
        AS d (n, id, webhook_id, ordering_key, lease_expires_at)), \
    ok AS (SELECT true WHERE (SELECT count(*) FROM routed) = cardinality($1::text[]) \
        AND NOT EXISTS (SELECT 1 FROM d JOIN v USING (n) WHERE NOT EXISTS ( \
            SELECT 1 FROM webhooks w WHERE w.id = d.webhook_id AND w.program_id = v.program_id))), \
    ev AS (INSERT INTO events (program_id, id, event_type, event_timestamp, body, created_at, \
            member) \
        SELECT program_id, id, event_type, event_timestamp, body, created_at, member FROM v \
        WHERE EXISTS (SELECT 1 FROM ok) \
        ON CONFLICT DO NOTHING RETURNING program_id, id), \
    fresh AS (SELECT v.* FROM v JOIN ev ON ev.program_id = v.program_id AND ev.id = v.id), \
    delivered AS (INSERT INTO deliveries (id, program_id, webhook_id, event_id, trigger, status, \
            next_attempt_at, created_at, updated_at, ordering_key, claim_count, lease_expires_at) \
        SELECT d.id, f.program_id, d.webhook_id, f.id, 'event', \
            CASE WHEN d.lease_expires_at IS NULL THEN 'pending' ELSE 'in_flight' END, \
            CASE WHEN d.lease_expires_at IS NOT NULL \
                OR (SELECT w.enabled FROM webhooks w WHERE w.id = d.webhook_id) \
                THEN f.created_at ELSE $17 END, \
            f.created_at, f.created_at, d.ordering_key, \
            CASE WHEN d.lease_expires_at IS NULL THEN 0 ELSE 1 END, d.lease_expires_at \
        FROM d JOIN fresh f USING (n)), \
    sized AS (INSERT INTO event_hours (program_id, event_type, hour, events, bytes_sum, \
            bytes_sq_sum, bytes_min, bytes_max) \
        SELECT program_id, event_type, hour, count(*), sum(bytes)::bigint, \
            sum(bytes::float8 * bytes::float8), min(bytes), max(bytes) \
        FROM fresh GROUP BY program_id, event_type, hour {}), \
    announced AS (SELECT pg_notify($19, $20) WHERE $18 AND EXISTS (SELECT 1 FROM ev))",
        super::rollups::EVENT_SIZES_ON_CONFLICT
    )
});

/// A statement with its parameters bound, as the one-statement writes build them.
type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

/// A batch of events as `INGEST` takes it: the first occurrence of each event id is sent, with
/// its place among those sent (`n`); repeats are duplicates.
struct IngestPlan<'a> {
    batch: &'a [IngestItem],
    /// Each item's place among the distinct events sent, if it is the first of its id.
    places: Vec<Option<i64>>,
    /// Each program's subscriber-list version the batch was routed with.
    routed: Vec<(&'a str, i64)>,
    items: Vec<(i64, &'a IngestItem)>,
    deliveries: Vec<(i64, &'a DeliveryTarget)>,
}

impl<'a> IngestPlan<'a> {
    fn of(batch: &'a [IngestItem]) -> Result<Self> {
        let mut first = std::collections::HashMap::with_capacity(batch.len());
        let places: Vec<Option<i64>> = batch
            .iter()
            .map(|item| {
                let key = (item.event.program_id.as_str(), item.event.id.as_str());
                let next = first.len() as i64;
                match first.entry(key) {
                    std::collections::hash_map::Entry::Vacant(slot) => Some(*slot.insert(next)),
                    std::collections::hash_map::Entry::Occupied(_) => None,
                }
            })
            .collect();
        let routed = sql::routed_versions(batch)?.into_iter().collect();
        let items: Vec<(i64, &IngestItem)> = places
            .iter()
            .zip(batch)
            .filter_map(|(place, item)| Some(((*place)?, item)))
            .collect();
        let deliveries = items
            .iter()
            .flat_map(|(n, item)| item.targets.iter().map(move |t| (*n, t)))
            .collect();
        Ok(Self {
            batch,
            places,
            routed,
            items,
            deliveries,
        })
    }
}

/// One array parameter of the one-statement writes: a field of every row, in order.
fn column<A, T>(rows: impl IntoIterator<Item = A>, field: impl FnMut(A) -> T) -> Vec<T> {
    rows.into_iter().map(field).collect()
}

/// The SQLSTATE with which `RECORD` refuses to write (migration 0022's `herald_all_moved`).
const NOT_ALL_MOVED: &str = "HR001";

/// The recorder's one statement: every result's delivery moved on (`$1`-`$6`, as in
/// `sql::push_finish_deliveries`), the attempts written (`$7`-`$28`), the hourly roll-ups
/// (`$29`-`$40`) and their histograms (`$41`-`$46`) added to, and each webhook's counters
/// (`$47`-`$56`, as in `sql::push_bump_counters`). Every value is an array, so the text is the same
/// whatever the batch. It is written as if every delivery moved on; if one did not, the final
/// check fails the statement and nothing is written.
///
/// The status check is written so that no partial index's condition can be proven from it
/// (`status || ''`): the writers' connections keep one generic plan per statement, and with
/// `status = 'in_flight'` that plan, whenever the statistics said few deliveries were in flight
/// (a quiet hour's analysis, or a young table), read every delivery in flight through the lease
/// or due index for each batch of results, thousands of rows per statement during a burst
/// (`EXPLAIN` of the generic plan, 100,000 finished and 40,000 in flight the statistics did not
/// know about). Now the only path is the primary key, one look-up per result.
static RECORD: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH {} SELECT count(*) FROM moved HAVING {RECORD_CHECK}",
        record_steps("")
    )
});

/// `RECORD`'s final check: every result moved its delivery, or the statement fails (`HR001`).
const RECORD_CHECK: &str = "herald_all_moved(count(*) = cardinality($1::text[]))";

/// `RECORD`'s steps, its common table expressions; `guard` is added to the condition under
/// which a delivery moves on (with `WRITE_TOGETHER`, that the events' routing held).
fn record_steps(guard: &str) -> String {
    let sums = super::rollups::hour_sums();
    let counters = sql::bump_counters_from_row();
    format!(
        "results AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], \
                $4::timestamptz[], $5::text[]) AS v (v_id, v_claim, v_status, v_next, v_error)), \
            moved AS (UPDATE deliveries SET status = v.v_status, tries = tries + 1, \
                next_attempt_at = v.v_next, lease_expires_at = NULL, last_error = v.v_error, \
                updated_at = $6 \
                FROM results v WHERE deliveries.id = v.v_id AND deliveries.claim_count = v.v_claim \
                AND deliveries.status || '' = 'in_flight'{guard} RETURNING deliveries.id), \
            tried AS (INSERT INTO attempts (id, program_id, webhook_id, webhook_name, delivery_id, \
                    event_id, event_type, attempt, trigger, status, status_code, error, latency_ms, \
                    request_url, request_headers, request_body, response_headers, response_body, \
                    created_at, delivered_at, superseded, lag_ms, event_accepted_at) \
                SELECT id, program_id, webhook_id, webhook_name, delivery_id, event_id, event_type, \
                    attempt, trigger, status, status_code, error, latency_ms, request_url, \
                    request_headers::jsonb, request_body, response_headers::jsonb, response_body, \
                    created_at, delivered_at, superseded, lag_ms, event_accepted_at \
                FROM unnest($7::text[], $8::text[], $9::text[], $10::text[], $11::text[], \
                    $12::text[], $13::text[], $14::bigint[], $15::text[], $16::text[], $17::int[], \
                    $5::text[], $18::bigint[], $19::text[], $20::text[], $21::text[], $22::text[], \
                    $23::text[], $24::timestamptz[], $25::timestamptz[], $26::boolean[], \
                    $27::bigint[], $28::timestamptz[]) \
                AS a (id, program_id, webhook_id, webhook_name, delivery_id, event_id, event_type, \
                    attempt, trigger, status, status_code, error, latency_ms, request_url, \
                    request_headers, request_body, response_headers, response_body, created_at, \
                    delivered_at, superseded, lag_ms, event_accepted_at)), \
            hours AS (INSERT INTO webhook_hours (webhook_id, hour, program_id, attempts, successes, \
                    failures, dead_letters, retries, latency_sum_ms, latency_count, lag_sum_ms, \
                    lag_count) \
                SELECT * FROM unnest($29::text[], $30::bigint[], $31::text[], $32::bigint[], \
                    $33::bigint[], $34::bigint[], $35::bigint[], $36::bigint[], $37::bigint[], \
                    $38::bigint[], $39::bigint[], $40::bigint[]) \
                ON CONFLICT (webhook_id, hour) DO UPDATE SET {sums}), \
            buckets AS (INSERT INTO webhook_hour_buckets (webhook_id, hour, metric, bucket, \
                    program_id, n) \
                SELECT * FROM unnest($41::text[], $42::bigint[], $43::bigint[], $44::bigint[], \
                    $45::text[], $46::bigint[]) \
                ON CONFLICT (webhook_id, hour, metric, bucket) DO UPDATE SET \
                    n = webhook_hour_buckets.n + excluded.n), \
            counted AS (UPDATE webhooks SET {counters} \
                FROM unnest($47::text[], $48::bigint[], $49::bigint[], $50::timestamptz[], \
                    $51::timestamptz[], $52::timestamptz[], $53::boolean[], $54::boolean[], \
                    $55::bigint[], $56::timestamptz[]) \
                AS c (c_id, c_attempts, c_successes, c_success, c_failure, c_latest, c_failed, \
                    c_reset, c_trailing, c_since) \
                WHERE webhooks.id = c.c_id)"
    )
}

/// `INGEST`'s parameters.
const INGEST_PARAMETERS: usize = 21;

/// `INGEST` and `RECORD` as one statement, so one transaction and one round trip (see
/// `write_together`): `RECORD`'s parameters follow `INGEST`'s, and a delivery moves on only if
/// the events' routing held, so a stale subscriber list fails the whole statement (`RECORD`'s
/// check) rather than writing the results alone.
static WRITE_TOGETHER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let record = shift_parameters(
        &record_steps(" AND EXISTS (SELECT 1 FROM ok)"),
        INGEST_PARAMETERS,
    );
    let check = shift_parameters(RECORD_CHECK, INGEST_PARAMETERS);
    format!(
        "WITH {}, {record} SELECT {INGEST_ANSWER}, (SELECT {check} FROM moved) \
         FROM (SELECT count(*) FROM announced) AS a",
        *INGEST_STEPS
    )
});

/// `sql` with each parameter `$n` renamed `$(n + by)`.
fn shift_parameters(sql: &str, by: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 64);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            let n: usize = rest[..digits].parse().expect("digits");
            out.push_str(&(n + by).to_string());
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

pub struct PgStore {
    /// Writes (and claims) on connections of their own, with generic plans (see `connect`);
    /// PostgreSQL handles concurrent writers itself.
    write_pool: PgPool,
    reader: PgPool,
    program: ProgramId,
    /// Signs this store's work notifications, so its own listener can tell them from other
    /// processes': this process's engine already knows about its own work (and, unlike a
    /// notification, knows whether it can claim it now).
    instance: String,
    /// Rows this process wrote since the statistics keeper last analyzed each busy table.
    changes: std::sync::Arc<Changes>,
    /// Background tasks (the statistics keeper) stop once the store is gone.
    _alive: std::sync::Arc<()>,
}

/// What the statistics keeper learns from this process's own writes, at once: PostgreSQL's
/// activity counters (`pg_stat_user_tables`) reach other sessions only when a busy backend
/// flushes them (at most once a second, and up to ten seconds after it goes idle), so a young
/// install's first burst would run for seconds on plans made for empty tables.
#[derive(Default)]
struct Changes {
    /// Rows inserted or updated per table, in `BUSY_TABLES` order.
    rows: [std::sync::atomic::AtomicU64; 3],
    /// Rung each time a table's count passes another `WAKE_EVERY` rows.
    wake: tokio::sync::Notify,
}

/// The keeper looks again after this many rows written to one busy table.
const WAKE_EVERY: u64 = 1000;

/// The keeper's looks, woken by writes, are at least this far apart.
const WAKE_GAP: Duration = Duration::from_millis(500);

impl Changes {
    /// Counts `n` rows written to `BUSY_TABLES[table]`, waking the keeper when they pass
    /// another `WAKE_EVERY`.
    fn wrote(&self, table: usize, n: usize) {
        let n = n as u64;
        if n == 0 {
            return;
        }
        let before = self.rows[table].fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        if before / WAKE_EVERY != (before + n) / WAKE_EVERY {
            self.wake.notify_one();
        }
    }

    /// Rows written to `BUSY_TABLES[table]` since its last analysis (by this process).
    fn since_analysis(&self, table: usize) -> u64 {
        self.rows[table].load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `n` of the rows counted are covered by an analysis that just finished.
    fn analyzed(&self, table: usize, n: u64) {
        // Rows counted meanwhile stay counted.
        let _ = self.rows[table].fetch_update(
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
            |now| Some(now.saturating_sub(n)),
        );
    }
}

/// Indexes into `BUSY_TABLES`.
const EVENTS: usize = 0;
const DELIVERIES: usize = 1;
const ATTEMPTS: usize = 2;

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
    /// PostgreSQL keeps its files on its own server.
    fn local_file(&self) -> Option<std::path::PathBuf> {
        None
    }

    /// PostgreSQL keeps its files on its own server: nothing here can lose them.
    fn file_trouble(&self) -> Option<String> {
        None
    }

    /// Connects, migrates (migrations take an advisory lock, so concurrent starts are safe) and
    /// seeds the catalog.
    const BACKEND: &'static str = "PostgreSQL";
    /// Ingest reads the subscriber-list version under a share lock: a webhook change (which
    /// updates that row) waits for ingests in progress, and ingests wait for a change in progress.
    const SHARE_LOCK: &'static str = " FOR SHARE";
    /// Statements with parameters go one per message (see `sql::Statements`).
    const STATEMENTS_TOGETHER: bool = false;
    /// How retention matches a batch of ids (see `retention::sql`).
    const IN_SET: (&'static str, &'static str) = super::retention::sql::IN_SET_POSTGRES;

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
        // The statistics keeper's analyses take seconds on tables of millions of rows, which is
        // no news: on a connection of its own (opened when needed, closed when idle) they are
        // not logged as slow statements (sqlx warns after a second).
        let keeper = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .idle_timeout(Duration::from_secs(60))
            .connect_lazy_with(
                options
                    .clone()
                    .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1)),
            );
        let reader = pool(READER_CONNECTIONS).connect_with(options).await?;
        let program = Self::seed(&writer).await?;
        let alive = std::sync::Arc::new(());
        let changes = std::sync::Arc::new(Changes::default());
        Self::start_statistics_keeper(
            keeper,
            changes.clone(),
            std::sync::Arc::downgrade(&alive),
            STATISTICS_EVERY,
        );
        Ok(Self {
            write_pool: writer,
            reader,
            program,
            instance: uuid::Uuid::new_v4().to_string(),
            changes,
            _alive: alive,
        })
    }

    /// Autovacuum re-analyzes a table once a tenth of it changed, but looks only once a minute:
    /// a young install taking a burst runs on statistics that say its tables are empty. Every
    /// few seconds this analyzes a busy table that changed by more than a fifth (at least 1,000
    /// rows) since its last analysis, as PostgreSQL counted the changes (`n_mod_since_analyze`,
    /// from every process, flushed late). And whenever this process has written another 1,000
    /// rows to one of them (`Changes`) it looks at once, analyzing a table this process alone
    /// wrote as many rows to as it held at its last analysis (at least 1,000): a young table is
    /// analyzed as it doubles, not seconds after its first burst. (Analyzing at every fifth from
    /// this process's counts too cost about 8% of the deliveries flat out: each analysis makes
    /// every connection plan its statements on that table again.) A table another session
    /// holds (another process analyzing it, autovacuum) is left for the next look (`analyze`).
    fn start_statistics_keeper(
        pool: PgPool,
        changes: std::sync::Arc<Changes>,
        alive: std::sync::Weak<()>,
        every: Duration,
    ) {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(every);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    _ = changes.wake.notified() => {}
                }
                if alive.upgrade().is_none() {
                    break;
                }
                let written: Vec<i64> = (0..BUSY_TABLES.len())
                    .map(|t| i64::try_from(changes.since_analysis(t)).unwrap_or(i64::MAX))
                    .collect();
                let stale: Vec<String> = match sqlx::query_scalar(
                    "SELECT s.relname::text FROM pg_stat_user_tables s \
                     JOIN unnest($1::text[], $2::bigint[]) AS w (relname, written) \
                       ON w.relname = s.relname::text \
                     WHERE s.schemaname = current_schema() \
                       AND (s.n_mod_since_analyze > GREATEST(1000, s.n_live_tup / 5) \
                         OR w.written > GREATEST(1000, s.n_live_tup))",
                )
                .bind(&BUSY_TABLES[..])
                .bind(&written)
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
                    if let Some(t) = BUSY_TABLES.iter().position(|t| *t == table) {
                        match Self::analyze(&pool, t).await {
                            Ok(true) => changes.analyzed(t, written[t] as u64),
                            Ok(false) => {}
                            Err(e) => {
                                tracing::debug!(error = %e, table = BUSY_TABLES[t], "ANALYZE failed")
                            }
                        }
                    }
                }
                // Looks woken by writes are spaced out; a tick is never missed for it.
                tokio::time::sleep(WAKE_GAP).await;
            }
        });
    }

    /// Analyzes `BUSY_TABLES[table]` unless another session holds a lock that conflicts (another
    /// process analyzing it, or autovacuum at work on it, which can take minutes on a large
    /// table): `false` then, and its changes stay counted for the next look. Not `ANALYZE
    /// (SKIP_LOCKED)`: that reports the skip as a WARNING, which the driver logs, every few
    /// seconds while autovacuum works, and cannot be told apart from an analysis.
    async fn analyze(pool: &PgPool, table: usize) -> Result<bool> {
        let mut tx = pool.begin().await?;
        sqlx::query("SET LOCAL lock_timeout = '20ms'")
            .execute(&mut *tx)
            .await?;
        // The name is one of BUSY_TABLES, never user input.
        match sqlx::query(&format!("ANALYZE {}", BUSY_TABLES[table]))
            .execute(&mut *tx)
            .await
        {
            Ok(_) => {
                tx.commit().await?;
                Ok(true)
            }
            // lock_not_available: the transaction is rolled back as `tx` drops.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55P03") => Ok(false),
            Err(e) => Err(e.into()),
        }
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
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.write_pool).await?;
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

    /// Ingest in one statement (see `INGEST`): one round trip where a transaction of separate
    /// statements takes six, each a wake-up of this process and of PostgreSQL's. The first
    /// occurrence of a new event id is the one stored; repeats are duplicates (`None`).
    async fn ingest(&self, batch: &[IngestItem]) -> Result<Vec<Option<usize>>> {
        let mut conn = self.writer()?.acquire().await?;
        self.ingest_on(&mut conn, batch).await
    }

    /// `ingest` on `conn`, alone or inside a transaction the caller opened (see
    /// `Store::ingest_routed`).
    async fn ingest_on(
        &self,
        conn: &mut sqlx::PgConnection,
        batch: &[IngestItem],
    ) -> Result<Vec<Option<usize>>> {
        let plan = IngestPlan::of(batch)?;
        let answer = self
            .bind_ingest(sqlx::query(&INGEST), &plan)
            .fetch_one(&mut *conn)
            .await?;
        self.ingested(&plan, &answer)
    }

    /// `INGEST`'s parameters (`$1`-`$21`) bound to `query`, from `plan`.
    fn bind_ingest<'q>(&self, query: PgQuery<'q>, plan: &IngestPlan<'_>) -> PgQuery<'q> {
        let IngestPlan {
            routed,
            items,
            deliveries,
            ..
        } = plan;
        let events = items.iter().map(|(_, item)| &item.event);
        let announce = deliveries.iter().any(|(_, t)| t.lease.is_none() && !t.held);
        query
            .bind(column(routed.iter(), |(p, _)| p.to_string()))
            .bind(column(routed.iter(), |(_, v)| *v))
            .bind(column(items.iter(), |(n, _)| *n))
            .bind(column(events.clone(), |e| e.program_id.to_string()))
            .bind(column(events.clone(), |e| e.id.to_string()))
            .bind(column(events.clone(), |e| e.event_type.to_string()))
            .bind(column(events.clone(), |e| e.event_timestamp))
            .bind(column(events.clone(), |e| e.body.clone()))
            .bind(column(events.clone(), |e| e.created_at))
            .bind(column(events.clone(), |e| {
                crate::domain::insights::hour_of(e.created_at)
            }))
            .bind(column(events, |e| e.body.len() as i64))
            .bind(column(deliveries.iter(), |(n, _)| *n))
            .bind(column(deliveries.iter(), |(_, t)| {
                t.lease
                    .as_ref()
                    .map_or_else(DeliveryId::generate, |l| l.delivery.clone())
                    .to_string()
            }))
            .bind(column(deliveries.iter(), |(_, t)| t.webhook.to_string()))
            .bind(column(deliveries.iter(), |(_, t)| t.ordering_key.clone()))
            .bind(column(deliveries.iter(), |(_, t)| {
                t.lease.as_ref().map(|l| l.until)
            }))
            .bind(sql::held_due())
            .bind(announce)
            .bind(WORK_CHANNEL)
            .bind(self.instance.clone())
            .bind(column(items.iter(), |(_, item)| item.event.member.clone()))
    }

    /// What ingest returns, from `INGEST`'s answer (its first three columns).
    fn ingested(
        &self,
        plan: &IngestPlan<'_>,
        answer: &sqlx::postgres::PgRow,
    ) -> Result<Vec<Option<usize>>> {
        use sqlx::Row;
        let current: bool = answer.try_get(0)?;
        let known: bool = answer.try_get(1)?;
        let stored: Vec<i64> = answer.try_get(2)?;
        // A delivery to a webhook that is not the event's program's is routing that no longer
        // holds, like a changed subscriber list: nothing was written either way.
        if !current || !known {
            return Err(StoreError::StaleRouting);
        }
        let stored: std::collections::HashSet<i64> = stored.into_iter().collect();
        self.changes.wrote(EVENTS, stored.len());
        self.changes.wrote(
            DELIVERIES,
            plan.deliveries
                .iter()
                .filter(|(n, _)| stored.contains(n))
                .count(),
        );
        Ok(plan
            .places
            .iter()
            .zip(plan.batch)
            .map(|(place, item)| {
                place
                    .filter(|n| stored.contains(n))
                    .map(|_| item.targets.len())
            })
            .collect())
    }

    /// Records results in one statement (see `RECORD`), written as if every delivery moved on,
    /// as nearly all do; when one did not (its claim was superseded, or its webhook deleted
    /// meanwhile) the statement writes nothing and they are recorded by the transaction that
    /// sorts them out (`write_in`).
    async fn record(&self, results: &[Outcome], now: DateTime<Utc>) -> Result<Moved> {
        let at_once = async {
            let mut conn = self.writer()?.acquire().await?;
            self.record_at_once(&mut conn, results, now).await
        };
        let recorded = match at_once.await {
            Err(StoreError::Database(sqlx::Error::Database(e)))
                if e.code().as_deref() == Some(NOT_ALL_MOVED) =>
            {
                self.record_in_transaction(results, now).await
            }
            other => other,
        };
        if recorded.is_ok() {
            self.changes.wrote(ATTEMPTS, results.len());
            self.changes.wrote(DELIVERIES, results.len());
        }
        recorded
    }

    /// A batch of events and one of results in one transaction: one statement
    /// (`WRITE_TOGETHER`), one commit where they took two. If either part cannot be written (a
    /// stale subscriber list, a result whose delivery had moved on), nothing is, and the caller
    /// writes them apart (see `Store::ingest_and_record`). Either side empty goes as its own
    /// statement.
    async fn write_together(
        &self,
        batch: &[IngestItem],
        results: &[Outcome],
        now: DateTime<Utc>,
    ) -> Result<(Vec<Option<usize>>, Moved)> {
        if batch.is_empty() {
            let moved = self.record(results, now).await?;
            return Ok((Vec::new(), moved));
        }
        if results.is_empty() {
            return Ok((self.ingest(batch).await?, Moved::every(0)));
        }
        let plan = IngestPlan::of(batch)?;
        let query = self.bind_ingest(sqlx::query(&WRITE_TOGETHER), &plan);
        let answer = Self::bind_record(query, results, now)
            .fetch_one(self.writer()?)
            .await?;
        let stored = self.ingested(&plan, &answer)?;
        self.changes.wrote(ATTEMPTS, results.len());
        self.changes.wrote(DELIVERIES, results.len());
        Ok((stored, Moved::every(results.len())))
    }

    async fn record_at_once(
        &self,
        conn: &mut sqlx::PgConnection,
        results: &[Outcome],
        now: DateTime<Utc>,
    ) -> Result<Moved> {
        // The statement fails with NOT_ALL_MOVED unless every result moved its delivery, so its
        // one row (that count) tells nothing more.
        Self::bind_record(sqlx::query(&RECORD), results, now)
            .execute(conn)
            .await?;
        Ok(Moved::every(results.len()))
    }

    /// `RECORD`'s parameters (`$1`-`$56`, after any bound before them) bound to `query`.
    fn bind_record<'q>(query: PgQuery<'q>, results: &[Outcome], now: DateTime<Utc>) -> PgQuery<'q> {
        use super::rollups;
        let attempts: Vec<&NewAttempt> = results.iter().map(|r| &r.attempt).collect();
        let dead: std::collections::HashSet<String> = results
            .iter()
            .filter(|r| r.next == crate::delivery::queue::NextStep::Failed)
            .map(|r| r.attempt.id.to_string())
            .collect();
        let hours = rollups::hour_adds(&attempts, &dead);
        let buckets = rollups::bucket_adds(&hours);
        let mut tallies: Vec<_> = sql::tally(attempts.iter().copied()).into_iter().collect();
        // Rows are locked in key order, as every writer of these rows takes them.
        tallies.sort_by(|(a, _), (b, _)| a.as_str().cmp(b.as_str()));
        let next: Vec<_> = results
            .iter()
            .map(|r| sql::next_state(r.next, now))
            .collect();
        let text = |f: fn(&NewAttempt) -> String| column(attempts.iter(), |a| f(a));
        let headers = |h: &[(String, String)]| {
            serde_json::to_string(&sql::StorableHeaders(h)).expect("headers serialise")
        };
        let hour = |f: fn(&rollups::HourRow<'_>) -> i64| column(hours.iter(), |r| f(&r));
        query
            .bind(column(results.iter(), |r| r.delivery_id.to_string()))
            .bind(column(results.iter(), |r| r.claim_count))
            .bind(column(next.iter(), |(status, _)| status.to_string()))
            .bind(column(next.iter(), |(_, at)| *at))
            .bind(column(attempts.iter(), |a| {
                a.error.as_deref().map(sql::storable)
            }))
            .bind(now)
            .bind(text(|a| a.id.to_string()))
            .bind(text(|a| a.program_id.to_string()))
            .bind(text(|a| a.webhook_id.to_string()))
            .bind(text(|a| a.webhook_name.clone()))
            .bind(column(attempts.iter(), |a| {
                a.delivery_id.as_ref().map(ToString::to_string)
            }))
            .bind(text(|a| a.event_id.to_string()))
            .bind(text(|a| a.event_type.to_string()))
            .bind(column(attempts.iter(), |a| a.attempt))
            .bind(text(|a| a.trigger.as_str().to_owned()))
            .bind(text(|a| a.status.as_str().to_owned()))
            .bind(column(attempts.iter(), |a| a.status_code))
            .bind(column(attempts.iter(), |a| a.latency_ms))
            .bind(text(|a| sql::storable(&a.request_url)))
            .bind(column(attempts.iter(), |a| headers(&a.request_headers)))
            .bind(text(|a| {
                a.request_body
                    .as_deref()
                    .map_or_else(String::new, sql::storable)
            }))
            .bind(column(attempts.iter(), |a| {
                a.response_headers.as_deref().map(headers)
            }))
            .bind(column(attempts.iter(), |a| {
                a.response_body.as_deref().map(sql::storable)
            }))
            .bind(column(attempts.iter(), |a| a.created_at))
            .bind(column(attempts.iter(), |a| a.delivered_at))
            .bind(column(attempts.iter(), |a| a.superseded))
            .bind(column(attempts.iter(), |a| a.lag_ms))
            .bind(column(attempts.iter(), |a| a.event_accepted_at))
            .bind(column(hours.keys(), |(webhook, _)| webhook.clone()))
            .bind(column(hours.keys(), |(_, hour)| *hour))
            .bind(column(hours.values(), |(program, _)| program.clone()))
            .bind(hour(|(_, (_, r))| r.attempts))
            .bind(hour(|(_, (_, r))| r.successes))
            .bind(hour(|(_, (_, r))| r.failures))
            .bind(hour(|(_, (_, r))| r.dead_letters))
            .bind(hour(|(_, (_, r))| r.retries))
            .bind(hour(|(_, (_, r))| r.latency_sum_ms))
            .bind(hour(|(_, (_, r))| r.latency_count))
            .bind(hour(|(_, (_, r))| r.lag_sum_ms))
            .bind(hour(|(_, (_, r))| r.lag_count))
            .bind(column(buckets.iter(), |b| b.0.clone()))
            .bind(column(buckets.iter(), |b| b.1))
            .bind(column(buckets.iter(), |b| b.2))
            .bind(column(buckets.iter(), |b| b.3))
            .bind(column(buckets.iter(), |b| b.4.clone()))
            .bind(column(buckets.iter(), |b| b.5))
            .bind(column(tallies.iter(), |(w, _)| w.to_string()))
            .bind(column(tallies.iter(), |(_, t)| t.attempts))
            .bind(column(tallies.iter(), |(_, t)| t.successes))
            .bind(column(tallies.iter(), |(_, t)| t.last_success))
            .bind(column(tallies.iter(), |(_, t)| t.last_failure))
            .bind(column(tallies.iter(), |(_, t)| t.latest.map(|(at, _)| at)))
            .bind(column(tallies.iter(), |(_, t)| {
                t.latest.is_some_and(|(_, failed)| failed)
            }))
            .bind(column(tallies.iter(), |(_, t)| t.last_success.is_some()))
            .bind(column(tallies.iter(), |(_, t)| t.trailing_failures))
            .bind(column(tallies.iter(), |(_, t)| t.trailing_since))
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
        let rows: Vec<ClaimedRow> = claim_query(now, limit, lease_margin, exclude)
            .build_query_as()
            .fetch_all(self.writer()?)
            .await?;
        self.changes.wrote(DELIVERIES, rows.len());
        let mut claimed: Vec<Claim> = sql::convert(rows)?;
        // RETURNING has no order; hand work out oldest first.
        claimed.sort_by(|a, b| a.delivery_id.cmp(&b.delivery_id));
        Ok(claimed)
    }
}

/// Claims the oldest `limit` deliveries due at `now` (leased for their webhook's timeout and
/// `lease_margin`) and returns what sending them needs. The due ones and the expired claims are
/// read apart, each in its own index (the due and the lease index), then merged; rows another
/// process holds locked are stepped over.
fn claim_query<'a>(
    now: DateTime<Utc>,
    limit: u32,
    lease_margin: chrono::Duration,
    exclude: &[WebhookId],
) -> sqlx::QueryBuilder<'a, Postgres> {
    const PART: &str = "SELECT d.id, d.next_attempt_at FROM deliveries d \
        WHERE EXISTS (SELECT 1 FROM webhooks pw WHERE pw.id = d.webhook_id AND pw.enabled) AND ";
    let mut qb = sqlx::QueryBuilder::<Postgres>::new("WITH due AS (");
    qb.push(PART);
    sql::push_claimable(&mut qb, sql::Claimable::Due, now, limit, exclude);
    qb.push(" FOR UPDATE OF d SKIP LOCKED), expired AS (")
        .push(PART);
    sql::push_claimable(&mut qb, sql::Claimable::Expired, now, limit, exclude);
    qb.push(
        " FOR UPDATE OF d SKIP LOCKED), chosen AS (SELECT id FROM (SELECT * FROM due \
         UNION ALL SELECT * FROM expired) c ORDER BY next_attempt_at, id LIMIT ",
    )
    .push_bind(i64::from(limit))
    .push(
        ") UPDATE deliveries d SET status = 'in_flight', claim_count = d.claim_count + 1, \
            interruptions = d.interruptions + CASE WHEN d.status = 'in_flight' THEN 1 ELSE 0 END, \
            lease_expires_at = ",
    )
    .push_bind(now)
    .push(" + make_interval(secs => w.timeout_seconds + ")
    .push_bind(lease_margin.as_seconds_f64())
    .push("), updated_at = ")
    .push_bind(now)
    .push(format!(
        " FROM chosen, webhooks w, events e \
         WHERE d.id = chosen.id AND w.id = d.webhook_id \
           AND e.program_id = d.program_id AND e.id = d.event_id \
         RETURNING {}",
        sql::claimed_columns()
    ));
    qb
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

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    /// A burst this process wrote is analyzed once it passes 1,000 rows, without waiting for the
    /// keeper's next look (here an hour away) or for PostgreSQL's activity counters, which
    /// the writing sessions flush late.
    #[tokio::test]
    async fn the_keeper_analyzes_a_young_burst_at_once() {
        let Some((server, name, pool)) = fresh_database("the keeper test").await else {
            return;
        };
        let reltuples = |pool: PgPool| async move {
            sqlx::query_scalar::<_, f32>("SELECT reltuples FROM pg_class WHERE relname = 'events'")
                .fetch_one(&pool)
                .await
                .unwrap()
        };
        assert!(reltuples(pool.clone()).await < 0.0, "never analyzed yet");

        let changes = std::sync::Arc::new(Changes::default());
        let alive = std::sync::Arc::new(());
        PgStore::start_statistics_keeper(
            pool.clone(),
            changes.clone(),
            std::sync::Arc::downgrade(&alive),
            Duration::from_secs(3600),
        );
        let write = |n: i64| insert_events(&pool, n);
        // 999 rows are not yet worth a look (nor an analysis, had the keeper looked).
        write(999).await;
        changes.wrote(EVENTS, 999);
        assert!(changes.wake.notified().now_or_never().is_none());
        assert!(reltuples(pool.clone()).await < 0.0);
        write(501).await;
        changes.wrote(EVENTS, 501);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while reltuples(pool.clone()).await < 1500.0 {
            assert!(
                std::time::Instant::now() < deadline,
                "events were not analyzed after 1,500 rows"
            );
            tokio::task::yield_now().await;
        }
        // The rows the analysis covered are no longer counted.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while changes.since_analysis(EVENTS) != 0 {
            assert!(std::time::Instant::now() < deadline, "count not reset");
            tokio::task::yield_now().await;
        }
        drop(alive);
        drop_database(server, &name, pool).await;
    }

    #[tokio::test]
    async fn analysis_gives_way_to_a_session_holding_the_table_and_says_so() {
        let Some((server, name, pool)) = fresh_database("the analysis test").await else {
            return;
        };
        insert_events(&pool, 300).await;
        let reltuples = || async {
            sqlx::query_scalar::<_, f32>("SELECT reltuples FROM pg_class WHERE relname = 'events'")
                .fetch_one(&pool)
                .await
                .unwrap()
        };
        // What autovacuum or another process's analysis holds.
        let mut holder = pool.begin().await.unwrap();
        sqlx::query("LOCK TABLE events IN SHARE UPDATE EXCLUSIVE MODE")
            .execute(&mut *holder)
            .await
            .unwrap();
        assert!(!PgStore::analyze(&pool, EVENTS).await.unwrap(), "skipped");
        assert!(reltuples().await < 0.0, "not analyzed while held");
        holder.rollback().await.unwrap();
        assert!(PgStore::analyze(&pool, EVENTS).await.unwrap(), "analyzed");
        assert_eq!(reltuples().await, 300.0);
        drop_database(server, &name, pool).await;
    }

    /// `n` new events in program `prg`, straight into the table.
    /// ANALYZE samples only the columns a query may filter, join or sort on: the payloads
    /// (headers, bodies, error texts) get no statistics (migration 0029), the keys do.
    #[tokio::test]
    async fn analyze_leaves_the_payload_columns_alone() {
        let Some((server, name, pool)) = fresh_database("the payload statistics test").await else {
            return;
        };
        insert_events(&pool, 200).await;
        sqlx::query("ANALYZE events").execute(&pool).await.unwrap();
        let sampled: Vec<String> = sqlx::query_scalar(
            "SELECT attname::text FROM pg_stats WHERE tablename = 'events' ORDER BY attname",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert!(sampled.iter().any(|c| c == "id"), "{sampled:?}");
        assert!(!sampled.iter().any(|c| c == "body"), "{sampled:?}");
        let unsampled: Vec<(String, String)> = sqlx::query_as(
            "SELECT c.relname::text, a.attname::text FROM pg_attribute a \
             JOIN pg_class c ON c.oid = a.attrelid \
             WHERE c.relname IN ('attempts', 'events', 'deliveries') AND a.attnum > 0 \
             AND a.attstattarget = 0 \
             ORDER BY 1, 2",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        let named = |t: &str, c: &str| (t.to_owned(), c.to_owned());
        assert_eq!(
            unsampled,
            vec![
                named("attempts", "error"),
                named("attempts", "request_body"),
                named("attempts", "request_headers"),
                named("attempts", "request_url"),
                named("attempts", "response_body"),
                named("attempts", "response_headers"),
                named("deliveries", "last_error"),
                named("events", "body"),
            ]
        );
        drop_database(server, &name, pool).await;
    }

    async fn insert_events(pool: &PgPool, n: i64) {
        sqlx::query(
            "INSERT INTO events (program_id, id, event_type, event_timestamp, body, created_at) \
             SELECT 'prg', gen_random_uuid()::text, 'member.created', now(), '{}', now() \
             FROM generate_series(1, $1)",
        )
        .bind(n)
        .execute(pool)
        .await
        .unwrap();
    }

    /// A migrated database of its own on the test server: (the server, its name, the database).
    async fn fresh_database(test: &str) -> Option<(PgPool, String, PgPool)> {
        let Some(admin) = std::env::var("HERALD_TEST_POSTGRES_URL")
            .ok()
            .filter(|s| !s.is_empty())
        else {
            eprintln!("SKIPPED {test}: HERALD_TEST_POSTGRES_URL is not set");
            return None;
        };
        let name = format!("herald_t_{}", uuid::Uuid::new_v4().simple());
        let server = PgPool::connect(&admin).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&server)
            .await
            .unwrap();
        let (base, _) = admin.rsplit_once('/').expect("a database in the URL");
        let pool = PgPool::connect(&format!("{base}/{name}")).await.unwrap();
        super::super::decode::migrator(super::super::decode::POSTGRES)
            .run(&pool)
            .await
            .unwrap();
        Some((server, name, pool))
    }

    async fn drop_database(server: PgPool, name: &str, pool: PgPool) {
        pool.close().await;
        sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&server)
            .await
            .unwrap();
    }

    /// Runs `fill` (an `INSERT … SELECT`) and analyzes `table`, so plans see its statistics.
    async fn fill_and_analyze(pool: &PgPool, fill: &str, table: &str) {
        sqlx::query(fill).execute(pool).await.unwrap();
        sqlx::query(&format!("ANALYZE {table}"))
            .execute(pool)
            .await
            .unwrap();
    }

    /// A connection that plans prepared statements for any values, as the writer's do.
    async fn generic_planner(pool: &PgPool) -> sqlx::pool::PoolConnection<Postgres> {
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query("SET plan_cache_mode = force_generic_plan")
            .execute(&mut *conn)
            .await
            .unwrap();
        conn
    }

    /// What `EXPLAIN EXECUTE` shows for `statement` prepared on `conn` as `name` and run with
    /// `args` (a parenthesised list of SQL values).
    async fn generic_plan(
        conn: &mut sqlx::PgConnection,
        name: &str,
        statement: &str,
        args: &str,
    ) -> String {
        sqlx::query(&format!("PREPARE {name} AS {statement}"))
            .execute(&mut *conn)
            .await
            .unwrap();
        let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN EXECUTE {name}{args}"))
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        plan.join("\n")
    }

    /// A claim's generic plan (the one the writer's connections keep) reads the due deliveries
    /// in the due index and the expired claims in the lease index: neither part walks the
    /// deliveries table, whatever the values.
    #[tokio::test]
    async fn a_claim_reads_the_due_and_the_expired_in_their_own_indexes() {
        let Some((server, name, pool)) = fresh_database("the claim's plan test").await else {
            return;
        };
        fill_and_analyze(
            &pool,
            "INSERT INTO deliveries (id, program_id, webhook_id, event_id, trigger, status, \
                claim_count, next_attempt_at, lease_expires_at, created_at, updated_at) \
             SELECT gen_random_uuid()::text, 'prg', 'wh', gen_random_uuid()::text, 'event', \
                CASE n % 10 WHEN 0 THEN 'pending' WHEN 1 THEN 'in_flight' ELSE 'succeeded' END, \
                1, now(), CASE WHEN n % 10 = 1 THEN now() END, now(), now() \
             FROM generate_series(1, 20000) AS n",
            "deliveries",
        )
        .await;
        let mut conn = generic_planner(&pool).await;
        let claim = super::claim_query(Utc::now(), 100, chrono::Duration::seconds(5), &[]);
        // Typed as sqlx binds them (PREPARE alone would guess the lease's time an interval).
        sqlx::query(&format!(
            "PREPARE claim (timestamptz, bigint, timestamptz, timestamptz, bigint, bigint, \
             timestamptz, float8, timestamptz) AS {}",
            claim.sql()
        ))
        .execute(&mut *conn)
        .await
        .unwrap();
        let plan: Vec<String> = sqlx::query_scalar(
            "EXPLAIN EXECUTE claim(now(), 100, now(), now(), 100, 100, now(), 5, now())",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        let plan = plan.join("\n");
        for index in ["deliveries_due_order", "deliveries_lease"] {
            assert!(plan.contains(index), "{index}: {plan}");
        }
        assert!(!plan.contains("Seq Scan on deliveries"), "{plan}");
        drop(conn);
        drop_database(server, &name, pool).await;
    }

    /// The recorder's cached generic plan finds each result's delivery by its key even when the
    /// statistics say none is in flight (analyzed in a quiet moment) and thousands are: with
    /// `status = 'in_flight'` it read every delivery in flight through a partial index instead.
    #[tokio::test]
    async fn results_find_their_deliveries_by_key_whatever_the_statistics_say() {
        let Some((server, name, pool)) = fresh_database("the recorder's plan test").await else {
            return;
        };
        let deliveries = |status: &'static str, n: i64| {
            let pool = pool.clone();
            async move {
                sqlx::query(
                    "INSERT INTO deliveries (id, program_id, webhook_id, event_id, trigger, status, \
                        claim_count, next_attempt_at, lease_expires_at, created_at, updated_at) \
                     SELECT gen_random_uuid()::text, 'prg', 'wh', gen_random_uuid()::text, 'event', \
                        $1, 1, now(), CASE WHEN $1 = 'in_flight' THEN now() END, now(), now() \
                     FROM generate_series(1, $2)",
                )
                .bind(status)
                .bind(n)
                .execute(&pool)
                .await
                .unwrap();
            }
        };
        deliveries("succeeded", 5000).await;
        sqlx::query("ANALYZE deliveries")
            .execute(&pool)
            .await
            .unwrap();
        deliveries("in_flight", 5000).await;
        let mut conn = generic_planner(&pool).await;
        let nulls = vec!["NULL"; 56].join(", ");
        let plan = generic_plan(&mut conn, "record", &RECORD, &format!("({nulls})")).await;
        assert!(
            plan.contains("using deliveries_pkey on deliveries"),
            "{plan}"
        );
        for index in [
            "deliveries_lease",
            "deliveries_due_order",
            "deliveries_ordering",
        ] {
            assert!(!plan.contains(index), "{index}: {plan}");
        }
        assert!(!plan.contains("Seq Scan on deliveries"), "{plan}");
        drop(conn);
        drop_database(server, &name, pool).await;
    }

    /// Retention's batches find their rows by key in the plan made for any values (the one a
    /// connection keeps after a few runs), not by reading the table: over 10,000,000 attempts
    /// the old `IN (subquery)` form read all of them for each batch of 500.
    #[tokio::test]
    async fn retention_deletes_by_key_whatever_the_plan() {
        use crate::store::retention::{sql, Prunable};
        let Some((server, name, pool)) = fresh_database("the retention plan test").await else {
            return;
        };
        fill_and_analyze(
            &pool,
            "INSERT INTO attempts (id, program_id, webhook_id, webhook_name, event_id, event_type, \
                attempt, trigger, status, request_url, request_headers, request_body, created_at) \
             SELECT gen_random_uuid()::text, 'prg', 'wh', 'CRM', gen_random_uuid()::text, \
                'points.awarded', 1, 'event', 'success', 'https://example.com', '[]', '{}', \
                now() - make_interval(secs => i) \
             FROM generate_series(1, 20000) AS i",
            "attempts",
        )
        .await;
        let mut conn = generic_planner(&pool).await;
        let statement = sql::prune(Prunable::Attempts, PgStore::IN_SET);
        let plan = generic_plan(
            &mut conn,
            "prune",
            &statement,
            "('prg', now() - interval '1 hour', 500)",
        )
        .await;
        assert!(plan.contains("attempts_pkey"), "by key: {plan}");
        assert!(!plan.contains("Seq Scan"), "{plan}");
        // And it deletes the oldest batch.
        let deleted = sqlx::query("EXECUTE prune('prg', now() - interval '1 hour', 500)")
            .execute(&mut *conn)
            .await
            .unwrap()
            .rows_affected();
        assert_eq!(deleted, 500);
        drop(conn);
        drop_database(server, &name, pool).await;
    }

    /// A bulk replay batch on the writer's generic plan starts at the job's cursor on the
    /// dead letters' index. With the tie-break inside an OR, the cursor was a filter: each
    /// batch read every dead letter of the program before it (103 ms a batch near the end of
    /// 200,000 with another webhook's interleaved, against 0.6 ms).
    #[tokio::test]
    async fn a_replay_batch_starts_at_its_cursor_whatever_the_plan() {
        use crate::store::replay::{sql::matching, ReplayScope};
        let Some((server, name, pool)) = fresh_database("the replay plan test").await else {
            return;
        };
        fill_and_analyze(
            &pool,
            "INSERT INTO deliveries (id, program_id, webhook_id, event_id, trigger, status, \
                next_attempt_at, created_at, updated_at) \
             SELECT 'dlv_' || lpad(i::text, 6, '0'), 'prg', CASE WHEN i % 2 = 0 THEN 'wh_a' \
                ELSE 'wh_b' END, 'evt_' || i, 'event', 'failed', now(), \
                now() - make_interval(secs => 20000 - i), now() \
             FROM generate_series(1, 20000) AS i",
            "deliveries",
        )
        .await;
        let mut conn = generic_planner(&pool).await;
        let scope = ReplayScope {
            webhook: Some(crate::domain::ids::WebhookId::from_trusted("wh_a".into())),
            ..Default::default()
        };
        let cursor = Some((Utc::now(), "dlv_x".to_owned()));
        let mut q = matching::<Postgres>("prg", &scope, Utc::now(), cursor, false);
        q.push(" LIMIT ").push_bind(500i64);
        // program, until, webhook, the cursor's time twice and id, the limit.
        let plan = generic_plan(
            &mut conn,
            "batch",
            q.sql(),
            "('prg', now(), 'wh_a', now() - interval '1 hour', \
             now() - interval '1 hour', 'dlv_010000', 500)",
        )
        .await;
        let bounds = plan
            .lines()
            .find(|l| l.contains("Index Cond") && l.contains("status = 'failed'"))
            .unwrap_or_else(|| panic!("no index range over the dead letters: {plan}"));
        assert!(bounds.contains("created_at >= $4"), "{plan}");
        assert!(!plan.contains("Seq Scan"), "{plan}");
        drop(conn);
        drop_database(server, &name, pool).await;
    }

    /// Each step of holding, releasing, discarding or cancelling a webhook's deliveries reads its pending
    /// index on the writer's generic plan, even where one webhook has nearly every delivery
    /// (the plan then took the whole table for a match and read it from the start each step).
    #[tokio::test]
    async fn held_steps_read_the_webhooks_index_whatever_the_plan() {
        let Some((server, name, pool)) = fresh_database("the held steps plan test").await else {
            return;
        };
        fill_and_analyze(
            &pool,
            "INSERT INTO deliveries (id, program_id, webhook_id, event_id, trigger, status, \
                next_attempt_at, created_at, updated_at) \
             SELECT 'dlv_' || lpad(i::text, 6, '0'), 'prg', 'wh_a', 'evt_' || i, 'event', \
                'pending', '9999-01-01 00:00:00+00', now(), now() \
             FROM generate_series(1, 20000) AS i",
            "deliveries",
        )
        .await;
        let mut conn = generic_planner(&pool).await;
        for (kind, step, args) in [
            (
                "hold",
                sql::hold_step(PgStore::IN_SET),
                "('wh_a', '9999-01-01 00:00:00+00', 5000)",
            ),
            (
                "release",
                sql::release_step(PgStore::IN_SET),
                "('wh_a', '9999-01-01 00:00:00+00', 5000)",
            ),
            (
                "discard",
                sql::discard_held_step(PgStore::IN_SET),
                "('wh_a', 'prg', 'gone', now(), 5000)",
            ),
            (
                "cancel",
                sql::cancel_step(PgStore::IN_SET),
                "('wh_a', now(), 5000)",
            ),
            (
                "cancel_in_flight",
                sql::CANCEL_IN_FLIGHT.to_owned(),
                "('wh_a', now())",
            ),
        ] {
            let plan = generic_plan(&mut conn, kind, &step, args).await;
            let index = if kind == "cancel_in_flight" {
                "deliveries_lease"
            } else {
                "deliveries_webhook_pending"
            };
            assert!(plan.contains(index), "{kind}: {plan}");
            assert!(!plan.contains("Seq Scan"), "{kind}: {plan}");
        }
        // The lists' held counts (the webhooks table is tiny here: only deliveries matter).
        let counts = sql::held_counts_query::<Postgres>(
            &ProgramId::from_trusted("prg".into()),
            &[WebhookId::from_trusted("wh_a".into())],
            sql::HELD_COUNT_LIMIT,
        );
        let plan = generic_plan(
            &mut conn,
            "held_counts",
            counts.sql(),
            "(10001, 'prg', 'wh_a')",
        )
        .await;
        assert!(plan.contains("deliveries_webhook_pending"), "{plan}");
        assert!(!plan.contains("Seq Scan on deliveries"), "{plan}");
        let ids = [WebhookId::from_trusted("wh_a".into())];
        let due = sql::first_pending_query::<Postgres>(Some((
            &ProgramId::from_trusted("prg".into()),
            &ids,
        )));
        let plan = generic_plan(&mut conn, "oldest_due", due.sql(), "('prg', 'wh_a')").await;
        assert!(plan.contains("deliveries_webhook_pending"), "{plan}");
        assert!(!plan.contains("Seq Scan on deliveries"), "{plan}");
        drop(conn);
        drop_database(server, &name, pool).await;
    }

    #[test]
    fn counts_wake_the_keeper_every_thousand_rows() {
        let changes = Changes::default();
        changes.wrote(DELIVERIES, 999);
        assert!(
            changes.wake.notified().now_or_never().is_none(),
            "no wake below 1,000 rows"
        );
        changes.wrote(DELIVERIES, 1);
        assert!(changes.wake.notified().now_or_never().is_some());
        changes.wrote(DELIVERIES, 500);
        changes.analyzed(DELIVERIES, 1000);
        assert_eq!(changes.since_analysis(DELIVERIES), 500);
        assert_eq!(changes.since_analysis(EVENTS), 0);
    }

    /// `WRITE_TOGETHER` is `INGEST`'s steps and `RECORD`'s, whose parameters come after
    /// `INGEST`'s: every parameter from `$1` to the last is used, none twice in name.
    #[test]
    fn writing_together_numbers_records_parameters_after_ingests() {
        assert_eq!(
            shift_parameters("a = $1 AND b = $12::text[] AND c = '$'", 21),
            "a = $22 AND b = $33::text[] AND c = '$'"
        );
        let used = |sql: &str| {
            let mut found = std::collections::BTreeSet::new();
            for piece in sql.split('$').skip(1) {
                let digits: String = piece.chars().take_while(char::is_ascii_digit).collect();
                if let Ok(n) = digits.parse::<usize>() {
                    found.insert(n);
                }
            }
            found
        };
        let ingest = used(&INGEST);
        let record = used(&RECORD);
        assert_eq!(ingest, (1..=INGEST_PARAMETERS).collect());
        assert_eq!(record, (1..=56).collect());
        assert_eq!(
            used(&WRITE_TOGETHER),
            (1..=INGEST_PARAMETERS + 56).collect(),
            "{}",
            *WRITE_TOGETHER
        );
    }
}
