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
    write_pool: SqlitePool,
    /// Read-only connections for lists and lookups.
    reader: SqlitePool,
    program: ProgramId,
    /// The database file (`None` in memory).
    file: Option<std::path::PathBuf>,
    /// The file's device and inode when it was opened (see `file_trouble`).
    opened: Option<(u64, u64)>,
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
/// readers' pages come from the OS page cache cheaply when missed. B-tree splits key a page by
/// SQLite's lock page for a moment, which made the commit that followed walk the cache's whole
/// hash table (8,192 buckets at this size, ~70 µs) until `page_cache` moved that key out of the
/// way (README, Benchmarks, tenth and fortieth sittings).
const WRITER_CACHE: &str = "-16000";
const READER_CACHE: &str = "-4000";

/// Prepared statements the writer keeps (sqlx's default is 100): the multi-row writes of every
/// batch size up to `sql::EXACT_CHUNK` and the powers of two above it, plus the scripts of small
/// writes (`sql::Statements`), each a few KiB.
const WRITER_STATEMENTS: usize = 256;

/// Answers (rows, and each statement's end) the writer's thread may hand over before the task
/// that asked takes them (sqlx's default is 50). At 50, a write of 100 events stopped its thread
/// twice per statement that returns rows (the events that were new, the deliveries that moved),
/// inside the transaction, until that task next ran on a Tokio worker busy with HTTP: every
/// other write waited with it. With room for the largest answer a write statement gives, the
/// thread runs each statement through; the rows wait in memory instead (README, Benchmarks,
/// thirty-fifth sitting: 100 events a request +10–19%, transactions 3–6 ms against 6–10).
const WRITER_ROWS_BUFFERED: usize = 4096;
const _: () = assert!(
    WRITER_ROWS_BUFFERED > super::sql::MAX_ROWS_PER_INSERT + 1
        && WRITER_ROWS_BUFFERED > super::sql::FINISHED_PER_UPDATE + 1,
    "a write statement's whole answer fits the writer's row buffer"
);

/// The page size of a database Herald creates (one created before keeps its own: SQLite cannot
/// change it in WAL mode). Every commit writes each page it changed, whole, to the WAL, and a
/// commit of one event and one result changes about 24 pages: at 1,000 events/s the WAL grew by
/// 84 MB/s with 4 KiB pages and 52 MB/s with 2 KiB ones, and the p99 latency was 9.0–13.8 ms
/// against 14.4–21.2 ms (same binary, alternating; the event's wait for its transaction 0.9 against
/// 1.5 ms). 1 KiB pages were no better at that rate and slower batched; 2 KiB costs 5–9% of
/// batched (100 events a request) flat-out throughput. See README, Benchmarks (ninth sitting).
const PAGE_SIZE: u32 = 2048;

/// WAL pages beyond which the checkpointer starts the WAL over (128 MiB with `PAGE_SIZE` pages,
/// 256 MiB in databases created with 4 KiB ones). Each restart holds the writer for one fsync;
/// at a quarter of this mark restarts came every 3,000 events or so and set the p99 latency at
/// 1,000 events/s.
const WAL_RESTART_FRAMES: i64 = 65_536;

/// How often the background checkpointer copies the WAL into the database file.
/// How long a connection waits for another's lock before it reports the database busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

impl SqliteStore {
    /// Opens (creating if `mode=rwc`) the database file, migrates it and seeds the catalog.
    const BACKEND: &'static str = "SQLite";
    /// The single writer serialises ingest and webhook changes; no row lock is needed.
    const SHARE_LOCK: &'static str = "";
    /// A step's statements go to the connection's thread as one script (see `sql::Statements`).
    const STATEMENTS_TOGETHER: bool = true;
    /// How retention matches a batch of ids (see `retention::sql`).
    const IN_SET: (&'static str, &'static str) = super::retention::sql::IN_SET_SQLITE;

    fn local_file(&self) -> Option<std::path::PathBuf> {
        self.file.clone()
    }

    /// Whether the database file was deleted or replaced since it was opened. SQLite does not
    /// notice: it goes on writing into the file it holds open, which then exists nowhere but in
    /// this process, so everything accepted would be gone at the next start (measured: `202`s
    /// after `rm herald.db`). Every write asks first (one `stat` a transaction, 1.6–1.8 µs
    /// measured) and is refused as unavailable.
    fn file_trouble(&self) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        let (file, opened) = (self.file.as_ref()?, self.opened?);
        match std::fs::metadata(file) {
            Ok(m) if (m.dev(), m.ino()) == opened => None,
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => None,
            _ => Some(format!(
                "the database file {} was deleted or replaced while Herald had it open \
                 (its data is still readable at /proc/{}/fd until Herald stops: copy it back \
                 before restarting)",
                file.display(),
                std::process::id()
            )),
        }
    }

    pub async fn connect(url: &str) -> Result<Self> {
        Self::open(url, true).await
    }

    /// `connect`, with or without the background checkpointer (a test that checkpoints by hand
    /// leaves it out, so no other round races its own).
    async fn open(url: &str, checkpointer: bool) -> Result<Self> {
        // Before anything in the process opens a database (see `page_cache`).
        if !super::page_cache::install() {
            tracing::debug!(
                "SQLite was initialized first: its default page cache and journal spill stay"
            );
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::BadUrl(format!("{url}: {e}")))?
            // Applied before the journal mode (sqlx's order), so it takes for a new file.
            .page_size(PAGE_SIZE)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            // Statement journals stay in memory only up to `STATEMENT_JOURNAL_IN_MEMORY` (1 MiB),
            // then spill to a temporary file: with `temp_store = memory` they never spilled, and
            // switching on a webhook that held 1,000,000 deliveries (one UPDATE inside a longer
            // transaction) took 330 MiB of RAM for the statement's journal alone.
            .pragma("temp_store", "file")
            .pragma("cache_size", WRITER_CACHE)
            .pragma("wal_autocheckpoint", "0");
        // The writer's commits go to the WAL in one write each (see `wal_writes`); should the VFS
        // not register, it writes through SQLite's own, as readers and the checkpointer do.
        let writer_options = match super::wal_writes::register() {
            Ok(()) => options.clone().vfs(super::wal_writes::NAME),
            Err(e) => {
                tracing::warn!(error = %e, "writing the WAL frame by frame");
                options.clone()
            }
        };
        let seen = std::sync::Arc::new(AtomicU64::new(FAILURES.load(Ordering::Acquire)));
        // No ping before each use (sqlx's default): on SQLite it is one more round trip to the
        // connection's thread per transaction (about 0.5 thread switches per delivery in `herald
        // bench`), and it cannot find what `before_acquire` does not: a file connection does
        // not drop like a socket, and any failure replaces it (see `FAILURES`).
        let writer = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(1)
            .min_connections(1)
            // The writer thread asks for a higher scheduling priority (see `priority`).
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query(super::priority::RAISE).execute(conn).await?;
                    Ok(())
                })
            })
            // A fresh connection after any SQLite failure (see `FAILURES`).
            .before_acquire(move |_, _| {
                let seen = seen.clone();
                Box::pin(async move {
                    let now = FAILURES.load(Ordering::Acquire);
                    Ok(seen.swap(now, Ordering::AcqRel) == now)
                })
            })
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(
                writer_options
                    .collation(super::priority::COLLATION, super::priority::compare)
                    .statement_cache_capacity(WRITER_STATEMENTS)
                    .row_buffer_size(WRITER_ROWS_BUFFERED),
            )
            .await?;
        super::decode::migrator(super::decode::SQLITE)
            .run(&writer)
            .await?;
        let reader = SqlitePoolOptions::new()
            .test_before_acquire(false)
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
        let file = Some(options.get_filename().to_path_buf())
            .filter(|f| !f.as_os_str().is_empty() && f.as_os_str() != ":memory:");
        let opened = file.as_ref().and_then(|f| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(f).ok().map(|m| (m.dev(), m.ino()))
        });
        let alive = std::sync::Arc::new(());
        if checkpointer {
            // Checkpoints copy WAL frames without the page cache: the small one will do.
            Self::start_checkpointer(
                options.pragma("cache_size", READER_CACHE),
                writer.clone(),
                std::sync::Arc::downgrade(&alive),
            )
            .await?;
        }
        Ok(Self {
            write_pool: writer,
            reader,
            program,
            file,
            opened,
            _alive: alive,
        })
    }

    /// Checkpoints the WAL from a connection of its own. The writer does not checkpoint
    /// (`wal_autocheckpoint = 0`), so a commit never waits for the checkpoint's copy and fsync;
    /// PASSIVE checkpoints never block the writer or readers either. But under a steady stream of
    /// commits a PASSIVE checkpoint never finds the WAL fully copied with no writer about, and
    /// SQLite only starts the WAL over from its beginning then: it grew without end (4.5 GB
    /// after 1,000,000 events, every page lookup slower for it). So once it holds more than
    /// `WAL_RESTART_FRAMES`, the writer itself runs one TRUNCATE checkpoint between two of its
    /// transactions (commits wait for it, as they did for SQLite's own auto-checkpoint) and the
    /// WAL starts over. On the writer, because a checkpoint that restarts the WAL takes the write
    /// lock: from another connection it made the writer's open transactions fail as busy.
    async fn start_checkpointer(
        options: SqliteConnectOptions,
        writer: SqlitePool,
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
                if let Err(e) = Self::checkpoint(&mut conn, &writer, WAL_RESTART_FRAMES).await {
                    tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
                }
            }
        });
        Ok(())
    }

    /// One round of the checkpointer: PASSIVE on its own connection, then TRUNCATE on the writer
    /// if the WAL holds more than `restart_frames` pages. The writer waits at most a quarter of a
    /// second for readers to leave the old WAL; if one does not, the WAL starts over next round.
    async fn checkpoint(
        conn: &mut sqlx::SqliteConnection,
        writer: &SqlitePool,
        restart_frames: i64,
    ) -> Result<()> {
        let (_busy, frames, _copied): (i64, i64, i64) =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&mut *conn)
                .await?;
        if frames > restart_frames {
            let mut w = writer.acquire().await?;
            sqlx::query("PRAGMA busy_timeout = 250")
                .execute(&mut *w)
                .await?;
            let restarted = sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&mut *w)
                .await;
            sqlx::query(&format!(
                "PRAGMA busy_timeout = {}",
                BUSY_TIMEOUT.as_millis()
            ))
            .execute(&mut *w)
            .await?;
            let (busy, _, _) = restarted?;
            tracing::debug!(frames, busy, "WAL restarted");
        }
        Ok(())
    }

    /// Other processes never share a SQLite file with us, so there is no one to tell.
    async fn announce<'e, E: sqlx::SqliteExecutor<'e>>(&self, _executor: E) -> Result<()> {
        Ok(())
    }

    async fn announce_change<'e, E: sqlx::SqliteExecutor<'e>>(
        _executor: E,
        _id: &WebhookId,
        _version: i64,
    ) -> Result<()> {
        Ok(())
    }

    async fn listen(
        &self,
        _wake: std::sync::Arc<tokio::sync::Notify>,
        _changed: super::WebhookChanged,
    ) -> Result<()> {
        Ok(())
    }

    /// Ingest in one transaction of a few statements: SQLite runs in this process, so a
    /// statement costs no network round trip, only a hand-over to the connection's thread (a few
    /// events go as scripts, see `sql::Statements`).
    async fn ingest(&self, batch: &[IngestItem]) -> Result<Vec<Option<usize>>> {
        let (stored, _) = self.write(batch, &[], super::now()).await?;
        Ok(stored)
    }

    /// `ingest` on `conn`, inside a transaction the caller opened (see `Store::ingest_routed`).
    async fn ingest_on(
        &self,
        conn: &mut sqlx::SqliteConnection,
        batch: &[IngestItem],
    ) -> Result<Vec<Option<usize>>> {
        let (stored, _) = self.write_in(conn, batch, &[], super::now(), false).await?;
        Ok(stored)
    }

    async fn record(&self, results: &[Outcome], now: DateTime<Utc>) -> Result<Moved> {
        self.record_in_transaction(results, now).await
    }

    /// Events and results in one transaction (see `Store::ingest_and_record`).
    async fn write_together(
        &self,
        batch: &[IngestItem],
        results: &[Outcome],
        now: DateTime<Utc>,
    ) -> Result<(Vec<Option<usize>>, Moved)> {
        self.write(batch, results, now).await
    }

    async fn claim(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease_margin: chrono::Duration,
        exclude: &[WebhookId],
    ) -> Result<Vec<Claim>> {
        // The single writer connection serialises claims, so select-then-update is race-free.
        let mut tx = self.writer()?.begin().await?;
        if !exclude.is_empty() {
            let any: bool = sql::any_claimable_query::<Sqlite>(now, exclude)
                .build_query_scalar()
                .fetch_one(&mut *tx)
                .await?;
            if !any {
                return Ok(Vec::new());
            }
        }
        // Expired claims first (rarely any: a lease runs out only when its process died or
        // gave up on a request), then the oldest due deliveries for the room left. Each read is
        // a range of its own index (the due one in due order) and stops at its limit.
        let mut rows: Vec<ClaimedRow> =
            claimable_query(sql::Claimable::Expired, now, limit, exclude)
                .build_query_as()
                .fetch_all(&mut *tx)
                .await?;
        let room = limit.saturating_sub(u32::try_from(rows.len()).unwrap_or(u32::MAX));
        if room > 0 {
            rows.extend(
                claimable_query(sql::Claimable::Due, now, room, exclude)
                    .build_query_as::<ClaimedRow>()
                    .fetch_all(&mut *tx)
                    .await?,
            );
        }
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
                .push(" WHERE id IN ");
            sql::push_list(&mut qb, ids);
            qb.push(" RETURNING id, claim_count, interruptions");
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

/// At most `limit` deliveries of `part` a claim at `now` takes, oldest first, with what sending
/// them needs (see `sql::push_claimable`).
fn claimable_query<'a>(
    part: sql::Claimable,
    now: DateTime<Utc>,
    limit: u32,
    exclude: &[WebhookId],
) -> sqlx::QueryBuilder<'a, Sqlite> {
    let mut select = sqlx::QueryBuilder::<Sqlite>::new(format!(
        "SELECT {} FROM deliveries d \
         JOIN events e ON e.program_id = d.program_id AND e.id = d.event_id \
         JOIN webhooks w ON w.id = d.webhook_id \
         WHERE w.enabled AND ",
        sql::claimed_columns()
    ));
    sql::push_claimable(&mut select, part, now, limit, exclude);
    select
}

super::shared::impl_store!(SqliteStore, Sqlite);
super::access::impl_access_store!(SqliteStore, Sqlite);
super::alerts::impl_alert_store!(SqliteStore, Sqlite);
super::retention::impl_retention_store!(SqliteStore, Sqlite);
super::replay::impl_replay_store!(SqliteStore, Sqlite);

#[cfg(test)]
mod tests {
    use super::*;

    /// The bundled SQLite is compiled without allocation statistics (`.cargo/config.toml`): with
    /// them, every allocation inside SQLite took a process-wide mutex that the writer's and the
    /// readers' threads contended for.
    #[tokio::test]
    async fn the_linked_sqlite_keeps_no_allocation_statistics() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_in(&dir, "options.db").await;
        let options: Vec<String> = sqlx::query_scalar("PRAGMA compile_options")
            .fetch_all(&store.reader)
            .await
            .unwrap();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "compiled with {options:?}"
        );
    }

    /// Random keys split B-tree pages out of order, and SQLite swaps them through the lock-byte
    /// page's number (see `page_cache`). With that key moved out of the cache's way, what the
    /// splits wrote is still exactly what was inserted: read back on a new connection, and
    /// SQLite's own integrity check passes.
    #[tokio::test]
    async fn random_keys_split_through_the_moved_swap_key_and_read_back_whole() {
        use rand::Rng;
        let dir = tempfile::tempdir().unwrap();
        let store = open_in(&dir, "splits.db").await;
        assert!(
            super::super::page_cache::install(),
            "the store opened the process's first database, so its page cache is installed"
        );
        sqlx::query("CREATE TABLE keys (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
            .execute(&store.write_pool)
            .await
            .unwrap();
        let mut rng = rand::thread_rng();
        let mut written = std::collections::BTreeMap::new();
        for _ in 0..80 {
            let mut tx = store.write_pool.begin().await.unwrap();
            for _ in 0..50 {
                let k = format!("{:032x}", rng.gen::<u128>());
                let v = "v".repeat(rng.gen_range(1..200));
                sqlx::query("INSERT INTO keys (k, v) VALUES (?, ?)")
                    .bind(&k)
                    .bind(&v)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                written.insert(k, v);
            }
            tx.commit().await.unwrap();
        }
        assert!(
            super::super::page_cache::swaps_moved() > 0,
            "4,000 random keys split, yet no swap key was moved out of the way"
        );
        drop(store);
        let store = open_in(&dir, "splits.db").await;
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&store.reader)
            .await
            .unwrap();
        assert_eq!(check, "ok");
        let read: Vec<(String, String)> = sqlx::query_as("SELECT k, v FROM keys ORDER BY k")
            .fetch_all(&store.reader)
            .await
            .unwrap();
        assert_eq!(read, written.into_iter().collect::<Vec<_>>());
    }

    /// A multi-row statement inside a transaction journals every page it changes until it ends.
    /// Such a journal stays in memory up to 1 MiB (`page_cache::STATEMENT_JOURNAL_IN_MEMORY`,
    /// SQLite's default is 64 KiB) and only a larger one is spilled to a file, which the writer's
    /// VFS counts; the spill writes chunks of 1 MiB, which the VFS splits for SQLite's own.
    #[tokio::test]
    async fn statement_journals_spill_to_a_file_only_past_a_mebibyte() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_in(&dir, "journals.db").await;
        // Two rows to a 2 KiB page. The trigger makes an UPDATE a statement that may stop
        // part-way with other writes done (so it keeps a journal); it never fires.
        for sql in [
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)",
            "CREATE TRIGGER t_never AFTER UPDATE ON t WHEN 0 BEGIN SELECT 1; END",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1400) \
             INSERT INTO t SELECT i, substr(hex(zeroblob(450)), 1, 900) FROM n",
        ] {
            sqlx::query(sql).execute(&store.write_pool).await.unwrap();
        }
        let rewrite_in_a_transaction = |rows: u32, digit: &'static str| {
            let pool = store.write_pool.clone();
            async move {
                let mut tx = pool.begin().await?;
                sqlx::query("UPDATE t SET v = replace(substr(v, 1, 1), substr(v, 1, 1), ?) || substr(v, 2) WHERE id <= ?")
                    .bind(digit)
                    .bind(rows)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await
            }
        };
        let spilled = super::super::wal_writes::spilled_journals;
        let before = spilled();
        // 200 pages changed: a journal of 200 × (2,048 + 4) bytes, 400 KiB.
        rewrite_in_a_transaction(400, "1").await.unwrap();
        assert_eq!(spilled(), before, "a journal of 400 KiB went to a file");
        // 650 pages changed: 1.3 MiB, spilled, and the spill's 1 MiB write goes through.
        rewrite_in_a_transaction(1300, "2")
            .await
            .expect("a spilled journal is written");
        assert!(spilled() > before, "a journal of 1.3 MiB stayed in memory");
        let firsts: Vec<(String, i64)> =
            sqlx::query_as("SELECT substr(v, 1, 1), COUNT(*) FROM t GROUP BY 1 ORDER BY 1")
                .fetch_all(&store.reader)
                .await
                .unwrap();
        assert_eq!(firsts, [("0".to_owned(), 100), ("2".to_owned(), 1300)]);
    }

    /// A database Herald creates uses `PAGE_SIZE` pages; one created before with SQLite's default
    /// (4 KiB) keeps them and opens as before.
    #[tokio::test]
    async fn new_databases_get_the_smaller_page_and_old_ones_keep_theirs() {
        use crate::store::Store as _;
        let dir = tempfile::tempdir().unwrap();
        let page = |store: &SqliteStore| {
            let reader = store.reader.clone();
            async move {
                sqlx::query_scalar::<_, i64>("PRAGMA page_size")
                    .fetch_one(&reader)
                    .await
                    .unwrap()
            }
        };
        let store = open_in(&dir, "fresh.db").await;
        assert_eq!(page(&store).await, i64::from(PAGE_SIZE));
        let old = dir.path().join("old.db");
        let options =
            SqliteConnectOptions::from_str(&format!("sqlite://{}?mode=rwc", old.display()))
                .unwrap()
                .page_size(4096)
                .journal_mode(SqliteJournalMode::Wal);
        let mut conn = sqlx::ConnectOptions::connect(&options).await.unwrap();
        sqlx::query("CREATE TABLE before_herald (x INTEGER)")
            .execute(&mut conn)
            .await
            .unwrap();
        drop(conn);
        let store = open_in(&dir, "old.db").await;
        assert_eq!(page(&store).await, 4096);
        let p = store.default_program().await.unwrap();
        assert!(store
            .list_webhooks(&p, &Default::default())
            .await
            .unwrap()
            .is_empty());
    }

    /// Commits keep coming, yet the WAL does not grow past the restart mark: a checkpoint round
    /// over it starts the WAL over (the file is emptied), where PASSIVE alone only copies pages.
    #[tokio::test]
    async fn a_long_wal_is_started_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.db");
        // Without its own checkpointer: every round below is the test's.
        let store = SqliteStore::open(&format!("sqlite://{}?mode=rwc", path.display()), false)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE filler (body TEXT NOT NULL)")
            .execute(&store.write_pool)
            .await
            .unwrap();
        for _ in 0..300 {
            sqlx::query("INSERT INTO filler (body) VALUES (printf('%.4000c', 'x'))")
                .execute(&store.write_pool)
                .await
                .unwrap();
        }
        let wal = path.with_extension("db-wal");
        let size = || std::fs::metadata(&wal).unwrap().len();
        assert!(size() > 300 * 4000, "the WAL holds the commits: {}", size());
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .unwrap()
            .journal_mode(SqliteJournalMode::Wal);
        let mut conn = sqlx::ConnectOptions::connect(&options).await.unwrap();
        SqliteStore::checkpoint(&mut conn, &store.write_pool, 1_000_000)
            .await
            .unwrap();
        assert!(
            size() > 300 * 4000,
            "under the mark: copied, not started over"
        );
        SqliteStore::checkpoint(&mut conn, &store.write_pool, 100)
            .await
            .unwrap();
        assert_eq!(size(), 0, "over the mark: started over");
        // Still the same data, and writes go on into the fresh WAL.
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM filler")
            .fetch_one(&store.reader)
            .await
            .unwrap();
        assert_eq!(rows, 300);
        sqlx::query("INSERT INTO filler (body) VALUES ('after')")
            .execute(&store.write_pool)
            .await
            .unwrap();
        assert!(size() > 0);
    }
    /// The writer's thread asks for a higher scheduling priority as it connects; readers keep
    /// the default. Where the system refuses (no CAP_SYS_NICE), every thread keeps it.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_writer_thread_runs_at_a_higher_priority() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("nice.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        // A reader connection (and its thread) exists once a read has run.
        sqlx::query("SELECT 1")
            .execute(&store.reader)
            .await
            .unwrap();
        // Each of this process's SQLite worker threads, by its nice value (field 19 of its stat).
        let mut nice = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let path = task.unwrap().path();
            let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            if !name.starts_with("sqlx-sqlite") {
                continue;
            }
            let stat = std::fs::read_to_string(path.join("stat")).unwrap();
            let after_name = &stat[stat.rfind(')').unwrap() + 2..];
            let value: i32 = after_name.split(' ').nth(16).unwrap().parse().unwrap();
            nice.push(value);
        }
        nice.sort();
        assert!(
            nice.len() >= 3,
            "writer, checkpointer and a reader: {nice:?}"
        );
        // Whether this process may raise a priority: CAP_SYS_NICE (bit 23) in its effective set.
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let effective = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .map(|hex| u64::from_str_radix(hex.trim(), 16).unwrap())
            .unwrap();
        let permitted = effective & (1 << 23) != 0;
        if permitted {
            assert_eq!(nice[0], super::super::priority::NICE, "{nice:?}");
            assert!(
                nice[1..].iter().all(|&n| n == 0),
                "only the writer: {nice:?}"
            );
        } else {
            assert!(nice.iter().all(|&n| n == 0), "{nice:?}");
        }
    }

    /// A fresh database to ask for plans (kept while the directory guard lives).
    async fn plan_store() -> (SqliteStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("plan.db").display());
        (SqliteStore::connect(&url).await.unwrap(), dir)
    }

    /// The plan SQLite chooses for a query (its steps' descriptions).
    async fn plan(store: &SqliteStore, sql: &str) -> Vec<String> {
        // Planning needs no values; every parameter is bound to a placeholder text.
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let mut q = sqlx::query_as::<_, (i64, i64, i64, String)>(&explain);
        for _ in 0..sql.matches(['?', '$']).count() {
            q = q.bind("x");
        }
        q.fetch_all(&store.reader)
            .await
            .unwrap()
            .into_iter()
            .map(|(_, _, _, step)| step)
            .collect()
    }

    /// The Webhooks list, its first page and the pages after, comes out of its index in order.
    /// Webhooks created in the same instant (a seeded or imported batch) were all sorted first,
    /// each with its subscriptions read: 31 ms for 10,000 of them, 2 ms read in index order
    /// (README, Benchmarks, twenty-ninth sitting).
    #[tokio::test]
    async fn the_webhooks_list_is_read_in_index_order() {
        use crate::domain::ids::{ProgramId, WebhookId};
        use crate::store::{Position, WebhookQuery};
        let (store, _dir) = plan_store().await;
        let program = ProgramId::generate();
        let first = WebhookQuery {
            limit: Some(51),
            ..WebhookQuery::default()
        };
        let next = WebhookQuery {
            after: Some(Position {
                created_at: crate::store::now(),
                id: WebhookId::generate(),
            }),
            ..first.clone()
        };
        for q in [first, next] {
            let sql = super::super::sql::list_webhooks_query::<sqlx::Sqlite>(&program, &q);
            let steps = plan(&store, sql.sql()).await;
            assert!(
                steps.iter().any(|s| s.contains("webhooks_program_created")),
                "{steps:?}"
            );
            // (The event types' own `string_agg(… ORDER BY …)` sorts a webhook's few names.)
            assert!(
                !steps
                    .iter()
                    .any(|s| s.ends_with(" ORDER BY") && s.starts_with("USE TEMP B-TREE")),
                "sorted instead of read in order: {steps:?}"
            );
        }
    }

    /// How long the dispatcher may sleep is read off the due index up to the held deliveries at
    /// its far end (a range on the index), never through them: with a deep hold and nothing
    /// else due, the walk read every held delivery, once per look.
    #[tokio::test]
    async fn the_next_due_time_stops_before_held_deliveries() {
        let (store, _dir) = plan_store().await;
        // The dispatcher's look-up, and the first entry `waiting_since` reads (with its
        // webhook's last change).
        for sql in [
            super::super::sql::next_due_query::<sqlx::Sqlite>(&[], false, None),
            super::super::sql::first_due_query::<sqlx::Sqlite>(),
        ] {
            let steps = plan(&store, sql.sql()).await;
            assert!(
                steps
                    .iter()
                    .any(|s| s.contains("deliveries_due_order (next_attempt_at<?)")),
                "{steps:?}"
            );
        }
    }

    /// A claim reads the due deliveries in the due index and the expired claims in the lease
    /// index, each a range up to now: never the deliveries table, nor every pending one.
    #[tokio::test]
    async fn a_claim_reads_the_due_and_the_expired_in_their_own_indexes() {
        let (store, _dir) = plan_store().await;
        for exclude in [vec![], vec![WebhookId::generate()]] {
            for (part, index) in [
                (
                    sql::Claimable::Due,
                    "deliveries_due_order (next_attempt_at<?)",
                ),
                (
                    sql::Claimable::Expired,
                    "deliveries_lease (lease_expires_at<?)",
                ),
            ] {
                let q = claimable_query(part, Utc::now(), 100, &exclude);
                let steps = plan(&store, q.sql()).await;
                assert!(steps.iter().any(|s| s.contains(index)), "{steps:?}");
                assert!(
                    !steps
                        .iter()
                        .any(|s| s.starts_with("SCAN d") || s.starts_with("SCAN deliveries")),
                    "{steps:?}"
                );
            }
            // The due ones come out of the index in order: they are not sorted. (The webhook's
            // event types are, by their `string_agg`.)
            let q = claimable_query(sql::Claimable::Due, Utc::now(), 100, &exclude);
            let steps = plan(&store, q.sql()).await;
            assert!(
                !steps
                    .iter()
                    .any(|s| s.starts_with("USE TEMP B-TREE FOR ORDER BY")),
                "{steps:?}"
            );
        }
    }

    /// What is done to one webhook's deliveries (hold, release, discard, cancel, count, the
    /// oldest due, the sweep for unsettled ones) reads its
    /// pending ones through their own index, and the claimed ones among the leases: no plan
    /// walks the deliveries table.
    #[tokio::test]
    async fn a_webhooks_deliveries_are_found_through_indexes() {
        let (store, _dir) = plan_store().await;
        let steps = [
            sql::hold_step(SqliteStore::IN_SET),
            sql::release_step(SqliteStore::IN_SET),
            sql::discard_held_step(SqliteStore::IN_SET),
            sql::cancel_step(SqliteStore::IN_SET),
        ];
        let counts = sql::held_counts_query::<sqlx::Sqlite>(
            &ProgramId::generate(),
            &[WebhookId::generate(), WebhookId::generate()],
            sql::HELD_COUNT_LIMIT,
        );
        let ids = [WebhookId::generate(), WebhookId::generate()];
        let due = sql::first_pending_query::<sqlx::Sqlite>(Some((&ProgramId::generate(), &ids)));
        let every = sql::first_pending_query::<sqlx::Sqlite>(None);
        for sql in [
            steps[0].as_str(),
            &steps[1],
            &steps[2],
            &steps[3],
            sql::UNSETTLED_WEBHOOKS,
            counts.sql(),
            due.sql(),
            every.sql(),
        ] {
            let steps = plan(&store, sql).await;
            assert!(
                steps
                    .iter()
                    .any(|s| s.contains("deliveries_webhook_pending (webhook_id=?")),
                "{sql}: {steps:?}"
            );
            // Only the in-flight deliveries (the lease index holds nothing else) may be read
            // in full.
            assert!(
                !steps.iter().any(|s| (s.starts_with("SCAN d")
                    || s.starts_with("SCAN deliveries"))
                    && !s.contains("USING INDEX deliveries_lease")),
                "{sql}: {steps:?}"
            );
        }
        // A deletion's claimed deliveries are found among the leases.
        let steps = plan(&store, sql::CANCEL_IN_FLIGHT).await;
        assert!(
            steps.iter().any(|s| s.contains("deliveries_lease")),
            "{steps:?}"
        );
    }

    /// A bulk replay batch starts reading its dead letters at the job's cursor: the cursor is
    /// a bound of the range on the index, not a test of every dead letter before it.
    #[tokio::test]
    async fn a_replay_batch_starts_at_its_cursor() {
        use crate::store::replay::{sql::matching, ReplayScope};
        let (store, _dir) = plan_store().await;
        let scope = ReplayScope {
            webhook: Some(crate::domain::ids::WebhookId::generate()),
            ..Default::default()
        };
        let cursor = Some((Utc::now(), "dlv_x".to_owned()));
        let q = matching::<sqlx::Sqlite>("prg", &scope, Utc::now(), cursor, false);
        let steps = plan(&store, q.sql()).await;
        assert!(
            steps.iter().any(|s| s.contains(
                "deliveries_program_status (program_id=? AND status=? AND created_at>? AND created_at<?)"
            )),
            "{steps:?}"
        );
    }

    /// The queue gauges (read at every metrics scrape) count pending deliveries in a pending
    /// index, those in flight in the lease index and dead letters per program: never the whole
    /// deliveries table, which keeps every finished delivery of the retention window.
    #[tokio::test]
    async fn queue_gauges_never_read_the_whole_table() {
        let (store, _dir) = plan_store().await;
        let steps = plan(&store, sql::UNFINISHED_COUNTS).await;
        assert!(
            steps
                .iter()
                .any(|s| s.contains("deliveries_due_order")
                    || s.contains("deliveries_webhook_pending")),
            "{steps:?}"
        );
        assert!(
            steps.iter().any(|s| s.contains("deliveries_lease")),
            "{steps:?}"
        );
        assert!(
            !steps
                .iter()
                .any(|s| s.starts_with("SCAN deliveries") && !s.contains("USING")),
            "{steps:?}"
        );
        let steps = plan(&store, sql::DEAD_LETTER_COUNT).await;
        assert!(
            steps
                .iter()
                .any(|s| s.contains("deliveries_program_status (program_id=? AND status=?)")),
            "{steps:?}"
        );
        assert!(!steps.iter().any(|s| s.starts_with("SCAN d")), "{steps:?}");
    }

    /// The deliveries list reads each status newest first from the program's index, with a
    /// status or without one (merged): never a sort of every delivery of the program. A later
    /// page starts at its cursor in the index (a range), not after reading every newer delivery.
    /// The deliveries in flight, which that index leaves out, are read among the leases.
    #[tokio::test]
    async fn the_deliveries_list_reads_each_status_newest_first() {
        let (store, _dir) = plan_store().await;
        let program = ProgramId::generate();
        let cursor = DeliveryCursor {
            created_at: chrono::Utc::now(),
            id: crate::domain::ids::DeliveryId::generate(),
        };
        use crate::domain::delivery::DeliveryStatus;
        for after in [None, Some(cursor)] {
            for status in [
                None,
                Some(DeliveryStatus::Failed),
                Some(DeliveryStatus::InFlight),
            ] {
                let q = DeliveryQuery {
                    status,
                    after: after.clone(),
                    limit: 100,
                    ..Default::default()
                };
                let built = sql::list_deliveries_query::<sqlx::Sqlite>(&program, &q);
                let steps = plan(&store, built.sql()).await;
                let key = if after.is_some() {
                    "deliveries_program_status (program_id=? AND status=? AND created_at<?)"
                } else {
                    "deliveries_program_status (program_id=? AND status=?)"
                };
                let pieces = steps.iter().filter(|s| s.contains(key)).count();
                let (indexed, leased) = match status {
                    None => (3, 1),
                    Some(DeliveryStatus::InFlight) => (0, 1),
                    Some(_) => (1, 0),
                };
                assert_eq!(pieces, indexed, "{steps:?}");
                let leases = steps
                    .iter()
                    .filter(|s| s.contains("USING INDEX deliveries_lease"))
                    .count();
                assert_eq!(leases, leased, "{steps:?}");
                assert!(
                    !steps
                        .iter()
                        .any(|s| s.starts_with("SCAN d") && !s.contains("deliveries_lease")),
                    "{steps:?}"
                );
            }
        }
    }

    /// Roll-ups narrowed to some webhooks (a page of the list) read those webhooks' own key
    /// ranges, not every webhook's hours through the program's index.
    #[tokio::test]
    async fn narrowed_rollups_read_their_webhooks_only() {
        use crate::store::rollups::{Grouping, RollupQuery};
        let (store, _dir) = plan_store().await;
        let q = RollupQuery {
            webhooks: vec!["wh_a".into(), "wh_b".into()],
            from_hour: 0,
            to_hour: 24,
            grouping: Grouping::Webhook,
        };
        for sql in [q.counters_sql(), q.buckets_sql()] {
            let steps = plan(&store, &sql).await;
            assert!(steps.iter().any(|s| s.contains("autoindex")), "{steps:?}");
            assert!(!steps.iter().any(|s| s.contains("_program")), "{steps:?}");
        }
    }

    /// The audit log's first page and its searches go through indexes: the first page reads the
    /// program's index in order, the search by webhook name reads only the named webhooks'
    /// attempts (their index), the event id its own index, a member's events theirs, and no plan
    /// scans the attempts table.
    #[tokio::test]
    async fn audit_queries_never_scan_the_attempts() {
        let (store, _dir) = plan_store().await;
        let program = store.program.clone();
        let first_page = AttemptQuery {
            limit: 50,
            ..Default::default()
        };
        let steps = plan(
            &store,
            sql::list_attempts_query::<Sqlite>(&program, &first_page, &[]).sql(),
        )
        .await;
        assert!(
            steps.iter().any(|s| s.contains("attempts_program_created")),
            "{steps:?}"
        );
        assert!(
            !steps.iter().any(|s| s.contains("TEMP B-TREE")),
            "read in index order: {steps:?}"
        );
        // With and without another filter (the plain search once walked the program's index).
        for status in [None, Some(crate::domain::delivery::AttemptStatus::Failure)] {
            let search = AttemptQuery {
                search: Some("crm".into()),
                status,
                limit: 50,
                ..Default::default()
            };
            // One whose every name matches (no test of each attempt's name), one renamed.
            let named = [("wh_a", true), ("wh_b", false)].map(|(id, every)| sql::NamedWebhook {
                id: id.to_owned(),
                every_name_matches: every,
            });
            let sql = sql::list_attempts_query::<Sqlite>(&program, &search, &named);
            let steps = plan(&store, sql.sql()).await;
            assert_eq!(
                steps
                    .iter()
                    .filter(|s| s.contains("attempts_webhook_created"))
                    .count(),
                2,
                "one index range per named webhook: {steps:?}"
            );
            for index in [
                "attempts_event_accepted (program_id=? AND event_accepted_at=? AND event_id=?)",
                "attempts_event (program_id=? AND event_id=?)",
            ] {
                assert!(
                    steps.iter().any(|s| s.contains(index)),
                    "the event id through {index}: {steps:?}"
                );
            }
            assert!(
                steps.iter().any(|s| s.contains("events_member")),
                "a member's events through their index: {steps:?}"
            );
            assert!(
                !steps.iter().any(|s| s.contains("attempts_program_created")),
                "{steps:?}"
            );
            let names = sql::webhook_names_query::<Sqlite>(&program, &search, "crm");
            for steps in [steps, plan(&store, names.sql()).await] {
                assert!(
                    !steps
                        .iter()
                        .any(|s| s.starts_with("SCAN a") || s.contains("SCAN attempts")),
                    "{steps:?}"
                );
            }
        }
    }

    /// A store on a new (or existing) database file `name` in `dir`.
    async fn open_in(dir: &tempfile::TempDir, name: &str) -> SqliteStore {
        let path = dir.path().join(name);
        SqliteStore::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap()
    }

    /// A store on a new file in `dir`, and a maker of new `points.awarded` events for its
    /// default program, which no webhook subscribes to.
    async fn store_with_events(dir: &tempfile::TempDir) -> (SqliteStore, impl Fn() -> IngestItem) {
        use crate::domain::event::EventType;
        use crate::domain::ids::EventId;
        let store = open_in(dir, "herald.db").await;
        let program = store.program.clone();
        let event_type = EventType::parse("points.awarded").unwrap();
        let version = crate::store::Store::subscribers(&store, &program, event_type.as_str())
            .await
            .unwrap()
            .version;
        let event = move || {
            let now = crate::store::now();
            IngestItem {
                event: StoredEvent {
                    program_id: program.clone(),
                    member: None,
                    id: EventId::generate(),
                    event_type: event_type.clone(),
                    event_timestamp: now,
                    body: "{}".into(),
                    created_at: now,
                },
                targets: Vec::new(),
                routing_version: version,
            }
        };
        (store, event)
    }

    /// Events and results written together are one transaction: a result that cannot be written
    /// (its webhook does not exist) takes the events of the same transaction down with it, and
    /// the events alone then store as usual. Nothing is half-written.
    #[tokio::test]
    async fn events_and_results_share_one_transaction() {
        use crate::delivery::queue::{NextStep, Outcome};
        let dir = tempfile::tempdir().unwrap();
        let (store, event) = store_with_events(&dir).await;
        let now = crate::store::now();
        let item = event();
        let stray = Outcome {
            delivery_id: DeliveryId::generate(),
            claim_count: 1,
            ordered: false,
            next: NextStep::Succeeded,
            attempt: NewAttempt::sample_success(
                item.event.program_id.clone(),
                item.event.id.clone(),
                item.event.event_type.clone(),
                now,
            ),
        };
        let events = || async {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM events")
                .fetch_one(&store.write_pool)
                .await
                .unwrap()
        };
        let shared = crate::store::Store::ingest_and_record(
            &store,
            std::slice::from_ref(&item),
            std::slice::from_ref(&stray),
            now,
        )
        .await;
        assert!(shared.is_err(), "{shared:?}");
        assert_eq!(events().await, 0, "the event went down with the result");
        let alone = crate::store::Store::ingest_batch(&store, std::slice::from_ref(&item))
            .await
            .unwrap();
        assert_eq!(alone, vec![Some(0)]);
        assert_eq!(events().await, 1);
    }

    /// A write's transaction is begun and committed inside its scripts, which sqlx does not
    /// see: a write dropped at any point (its task cancelled) must neither leave the writer
    /// inside that transaction nor half of the write behind. Each round drops a write after one
    /// more of its steps (it is polled again only when woken, so every poll is one step on), then
    /// writes the same event again: it is stored exactly once, whether the dropped write had
    /// committed or not.
    #[tokio::test]
    async fn a_write_dropped_part_way_leaves_nothing_half_done() {
        use std::future::Future;
        let dir = tempfile::tempdir().unwrap();
        let (store, event) = store_with_events(&dir).await;
        struct Woken(tokio::sync::Notify);
        impl futures::task::ArcWake for Woken {
            fn wake_by_ref(me: &std::sync::Arc<Self>) {
                me.0.notify_one();
            }
        }
        let woken = std::sync::Arc::new(Woken(tokio::sync::Notify::new()));
        let waker = futures::task::waker(woken.clone());
        let mut cx = std::task::Context::from_waker(&waker);
        let mut committed_before_drop = 0;
        for polls in 0..48 {
            let item = event();
            {
                let mut write = Box::pin(crate::store::Store::ingest_batch(
                    &store,
                    std::slice::from_ref(&item),
                ));
                for _ in 0..polls {
                    if write.as_mut().poll(&mut cx).is_ready() {
                        break;
                    }
                    woken.0.notified().await;
                }
            }
            let again = crate::store::Store::ingest_batch(&store, std::slice::from_ref(&item))
                .await
                .unwrap_or_else(|e| panic!("after a write dropped at poll {polls}: {e}"));
            match again.as_slice() {
                [Some(0)] => {}
                [None] => committed_before_drop += 1,
                other => panic!("after a write dropped at poll {polls}: {other:?}"),
            }
            let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
                .fetch_one(&store.write_pool)
                .await
                .unwrap();
            assert_eq!(stored, polls + 1, "every event stored once");
        }
        assert!(
            committed_before_drop > 0,
            "some writes ran to their commit before the drop"
        );
    }
}
