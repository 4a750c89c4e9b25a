//! `herald relay-floor`: the floor under issue 11's throughput shares, the least a durable,
//! signed webhook relay can do on Herald's own stack (axum, tokio, sqlx on SQLite or PostgreSQL,
//! reqwest, HMAC-SHA256, mimalloc). `herald bench --floor` runs it in Herald's place, so both
//! meet the same senders, receiver and ceiling in one sitting (README, Benchmarks,
//! thirty-third and thirty-fourth sittings).
//!
//! What it keeps of Herald's promises: an API key is checked on every request (its SHA-256 looked
//! up among the keys `herald bench` stored), `202` is answered only once the event and its
//! delivery are committed (group commit: on SQLite WAL with `synchronous = NORMAL` and one writer
//! connection, as Herald; on PostgreSQL one statement a transaction, committed with the server's
//! own durability, one transaction at a time), each
//! delivery is signed the Standard Webhooks way and POSTed, and its result (the delivery's new
//! status and one attempt row) is committed too. What it leaves out is everything else
//! Herald does per delivery: routing by program, event type and filter, duplicate event ids,
//! secondary indexes (the audit log's searches, the queue's order), roll-ups, webhook counters,
//! retries, rate limits, leases, ordering and the response kept in the audit log. It is a
//! measuring stick, not a product: one webhook, nothing resumed after a restart.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::{get, post},
    Json, Router,
};
use herald::domain::webhook::SigningSecret;
use serde::Deserialize;
use serde_json::{json, value::RawValue};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, QueryBuilder, Sqlite, SqlitePool};
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::{mpsc, oneshot};

/// Most events and results one transaction takes.
const MOST_PER_COMMIT: usize = 1000;

struct Relay {
    key_hashes: Vec<String>,
    hook: RwLock<Option<Hook>>,
    writer: mpsc::Sender<Job>,
    client: reqwest::Client,
    /// The next event's id (its delivery's too): given by the writer, so a transaction needs no
    /// answer back from the database.
    next_id: AtomicI64,
}

/// Where the floor keeps its rows.
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Db {
    async fn open(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("postgres") {
            let pool = PgPoolOptions::new()
                // One transaction at a time, as on SQLite: with two writers side by side (as
                // Herald's ingest and recorder on PostgreSQL) the floor reached 7.0-7.4% of the
                // ceiling, with four 5.9-6.2%, with one 7.5-7.8% (thirty-fourth sitting): each
                // transaction costs PostgreSQL more than the rows it carries.
                .max_connections(1)
                .connect(url)
                .await?;
            for statement in [
                "CREATE TABLE IF NOT EXISTS relay_events (id BIGINT PRIMARY KEY, \
                 event_id TEXT NOT NULL, event_type TEXT NOT NULL, body TEXT NOT NULL, \
                 created_at TIMESTAMPTZ NOT NULL)",
                "CREATE TABLE IF NOT EXISTS relay_deliveries (id BIGINT PRIMARY KEY, \
                 event BIGINT NOT NULL, status TEXT NOT NULL, updated_at TIMESTAMPTZ NOT NULL)",
                "CREATE TABLE IF NOT EXISTS relay_attempts (id BIGINT GENERATED ALWAYS AS \
                 IDENTITY PRIMARY KEY, delivery BIGINT NOT NULL, status_code INT NOT NULL, \
                 created_at TIMESTAMPTZ NOT NULL)",
            ] {
                sqlx::query(statement).execute(&pool).await?;
            }
            return Ok(Self::Postgres(pool));
        }
        let options = SqliteConnectOptions::from_str(url)?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        for statement in [
            "CREATE TABLE IF NOT EXISTS relay_events (id INTEGER PRIMARY KEY, event_id TEXT NOT NULL, \
             event_type TEXT NOT NULL, body TEXT NOT NULL, created_at TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS relay_deliveries (id INTEGER PRIMARY KEY, \
             event INTEGER NOT NULL, status TEXT NOT NULL, updated_at TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS relay_attempts (id INTEGER PRIMARY KEY, \
             delivery INTEGER NOT NULL, status_code INTEGER NOT NULL, created_at TEXT NOT NULL)",
        ] {
            sqlx::query(statement).execute(&pool).await?;
        }
        Ok(Self::Sqlite(pool))
    }

    /// Answers a query of one column on either backend.
    async fn column<T>(&self, sql: &str) -> Result<Vec<T>, sqlx::Error>
    where
        T: Send + Unpin,
        T: for<'r> sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
        T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    {
        match self {
            Self::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
            Self::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
        }
    }

    /// One transaction: the events (ids from `first`) and their deliveries, then the results
    /// and their attempts.
    async fn write(
        &self,
        first: i64,
        events: &[Incoming],
        results: &[(i64, u16)],
    ) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(pool) => write_sqlite(pool, first, events, results).await,
            Self::Postgres(pool) => write_postgres(pool, first, events, results).await,
        }
    }
}

#[derive(Clone)]
struct Hook {
    url: String,
    secret: SigningSecret,
}

struct Incoming {
    event_id: String,
    event_type: String,
    body: String,
}

enum Job {
    /// Events to store; answered once committed.
    Ingest(Vec<Incoming>, oneshot::Sender<Result<(), String>>),
    /// A delivery's result: its id and the receiver's status code (0: no answer).
    Result(i64, u16),
}

#[derive(Deserialize)]
struct EventBody<'a> {
    #[serde(borrow)]
    event_id: &'a str,
    #[serde(borrow)]
    event_type: &'a str,
    #[serde(borrow)]
    data: &'a RawValue,
}

#[derive(Deserialize)]
struct BatchBody<'a> {
    #[serde(borrow)]
    events: Vec<EventBody<'a>>,
}

/// Where the floor listens and which database it writes (the one `herald bench` made: a SQLite
/// file or a PostgreSQL database).
#[derive(Debug, clap::Args)]
pub struct FloorArgs {
    #[arg(long)]
    pub addr: String,
    #[arg(long)]
    pub database_url: String,
}

/// Serves the floor until the process is stopped.
pub async fn run(args: FloorArgs) -> anyhow::Result<()> {
    let db = Db::open(&args.database_url).await?;
    let key_hashes = db
        .column("SELECT key_hash FROM api_keys WHERE revoked_at IS NULL")
        .await?;
    let last: Vec<i64> = db
        .column("SELECT COALESCE(MAX(id), 0) FROM relay_events")
        .await?;
    let (writer, jobs) = mpsc::channel(4096);
    let relay = Arc::new(Relay {
        key_hashes,
        hook: RwLock::new(None),
        writer,
        client: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(15))
            .build()?,
        next_id: AtomicI64::new(last.first().copied().unwrap_or(0) + 1),
    });
    tokio::spawn(write_loop(db, jobs, relay.clone()));
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/v1/webhooks", post(create_webhook))
        .route("/api/v1/events", post(ingest_one))
        .route("/api/v1/events/batch", post(ingest_batch))
        .with_state(relay);
    let listener = tokio::net::TcpListener::bind(&args.addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

type Answer = (StatusCode, Json<serde_json::Value>);

fn refuse(status: StatusCode, message: &str) -> Answer {
    (status, Json(json!({ "error": message })))
}

impl Relay {
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let hash = herald::auth::api_key::hash(token);
        self.key_hashes
            .iter()
            .any(|k| herald::auth::api_key::hashes_equal(k, &hash))
    }

    async fn store(&self, events: Vec<Incoming>) -> Answer {
        let (answer, answered) = oneshot::channel();
        let count = events.len();
        if self.writer.send(Job::Ingest(events, answer)).await.is_err() {
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "the writer stopped");
        }
        match answered.await {
            Ok(Ok(())) => (StatusCode::ACCEPTED, Json(json!({ "accepted": count }))),
            Ok(Err(e)) => refuse(StatusCode::SERVICE_UNAVAILABLE, &e),
            Err(_) => refuse(StatusCode::SERVICE_UNAVAILABLE, "the writer stopped"),
        }
    }
}

fn incoming(e: &EventBody<'_>) -> Incoming {
    let body = json!({
        "type": e.event_type,
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "data": e.data,
    });
    Incoming {
        event_id: e.event_id.to_owned(),
        event_type: e.event_type.to_owned(),
        body: body.to_string(),
    }
}

async fn create_webhook(
    State(relay): State<Arc<Relay>>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Answer {
    if !relay.authorized(&headers) {
        return refuse(StatusCode::UNAUTHORIZED, "API key missing or unknown");
    }
    let Some(url) = body["url"].as_str() else {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, "url: required");
    };
    let secret = SigningSecret::from_random_bytes(&rand::random());
    *relay.hook.write().expect("hook") = Some(Hook {
        url: url.to_owned(),
        secret,
    });
    (StatusCode::CREATED, Json(json!({ "id": "wh_floor" })))
}

async fn ingest_one(
    State(relay): State<Arc<Relay>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Answer {
    accept(&relay, &headers, || {
        serde_json::from_slice::<EventBody<'_>>(&body).map(|e| vec![incoming(&e)])
    })
    .await
}

async fn ingest_batch(
    State(relay): State<Arc<Relay>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Answer {
    accept(&relay, &headers, || {
        serde_json::from_slice::<BatchBody<'_>>(&body)
            .map(|b| b.events.iter().map(incoming).collect())
    })
    .await
}

/// The key checked, then the body read, then its events stored.
async fn accept(
    relay: &Relay,
    headers: &HeaderMap,
    read: impl FnOnce() -> Result<Vec<Incoming>, serde_json::Error>,
) -> Answer {
    if !relay.authorized(headers) {
        return refuse(StatusCode::UNAUTHORIZED, "API key missing or unknown");
    }
    match read() {
        Ok(events) => relay.store(events).await,
        Err(e) => refuse(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

/// Group commit: every job waiting when the writer is free goes into one transaction.
async fn write_loop(db: Db, mut jobs: mpsc::Receiver<Job>, relay: Arc<Relay>) {
    let mut waiting = Vec::new();
    while let Some(first) = jobs.recv().await {
        waiting.push(first);
        let mut rows = 0;
        while rows < MOST_PER_COMMIT {
            match jobs.try_recv() {
                Ok(job) => {
                    rows += match &job {
                        Job::Ingest(events, _) => events.len(),
                        Job::Result(..) => 1,
                    };
                    waiting.push(job);
                }
                Err(_) => break,
            }
        }
        let mut events = Vec::new();
        let mut answers = Vec::new();
        let mut results = Vec::new();
        for job in waiting.drain(..) {
            match job {
                Job::Ingest(batch, answer) => {
                    answers.push(answer);
                    events.extend(batch);
                }
                Job::Result(delivery, status) => results.push((delivery, status)),
            }
        }
        let first = relay
            .next_id
            .fetch_add(events.len() as i64, Ordering::Relaxed);
        match db.write(first, &events, &results).await {
            Ok(()) => {
                for answer in answers {
                    let _ = answer.send(Ok(()));
                }
                let hook = relay.hook.read().expect("hook").clone();
                if let Some(hook) = hook {
                    for (delivery, event) in (first..).zip(events) {
                        tokio::spawn(send(relay.clone(), hook.clone(), delivery, event));
                    }
                }
            }
            Err(e) => {
                for answer in answers {
                    let _ = answer.send(Err(e.to_string()));
                }
            }
        }
    }
}

/// Signs and POSTs one delivery, then hands its result to the writer.
async fn send(relay: Arc<Relay>, hook: Hook, delivery: i64, event: Incoming) {
    let timestamp = chrono::Utc::now().timestamp();
    let signature = herald::delivery::sign::standard_signature(
        &[&hook.secret],
        &event.event_id,
        timestamp,
        &event.body,
    );
    let status = match relay
        .client
        .post(&hook.url)
        .header("content-type", "application/json")
        .header("webhook-id", &event.event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(event.body)
        .send()
        .await
    {
        Ok(reply) => {
            let status = reply.status().as_u16();
            let _ = reply.bytes().await;
            status
        }
        Err(_) => 0,
    };
    let _ = relay.writer.send(Job::Result(delivery, status)).await;
}

/// `Db::write` on SQLite: multi-row statements in one transaction.
async fn write_sqlite(
    pool: &SqlitePool,
    first: i64,
    events: &[Incoming],
    results: &[(i64, u16)],
) -> Result<(), sqlx::Error> {
    let now = chrono::Utc::now().to_rfc3339();
    let mut tx = pool.begin().await?;
    let numbered: Vec<(i64, &Incoming)> = (first..).zip(events).collect();
    for chunk in numbered.chunks(MOST_PER_COMMIT) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO relay_events (id, event_id, event_type, body, created_at) ",
        );
        qb.push_values(chunk, |mut row, (id, e)| {
            row.push_bind(*id)
                .push_bind(&e.event_id)
                .push_bind(&e.event_type)
                .push_bind(&e.body)
                .push_bind(&now);
        });
        qb.build().execute(&mut *tx).await?;
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO relay_deliveries (id, event, status, updated_at) ",
        );
        qb.push_values(chunk, |mut row, (id, _)| {
            row.push_bind(*id)
                .push_bind(*id)
                .push_bind("in_flight")
                .push_bind(&now);
        });
        qb.build().execute(&mut *tx).await?;
    }
    for chunk in results.chunks(MOST_PER_COMMIT) {
        for (status, succeeded) in [("succeeded", true), ("failed", false)] {
            let ids: Vec<i64> = chunk
                .iter()
                .filter(|(_, code)| succeeded_code(*code) == succeeded)
                .map(|(d, _)| *d)
                .collect();
            if ids.is_empty() {
                continue;
            }
            let mut qb = QueryBuilder::<Sqlite>::new("UPDATE relay_deliveries SET status = ");
            qb.push_bind(status).push(", updated_at = ").push_bind(&now);
            qb.push(" WHERE id IN (");
            let mut list = qb.separated(", ");
            for id in &ids {
                list.push_bind(*id);
            }
            qb.push(")");
            qb.build().execute(&mut *tx).await?;
        }
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO relay_attempts (delivery, status_code, created_at) ",
        );
        qb.push_values(chunk, |mut row, (d, code)| {
            row.push_bind(*d)
                .push_bind(i64::from(*code))
                .push_bind(&now);
        });
        qb.build().execute(&mut *tx).await?;
    }
    tx.commit().await
}

fn succeeded_code(code: u16) -> bool {
    (200..300).contains(&code)
}

/// `Db::write` on PostgreSQL: one statement (so one round trip and its own transaction) whose
/// values are arrays, so its text and plan are the same whatever the batch.
const WRITE_POSTGRES: &str = "WITH e AS (INSERT INTO relay_events \
        (id, event_id, event_type, body, created_at) \
        SELECT id, event_id, event_type, body, $7 \
        FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) \
        AS v (id, event_id, event_type, body)), \
    d AS (INSERT INTO relay_deliveries (id, event, status, updated_at) \
        SELECT id, id, 'in_flight', $7 FROM unnest($1::bigint[]) AS v (id)), \
    r AS (SELECT * FROM unnest($5::bigint[], $6::int[]) AS r (delivery, code)), \
    u AS (UPDATE relay_deliveries SET updated_at = $7, \
        status = CASE WHEN r.code BETWEEN 200 AND 299 THEN 'succeeded' ELSE 'failed' END \
        FROM r WHERE relay_deliveries.id = r.delivery), \
    a AS (INSERT INTO relay_attempts (delivery, status_code, created_at) \
        SELECT delivery, code, $7 FROM r) \
    SELECT 1";

async fn write_postgres(
    pool: &PgPool,
    first: i64,
    events: &[Incoming],
    results: &[(i64, u16)],
) -> Result<(), sqlx::Error> {
    let field = |f: fn(&Incoming) -> &str| events.iter().map(f).collect::<Vec<_>>();
    sqlx::query(WRITE_POSTGRES)
        .bind((first..).take(events.len()).collect::<Vec<i64>>())
        .bind(field(|e| &e.event_id))
        .bind(field(|e| &e.event_type))
        .bind(field(|e| &e.body))
        .bind(results.iter().map(|(d, _)| *d).collect::<Vec<i64>>())
        .bind(
            results
                .iter()
                .map(|(_, c)| i32::from(*c))
                .collect::<Vec<i32>>(),
        )
        .bind(chrono::Utc::now())
        .execute(pool)
        .await?;
    Ok(())
}
