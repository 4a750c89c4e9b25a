//! SQL and row mapping shared by both backends. Both dialects accept `$n` placeholders,
//! `RETURNING`, row-value comparisons and `string_agg(... ORDER BY ...)`, so most statements are
//! written once here; a backend writes its own only where the engines truly differ (claiming).

use super::model::*;
pub use super::rows::*;
use super::Result;
use crate::delivery::queue::{NextStep, Outcome};
use crate::domain::delivery::DeliveryStatus;
use crate::domain::ids::{DeliveryId, ProgramId, WebhookId};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{Database, Encode, IntoArguments, QueryBuilder, Type};
use std::borrow::Cow;

/// A time bound in the hot path's statements (events, deliveries, results, attempts): on SQLite
/// the same text sqlx writes for a `DateTime<Utc>`, written without `core::fmt`
/// (`domain::rfc3339`); on PostgreSQL exactly sqlx's own binary `timestamptz`.
#[derive(Debug, Clone, Copy)]
pub struct Stamp(pub DateTime<Utc>);

impl Type<sqlx::Sqlite> for Stamp {
    fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
        <DateTime<Utc> as Type<sqlx::Sqlite>>::type_info()
    }
    fn compatible(ty: &sqlx::sqlite::SqliteTypeInfo) -> bool {
        <DateTime<Utc> as Type<sqlx::Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, sqlx::Sqlite> for Stamp {
    fn encode_by_ref(
        &self,
        buf: &mut Vec<sqlx::sqlite::SqliteArgumentValue<'q>>,
    ) -> std::result::Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        let mut text = String::with_capacity(32);
        crate::domain::rfc3339::push(&mut text, &self.0, false);
        <String as Encode<'q, sqlx::Sqlite>>::encode(text, buf)
    }
}

impl Type<sqlx::Postgres> for Stamp {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <DateTime<Utc> as Type<sqlx::Postgres>>::type_info()
    }
    fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <DateTime<Utc> as Type<sqlx::Postgres>>::compatible(ty)
    }
}

impl Encode<'_, sqlx::Postgres> for Stamp {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> std::result::Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <DateTime<Utc> as Encode<'_, sqlx::Postgres>>::encode_by_ref(&self.0, buf)
    }
}

/// Columns of a webhook with its subscriptions folded into one comma-separated string.
pub const WEBHOOK_COLUMNS: &str = "w.id, w.program_id, w.name, w.url, w.method, w.description, \
    w.auth_kind, w.auth_param, w.secrets, w.filter, w.retry_attempts, w.retry_delay_seconds, \
    w.retry_backoff, w.timeout_seconds, w.rate_limit_per_second, w.sandbox, w.enabled, w.version, \
    w.total_attempts, w.successful_attempts, w.last_success_at, w.last_failure_at, \
    w.last_attempt_failed, w.created_at, w.updated_at, w.disabled_reason, w.failing_since, \
    w.failures_in_a_row, w.headers, w.ordering_key, w.enabled_at, (SELECT string_agg(s.event_type, ',' ORDER BY s.event_type) FROM subscriptions s \
     WHERE s.webhook_id = w.id) AS event_types";

pub const INSERT_WEBHOOK: &str = "INSERT INTO webhooks (id, program_id, name, url, method, \
    description, auth_kind, auth_param, secrets, filter, retry_attempts, retry_delay_seconds, \
    retry_backoff, timeout_seconds, rate_limit_per_second, sandbox, enabled, headers, ordering_key, \
    created_at, updated_at, enabled_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $20)";

pub const UPDATE_WEBHOOK: &str = "UPDATE webhooks SET name = $3, url = $4, method = $5, \
    description = $6, auth_kind = $7, auth_param = $8, secrets = $9, filter = $10, \
    retry_attempts = $11, retry_delay_seconds = $12, retry_backoff = $13, timeout_seconds = $14, \
    rate_limit_per_second = $15, sandbox = $16, enabled = $17, headers = $18, ordering_key = $19, \
    updated_at = $20, enabled_at = CASE WHEN $17 AND NOT enabled THEN $20 ELSE enabled_at END, \
    disabled_reason = CASE WHEN $17 THEN NULL ELSE disabled_reason END, \
    failing_since = CASE WHEN $17 AND NOT enabled THEN NULL ELSE failing_since END, \
    failures_in_a_row = CASE WHEN $17 AND NOT enabled THEN 0 ELSE failures_in_a_row END, \
    version = version + 1 \
    WHERE id = $1 AND program_id = $2 AND deleted_at IS NULL AND version = $21";

/// Dead-letters, up to `$5` at a time, the deliveries a switched-off webhook holds (the admin
/// chose to discard them when switching it on). Only while it is still off, so nothing already
/// resumed is touched.
pub fn discard_held_step(in_set: (&str, &str)) -> String {
    let (start, end) = in_set;
    format!(
        "UPDATE deliveries SET status = 'failed', last_error = $3, updated_at = $4 \
         WHERE status = 'pending' AND id {start}\
         SELECT d.id FROM deliveries d WHERE d.webhook_id = $1 AND d.program_id = $2 \
         AND d.status = 'pending' \
         AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = $1 AND NOT w.enabled) \
         ORDER BY d.next_attempt_at LIMIT $5{end}"
    )
}

/// Pending and in-flight deliveries, for the queue gauges: the pending ones counted in an index
/// of pending deliveries only (the due index, or the webhooks' pending index), the ones in flight
/// in the lease index. (One count over every
/// status read the whole deliveries table at each scrape: 274 ms for 1,000,000 on SQLite, and
/// the table keeps the retention window's history.)
pub const UNFINISHED_COUNTS: &str = "SELECT CAST('pending' AS TEXT), COUNT(*) FROM deliveries \
    WHERE status = 'pending' \
    UNION ALL SELECT CAST('in_flight' AS TEXT), COUNT(*) FROM deliveries WHERE status = 'in_flight'";

/// The condition of `deliveries_program_status` (migration 0030): deliveries in flight are read
/// through their leases instead. SQLite uses a partial index only for a query that has its
/// condition as written, so every read of that index carries this term.
pub const NOT_IN_FLIGHT: &str = "d.status <> 'in_flight'";

/// Dead letters, counted program by program in the index that starts with the program and
/// status.
pub const DEAD_LETTER_COUNT: &str = "SELECT CAST(COALESCE(SUM((SELECT COUNT(*) FROM deliveries d \
    WHERE d.program_id = p.id AND d.status = 'failed' AND d.status <> 'in_flight')), 0) \
    AS BIGINT) FROM programs p";

/// Ids bound in one `IN` list by the per-webhook look-ups of the lists and the flag check: well
/// within SQLite's and PostgreSQL's limits on bound values, whatever a program holds.
pub const IDS_PER_STATEMENT: usize = 500;

/// The most held deliveries counted for one webhook: a list says "10,000+ held" beyond it, so a
/// webhook holding a million costs a page of the list what one holding ten thousand does (a
/// full count read a million index entries at every refresh of the console).
pub const HELD_COUNT_LIMIT: i64 = 10_000;

/// Deliveries waiting for each switched-off webhook among `ids` of `program`, counted up to one
/// more than `limit` (so "more than the limit" can be told apart).
pub fn held_counts_query<'a, DB>(
    program: &ProgramId,
    ids: &[WebhookId],
    limit: i64,
) -> QueryBuilder<'a, DB>
where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    // In the pending index's own order (see the steps below): a plan made for any webhook
    // stays on it even where one webhook owns most of the table.
    let mut qb = QueryBuilder::new(
        "SELECT w.id, (SELECT COUNT(*) FROM (SELECT 1 FROM deliveries d \
         WHERE d.webhook_id = w.id AND d.status = 'pending' ORDER BY d.next_attempt_at LIMIT ",
    );
    qb.push_bind(limit + 1)
        .push(") AS held) FROM webhooks w WHERE w.program_id = ")
        .push_bind(program.to_string())
        .push(" AND NOT w.enabled AND w.deleted_at IS NULL AND w.id IN ");
    push_list(&mut qb, ids);
    qb
}

/// Each switched-on webhook among `ids` of `program` (every one when `scope` is `None`): its
/// id, when it was last switched on, and when its oldest waiting delivery fell due (NULL: none
/// waiting; held ones come last in its pending index), from the first entry of its pending index.
pub fn first_pending_query<'a, DB>(
    scope: Option<(&ProgramId, &[WebhookId])>,
) -> QueryBuilder<'a, DB>
where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    let mut qb = QueryBuilder::new(
        "SELECT w.id, w.enabled_at, (SELECT d.next_attempt_at FROM deliveries d \
         WHERE d.webhook_id = w.id AND d.status = 'pending' ORDER BY d.next_attempt_at LIMIT 1) \
         FROM webhooks w WHERE w.enabled AND w.deleted_at IS NULL",
    );
    if let Some((program, ids)) = scope {
        qb.push(" AND w.program_id = ")
            .push_bind(program.to_string())
            .push(" AND w.id IN ");
        push_list(&mut qb, ids);
    }
    qb
}

/// Webhooks among `ids` whose every live try has failed since `since` or earlier, at least
/// `min_failures` times in a row, and that are still on: the ones to switch off for sustained
/// failure.
pub fn sustained_failures_query<'a, DB>(
    ids: &[WebhookId],
    since: DateTime<Utc>,
    min_failures: i64,
) -> QueryBuilder<'a, DB>
where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    let mut qb = QueryBuilder::new(
        "SELECT id, program_id, name, failing_since, failures_in_a_row FROM webhooks \
         WHERE enabled AND deleted_at IS NULL AND failing_since <= ",
    );
    qb.push_bind(since);
    qb.push(" AND failures_in_a_row >= ");
    qb.push_bind(min_failures);
    qb.push(" AND id IN ");
    push_list(&mut qb, ids);
    qb
}

/// Switches a live, enabled webhook off with a reason (see `Store::auto_disable_webhook`).
pub const AUTO_DISABLE: &str = "UPDATE webhooks SET enabled = FALSE, disabled_reason = $3, \
    updated_at = $4, version = version + 1 \
    WHERE id = $1 AND program_id = $2 AND enabled AND deleted_at IS NULL RETURNING version";

/// A program's subscriber-list version.
pub fn push_routing_version<'a, DB>(qb: &mut Sql<'a, DB>, program: &str, lock: &str)
where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    qb.push("SELECT webhooks_version FROM programs WHERE id = ")
        .push_bind(program.to_owned())
        .push(lock);
}

/// Every change to a program's webhooks moves its subscriber-list version (see `ingest_batch`).
pub const BUMP_ROUTING_VERSION: &str =
    "UPDATE programs SET webhooks_version = webhooks_version + 1 WHERE id = $1";

pub const DELETE_SUBSCRIPTIONS: &str = "DELETE FROM subscriptions WHERE webhook_id = $1";
pub const INSERT_SUBSCRIPTION: &str =
    "INSERT INTO subscriptions (webhook_id, program_id, event_type) VALUES ($1, $2, $3)";

pub const SOFT_DELETE_WEBHOOK: &str = "UPDATE webhooks SET deleted_at = $3, enabled = FALSE, \
    updated_at = $3, version = version + 1 WHERE id = $1 AND program_id = $2 AND deleted_at IS NULL";
/// Deliveries of a deleted webhook stop: they end as failed with a clear reason. The claimed ones
/// (found among the leases) go with the deletion; the pending ones, any number, follow in steps
/// (`cancel_step`).
pub const CANCEL_IN_FLIGHT: &str = "UPDATE deliveries SET status = 'failed', \
    last_error = 'webhook deleted', lease_expires_at = NULL, updated_at = $2 \
    WHERE status = 'in_flight' AND webhook_id = $1";

/// One step of ending a deleted webhook's (`$1`) pending deliveries, up to `$3` of them, as
/// failed at `$2` (see `HELD_PER_STEP`).
pub fn cancel_step(in_set: (&str, &str)) -> String {
    let (start, end) = in_set;
    format!(
        "UPDATE deliveries SET status = 'failed', last_error = 'webhook deleted', \
         lease_expires_at = NULL, updated_at = $2 WHERE status = 'pending' AND id {start}\
         SELECT d.id FROM deliveries d WHERE d.webhook_id = $1 AND d.status = 'pending' \
         AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = $1 AND w.deleted_at IS NOT NULL) \
         ORDER BY d.next_attempt_at LIMIT $3{end}"
    )
}

/// Statements that make one step of a transaction: none needs another's result, and each one's
/// rows are read after all of them ran. Where the backend takes scripts and the write carries at
/// most `SCRIPT_ROWS` events and results, they go as one script, on one trip to the connection.
/// That is for SQLite: sqlx runs each SQLite connection on a thread of its own, and
/// every statement sent on its own is a hand-over to that thread and back; a shared transaction
/// of one event and one result was eleven of them, four as scripts. At 1,000 events/s that cut
/// the transaction from 0.95 to 0.64 ms and the p50 latency from 1.8 to 1.0 ms (README,
/// Benchmarks, tenth sitting). Only small writes go together (`SCRIPT_ROWS`): a script's text
/// combines every statement's row count, and the many texts of larger batches churned the
/// connection's cache of prepared statements (flat out it was 7% slower). PostgreSQL takes one
/// statement with parameters per message, so there they go one after another (its hot paths
/// are single statements anyway). Where scripts are taken, the transaction's BEGIN and COMMIT
/// ride in the first and last query whatever the write's size (`begin`, `commit`).
pub struct Statements<'a, DB: Database> {
    together: bool,
    queries: Vec<Sql<'a, DB>>,
    count: usize,
    /// A leading `BEGIN` and a trailing `COMMIT` whose answers are not the caller's.
    begins: bool,
    commits: bool,
}

/// Most events and results together that a write sends as scripts (see `Statements`).
pub const SCRIPT_ROWS: usize = 4;

impl<'a, DB: Database> Statements<'a, DB> {
    /// Statements of a write of `rows` events and results, on a backend that takes scripts or not.
    pub fn new(scripts: bool, rows: usize) -> Self {
        Self {
            together: scripts && rows <= SCRIPT_ROWS,
            queries: Vec::new(),
            count: 0,
            begins: false,
            commits: false,
        }
    }

    /// Opens the transaction in the same script as the first statement (see `OpenTransaction`).
    /// Called before any statement; only on a backend that takes scripts.
    pub fn begin(&mut self) {
        debug_assert!(self.queries.is_empty(), "BEGIN comes first");
        self.queries.push(Sql::new("BEGIN"));
        self.count += 1;
        self.begins = true;
    }

    /// Commits the transaction in the same script as the last statement (see `OpenTransaction`).
    /// Called after every statement; only on a backend that takes scripts.
    pub fn commit(&mut self) {
        match self.queries.last_mut() {
            Some(script) => {
                script.push("; COMMIT");
            }
            None => self.queries.push(Sql::new("COMMIT")),
        }
        self.count += 1;
        self.commits = true;
    }

    /// Starts the next statement and gives its builder; its rows come back at this index.
    pub fn next(&mut self) -> &mut Sql<'a, DB> {
        // The first statement after `begin` joins it even when statements go apart.
        let joins = self.together || (self.begins && self.count == 1);
        self.count += 1;
        if joins && !self.queries.is_empty() {
            let script = self.queries.last_mut().expect("not empty");
            script.push("; ");
            return script;
        }
        self.queries.push(Sql::new(""));
        self.queries.last_mut().expect("just pushed")
    }

    /// How many statements were started (the caller's, without `begin` and `commit`).
    pub fn len(&self) -> usize {
        self.count - usize::from(self.begins) - usize::from(self.commits)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The queries to run, in order (one when `together`), how many statements they hold, and
    /// which of those answers are the transaction's own.
    pub fn into_queries(self) -> (Vec<QueryBuilder<'a, DB>>, usize, Framing)
    where
        <DB as Database>::Arguments<'a>: IntoArguments<'a, DB>,
    {
        let framing = Framing {
            begins: self.begins,
            commits: self.commits,
        };
        let queries = self.queries.into_iter().map(Sql::into_builder).collect();
        (queries, self.count, framing)
    }
}

/// One statement of the hot path's writes (or a script of them): its text and its bound values,
/// built the way `QueryBuilder` builds them but with the text appended as it is. `QueryBuilder`
/// writes every fragment through `core::fmt` (`push` takes any `Display`, and a list's separator
/// goes through `format_args!`): with the copies made to bind values, the text and binds of a
/// write came to 33,857 instructions a delivery in callgrind, 10,785 this way (README,
/// Benchmarks, thirty-eighth sitting). Run as a `QueryBuilder` made from both (`into_builder`).
pub struct Sql<'a, DB: Database> {
    text: String,
    args: <DB as Database>::Arguments<'a>,
}

impl<'a, DB: Database> Sql<'a, DB> {
    pub fn new(text: &str) -> Self {
        let mut sql = String::with_capacity(256.max(text.len()));
        sql.push_str(text);
        Self {
            text: sql,
            args: Default::default(),
        }
    }

    /// Appends SQL text (never a value: those are bound).
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Binds a value and appends its placeholder (`?`, or `$n` on PostgreSQL).
    pub fn push_bind<T>(&mut self, value: T) -> &mut Self
    where
        T: 'a + Encode<'a, DB> + Type<DB>,
    {
        use sqlx::Arguments;
        // Neither fails for the types bound here; `QueryBuilder::push_bind` panics alike.
        self.args.add(value).expect("a value binds");
        self.args
            .format_placeholder(&mut self.text)
            .expect("a placeholder is written");
        self
    }

    /// `VALUES (…), (…)`: one tuple per item, its values written by `push_tuple`.
    pub fn push_values<I, F>(&mut self, tuples: I, mut push_tuple: F) -> &mut Self
    where
        I: IntoIterator,
        F: FnMut(Tuple<'_, 'a, DB>, I::Item),
    {
        self.text.push_str("VALUES ");
        for (i, tuple) in tuples.into_iter().enumerate() {
            self.text.push_str(if i == 0 { "(" } else { ", (" });
            push_tuple(
                Tuple {
                    sql: self,
                    separate: false,
                },
                tuple,
            );
            self.text.push(')');
        }
        self
    }

    /// The statement as sqlx runs it.
    pub fn into_builder(self) -> QueryBuilder<'a, DB>
    where
        <DB as Database>::Arguments<'a>: IntoArguments<'a, DB>,
    {
        QueryBuilder::with_arguments(self.text, self.args)
    }
}

/// One tuple of `Sql::push_values`: values separated by commas.
pub struct Tuple<'s, 'a, DB: Database> {
    sql: &'s mut Sql<'a, DB>,
    separate: bool,
}

impl<'a, DB: Database> Tuple<'_, 'a, DB> {
    fn separator(&mut self) {
        if self.separate {
            self.sql.text.push_str(", ");
        }
        self.separate = true;
    }

    /// The next value's SQL text (after a comma, unless it is the first).
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.separator();
        self.sql.push(text);
        self
    }

    /// SQL text that continues the current value.
    pub fn push_unseparated(&mut self, text: &str) -> &mut Self {
        self.sql.push(text);
        self
    }

    /// The next value, bound.
    pub fn push_bind<T>(&mut self, value: T) -> &mut Self
    where
        T: 'a + Encode<'a, DB> + Type<DB>,
    {
        self.separator();
        self.sql.push_bind(value);
        self
    }

    /// A value bound inside the current one.
    pub fn push_bind_unseparated<T>(&mut self, value: T) -> &mut Self
    where
        T: 'a + Encode<'a, DB> + Type<DB>,
    {
        self.sql.push_bind(value);
        self
    }
}

/// Whether a step's queries open or close its transaction (`Statements::begin`, `commit`).
#[derive(Clone, Copy)]
pub struct Framing {
    begins: bool,
    commits: bool,
}

impl Framing {
    /// The caller's answers among every statement's (in order).
    pub fn own<T>(self, mut answers: Vec<T>) -> Vec<T> {
        if self.commits {
            answers.pop();
        }
        if self.begins && !answers.is_empty() {
            answers.remove(0);
        }
        answers
    }
}

/// A transaction that `Statements::begin` opens and `Statements::commit` closes inside the
/// scripts of its first and last steps: on SQLite a transaction of two steps then takes two
/// hand-overs to the connection's thread instead of four (sqlx's `begin` and `commit` are one
/// each). sqlx does not know the connection is inside a transaction, so this guard makes sure
/// none is left open: `finish` gives the connection back to the pool after the commit or a
/// rollback; dropped before that (the write failed and could not roll back, or its task was
/// cancelled), the connection is closed instead, which rolls the transaction back.
pub struct OpenTransaction<DB: Database> {
    conn: Option<sqlx::pool::PoolConnection<DB>>,
}

impl<DB: Database> OpenTransaction<DB> {
    pub fn new(conn: sqlx::pool::PoolConnection<DB>) -> Self {
        Self { conn: Some(conn) }
    }

    pub fn conn(&mut self) -> &mut DB::Connection {
        self.conn
            .as_mut()
            .expect("an open transaction has its connection")
    }

    /// The transaction ended (committed or rolled back): the connection goes back to the pool.
    pub fn finish(mut self) {
        self.conn.take();
    }
}

impl<DB: Database> Drop for OpenTransaction<DB> {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            conn.close_on_drop();
        }
    }
}

/// Most rows one multi-row INSERT carries (SQLite allows 32766 bound values per statement).
pub const MAX_ROWS_PER_INSERT: usize = 1000;

/// A remainder this short goes as one statement, whatever its length (see `sized_chunks`).
pub const EXACT_CHUNK: usize = 16;

/// `items` in order, in chunks of at most `max`: a remainder of up to `EXACT_CHUNK` items as one
/// chunk, longer ones in chunks whose lengths are powers of two (100 rows go as 64, 32 and 4). A
/// multi-row statement's text depends on its row count, and each connection keeps (up to a
/// hundred of) the statements it prepared: chunks of any length could fill that cache with large
/// statements of every length; powers of two leave a handful per kind, reused. The small ones,
/// of every length, are what group commits of a few events write, so each takes one round trip
/// (7 rows as 4 + 2 + 1 cost three).
pub fn sized_chunks<T>(items: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    let largest = if max == 0 {
        1
    } else {
        1 << (usize::BITS - 1 - max.leading_zeros())
    };
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let len = if rest.len() <= EXACT_CHUNK {
            rest.len().min(max.max(1))
        } else {
            largest.min(1 << (usize::BITS - 1 - rest.len().leading_zeros()))
        };
        let (chunk, tail) = rest.split_at(len);
        rest = tail;
        Some(chunk)
    })
}

/// The subscriber-list version each program's events in `batch` were routed with; a batch that
/// names two versions for one program was partly routed from a replaced list (`StaleRouting`).
pub fn routed_versions(batch: &[IngestItem]) -> Result<std::collections::HashMap<&str, i64>> {
    let mut expected = std::collections::HashMap::new();
    for item in batch {
        let v = expected
            .entry(item.event.program_id.as_str())
            .or_insert(item.routing_version);
        if *v != item.routing_version {
            return Err(super::StoreError::StaleRouting);
        }
    }
    Ok(expected)
}

/// `INSERT INTO events … VALUES (…), (…) ON CONFLICT DO NOTHING RETURNING program_id, id`: the
/// returned keys are the events that were new.
pub fn push_insert_events<'a, DB>(qb: &mut Sql<'a, DB>, batch: &'a [IngestItem])
where
    DB: Database,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> Stamp: Encode<'q, DB> + Type<DB>,
{
    qb.push(
        "INSERT INTO events (program_id, id, event_type, event_timestamp, body, created_at, member) ",
    );
    qb.push_values(batch, |mut row, item| {
        let e = &item.event;
        row.push_bind(e.program_id.as_str())
            .push_bind(e.id.as_str())
            .push_bind(e.event_type.as_str())
            .push_bind(Stamp(e.event_timestamp))
            .push_bind(e.body.as_str())
            .push_bind(Stamp(e.created_at))
            .push_bind(e.member.as_deref());
    });
    qb.push(" ON CONFLICT DO NOTHING RETURNING program_id, id");
}

/// When the pending deliveries of a switched-off webhook are due (see
/// `domain::delivery::held_due`).
pub use crate::domain::delivery::held_due;

/// Rows one step of holding, releasing or discarding a webhook's held deliveries moves. Each
/// step is its own short transaction: in one statement, switching on a webhook holding
/// 1,000,000 deliveries kept the program's subscriber list locked (PostgreSQL) or the only writer
/// busy (SQLite) for 16 seconds, and every ingest of the program waited that long.
pub const HELD_PER_STEP: i64 = 5_000;

// The steps' `ORDER BY d.next_attempt_at` over a range of it (held ones: `>= held_due()`, the
// latest due time there is) is the webhook's pending index's own order: it keeps a plan made
// for any webhook (PostgreSQL's writer uses generic plans) on that index. Without it, where
// most deliveries were one webhook's, the plan read the table from its start up to the first
// rows still to move, and each step read further (a release of 1,000,000 took 106 s).

/// One step of holding a switched-off webhook's pending deliveries (`$1`), up to `$3` of them,
/// due at `$2` (`held_due()`); nothing once it is on again. `in_set`: the backend's way of
/// matching a set of ids (see `retention::sql`).
pub fn hold_step(in_set: (&str, &str)) -> String {
    let (start, end) = in_set;
    format!(
        "UPDATE deliveries SET next_attempt_at = $2 \
         WHERE status = 'pending' AND next_attempt_at < $2 AND id {start}\
         SELECT d.id FROM deliveries d WHERE d.webhook_id = $1 AND d.status = 'pending' \
         AND d.next_attempt_at < $2 \
         AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = $1 AND NOT w.enabled) \
         ORDER BY d.next_attempt_at LIMIT $3{end}"
    )
}

/// One step of releasing what a webhook (`$1`) held once it is on: up to `$3` deliveries due
/// at `$2` become due at their acceptance time; nothing while it is off.
pub fn release_step(in_set: (&str, &str)) -> String {
    let (start, end) = in_set;
    format!(
        "UPDATE deliveries SET next_attempt_at = created_at \
         WHERE status = 'pending' AND next_attempt_at >= $2 AND id {start}\
         SELECT d.id FROM deliveries d WHERE d.webhook_id = $1 AND d.status = 'pending' \
         AND d.next_attempt_at >= $2 \
         AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = $1 AND w.enabled) \
         ORDER BY d.next_attempt_at LIMIT $3{end}"
    )
}

/// Webhooks whose pending deliveries do not match their state yet (`$1`: `held_due()`): off
/// with some not held, on with some still held, deleted with some left. A change is committed
/// before its steps run, so a process that stopped between them leaves these behind.
pub const UNSETTLED_WEBHOOKS: &str = "SELECT w.id FROM webhooks w WHERE \
    CASE WHEN w.deleted_at IS NOT NULL \
    THEN EXISTS (SELECT 1 FROM deliveries d WHERE d.webhook_id = w.id AND d.status = 'pending') \
    WHEN w.enabled \
    THEN EXISTS (SELECT 1 FROM deliveries d WHERE d.webhook_id = w.id AND d.status = 'pending' \
        AND d.next_attempt_at = $1) \
    ELSE EXISTS (SELECT 1 FROM deliveries d WHERE d.webhook_id = w.id AND d.status = 'pending' \
        AND d.next_attempt_at < $1) END";

/// One pending delivery per (event, webhook) pair; one for a switched-off webhook is held (due
/// at `held_due()`); one with a lease is stored already claimed by the ingesting process.
pub fn push_insert_deliveries<'a, DB>(
    qb: &mut Sql<'a, DB>,

    rows: &[(&'a StoredEvent, &'a DeliveryTarget)],
) where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Stamp: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Stamp>: Encode<'q, DB> + Type<DB>,
{
    qb.push(
        "INSERT INTO deliveries (id, program_id, webhook_id, event_id, trigger, status, \
         next_attempt_at, created_at, updated_at, ordering_key, claim_count, lease_expires_at) ",
    );
    qb.push_values(rows, |mut row, (e, t)| {
        let w = &t.webhook;
        match &t.lease {
            Some(l) => row.push_bind(l.delivery.as_str()),
            None => row.push_bind(DeliveryId::generate().to_string()),
        };
        row.push_bind(e.program_id.as_str())
            .push_bind(w.as_str())
            .push_bind(e.id.as_str())
            .push_bind("event");
        match &t.lease {
            // Owned by the ingesting process: its first claim, taken at the insert. Only a
            // switched-on webhook's deliveries are owned (ingest knows it from the subscriber
            // list, whose version the transaction checks).
            Some(_) => row.push_bind("in_flight").push_bind(Stamp(e.created_at)),
            None => row
                .push_bind("pending")
                .push("CASE WHEN (SELECT hw.enabled FROM webhooks hw WHERE hw.id = ")
                .push_bind_unseparated(w.as_str())
                .push_unseparated(") THEN ")
                .push_bind_unseparated(Stamp(e.created_at))
                .push_unseparated(" ELSE ")
                .push_bind_unseparated(Stamp(held_due()))
                .push_unseparated(" END"),
        };
        row.push_bind(Stamp(e.created_at))
            .push_bind(Stamp(e.created_at))
            .push_bind(t.ordering_key.as_deref())
            .push_bind(i64::from(t.lease.is_some()))
            .push_bind(t.lease.as_ref().map(|l| Stamp(l.until)));
    });
}

/// Deliveries finished per `push_finish_deliveries` statement (5 values each).
pub const FINISHED_PER_UPDATE: usize = 1000;

/// One `UPDATE … FROM (VALUES …)` moving a batch of claimed deliveries on, each only while its
/// claim is still the current one; returns the ids it moved (their results count, the rest were
/// superseded). Written so SQLite (3.35+) and PostgreSQL read it alike: the values are a CTE with
/// named columns, none of which shadows a `deliveries` column.
pub fn push_finish_deliveries<'a, DB>(
    qb: &mut Sql<'a, DB>,

    results: &'a [Outcome],
    now: DateTime<Utc>,
) where
    DB: Database,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Cow<'q, str>>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Stamp: Encode<'q, DB> + Type<DB>,
{
    qb.push("WITH v (v_id, v_claim, v_status, v_next, v_error) AS (");
    qb.push_values(results, |mut row, r| {
        let (status, next_at) = next_state(r.next, now);
        row.push_bind(r.delivery_id.as_str())
            .push_bind(r.claim_count)
            .push_bind(status)
            .push_bind(Stamp(next_at))
            .push_bind(r.attempt.error.as_deref().map(storable_cow));
    });
    qb.push(
        ") UPDATE deliveries SET status = v.v_status, tries = tries + 1, \
         next_attempt_at = v.v_next, lease_expires_at = NULL, last_error = v.v_error, updated_at = ",
    )
    .push_bind(Stamp(now))
    .push(" FROM v WHERE ")
    .push(STILL_CLAIMED)
    .push(" RETURNING id, claim_count");
}

/// The claim fence of a write that moves claimed deliveries (`v`: each delivery's id and the
/// claim it was taken under): only a delivery still in flight under that very claim is moved; one
/// taken over by a later claim is left to it.
const STILL_CLAIMED: &str = "deliveries.id = v.v_id AND deliveries.claim_count = v.v_claim \
    AND deliveries.status = 'in_flight'";

/// Claims released per `push_release_deliveries` statement (2 values each).
pub const RELEASED_PER_UPDATE: usize = 1000;

/// Gives untried claims back, as one `UPDATE … FROM (VALUES …)` for many: each pending again
/// with the same due time (so the same place in line), or held with the rest of its webhook's
/// deliveries if that is switched off by now (`held_due()`); a claim taken over meanwhile (its
/// count moved on) is left alone. One statement per delivery made a line of 20,000 given back
/// 20,000 hand-overs to SQLite's writer inside one transaction, every ingest waiting behind it.
pub fn push_release_deliveries<'a, DB>(
    qb: &mut QueryBuilder<'a, DB>,
    claims: &[(DeliveryId, i64)],
    now: DateTime<Utc>,
) where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Stamp: Encode<'q, DB> + Type<DB>,
{
    qb.push("WITH v (v_id, v_claim) AS (");
    qb.push_values(claims, |mut row, (id, claim)| {
        row.push_bind(id.to_string()).push_bind(*claim);
    });
    qb.push(") UPDATE deliveries SET status = 'pending', lease_expires_at = NULL, updated_at = ")
        .push_bind(Stamp(now))
        .push(
            ", next_attempt_at = CASE WHEN (SELECT w.enabled FROM webhooks w \
         WHERE w.id = deliveries.webhook_id) THEN next_attempt_at ELSE ",
        )
        .push_bind(Stamp(held_due()))
        .push(" END FROM v WHERE ")
        .push(STILL_CLAIMED);
}

/// A finished delivery back in the queue with a fresh budget: due at `$3`, or held (at `$4`,
/// `held_due()`) while its webhook is switched off, like every delivery it gets meanwhile.
pub const REPLAY_DELIVERY: &str = "UPDATE deliveries SET status = 'pending', trigger = 'replay', \
    tries = 0, interruptions = 0, lease_expires_at = NULL, last_error = NULL, updated_at = $3, \
    next_attempt_at = CASE WHEN EXISTS (SELECT 1 FROM webhooks w \
        WHERE w.id = deliveries.webhook_id AND w.enabled) THEN $3 ELSE $4 END \
    WHERE id = $1 AND program_id = $2 AND status IN ('failed', 'succeeded') \
    AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = deliveries.webhook_id AND w.deleted_at IS NULL)";

/// "Retry now" for a delivery waiting for its next retry: due at once, budget unchanged. Not
/// for one its switched-off webhook holds (it goes out when the webhook is switched on).
pub const RETRY_NOW: &str = "UPDATE deliveries SET next_attempt_at = $3, updated_at = $3 \
    WHERE id = $1 AND program_id = $2 AND status = 'pending' \
    AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = deliveries.webhook_id \
        AND w.deleted_at IS NULL AND w.enabled)";

/// A delivery's status and whether its webhook is on, for telling what a replay may do.
pub const DELIVERY_STATUS: &str = "SELECT d.status, w.enabled FROM deliveries d \
    JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = $1 AND d.program_id = $2";

/// Deliveries of a disabled webhook wait (they are neither claimed nor counted as due) until it is
/// enabled again.
/// `exclude` names webhooks whose deliveries the caller is holding back (rate limits); `after`,
/// when given, starts the walk past that time (see `next_due_at`).
pub fn next_due_query<'a, DB>(
    exclude: &[WebhookId],
    leases: bool,
    after: Option<DateTime<Utc>>,
) -> QueryBuilder<'a, DB>
where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    first_due_entry(None, exclude, leases, after)
}

/// The due index's first entry (a switched-on webhook's, not held): when it fell due, and when
/// its webhook was last switched on (see `Store::waiting_since`).
pub fn first_due_query<'a, DB>() -> QueryBuilder<'a, DB>
where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    first_due_entry(Some("d.next_attempt_at, w.enabled_at"), &[], false, None)
}

/// The first entry of the due (or lease) index that qualifies: `select`, or its time.
fn first_due_entry<'a, DB>(
    select: Option<&str>,
    exclude: &[WebhookId],
    leases: bool,
    after: Option<DateTime<Utc>>,
) -> QueryBuilder<'a, DB>
where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    // ORDER BY … LIMIT 1 rather than MIN(): the first entry of the due (or lease) index that
    // qualifies, where MIN over a join read every pending delivery.
    let column = if leases {
        "d.lease_expires_at"
    } else {
        "d.next_attempt_at"
    };
    let select = select.unwrap_or(column);
    let mut qb = QueryBuilder::new(format!(
        "SELECT {select} FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id \
         WHERE {} AND w.enabled",
        if leases {
            "d.status = 'in_flight' AND d.lease_expires_at IS NOT NULL"
        } else {
            // The partial due index's condition, as written (SQLite uses it only then).
            "d.status = 'pending'"
        }
    ));
    if !leases {
        // Held deliveries (a switched-off webhook's) wait at `held_due()`, the far end of the
        // due index: stopping before them keeps a deep hold from being walked, entry by entry,
        // to learn that none of it is due (the webhook join alone filtered them only after
        // reading each one).
        qb.push(" AND d.next_attempt_at < ").push_bind(held_due());
    }
    if let Some(after) = after {
        qb.push(format!(" AND {column} > ")).push_bind(after);
    }
    push_exclusion(&mut qb, exclude);
    qb.push(format!(" ORDER BY {column} LIMIT 1"));
    qb
}

/// Whether any webhook not in `exclude` has a delivery to claim, asked before a claim that leaves
/// webhooks out. The claim walks the due index oldest first and steps over the excluded webhooks'
/// deliveries; when those are a deep backlog and nothing else is due, that walk read the whole
/// backlog for nothing, once per refill of the webhook's waiting room. This asks each other
/// webhook instead (its own index) and the lease index for expired claims.
pub fn any_claimable_query<'a, DB>(
    now: DateTime<Utc>,
    exclude: &[WebhookId],
) -> QueryBuilder<'a, DB>
where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    // The excluded webhooks are left out as webhooks, before their deliveries are looked at:
    // left out as deliveries, each excluded webhook's due backlog was read, entry by entry, to
    // find none of it qualified (measured on PostgreSQL draining a 60,000-delivery backlog: this
    // query was the busiest of all).
    let mut q = QueryBuilder::new("SELECT EXISTS (SELECT 1 FROM webhooks w WHERE w.enabled");
    push_not_in(&mut q, "w.id", exclude);
    q.push(
        " AND EXISTS (SELECT 1 FROM deliveries d WHERE d.webhook_id = w.id \
         AND d.status = 'pending' AND d.next_attempt_at <= ",
    );
    q.push_bind(now);
    q.push(
        ")) OR EXISTS (SELECT 1 FROM deliveries d WHERE d.status = 'in_flight' \
         AND d.lease_expires_at <= ",
    );
    q.push_bind(now);
    push_exclusion(&mut q, exclude);
    q.push(")");
    q
}

/// What a claim takes: pending deliveries that are due (read in the due index), and claims whose
/// lease ran out (read in the lease index: their process died, or gave them up unanswered).
#[derive(Clone, Copy)]
pub enum Claimable {
    Due,
    Expired,
}

/// One of a claim's two reads, from after its `WHERE`: at most `limit` deliveries of `part` due
/// by `now`, oldest first, not of a webhook in `exclude`, and not held back by an older one with
/// the same ordering value. The caller selects from `deliveries d` and checks that the webhook is
/// switched on. The due ones are a range of the due index; the expired claims, a range of the
/// lease index (few).
pub fn push_claimable<DB>(
    qb: &mut QueryBuilder<'_, DB>,
    part: Claimable,
    now: DateTime<Utc>,
    limit: u32,
    exclude: &[WebhookId],
) where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    match part {
        Claimable::Due => qb.push("d.status = 'pending'"),
        Claimable::Expired => qb
            .push("d.status = 'in_flight' AND d.lease_expires_at <= ")
            .push_bind(now),
    };
    qb.push(" AND d.next_attempt_at <= ").push_bind(now);
    push_exclusion(qb, exclude);
    qb.push(ORDERED_CLAIMABLE);
    qb.push(" ORDER BY d.next_attempt_at, d.id LIMIT ")
        .push_bind(i64::from(limit));
}

/// ` AND d.webhook_id NOT IN (…)`, when there is anything to exclude.
pub fn push_exclusion<DB>(qb: &mut QueryBuilder<'_, DB>, exclude: &[WebhookId])
where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    push_not_in(qb, "d.webhook_id", exclude);
}

/// `(v1, v2, …)`: each of `values` bound, for `IN` and `NOT IN`.
pub fn push_list<'a, DB, T>(qb: &mut QueryBuilder<'a, DB>, values: impl IntoIterator<Item = T>)
where
    DB: Database,
    T: ToString,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    qb.push("(");
    let mut list = qb.separated(", ");
    for v in values {
        list.push_bind(v.to_string());
    }
    list.push_unseparated(")");
}

/// ` AND {column} NOT IN (…)`, when there is anything to exclude.
fn push_not_in<DB>(qb: &mut QueryBuilder<'_, DB>, column: &str, exclude: &[WebhookId])
where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    if exclude.is_empty() {
        return;
    }
    qb.push(format!(" AND {column} NOT IN "));
    push_list(qb, exclude);
}

/// Adds a batch of live attempts to each webhook's counters, one row of values per webhook: its
/// attempts and successes, the latest success and the latest failure in the batch (or NULL), the
/// time of the batch's latest attempt and whether it failed. "Last" values only move forward, so
/// batches recorded out of order cannot roll them back. Then whether the batch holds a success,
/// the failures after its last success (or all of them) and the first of those: the run of
/// failures restarts after a success and grows otherwise.
pub fn push_bump_counters<'a, DB>(qb: &mut Sql<'a, DB>, tallies: &[(&WebhookId, &Tally)])
where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    qb.push(
        "WITH c (c_id, c_attempts, c_successes, c_success, c_failure, c_latest, c_failed, \
         c_reset, c_trailing, c_since) AS (",
    );
    qb.push_values(tallies, |mut row, (webhook, t)| {
        let (latest_at, latest_failed) = t.latest.expect("a tally has at least one attempt");
        row.push_bind(webhook.to_string())
            .push_bind(t.attempts)
            .push_bind(t.successes)
            .push_bind(t.last_success)
            .push_bind(t.last_failure)
            .push_bind(latest_at)
            .push_bind(latest_failed)
            .push_bind(t.last_success.is_some())
            .push_bind(t.trailing_failures)
            .push_bind(t.trailing_since);
    });
    qb.push(") UPDATE webhooks SET ");
    qb.push(&BUMP_COUNTERS_FROM_ROW);
    qb.push(" FROM c WHERE webhooks.id = c.c_id");
}

/// `bump_counters_from_row`, written once.
static BUMP_COUNTERS_FROM_ROW: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(bump_counters_from_row);

/// `bump_counters_set` over a row `c` of values whose columns are named `c_attempts` to
/// `c_since`, in `push_bump_counters`'s order (PostgreSQL's one-statement recorder names its
/// array columns the same).
pub fn bump_counters_from_row() -> String {
    bump_counters_set([
        "c.c_attempts",
        "c.c_successes",
        "c.c_success",
        "c.c_failure",
        "c.c_latest",
        "c.c_failed",
        "c.c_reset",
        "c.c_trailing",
        "c.c_since",
    ])
}

/// `push_bump_counters`'s assignments, each value taken from the expression given in its place
/// (the columns of a row of values).
pub fn bump_counters_set(values: [&str; 9]) -> String {
    let [attempts, successes, success, failure, latest, failed, reset, trailing, since] = values;
    format!(
        "total_attempts = total_attempts + {attempts}, \
         successful_attempts = successful_attempts + {successes}, \
         last_success_at = CASE WHEN {success} IS NOT NULL \
             AND (last_success_at IS NULL OR last_success_at < {success}) \
             THEN {success} ELSE last_success_at END, \
         last_failure_at = CASE WHEN {failure} IS NOT NULL \
             AND (last_failure_at IS NULL OR last_failure_at < {failure}) \
             THEN {failure} ELSE last_failure_at END, \
         last_attempt_failed = CASE WHEN (last_success_at IS NULL OR last_success_at <= {latest}) \
             AND (last_failure_at IS NULL OR last_failure_at <= {latest}) THEN {failed} \
             ELSE last_attempt_failed END, \
         failing_since = CASE WHEN {reset} THEN {since} ELSE COALESCE(failing_since, {since}) END, \
         failures_in_a_row = CASE WHEN {reset} THEN {trailing} ELSE failures_in_a_row + {trailing} END"
    )
}

/// A webhook's share of a batch of live attempts (see `push_bump_counters`).
#[derive(Default)]
pub struct Tally {
    pub attempts: i64,
    pub successes: i64,
    pub last_success: Option<DateTime<Utc>>,
    pub last_failure: Option<DateTime<Utc>>,
    pub latest: Option<(DateTime<Utc>, bool)>,
    /// Failures after the batch's last success (all of them when it has none).
    pub trailing_failures: i64,
    /// When the first of those happened.
    pub trailing_since: Option<DateTime<Utc>>,
}

/// Sums live attempts per webhook.
pub fn tally<'a>(
    attempts: impl Iterator<Item = &'a NewAttempt> + Clone,
) -> std::collections::HashMap<WebhookId, Tally> {
    let attempts_again = attempts.clone();
    let mut by_webhook: std::collections::HashMap<WebhookId, Tally> =
        std::collections::HashMap::new();
    for a in attempts.filter(|a| a.is_live()) {
        let t = by_webhook.entry(a.webhook_id.clone()).or_default();
        let ok = a.status == crate::domain::delivery::AttemptStatus::Success;
        t.attempts += 1;
        if ok {
            t.successes += 1;
            t.last_success = t.last_success.max(Some(a.created_at));
        } else {
            t.last_failure = t.last_failure.max(Some(a.created_at));
        }
        if t.latest.is_none_or(|(at, _)| at <= a.created_at) {
            t.latest = Some((a.created_at, !ok));
        }
    }
    for a in attempts_again.filter(|a| a.is_live()) {
        let t = by_webhook.get_mut(&a.webhook_id).expect("tallied above");
        let ok = a.status == crate::domain::delivery::AttemptStatus::Success;
        if !ok && t.last_success.is_none_or(|s| s < a.created_at) {
            t.trailing_failures += 1;
            t.trailing_since = Some(
                t.trailing_since
                    .map_or(a.created_at, |s| s.min(a.created_at)),
            );
        }
    }
    by_webhook
}

/// Text as every backend can store it. Receivers answer with anything, NUL bytes included, and
/// PostgreSQL refuses NUL in `text` and `jsonb`; each NUL becomes U+2400 (the visible symbol for
/// NUL), so the audit log still shows where it was. (Invalid UTF-8 was already replaced by U+FFFD
/// when the response was read.)
pub fn storable(text: &str) -> String {
    storable_cow(text).into_owned()
}

/// `storable`, copied only when it holds a NUL.
pub fn storable_cow(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{2400}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// Header pairs as stored: JSON `[[name, value], …]`, each text `storable`, written without
/// copying the pairs first.
pub struct StorableHeaders<'h>(pub &'h [(String, String)]);

impl serde::Serialize for StorableHeaders<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (name, value) in self.0 {
            seq.serialize_element(&(storable_cow(name), storable_cow(value)))?;
        }
        seq.end()
    }
}

/// Rows of `INSERT_ATTEMPT` per multi-row statement (21 values each).
pub const ATTEMPTS_PER_INSERT: usize = 450;

/// A multi-row `INSERT INTO attempts`. A queued try stores an empty `request_body`: the body it
/// sent is its event's, kept once in `events.body` (`GET_ATTEMPT` reads it from there).
pub fn push_insert_attempts<'a, DB>(qb: &mut Sql<'a, DB>, rows: &[&'a NewAttempt])
where
    DB: Database,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> Cow<'q, str>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Cow<'q, str>>: Encode<'q, DB> + Type<DB>,
    for<'q> Json<StorableHeaders<'q>>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Json<StorableHeaders<'q>>>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i32>: Encode<'q, DB> + Type<DB>,
    for<'q> Stamp: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Stamp>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
{
    qb.push(
        "INSERT INTO attempts (id, program_id, webhook_id, webhook_name, delivery_id, event_id, \
         event_type, attempt, trigger, status, status_code, error, latency_ms, request_url, \
         request_headers, request_body, response_headers, response_body, created_at, delivered_at, \
         superseded, lag_ms, event_accepted_at) ",
    );
    qb.push_values(rows, |mut row, a| {
        row.push_bind(a.id.as_str())
            .push_bind(a.program_id.as_str())
            .push_bind(a.webhook_id.as_str())
            .push_bind(a.webhook_name.as_str())
            .push_bind(a.delivery_id.as_ref().map(DeliveryId::as_str))
            .push_bind(a.event_id.as_str())
            .push_bind(a.event_type.as_str())
            .push_bind(a.attempt)
            .push_bind(a.trigger.as_str())
            .push_bind(a.status.as_str())
            .push_bind(a.status_code)
            .push_bind(a.error.as_deref().map(storable_cow))
            .push_bind(a.latency_ms)
            .push_bind(storable_cow(&a.request_url))
            .push_bind(Json(StorableHeaders(&a.request_headers)))
            .push_bind(
                a.request_body
                    .as_deref()
                    .map_or(Cow::Borrowed(""), storable_cow),
            )
            .push_bind(
                a.response_headers
                    .as_deref()
                    .map(|h| Json(StorableHeaders(h))),
            )
            .push_bind(a.response_body.as_deref().map(storable_cow))
            .push_bind(Stamp(a.created_at))
            .push_bind(a.delivered_at.map(Stamp))
            .push_bind(a.superseded)
            .push_bind(a.lag_ms)
            .push_bind(a.event_accepted_at.map(Stamp));
    });
}

pub const ATTEMPT_SUMMARY_COLUMNS: &str = "a.id, a.webhook_id, a.webhook_name, a.delivery_id, \
    a.event_id, a.event_type, a.attempt, a.trigger, a.status, a.status_code, a.error, \
    a.latency_ms, a.lag_ms, a.created_at, a.delivered_at, a.superseded";

pub const GET_ATTEMPT: &str = "SELECT a.id, a.webhook_id, a.webhook_name, a.delivery_id, \
    a.event_id, a.event_type, a.attempt, a.trigger, a.status, a.status_code, a.error, \
    a.latency_ms, a.lag_ms, a.created_at, a.delivered_at, a.superseded, a.request_url, a.request_headers, \
    CASE WHEN a.request_body = '' THEN COALESCE(e.body, '') ELSE a.request_body END AS request_body, \
    a.response_headers, a.response_body FROM attempts a \
    LEFT JOIN events e ON e.program_id = a.program_id AND e.id = a.event_id AND a.request_body = '' \
    WHERE a.program_id = $1 AND a.id = $2";

/// Where the member backfill stands (migration 0028): the key of the last event it read. No row
/// once the walk is done.
pub const MEMBER_BACKFILL_CURSOR: &str =
    "SELECT after_program, after_id FROM member_backfill WHERE id = 1";

/// The backfill's next page (`$1`, `$2` the cursor, `$3` the page size) in primary-key order,
/// with the body only of events that have no member yet.
pub const MEMBER_BACKFILL_PAGE: &str = "SELECT program_id, id, \
    CASE WHEN member IS NULL THEN body END AS body FROM events \
    WHERE (program_id, id) > ($1, $2) ORDER BY program_id, id LIMIT $3";

/// Gives events of one program their members (`(event id, member)` pairs, at least one), where
/// they have none: one statement for a page of the backfill.
pub fn set_members_query<'a, DB>(
    program: &str,
    members: &[(&'a str, String)],
) -> QueryBuilder<'a, DB>
where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    let mut qb = QueryBuilder::new("UPDATE events SET member = CASE id");
    for (id, member) in members {
        qb.push(" WHEN ")
            .push_bind(id.to_string())
            .push(" THEN ")
            .push_bind(member.clone());
    }
    qb.push(" END WHERE program_id = ")
        .push_bind(program.to_owned())
        .push(" AND member IS NULL AND id IN ");
    push_list(&mut qb, members.iter().map(|(id, _)| id));
    qb
}

/// Moves the cursor from (`$1`, `$2`) to (`$3`, `$4`); no row changes if another process moved it
/// first (PostgreSQL, several processes).
pub const MEMBER_BACKFILL_ADVANCE: &str = "UPDATE member_backfill SET after_program = $3, \
    after_id = $4 WHERE id = 1 AND after_program = $1 AND after_id = $2";

/// Ends the walk that stood at (`$1`, `$2`).
pub const MEMBER_BACKFILL_DONE: &str =
    "DELETE FROM member_backfill WHERE id = 1 AND after_program = $1 AND after_id = $2";

/// Columns a worker needs to make a request, from `deliveries d`, `events e`, `webhooks w`.
pub fn claimed_columns() -> String {
    format!(
        "d.id AS delivery_id, d.claim_count, d.tries, d.interruptions, \
         d.trigger AS delivery_trigger, \
         d.event_id, e.event_type, e.body, e.created_at AS event_created_at, {WEBHOOK_COLUMNS}"
    )
}

/// Claims skip a delivery while an older unfinished one of its webhook has the same ordering
/// value (per-member ordering); deliveries without a value are never held back.
pub const ORDERED_CLAIMABLE: &str = " AND (d.ordering_key IS NULL OR NOT EXISTS ( \
    SELECT 1 FROM deliveries p WHERE p.webhook_id = d.webhook_id \
      AND p.ordering_key = d.ordering_key AND p.status IN ('pending', 'in_flight') AND p.id < d.id))";

/// Binds `$1`…`$19` of `INSERT_WEBHOOK` / `UPDATE_WEBHOOK` (the settings both share; custom
/// headers without their secret values, which live sealed in `secrets`).
pub fn bind_webhook<'q, DB>(
    q: sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'q>>,
    w: &WebhookRecord,
) -> sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'q>>
where
    DB: Database,
    String: Encode<'q, DB> + Type<DB>,
    Option<String>: Encode<'q, DB> + Type<DB>,
    Json<serde_json::Value>: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    Option<i64>: Encode<'q, DB> + Type<DB>,
    bool: Encode<'q, DB> + Type<DB>,
{
    q.bind(w.id.to_string())
        .bind(w.program_id.to_string())
        .bind(w.name.as_str().to_owned())
        .bind(w.url.as_str().to_owned())
        .bind(w.method.clone())
        .bind(w.description.clone())
        .bind(w.auth_kind.as_str().to_owned())
        .bind(w.auth_param.clone())
        .bind(w.sealed_secrets.clone())
        .bind(Json(w.filter.to_json()))
        .bind(i64::from(w.retry.attempts))
        .bind(i64::from(w.retry.delay_seconds))
        .bind(w.retry.backoff.to_stored())
        .bind(i64::from(w.retry.timeout_seconds))
        .bind(w.rate_limit_per_second.map(i64::from))
        .bind(w.sandbox)
        .bind(w.enabled)
        .bind(Json(serde_json::to_value(&w.headers).expect("plain data")))
        .bind(w.ordering_key.clone())
}

/// `SELECT … FROM webhooks w WHERE …` for the Webhooks list filters, newest first.
pub fn list_webhooks_query<'a, DB>(program: &ProgramId, q: &WebhookQuery) -> QueryBuilder<'a, DB>
where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    let mut qb = QueryBuilder::new(format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks w WHERE w.deleted_at IS NULL AND w.program_id = "
    ));
    qb.push_bind(program.to_string());
    if let Some(name) = q.name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        qb.push(" AND lower(w.name) LIKE ")
            .push_bind(like_pattern(name))
            .push(" ESCAPE '\\'");
    }
    if let Some(from) = q.created_from {
        qb.push(" AND w.created_at >= ").push_bind(from);
    }
    if let Some(before) = q.created_before {
        qb.push(" AND w.created_at < ").push_bind(before);
    }
    if let Some(after) = &q.after {
        qb.push(" AND (w.created_at, w.id) < (")
            .push_bind(after.created_at)
            .push(", ")
            .push_bind(after.id.to_string())
            .push(")");
    }
    qb.push(" ORDER BY w.created_at DESC, w.id DESC");
    if let Some(limit) = q.limit {
        qb.push(" LIMIT ").push_bind(i64::from(limit));
    }
    qb
}

/// At most this many webhooks whose names match an audit-log search are read one by one (one
/// index range each, merged); a search matching more walks the program's attempts newest first,
/// where matches are then dense enough to fill a page soon.
pub const NAME_MATCHES_MERGED: usize = 64;

/// The webhooks whose names (any they have had) contain `search`, up to one more than
/// `NAME_MATCHES_MERGED` (more than that means "many"), each with whether every name it has had
/// matches (rows of `webhook_id, every`; see `NamedWebhook`).
pub fn webhook_names_query<'a, DB>(
    program: &ProgramId,
    q: &AttemptQuery,
    search: &str,
) -> QueryBuilder<'a, DB>
where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    let mut qb = QueryBuilder::new("SELECT n.webhook_id, CAST(MIN(CASE WHEN n.name_lower LIKE ");
    qb.push_bind(like_pattern(search)).push(
        " ESCAPE '\\' THEN 1 ELSE 0 END) AS BIGINT) FROM webhook_names n WHERE n.webhook_id IN \
         (SELECT DISTINCT webhook_id FROM webhook_names WHERE program_id = ",
    );
    qb.push_bind(program.to_string())
        .push(" AND name_lower LIKE ")
        .push_bind(like_pattern(search))
        .push(" ESCAPE '\\'");
    if let Some(w) = &q.webhook_id {
        qb.push(" AND webhook_id = ").push_bind(w.to_string());
    }
    qb.push(" LIMIT ")
        .push_bind(NAME_MATCHES_MERGED as i64 + 1)
        .push(") GROUP BY n.webhook_id");
    qb
}

/// A webhook a search by name found, and whether every name it has had contains the search.
/// Attempts carry a name their webhook had (every name is kept in `webhook_names`), so when all
/// match, all of its attempts do, and its piece of the search reads its index newest first and
/// stops at the page's end. Otherwise each attempt's name is tested: PostgreSQL, taking that test
/// (`LIKE '%…%'`) for a selective one, then reads all of the webhook's attempts and sorts them,
/// which over a webhook with millions of attempts takes seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedWebhook {
    pub id: String,
    pub every_name_matches: bool,
}

impl From<(String, i64)> for NamedWebhook {
    fn from((id, every): (String, i64)) -> Self {
        Self {
            id,
            every_name_matches: every == 1,
        }
    }
}

/// The audit-log page query: filters, keyset position, and one row more than the limit (to tell
/// whether another page follows). A search (an event id, a member id, or part of a webhook name) is answered
/// through indexes: `named` holds the webhooks whose names match (from `webhook_names_query`),
/// each read through its own index range, and the event id through the event index; the pieces
/// are merged in order. With more than `NAME_MATCHES_MERGED` named, the program's attempts are
/// walked newest first, keeping those webhooks' rows.
pub fn list_attempts_query<'a, DB>(
    program: &ProgramId,
    q: &AttemptQuery,
    named: &[NamedWebhook],
) -> QueryBuilder<'a, DB>
where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    let search = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let Some(search) = search else {
        let mut qb = attempts_select(program, q);
        push_attempt_order(&mut qb, q);
        return qb;
    };
    if named.len() > NAME_MATCHES_MERGED {
        let mut qb = attempts_select(program, q);
        qb.push(" AND (a.event_id = ")
            .push_bind(search.to_lowercase())
            .push(" OR (lower(a.webhook_name) LIKE ")
            .push_bind(like_pattern(search))
            .push(" ESCAPE '\\' AND a.webhook_id IN (SELECT webhook_id FROM webhook_names WHERE program_id = ")
            .push_bind(program.to_string())
            .push(" AND name_lower LIKE ")
            .push_bind(like_pattern(search))
            .push(" ESCAPE '\\'))");
        qb.push(" OR ");
        push_member_events(&mut qb, program, search);
        qb.push(")");
        push_attempt_order(&mut qb, q);
        return qb;
    }
    // One piece per source, each ordered and limited on its own index (the limit also keeps
    // SQLite from folding a piece into the merge, where the merge's order made it walk the
    // program's index), then merged. The tries of a stored event are indexed under its
    // acceptance time, read from the event first; test sends, verifications and older tries
    // under the event id alone. The named webhooks belong to the program, so their pieces leave
    // the program out and the webhook's index is the only one that fits.
    let event_id = search.to_lowercase();
    let mut qb = QueryBuilder::new("");
    push_piece(&mut qb, q, "by_event", "attempts a", |qb| {
        qb.push("a.program_id = ")
            .push_bind(program.to_string())
            .push(" AND a.event_accepted_at = (SELECT e.created_at FROM events e WHERE e.program_id = ")
            .push_bind(program.to_string())
            .push(" AND e.id = ")
            .push_bind(event_id.clone())
            .push(") AND a.event_id = ")
            .push_bind(event_id.clone());
    });
    qb.push(" UNION ");
    push_piece(&mut qb, q, "by_unstored_event", "attempts a", |qb| {
        qb.push("a.program_id = ")
            .push_bind(program.to_string())
            .push(" AND a.event_accepted_at IS NULL AND a.event_id = ")
            .push_bind(event_id.clone());
    });
    qb.push(" UNION ");
    // A member's events first, through their index, then each one's attempts by key (`CROSS
    // JOIN` keeps SQLite's loops in that order: left to choose, it walked the program's
    // attempts newest first, testing each against the member's events).
    push_piece(
        &mut qb,
        q,
        "by_member",
        "events m CROSS JOIN attempts a",
        |qb| {
            qb.push("m.program_id = ")
                .push_bind(program.to_string())
                .push(" AND m.member = ")
                .push_bind(search.to_owned())
                .push(
                    " AND a.program_id = m.program_id AND a.event_accepted_at = m.created_at \
                 AND a.event_id = m.id",
                );
        },
    );
    for (i, webhook) in named.iter().enumerate() {
        qb.push(" UNION ");
        push_piece(&mut qb, q, &format!("by_name_{i}"), "attempts a", |qb| {
            qb.push("a.webhook_id = ").push_bind(webhook.id.clone());
            if !webhook.every_name_matches {
                qb.push(" AND lower(a.webhook_name) LIKE ")
                    .push_bind(like_pattern(search))
                    .push(" ESCAPE '\\'");
            }
        });
    }
    push_order(&mut qb, q, "");
    qb
}

/// `(a.program_id, a.event_accepted_at, a.event_id) IN (…)`: the attempts of the events about
/// the member `search` (as typed, case and all), for the walk of the program's attempts.
fn push_member_events<'a, DB>(qb: &mut QueryBuilder<'a, DB>, program: &ProgramId, search: &str)
where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    qb.push("(a.program_id, a.event_accepted_at, a.event_id) IN (SELECT m.program_id, m.created_at, m.id FROM events m WHERE m.program_id = ")
        .push_bind(program.to_string())
        .push(" AND m.member = ")
        .push_bind(search.to_owned())
        .push(")");
}

/// `(id, member)` of the program's events among `ids` that are about a member: an audit-log
/// page's members, read by key after the page (at most 200 rows).
pub fn members_query<'a, DB>(
    program: &ProgramId,
    ids: impl IntoIterator<Item = &'a str>,
) -> QueryBuilder<'a, DB>
where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    let mut qb = QueryBuilder::new("SELECT id, member FROM events WHERE program_id = ");
    qb.push_bind(program.to_string())
        .push(" AND member IS NOT NULL AND id IN ");
    push_list(&mut qb, ids);
    qb
}

/// One piece of a merged audit-log search: `SELECT * FROM (SELECT … FROM {from} WHERE` (`from`
/// names the attempts `a`), its own conditions (pushed by `conditions`), the other filters, its
/// own order and limit, `) AS name`.
fn push_piece<'a, DB>(
    qb: &mut QueryBuilder<'a, DB>,
    q: &AttemptQuery,
    name: &str,
    from: &str,
    conditions: impl FnOnce(&mut QueryBuilder<'a, DB>),
) where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    qb.push(format!(
        "SELECT * FROM (SELECT {ATTEMPT_SUMMARY_COLUMNS} FROM {from} WHERE "
    ));
    conditions(qb);
    push_attempt_filters(qb, q);
    push_attempt_order(qb, q);
    qb.push(format!(") AS {name}"));
}

/// `SELECT … FROM attempts a WHERE` the program and the filters other than the search.
fn attempts_select<'a, DB>(program: &ProgramId, q: &AttemptQuery) -> QueryBuilder<'a, DB>
where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    let mut qb = QueryBuilder::new(format!(
        "SELECT {ATTEMPT_SUMMARY_COLUMNS} FROM attempts a WHERE a.program_id = "
    ));
    qb.push_bind(program.to_string());
    push_attempt_filters(&mut qb, q);
    qb
}

/// The audit-log filters other than the search, and the keyset position.
fn push_attempt_filters<'a, DB>(qb: &mut QueryBuilder<'a, DB>, q: &AttemptQuery)
where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    if let Some(w) = &q.webhook_id {
        qb.push(" AND a.webhook_id = ").push_bind(w.to_string());
    }
    if let Some(from) = q.created_from {
        qb.push(" AND a.created_at >= ").push_bind(from);
    }
    if let Some(before) = q.created_before {
        qb.push(" AND a.created_at < ").push_bind(before);
    }
    if let Some(s) = q.status {
        qb.push(" AND a.status = ").push_bind(s.as_str().to_owned());
    }
    if let Some(c) = &q.cursor {
        qb.push(if c.older {
            " AND (a.created_at, a.id) < ("
        } else {
            " AND (a.created_at, a.id) > ("
        })
        .push_bind(c.created_at)
        .push(", ")
        .push_bind(c.id.to_string())
        .push(")");
    }
}

/// Newest first (oldest first when paging back towards newer rows), one row over the limit.
fn push_attempt_order<'a, DB>(qb: &mut QueryBuilder<'a, DB>, q: &AttemptQuery)
where
    DB: Database,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    push_order(qb, q, "a.");
}

/// `push_attempt_order` on columns named `{table}created_at` and `{table}id` (`""` for the
/// merged pieces' own columns).
fn push_order<'a, DB>(qb: &mut QueryBuilder<'a, DB>, q: &AttemptQuery, table: &str)
where
    DB: Database,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    let older = q.cursor.as_ref().is_none_or(|c| c.older);
    let way = if older { "DESC" } else { "ASC" };
    qb.push(format!(
        " ORDER BY {table}created_at {way}, {table}id {way} LIMIT "
    ));
    qb.push_bind(i64::from(q.limit) + 1);
}

/// Turns the rows of `list_attempts_query` into a page with its cursors.
pub fn attempt_page(q: &AttemptQuery, rows: Vec<AttemptSummaryRow>) -> Result<AttemptPage> {
    let mut items: Vec<AttemptSummary> = convert(rows)?;
    let more = items.len() > q.limit as usize;
    items.truncate(q.limit as usize);
    let older = q.cursor.as_ref().is_none_or(|c| c.older);
    if !older {
        items.reverse();
    }
    let at = |a: &AttemptSummary, older: bool| Cursor {
        created_at: a.created_at,
        id: a.id.clone(),
        older,
    };
    // Attempts are append-only, so having come from a position means rows lie on that side.
    let (has_older, has_newer) = match &q.cursor {
        None => (more, false),
        Some(c) if c.older => (more, true),
        Some(_) => (true, more),
    };
    Ok(AttemptPage {
        next: items.last().filter(|_| has_older).map(|a| at(a, true)),
        prev: items.first().filter(|_| has_newer).map(|a| at(a, false)),
        items,
    })
}

/// Dead letters and other deliveries, newest first. Each status is its own piece, read newest
/// first from the index that starts with program and status; without a status the four pieces
/// are merged (one query over every status could only sort all of the program's deliveries, the
/// retention window's history, to find the newest page).
pub fn list_deliveries_query<'a, DB>(program: &ProgramId, q: &DeliveryQuery) -> QueryBuilder<'a, DB>
where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    // One row over the page's size tells whether another page follows.
    let limit = i64::from(q.limit.clamp(1, DeliveryQuery::MAX_PAGE)) + 1;
    let Some(status) = q.status else {
        let mut qb = QueryBuilder::new("SELECT * FROM (");
        for (i, status) in DeliveryStatus::ALL.iter().enumerate() {
            if i > 0 {
                qb.push(" UNION ALL ");
            }
            qb.push("SELECT * FROM (");
            push_deliveries_piece(&mut qb, program, *status, q, limit);
            qb.push(format!(") AS s{i}"));
        }
        qb.push(") AS merged ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(limit);
        return qb;
    };
    let mut qb = QueryBuilder::new("");
    push_deliveries_piece(&mut qb, program, status, q, limit);
    qb
}

/// The newest `limit` deliveries of `program` in `status` that match `q`'s other filters.
fn push_deliveries_piece<'a, DB>(
    qb: &mut QueryBuilder<'a, DB>,
    program: &ProgramId,
    status: DeliveryStatus,
    q: &DeliveryQuery,
    limit: i64,
) where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    qb.push(
        "SELECT d.id, d.webhook_id, w.name AS webhook_name, d.event_id, e.event_type, d.trigger, \
         d.status, d.tries, d.next_attempt_at, d.last_error, d.created_at, d.updated_at \
         FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id \
         JOIN events e ON e.program_id = d.program_id AND e.id = d.event_id \
         WHERE d.program_id = ",
    );
    qb.push_bind(program.to_string());
    // The status as a literal, so that the index each piece reads (the program's status index,
    // or the leases for the deliveries in flight) can be proven from it, on SQLite and in
    // PostgreSQL's generic plans alike.
    qb.push(" AND d.status = '").push(status.as_str()).push("'");
    if status != DeliveryStatus::InFlight {
        qb.push(" AND ").push(NOT_IN_FLIGHT);
    }
    if let Some(w) = &q.webhook_id {
        qb.push(" AND d.webhook_id = ").push_bind(w.to_string());
    }
    if let Some(t) = &q.event_type {
        qb.push(" AND e.event_type = ").push_bind(t.clone());
    }
    if let Some(f) = q.created_from {
        qb.push(" AND d.created_at >= ").push_bind(f);
    }
    if let Some(b) = q.created_before {
        qb.push(" AND d.created_at < ").push_bind(b);
    }
    if let Some(after) = &q.after {
        // A range on the index's last column, then the tie-break: the page starts at the cursor
        // instead of filtering everything newer.
        qb.push(" AND d.created_at <= ")
            .push_bind(after.created_at)
            .push(" AND (d.created_at < ")
            .push_bind(after.created_at)
            .push(" OR d.id < ")
            .push_bind(after.id.to_string())
            .push(")");
    }
    qb.push(" ORDER BY d.created_at DESC, d.id DESC LIMIT ")
        .push_bind(limit);
}

/// `%needle%` for a case-insensitive LIKE, with LIKE's wildcards escaped.
fn like_pattern(needle: &str) -> String {
    let escaped = needle
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// The status a delivery takes after a result, and when it is next due.
pub fn next_state(next: NextStep, now: DateTime<Utc>) -> (&'static str, DateTime<Utc>) {
    match next {
        NextStep::Succeeded => (DeliveryStatus::Succeeded.as_str(), now),
        NextStep::Failed => (DeliveryStatus::Failed.as_str(), now),
        NextStep::RetryAt(at) => (DeliveryStatus::Pending.as_str(), at),
    }
}

pub const ENSURE_DEFAULT_PROGRAM: &str = "INSERT INTO programs (id, name, is_default, created_at) \
    SELECT $1, 'Default program', TRUE, $2 WHERE NOT EXISTS (SELECT 1 FROM programs WHERE is_default)";
pub const DEFAULT_PROGRAM: &str = "SELECT id FROM programs WHERE is_default";
pub const UPSERT_EVENT_TYPE: &str = "INSERT INTO event_types (name, feed, description, schema, \
    example) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO UPDATE SET feed = excluded.feed, \
    description = excluded.description, schema = excluded.schema, example = excluded.example";

#[cfg(test)]
mod tests {
    use super::{sized_chunks, Sql, StorableHeaders};
    use sqlx::QueryBuilder;

    /// One statement of each shape the hot path writes, through either builder (they take the
    /// same calls): fixed text, tuples of bound values, a value made of text and values (`push`
    /// then `push_bind_unseparated`), a trailing value. Gives the text built.
    macro_rules! sample_statement {
        ($builder:expr) => {{
            let mut b = $builder;
            b.push("INSERT INTO t (a, b, c) ");
            b.push_values([("x", 1_i64), ("y", 2)], |mut row, (a, b)| {
                row.push_bind(a)
                    .push("CASE WHEN ")
                    .push_bind_unseparated(b)
                    .push_unseparated(" > 1 THEN 'big' END")
                    .push_bind(b);
            });
            b.push(" ON CONFLICT DO NOTHING; SELECT ").push_bind(3_i64);
            b
        }};
    }

    #[test]
    fn statements_read_as_sqlxs_query_builder_writes_them() {
        let ours = sample_statement!(Sql::<sqlx::Sqlite>::new("")).into_builder();
        let theirs = sample_statement!(QueryBuilder::<sqlx::Sqlite>::new(""));
        assert_eq!(ours.sql(), theirs.sql());
        assert_eq!(
            theirs.sql(),
            "INSERT INTO t (a, b, c) VALUES (?, CASE WHEN ? > 1 THEN 'big' END, ?), \
             (?, CASE WHEN ? > 1 THEN 'big' END, ?) ON CONFLICT DO NOTHING; SELECT ?"
        );

        let ours = sample_statement!(Sql::<sqlx::Postgres>::new("")).into_builder();
        let theirs = sample_statement!(QueryBuilder::<sqlx::Postgres>::new(""));
        assert_eq!(ours.sql(), theirs.sql());
        assert_eq!(
            theirs.sql(),
            "INSERT INTO t (a, b, c) VALUES ($1, CASE WHEN $2 > 1 THEN 'big' END, $3), \
             ($4, CASE WHEN $5 > 1 THEN 'big' END, $6) ON CONFLICT DO NOTHING; SELECT $7"
        );
    }

    #[test]
    fn headers_are_stored_as_their_storable_copy_would_be() {
        let headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("x-odd\0name".to_owned(), "a\0b".to_owned()),
            ("x-quote".to_owned(), "say \"hi\"".to_owned()),
        ];
        let borrowed = serde_json::to_string(&StorableHeaders(&headers)).unwrap();
        // As they were stored before: a copy of every pair, each text made storable.
        let copy: super::Headers = headers
            .iter()
            .map(|(k, v)| (super::storable(k), super::storable(v)))
            .collect();
        let copied = serde_json::to_string(&copy).unwrap();
        assert_eq!(borrowed, copied);
        assert!(
            borrowed.contains("a\u{2400}b"),
            "NUL shown as its symbol: {borrowed}"
        );
        assert!(!borrowed.contains("\\u0000"));
    }

    #[test]
    fn chunks_are_powers_of_two_in_order() {
        let items: Vec<u32> = (0..100).collect();
        let lens: Vec<usize> = sized_chunks(&items, 1000).map(<[u32]>::len).collect();
        assert_eq!(lens, [64, 32, 4]);
        let lens: Vec<usize> = sized_chunks(&items[..7], 1000).map(<[u32]>::len).collect();
        assert_eq!(lens, [7], "a short remainder is one statement");
        let lens: Vec<usize> = sized_chunks(&items[..52], 1000).map(<[u32]>::len).collect();
        assert_eq!(lens, [32, 16, 4]);
        let lens: Vec<usize> = sized_chunks(&items[..7], 4).map(<[u32]>::len).collect();
        assert_eq!(lens, [4, 3], "never more than the most allowed");
        let lens: Vec<usize> = sized_chunks(&items, 40).map(<[u32]>::len).collect();
        assert_eq!(lens, [32, 32, 32, 4]);
        let back: Vec<u32> = sized_chunks(&items, 40).flatten().copied().collect();
        assert_eq!(back, items, "every item once, in order");
        assert_eq!(sized_chunks::<u32>(&[], 8).count(), 0);
        assert_eq!(
            sized_chunks(&items[..1], 0)
                .map(<[u32]>::len)
                .collect::<Vec<_>>(),
            [1]
        );
    }
}
