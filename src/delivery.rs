//! The delivery engine: everything between "an event was accepted" and "every subscribed endpoint
//! has it, or it is dead-lettered". The REST API, the console's server functions and Send Test all
//! call this one `Engine`; none of them builds a request or touches the queue tables itself.
//!
//! Invariants: an event is durable (with its deliveries) before `ingest` returns; a delivery is
//! worked on only under a lease; a result is written only by the claim that made it.

mod aftermath;
pub mod alerts;
pub mod backfill;
pub mod bulk_replay;
pub mod charts;
pub mod clock;
mod demand;
pub mod disk;
pub mod dispatch;
pub mod dispatcher;
mod express;
pub mod guard;
pub mod health;
mod hold;
pub mod ingest;
mod insights;
mod lanes;
mod mail;
pub mod observe;
pub mod probe;
pub mod queue;
mod rate;
mod recorder;
pub mod retention;
pub mod retry;
pub mod secrets;
pub mod sign;
pub mod tasks;
pub mod transfer;
pub mod webhooks;
pub mod write_alarm;

use crate::auth::seal::{SealError, Sealer};
use crate::domain::ValidationError;
use crate::store::{Store, StoreError};
use clock::Clock;
use guard::GuardPolicy;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Tunables of the engine; `Default` suits a small production install.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Requests in flight at once across all webhooks.
    pub concurrency: usize,
    /// Requests in flight at once for one webhook (one whose requests hang gets far fewer: see
    /// `lanes`).
    pub per_webhook_concurrency: usize,
    /// Most deliveries claimed in one query.
    pub claim_batch: u32,
    /// Added to a webhook's timeout to make a claim's lease.
    pub lease_margin: Duration,
    /// Longest sleep with nothing due, as a fallback to wake-ups.
    pub idle_poll: Duration,
    /// How long a graceful shutdown waits for requests in flight before releasing them.
    pub shutdown_grace: Duration,
    /// Outbound-address policy (SSRF guard).
    pub guard: GuardPolicy,
    /// Where "now" comes from: the system clock, or a `ManualClock` in tests.
    pub clock: Arc<dyn Clock>,
    /// When a webhook that fails every try is switched off (`None`: never).
    pub auto_disable: Option<SustainedFailure>,
    /// How long attempts, finished deliveries and their events are kept (`None`: for ever).
    pub retention: Option<chrono::Duration>,
    /// Whether ingest may send new deliveries itself while the dispatcher has caught up, owning
    /// their lease from the insert (see `express`). Tests that inspect the queue between ingest
    /// and a claim turn it off.
    pub express: bool,
    /// When the database's disk counts as nearly full (SQLite; see `disk`).
    pub disk_low: disk::LowMark,
}

/// "Every live try has failed for `after`, at least `min_failures` times in a row": then Herald
/// switches the webhook off (its deliveries are held, not lost) and says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SustainedFailure {
    pub after: chrono::Duration,
    pub min_failures: i64,
}

impl Default for SustainedFailure {
    fn default() -> Self {
        Self {
            after: chrono::Duration::hours(24),
            min_failures: 10,
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            concurrency: 512,
            per_webhook_concurrency: 64,
            claim_batch: 256,
            lease_margin: Duration::from_secs(10),
            idle_poll: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(10),
            guard: GuardPolicy::default(),
            clock: Arc::new(clock::SystemClock),
            auto_disable: Some(SustainedFailure::default()),
            retention: Some(chrono::Duration::days(30)),
            express: true,
            disk_low: disk::LowMark::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Validation(#[from] ValidationError),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{field} is already in use")]
    Conflict { field: &'static str },
    /// An optimistic write lost: the record changed since the caller read it.
    #[error(
        "this webhook was changed by someone else since you loaded it; reload it and try again"
    )]
    Stale,
    #[error("{0}")]
    Refused(String),
    /// Herald cannot take this now (shutting down, database unreachable or full); try again.
    #[error("{0}")]
    Unavailable(String),
    #[error("your role does not allow this")]
    Forbidden,
    /// Text the database cannot hold (`StoreError::Unstorable`): the caller's input, refused.
    #[error("a text value holds the NUL character (U+0000), which Herald cannot store")]
    Unstorable,
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Seal(#[from] SealError),
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { field } => Self::Conflict { field },
            StoreError::Stale => Self::Stale,
            StoreError::Unstorable => Self::Unstorable,
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, "database unavailable");
                Self::Unavailable(format!("{}; try again shortly", e.unavailable_reason()))
            }
            other => Self::Store(other),
        }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// The engine handle: cheap to clone, shared by every caller in the process.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    sealer: Sealer,
    /// One pooled client for every request (connection reuse is most of the speed).
    http: reqwest::Client,
    config: EngineConfig,
    /// Rung when new work may be due (ingest, replay, a retry scheduled).
    wake: Arc<Notify>,
    /// Rung when a bulk replay job starts.
    replay_wake: Notify,
    /// The webhooks the latest claim left out; ingest rings `wake` only for work it can claim.
    held_back: demand::HeldBack,
    rate: rate::RateLimits,
    /// Each webhook's share of the request slots.
    lanes: lanes::Lanes,
    /// Claimed deliveries waiting for their webhook's slot.
    waiting: lanes::Waiting,
    /// When ingest may own new deliveries and send them without a claim.
    express: express::Express,
    /// Where `ingest` hands events (and, on a single-writer store, the recorder its results)
    /// to the group-commit task.
    ingest_tx: tokio::sync::mpsc::Sender<ingest::WriteJob>,
    /// Fan-out candidates per event type, checked against the subscriber-list version inside
    /// every ingest transaction (so never used stale).
    subscribers: ingest::SubscriberCache,
    /// The latest version of each webhook this process knows of (its own changes and, on
    /// PostgreSQL, other processes'): claims taken under an older one go back to the queue
    /// instead of out with old settings.
    changes: Arc<webhooks::Changes>,
    /// Whether the latest writes failed for the database's sake (see `health`).
    write_health: health::WriteHealth,
    /// E-mails when writes keep failing, and when they stop (see `write_alarm`).
    write_alarm: write_alarm::WriteAlarm,
    /// Room on the database's disk, and its e-mails (see `disk`).
    disk: disk::DiskWatch,
    /// Background tasks that stopped by panicking (see `tasks`).
    stopped: tasks::Stopped,
}

impl Engine {
    /// Builds the engine and starts its group-commit task (so: call it inside a Tokio runtime).
    /// The dispatcher starts separately, with `run`.
    pub fn new(store: Arc<dyn Store>, sealer: Sealer, config: EngineConfig) -> Self {
        let mut http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(256)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            // An HTTP(S)_PROXY in the environment would make the guard's connect-time check look
            // at the proxy instead of the receiver: Herald always connects directly.
            .no_proxy();
        if let Some(resolver) = guard::resolver(config.guard) {
            http = http.dns_resolver(resolver);
        }
        let http = http
            .build()
            .expect("the HTTP client's TLS backend initialises");
        let lanes = lanes::Lanes::new(config.per_webhook_concurrency, config.concurrency);
        let disk = disk::DiskWatch::new(store.database_file(), config.disk_low);
        let inner = Arc::new_cyclic(|engine| Inner {
            ingest_tx: ingest::start_batcher(engine.clone()),
            store,
            sealer,
            http,
            config,
            wake: Arc::new(Notify::new()),
            replay_wake: Notify::new(),
            held_back: demand::HeldBack::default(),
            rate: rate::RateLimits::default(),
            lanes,
            waiting: lanes::Waiting::default(),
            express: express::Express::default(),
            subscribers: ingest::SubscriberCache::default(),
            changes: Arc::default(),
            write_health: health::WriteHealth::default(),
            write_alarm: write_alarm::WriteAlarm::default(),
            disk,
            stopped: tasks::Stopped::default(),
        });
        Self { inner }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Why the database is refusing Herald's writes, when the latest one failed for its sake
    /// within the last minute and none has succeeded since (see `health`).
    pub fn write_trouble(&self) -> Option<health::WriteTrouble> {
        self.inner.write_health.trouble(self.now())
    }

    /// The engine's current time (see `clock`).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.config.clock.now()
    }

    /// Makes one request (or sandbox record) with the engine's shared client and clock.
    async fn send(
        &self,
        target: &dispatch::Target<'_>,
        msg: &dispatch::Message<'_>,
    ) -> dispatch::Attempted {
        dispatch::attempt(
            &self.inner.http,
            target,
            msg,
            self.inner.config.clock.as_ref(),
        )
        .await
    }

    /// Tells the dispatcher that work may be due now.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Takes the dispatcher's pending ring: whether something told it that work may be due since
    /// it last listened. A running dispatcher takes its rings itself; with none running (tests
    /// drive the queue by hand) this says who rang.
    pub fn take_ring(&self) -> bool {
        use futures::FutureExt;
        self.inner.wake.notified().now_or_never().is_some()
    }
}
