//! Test support: the real application on port 0 with a fresh database, a recording receiver, and
//! an HTTP client that speaks to the API with a real key.

#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use server::config::{DatabaseArgs, SecretArgs, ServeArgs};
use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

pub const SECRET_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Which database a test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub key: String,
    pub client: reqwest::Client,
    pub database_url: String,
    /// The default program (where the test API key and `herald` commands act).
    pub program: String,
    /// The first-run setup link printed at start-up (no user existed).
    pub setup_link: Option<String>,
    /// The separate `/metrics` listener, when configured.
    pub metrics_addr: Option<SocketAddr>,
    /// The engine the server runs (the same process).
    pub engine: herald::delivery::Engine,
    /// The server's own access checks (its key cache among them).
    pub access: herald::auth::Access,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
}

/// A fresh database URL for `backend`, or `None` (loudly) when PostgreSQL is not configured.
pub async fn database(backend: Backend, test: &str) -> Option<(String, Option<tempfile::TempDir>)> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("herald.db").display()
            );
            Some((url, Some(dir)))
        }
        Backend::Postgres => {
            let Some(admin) = std::env::var("HERALD_TEST_POSTGRES_URL")
                .ok()
                .filter(|s| !s.is_empty())
            else {
                eprintln!("SKIPPED {test} on PostgreSQL: HERALD_TEST_POSTGRES_URL is not set");
                return None;
            };
            let name = format!("herald_t_{}", uuid::Uuid::new_v4().simple());
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                .await
                .unwrap();
            sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
                .await
                .unwrap();
            let mut url = url::Url::parse(&admin).unwrap();
            url.set_path(&name);
            Some((url.to_string(), None))
        }
    }
}

pub fn serve_args(database_url: &str) -> ServeArgs {
    ServeArgs {
        addr: "127.0.0.1:0".parse().unwrap(),
        db: DatabaseArgs {
            database_url: database_url.to_owned(),
        },
        secrets: SecretArgs {
            secret_key: Some(SECRET_KEY.to_owned()),
            key_file: None,
        },
        allow_private_targets: true,
        require_https: false,
        concurrency: 64,
        shutdown_grace_seconds: 10,
        express: true,
        auto_disable: Default::default(),
        retention_days: 30,
        disk_low_mib: 1024,
        console: Default::default(),
        metrics: Default::default(),
    }
}

/// Starts the whole application (API, console, dispatcher) on a fresh database.
pub async fn spawn_app(backend: Backend, test: &str) -> Option<TestApp> {
    let (url, dir) = database(backend, test).await?;
    Some(spawn_with(serve_args(&url), dir).await)
}

pub async fn spawn_with(args: ServeArgs, dir: Option<tempfile::TempDir>) -> TestApp {
    let app = server::startup::Application::build(&args)
        .await
        .expect("build app");
    let addr = app.local_addr();
    let setup_link = app.setup_link().map(str::to_owned);
    let metrics_addr = app.metrics_addr();
    let engine = app.engine().clone();
    let access = app.access().clone();
    let key = insert_key(&args.db.database_url).await;
    let program = herald::store::connect(&args.db.database_url)
        .await
        .unwrap()
        .default_program()
        .await
        .unwrap()
        .to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        base: format!("http://{addr}"),
        key,
        client: reqwest::Client::new(),
        database_url: args.db.database_url,
        program,
        setup_link,
        metrics_addr,
        engine,
        access,
        stop: Some(stop),
        handle: Some(handle),
        _dir: dir,
    }
}

/// Stores a new API key in the database at `url` and returns it.
pub async fn insert_key(url: &str) -> String {
    let store = herald::store::connect(url).await.unwrap();
    herald::auth::api_key::issue(store.as_ref(), "tests")
        .await
        .unwrap()
        .plain
}

impl TestApp {
    /// Signs a new console admin in, returning the session token.
    pub async fn console_session(&self) -> String {
        let app = self;
        let store = herald::store::connect(&app.database_url).await.unwrap();
        let access = herald::auth::Access::new(store, Default::default(), Default::default());
        let program = herald::domain::ids::ProgramId::parse(&app.program).unwrap();
        let password = "correct horse battery";
        access
            .add_member(
                &herald::auth::Actor::command_line(program),
                "ops@example.com",
                password,
                herald::domain::account::Role::Admin,
            )
            .await
            .unwrap();
        let r = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(app.url("/sfn/login"))
            .header(reqwest::header::ORIGIN, &app.base)
            .form(&[
                ("email", "ops@example.com"),
                ("password", password),
                ("next", "/"),
            ])
            .send()
            .await
            .unwrap();
        session_cookie(&r).unwrap_or_else(|| panic!("login failed: {}", r.status()))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The database file, when the app runs on SQLite.
    pub fn sqlite_path(&self) -> Option<String> {
        let rest = self.database_url.strip_prefix("sqlite://")?;
        Some(rest.split('?').next().unwrap_or(rest).to_owned())
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// Creates a webhook pointing at `url`, returning its JSON (with the secret).
    pub async fn create_webhook(&self, body: Value) -> Value {
        let (status, json) = self.post("/api/v1/webhooks", body).await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json
    }

    /// The audit log for one webhook, oldest first.
    pub async fn attempts(&self, webhook_id: &str) -> Vec<Value> {
        self.attempt_items(&format!("webhook_id={webhook_id}"))
            .await
    }

    /// The audit log's search (an event id or part of a webhook name), oldest first.
    pub async fn search_attempts(&self, search: &str) -> Vec<Value> {
        self.attempt_items(&format!("q={search}")).await
    }

    /// Up to 200 rows of the audit log matching `query`, oldest first.
    async fn attempt_items(&self, query: &str) -> Vec<Value> {
        let (status, page) = self
            .get(&format!("/api/v1/attempts?{query}&limit=200"))
            .await;
        assert_eq!(status, 200, "{page}");
        let mut items = page["items"].as_array().cloned().unwrap_or_default();
        items.reverse();
        items
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }
}

/// One request a receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_default()
    }
}

/// How a receiver answers one request.
#[derive(Clone, Debug)]
pub enum Reply {
    Status(u16),
    StatusWithRetryAfter(u16, u32),
    Delay(Duration, u16),
    /// A status with these exact body bytes (NUL, invalid UTF-8, …).
    Body(u16, Vec<u8>),
}

#[derive(Default)]
struct ReceiverState {
    got: Mutex<Vec<Received>>,
    /// `webhook-id`s of requests answered in full (a request whose sender vanished mid-way is
    /// dropped by the server before it gets here).
    completed: Mutex<Vec<String>>,
    script: Mutex<VecDeque<Reply>>,
}

/// An HTTP endpoint on 127.0.0.1 that records every request and answers from a script (then 200).
pub struct TestReceiver {
    pub url: String,
    state: Arc<ReceiverState>,
}

impl TestReceiver {
    pub async fn start() -> Self {
        let state = Arc::new(ReceiverState::default());
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url: format!("http://{addr}/hook"),
            state,
        }
    }

    /// Queues answers for the next requests, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().unwrap().extend(replies);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.got.lock().unwrap().clone()
    }

    pub fn completed(&self) -> Vec<String> {
        self.state.completed.lock().unwrap().clone()
    }

    /// Waits (bounded) until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        eventually(within, || {
            let got = self.received();
            async move { (got.len() >= n).then_some(got) }
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "expected {n} requests within {within:?}, got {}",
                self.received().len()
            )
        })
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    state.got.lock().unwrap().push(Received {
        headers,
        body,
        at: Instant::now(),
    });
    let reply = state
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Reply::Status(200));
    let response = match reply {
        Reply::Status(s) => {
            (StatusCode::from_u16(s).unwrap(), HeaderMap::new(), "ok").into_response()
        }
        Reply::StatusWithRetryAfter(s, secs) => {
            let mut h = HeaderMap::new();
            h.insert("retry-after", secs.to_string().parse().unwrap());
            (StatusCode::from_u16(s).unwrap(), h, "slow down").into_response()
        }
        Reply::Body(s, bytes) => (StatusCode::from_u16(s).unwrap(), bytes).into_response(),
        Reply::Delay(d, s) => {
            tokio::time::sleep(d).await;
            (StatusCode::from_u16(s).unwrap(), "late").into_response()
        }
    };
    state.completed.lock().unwrap().push(id);
    response
}

/// An engine of our own on the database at `url`, with a manual clock and no dispatcher running:
/// the test drives the queue with `run_once`/`drain` and moves time itself. Every delivery goes
/// through the queue (no express dispatch), so the test sees each one pending until a claim.
pub async fn manual_engine(
    url: &str,
) -> (
    herald::delivery::Engine,
    std::sync::Arc<herald::delivery::clock::ManualClock>,
) {
    let clock = std::sync::Arc::new(herald::delivery::clock::ManualClock::new());
    (engine_on(url, clock.clone(), false).await, clock)
}

/// A manually driven engine on `url` reading `clock`; `express`: ingest may own and send new
/// deliveries itself once a claim has come back short.
pub async fn engine_on(
    url: &str,
    clock: std::sync::Arc<herald::delivery::clock::ManualClock>,
    express: bool,
) -> herald::delivery::Engine {
    let store = herald::store::connect(url).await.unwrap();
    let sealer = herald::auth::seal::Sealer::from_key_text(SECRET_KEY).unwrap();
    let config = herald::delivery::EngineConfig {
        guard: herald::delivery::guard::GuardPolicy {
            allow_private: true,
            require_https: false,
        },
        clock,
        express,
        ..Default::default()
    };
    herald::delivery::Engine::new(store, sealer, config)
}

/// An engine of our own on a fresh database, driven by hand (see `manual_engine`), acting as an
/// admin of the default program.
pub struct Setup {
    pub engine: herald::delivery::Engine,
    pub clock: std::sync::Arc<herald::delivery::clock::ManualClock>,
    pub admin: herald::auth::Actor,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Setup {
    /// Switches a webhook on or off as an admin does (`discard_held` when switching it on:
    /// dead-letter what it held instead of sending it).
    pub async fn switch(
        &self,
        id: &herald::domain::ids::WebhookId,
        on: bool,
        discard_held: Option<bool>,
    ) {
        let patch = herald::domain::settings::WebhookPatch {
            enabled: Some(on),
            discard_held,
            ..Default::default()
        };
        self.engine
            .update_webhook(&self.admin, id, patch)
            .await
            .unwrap();
    }

    /// Creates a webhook from a draft as the API takes it (`name`, `url`, `event_types`,
    /// `retry`, …); returns its id.
    pub async fn webhook(&self, draft: Value) -> herald::domain::ids::WebhookId {
        let draft: herald::domain::settings::WebhookDraft = serde_json::from_value(draft).unwrap();
        let saved = self
            .engine
            .create_webhook(&self.admin, &draft)
            .await
            .unwrap();
        saved.webhook.record.id
    }

    /// Accepts an event of `event_type` with `data`, timestamped by the test's clock.
    pub async fn post(&self, event_type: &str, data: Value) {
        use herald::delivery::clock::Clock;
        let event =
            herald::domain::event::NewEvent::parse(event_type, data, None, None, self.clock.now())
                .unwrap();
        self.engine
            .ingest(&self.admin.program, event)
            .await
            .unwrap();
    }

    /// The deliveries of one webhook (newest first), of one status or all.
    pub async fn deliveries(
        &self,
        webhook: &herald::domain::ids::WebhookId,
        status: Option<herald::domain::delivery::DeliveryStatus>,
    ) -> Vec<herald::store::DeliverySummary> {
        let query = herald::store::DeliveryQuery {
            status,
            webhook_id: Some(webhook.clone()),
            limit: 100,
            ..Default::default()
        };
        self.engine
            .store()
            .list_deliveries(&self.admin.program, &query)
            .await
            .unwrap()
            .items
    }

    /// Serves the REST API of this engine on 127.0.0.1; returns its base URL and an API key.
    pub async fn serve_api(&self) -> (String, String) {
        let access = herald::auth::Access::new(
            self.engine.store().clone(),
            Default::default(),
            Default::default(),
        );
        let router = server::api::router(self.engine.clone(), access);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        (base, insert_key(&self.url).await)
    }
}

/// A `Setup` on `backend`; `None` when that backend is not available to this run.
pub async fn setup(backend: Backend, name: &str) -> Option<Setup> {
    setup_with(backend, name, false).await
}

/// `setup`, with express dispatch on or off (see `engine_on`).
pub async fn setup_with(backend: Backend, name: &str, express: bool) -> Option<Setup> {
    let (url, dir) = database(backend, name).await?;
    let clock = std::sync::Arc::new(herald::delivery::clock::ManualClock::new());
    let engine = engine_on(&url, clock.clone(), express).await;
    let program = engine.store().default_program().await.unwrap();
    Some(Setup {
        engine,
        clock,
        admin: herald::auth::Actor::command_line(program),
        url,
        _dir: dir,
    })
}

/// Polls `check` every 20 ms until it yields a value or `within` passes.
pub async fn eventually<T, F, Fut>(within: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Declares each listed `async fn(Backend)` as a test on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await;
                }
            )+
        }
    };
}

/// The console session token a response set, if it set a non-empty one.
pub fn session_cookie(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("herald_session="))
        .map(|rest| rest.split(';').next().unwrap_or_default().to_owned())
        .filter(|v| !v.is_empty())
}

/// A free TCP port on 127.0.0.1 (bound, read and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port on 127.0.0.1 that refuses connections for as long as this lives: a socket bound to it
/// but not listening. A port bound, read and released instead can be handed straight to the next
/// receiver a test (or a test running beside it) binds, which then answers.
pub struct RefusingPort {
    _socket: tokio::net::TcpSocket,
    pub addr: SocketAddr,
}

impl RefusingPort {
    pub fn new() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = socket.local_addr().unwrap();
        Self {
            _socket: socket,
            addr,
        }
    }
}

/// A real `herald serve` process (the binary cargo built), for the tests that kill, stop and
/// restart it. The process is killed when this is dropped.
pub struct HeraldProcess {
    pub base: String,
    pub port: u16,
    database_url: String,
    child: std::process::Child,
}

impl HeraldProcess {
    /// Starts `herald serve` on `port` and waits (bounded) until it answers `/healthz`.
    pub async fn start(database_url: &str, port: u16) -> Self {
        let child = Self::launch(database_url, port, &[], std::process::Stdio::null());
        Self::ready(database_url, port, child).await
    }

    /// `start` with extra environment, handing back every line the process writes to stderr.
    pub async fn start_logging(
        database_url: &str,
        port: u16,
        env: &[(&str, &str)],
    ) -> (Self, std::sync::mpsc::Receiver<String>) {
        use std::io::BufRead;
        let mut child = Self::launch(database_url, port, env, std::process::Stdio::piped());
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        (Self::ready(database_url, port, child).await, lines)
    }

    fn launch(
        database_url: &str,
        port: u16,
        env: &[(&str, &str)],
        stderr: std::process::Stdio,
    ) -> std::process::Child {
        std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
            .args([
                "serve",
                "--addr",
                &format!("127.0.0.1:{port}"),
                "--database-url",
                database_url,
            ])
            .env("HERALD_SECRET_KEY", SECRET_KEY)
            .env("HERALD_ALLOW_PRIVATE_TARGETS", "true")
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start herald")
    }

    async fn ready(database_url: &str, port: u16, child: std::process::Child) -> Self {
        let process = Self {
            base: format!("http://127.0.0.1:{port}"),
            port,
            database_url: database_url.to_owned(),
            child,
        };
        process.wait_healthy().await;
        process
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn wait_healthy(&self) {
        let client = reqwest::Client::new();
        let url = format!("{}/healthz", self.base);
        let ok = eventually(Duration::from_secs(30), || async {
            let r = client.get(&url).send().await.ok()?;
            r.status().is_success().then_some(())
        })
        .await;
        assert!(
            ok.is_some(),
            "herald did not become healthy on {}",
            self.base
        );
    }

    /// SIGKILL: the process dies at once, whatever it was doing.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the process and starts a new one on the same port and database.
    pub async fn restart(&mut self) {
        self.kill();
        *self = Self::start(&self.database_url.clone(), self.port).await;
    }

    /// SIGTERM, then waits (bounded) for the exit; `None` when it did not exit in time.
    pub async fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "could not send SIGTERM");
        let child = &mut self.child;
        eventually(within, || {
            let status = child.try_wait().unwrap();
            async move { status }
        })
        .await
    }
}

impl Drop for HeraldProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What a load run saw: the events accepted (`202`, with when) and every other outcome.
#[derive(Default, Debug)]
pub struct Tally {
    pub accepted: Vec<(String, Instant)>,
    /// Answers other than `202`, by status.
    pub refused: std::collections::BTreeMap<u16, usize>,
    /// `503`s without a `Retry-After` header (the API promises one).
    pub unavailable_without_retry_after: usize,
    /// Requests that got no HTTP answer (process killed or stopped, connection refused).
    pub unanswered: usize,
    /// Statuses with the instant they came back, in order (for "503 while away, 202 after").
    pub timeline: Vec<(Instant, u16)>,
}

impl Tally {
    pub fn accepted_ids(&self) -> std::collections::HashSet<String> {
        self.accepted.iter().map(|(id, _)| id.clone()).collect()
    }

    fn merge(&mut self, other: Tally) {
        self.accepted.extend(other.accepted);
        for (status, n) in other.refused {
            *self.refused.entry(status).or_default() += n;
        }
        self.unavailable_without_retry_after += other.unavailable_without_retry_after;
        self.unanswered += other.unanswered;
        self.timeline.extend(other.timeline);
        self.timeline.sort_by_key(|(at, _)| *at);
    }
}

/// Steady ingest load: `senders` loops, each posting one `points.awarded` event per `every`
/// (or as fast as answers come, if slower), spread round robin over `bases`, until stopped.
pub struct Load {
    stop: Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Tally>>,
    /// Answers so far by status, live, for tests that act on what the load has seen.
    answers: tokio::sync::watch::Receiver<std::collections::BTreeMap<u16, usize>>,
}

impl Load {
    pub fn start(bases: &[String], key: &str, senders: usize, every: Duration) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (answered, answers) =
            tokio::sync::watch::channel(std::collections::BTreeMap::<u16, usize>::new());
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let tasks = (0..senders)
            .map(|n| {
                let (stop, client, key) = (stop.clone(), client.clone(), key.to_owned());
                let answered = answered.clone();
                let base = bases[n % bases.len()].clone();
                tokio::spawn(async move {
                    let mut tally = Tally::default();
                    let mut tick = tokio::time::interval(every);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    let mut i = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        tick.tick().await;
                        i += 1;
                        let sent = client
                            .post(format!("{base}/api/v1/events"))
                            .bearer_auth(&key)
                            .json(&serde_json::json!({
                                "event_type": "points.awarded",
                                "data": {"sender": n, "i": i}
                            }))
                            .send()
                            .await;
                        let Ok(r) = sent else {
                            tally.unanswered += 1;
                            continue;
                        };
                        let status = r.status().as_u16();
                        tally.timeline.push((Instant::now(), status));
                        answered.send_modify(|seen| *seen.entry(status).or_default() += 1);
                        if status == 202 {
                            match r.json::<Value>().await {
                                Ok(body) => tally.accepted.push((
                                    body["event_id"].as_str().unwrap().to_owned(),
                                    Instant::now(),
                                )),
                                // The answer was cut off: its event may or may not be stored.
                                Err(_) => tally.unanswered += 1,
                            }
                        } else {
                            if status == 503 && !r.headers().contains_key("retry-after") {
                                tally.unavailable_without_retry_after += 1;
                            }
                            *tally.refused.entry(status).or_default() += 1;
                        }
                    }
                    tally
                })
            })
            .collect();
        Self {
            stop,
            tasks,
            answers,
        }
    }

    /// Waits (bounded by `within`) until `more` further answers with `status` have come back,
    /// counted from this call; `false` if they did not.
    pub async fn wait_for_more(&mut self, status: u16, more: usize, within: Duration) -> bool {
        let count =
            |seen: &std::collections::BTreeMap<u16, usize>| seen.get(&status).copied().unwrap_or(0);
        let target = count(&self.answers.borrow_and_update()) + more;
        tokio::time::timeout(within, self.answers.wait_for(|seen| count(seen) >= target))
            .await
            .is_ok_and(|seen| seen.is_ok())
    }

    /// Stops every sender (each finishes its request in flight) and sums what they saw.
    pub async fn stop(self) -> Tally {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut total = Tally::default();
        for task in self.tasks {
            total.merge(task.await.unwrap());
        }
        total
    }
}

/// Waits (bounded) until every id in `accepted` was answered in full by `rx`; panics naming how
/// many were not.
pub async fn wait_all_delivered(
    rx: &TestReceiver,
    accepted: &std::collections::HashSet<String>,
    within: Duration,
) {
    let done = eventually(within, || {
        let completed: std::collections::HashSet<String> = rx.completed().into_iter().collect();
        let done = accepted.is_subset(&completed);
        async move { done.then_some(()) }
    })
    .await;
    if done.is_none() {
        let completed: std::collections::HashSet<String> = rx.completed().into_iter().collect();
        panic!(
            "{} of {} accepted events were never delivered within {within:?}",
            accepted.difference(&completed).count(),
            accepted.len()
        );
    }
}

/// Requests received per `webhook-id`, with when each arrived.
pub fn receipts_by_id(rx: &TestReceiver) -> std::collections::HashMap<String, Vec<Instant>> {
    let mut by_id: std::collections::HashMap<String, Vec<Instant>> = Default::default();
    for r in rx.received() {
        by_id
            .entry(r.header("webhook-id").to_owned())
            .or_default()
            .push(r.at);
    }
    by_id
}

/// Creates a `points.awarded` webhook named `name` pointing at `url` on the Herald at `base`
/// (10 tries a second apart, 2 s timeout), through the API.
pub async fn create_load_webhook(base: &str, key: &str, name: &str, url: &str) {
    let created = reqwest::Client::new()
        .post(format!("{base}/api/v1/webhooks"))
        .bearer_auth(key)
        .json(&serde_json::json!({"name": name, "url": url, "event_types": ["points.awarded"],
            "retry": {"attempts": 10, "delay_seconds": 1, "backoff": "fixed", "timeout_seconds": 2}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
}

/// One message an `SmtpSink` accepted.
#[derive(Clone, Debug)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The DATA section as sent (headers and body).
    pub data: String,
    /// `AUTH PLAIN` credentials given on its connection, as `user:password`.
    pub auth: Option<String>,
}

impl Mail {
    /// The `Subject:` header's value.
    pub fn subject(&self) -> &str {
        self.data
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or_default()
    }
}

/// A real SMTP server on 127.0.0.1 that accepts every message (no TLS) and keeps it: enough of
/// RFC 5321 for a real client to deliver to it, with `AUTH PLAIN`.
pub struct SmtpSink {
    pub port: u16,
    got: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let got: Arc<Mutex<Vec<Mail>>> = Arc::default();
        let sink = got.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(smtp_session(socket, sink.clone()));
            }
        });
        Self { port, got }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.got.lock().unwrap().clone()
    }
}

async fn smtp_session(socket: tokio::net::TcpStream, got: Arc<Mutex<Vec<Mail>>>) {
    use base64::Engine as _;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    if write.write_all(b"220 sink ESMTP\r\n").await.is_err() {
        return;
    }
    let (mut from, mut to, mut auth) = (String::new(), Vec::new(), None);
    while let Ok(Some(line)) = lines.next_line().await {
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-sink\r\n250 AUTH PLAIN\r\n"
        } else if upper.starts_with("HELO") {
            b"250 sink\r\n"
        } else if upper.starts_with("AUTH PLAIN") {
            let encoded = line.split_whitespace().nth(2).unwrap_or_default();
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .unwrap_or_default();
            let parts: Vec<String> = decoded
                .split(|b| *b == 0)
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            auth = Some(format!(
                "{}:{}",
                parts.get(1).cloned().unwrap_or_default(),
                parts.get(2).cloned().unwrap_or_default()
            ));
            b"235 ok\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            from = line[10..].trim().trim_matches(['<', '>']).to_owned();
            b"250 ok\r\n"
        } else if upper.starts_with("RCPT TO:") {
            to.push(line[8..].trim().trim_matches(['<', '>']).to_owned());
            b"250 ok\r\n"
        } else if upper == "DATA" {
            if write.write_all(b"354 go on\r\n").await.is_err() {
                return;
            }
            let mut data = String::new();
            while let Ok(Some(l)) = lines.next_line().await {
                if l == "." {
                    break;
                }
                data.push_str(&l);
                data.push('\n');
            }
            got.lock().unwrap().push(Mail {
                from: std::mem::take(&mut from),
                to: std::mem::take(&mut to),
                data,
                auth: auth.clone(),
            });
            b"250 kept\r\n"
        } else if upper == "QUIT" {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"250 ok\r\n"
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}
