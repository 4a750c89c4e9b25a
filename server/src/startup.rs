//! Building and running the application: open the store, create the engine, assemble the router
//! (console pages, server functions, REST API, static files) and serve it, with the dispatcher
//! running in the same process. `Application::build` binds the port first, so tests can ask for
//! port 0 and read back the one they got.

use crate::api;
use crate::config::{SecretArgs, ServeArgs};
use crate::console::{self, CspNonce};
use anyhow::{bail, Context};
use app::{shell, App};
use axum::Router;
use herald::auth::seal::Sealer;
use herald::auth::throttle::Limits;
use herald::auth::{Access, SessionPolicy};
use herald::delivery::guard::GuardPolicy;
use herald::delivery::{Engine, EngineConfig, SustainedFailure};
use herald::store::{self, Store};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::services::ServeDir;

pub struct Application {
    listener: TcpListener,
    /// `/metrics` on an address of its own (`HERALD_METRICS_ADDR`).
    metrics: Option<(TcpListener, Router)>,
    router: Router,
    engine: Engine,
    access: Access,
    setup_link: Option<String>,
}

/// Largest request body the console's routes accept (the REST API has the same limit of its own;
/// console forms are far smaller).
const BODY_LIMIT: usize = crate::api::BODY_LIMIT;

impl Application {
    pub async fn build(args: &ServeArgs) -> anyhow::Result<Self> {
        let store = store::connect(&args.db.database_url)
            .await
            .with_context(|| {
                format!("opening the database {}", redact_url(&args.db.database_url))
            })?;
        let sealer = sealer(&args.secrets, &args.db.database_url)?;
        let config = EngineConfig {
            concurrency: args.concurrency.max(1),
            shutdown_grace: std::time::Duration::from_secs(args.shutdown_grace_seconds),
            express: args.express,
            // One webhook may use an eighth of the slots (and far fewer while it hangs).
            per_webhook_concurrency: (args.concurrency / 8).max(1),
            guard: GuardPolicy {
                allow_private: args.allow_private_targets,
                require_https: args.require_https,
            },
            auto_disable: (args.auto_disable.auto_disable_after_hours > 0).then(|| {
                SustainedFailure {
                    after: chrono::Duration::hours(
                        args.auto_disable.auto_disable_after_hours.into(),
                    ),
                    min_failures: args.auto_disable.auto_disable_min_failures.into(),
                }
            }),
            retention: (args.retention_days > 0)
                .then(|| chrono::Duration::days(args.retention_days.into())),
            disk_low: herald::delivery::disk::LowMark {
                floor: args.disk_low_mib.saturating_mul(1024 * 1024),
            },
            ..EngineConfig::default()
        };
        let policy = SessionPolicy {
            idle: chrono::Duration::seconds(args.console.session_idle_seconds.into()),
            absolute: chrono::Duration::seconds(args.console.session_max_seconds.into()),
        };
        let access = Access::new(store.clone(), policy, Limits::default());
        // What other processes change about keys is noticed from here on (see `run_until_stopped`).
        access.notice_key_refusals().await?;
        let engine = Engine::new(store, sealer, config);
        let trusted = std::sync::Arc::new(args.console.trusted_proxies.clone());
        let mut router = router(engine.clone(), access.clone(), trusted)?;
        let metrics_state = |token: Option<&str>| crate::metrics::MetricsState {
            engine: engine.clone(),
            token: token.map(Arc::from),
            handle: crate::metrics::handle(),
        };
        if let Some(token) = args
            .metrics
            .metrics_token
            .as_deref()
            .filter(|t| !t.is_empty())
        {
            router = router.route(
                "/metrics",
                axum::routing::get(crate::metrics::scrape).with_state(metrics_state(Some(token))),
            );
        }
        let metrics = match args.metrics.metrics_addr {
            Some(addr) => {
                let listener = TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("listening for /metrics on {addr}"))?;
                let routes = Router::new().route(
                    "/metrics",
                    axum::routing::get(crate::metrics::scrape).with_state(metrics_state(None)),
                );
                Some((listener, routes))
            }
            None => None,
        };
        let listener = TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("listening on {}", args.addr))?;
        let setup_link = match access.issue_setup_token().await? {
            Some(token) => {
                let base = match &args.console.public_url {
                    Some(url) => url.as_str().trim_end_matches('/').to_owned(),
                    None => format!("http://{}", browsable(listener.local_addr()?)),
                };
                Some(format!("{base}/setup?token={token}"))
            }
            None => None,
        };
        Ok(Self {
            listener,
            metrics,
            router,
            engine,
            access,
            setup_link,
        })
    }

    /// The one-time link that creates the first admin, when no console user exists yet.
    pub fn setup_link(&self) -> Option<&str> {
        self.setup_link.as_deref()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Where the separate `/metrics` listener is, when there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Console users, sessions and API keys, as this server checks them.
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// Serves until `shutdown` completes, then stops accepting, drains the dispatcher (requests in
    /// flight finish within the grace period or are released) and returns.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        // Each reported if it ends by panicking (see `herald::delivery::tasks`).
        let engine = &self.engine;
        let dispatcher = engine.watch_task("dispatcher", engine.clone().run(stop_rx.clone()));
        let alerter = engine.watch_task("alerts", engine.clone().run_alerts(stop_rx.clone()));
        let pruner = engine.watch_task("retention", engine.clone().run_retention(stop_rx.clone()));
        let replayer = engine.watch_task(
            "bulk replay",
            engine.clone().run_bulk_replays(stop_rx.clone()),
        );
        let holder = engine.watch_task(
            "hold sweeps",
            engine.clone().run_hold_sweeps(stop_rx.clone()),
        );
        let backfill = engine.watch_task(
            "member backfill",
            engine.clone().run_member_backfill(stop_rx.clone()),
        );
        let access = self.access.clone();
        let sweeper = tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
            loop {
                every.tick().await;
                if let Err(e) = access.sweep_sessions().await {
                    tracing::warn!(error = %e, "could not delete stale sessions");
                }
            }
        });
        // A key revoked or a program archived by another process (the command line, another
        // Herald on the same PostgreSQL) is refused here within a second, not only once the
        // key cache's minute is up.
        let access = self.access.clone();
        let key_watch = tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if let Err(e) = access.notice_key_refusals().await {
                    tracing::debug!(error = %e, "could not look for revoked keys");
                }
            }
        });
        let metrics = self.metrics.map(|(listener, routes)| {
            let mut stopped = stop_rx.clone();
            tokio::spawn(async move {
                let stop = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                if let Err(e) = axum::serve(listener, routes)
                    .with_graceful_shutdown(stop)
                    .await
                {
                    tracing::error!(error = %e, "the /metrics listener failed");
                }
            })
        });
        let grace = self.engine.config().shutdown_grace;
        let mut stopping = stop_rx.clone();
        let serve = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        // Requests under way may finish within the grace period; a connection that stays busy
        // longer (a client that never reads its answer, say) does not keep Herald running.
        tokio::select! {
            served = serve.into_future() => served.context("HTTP server failed")?,
            _ = async {
                if stopping.wait_for(|s| *s).await.is_err() {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(grace_seconds = grace.as_secs(), "connections still open when the shutdown grace ran out; closing them");
            }
        }
        sweeper.abort();
        key_watch.abort();
        alerter.abort();
        pruner.abort();
        replayer.abort();
        holder.abort();
        backfill.abort();
        if let Some(metrics) = metrics {
            let _ = metrics.await;
        }
        dispatcher
            .await
            .context("waiting for the dispatcher to stop")?;
        Ok(())
    }
}

fn router(
    engine: Engine,
    access: Access,
    trusted_proxies: std::sync::Arc<Vec<herald::auth::client_ip::ProxyNet>>,
) -> anyhow::Result<Router> {
    let conf = get_configuration(None).context("reading the Leptos configuration")?;
    let options = conf.leptos_options;
    let routes = generate_route_list(App);
    let context = {
        let (engine, access) = (engine.clone(), access.clone());
        move || {
            provide_context(engine.clone());
            provide_context(access.clone());
            let nonce = use_context::<axum::http::request::Parts>()
                .and_then(|p| p.extensions.get::<CspNonce>().cloned());
            if let Some(CspNonce(n)) = nonce {
                provide_context(leptos::nonce::Nonce::from_value(n));
            }
        }
    };
    let console = Router::new()
        .leptos_routes_with_context(&options, routes, context.clone(), {
            let options = options.clone();
            move || shell(options.clone())
        })
        // Download CSV on the Audit Logs and Deliveries pages (plain links: the session, no
        // server function).
        .route(
            "/p/{program}/audit-logs.csv",
            axum::routing::get(crate::csv_export::console::<crate::csv_export::AttemptFilters>)
                .with_state(engine.clone()),
        )
        .route(
            "/p/{program}/deliveries.csv",
            axum::routing::get(crate::csv_export::console::<crate::csv_export::DeliveryFilters>)
                .with_state(engine.clone()),
        )
        // The script, wasm and stylesheet: precompressed copies by Accept-Encoding, and
        // conditional requests answered 304 (the fallback's file server only does the former).
        .nest_service(
            &format!("/{}", options.site_pkg_dir),
            tower::Layer::layer(
                &axum::middleware::from_fn(console::static_file_caching),
                ServeDir::new(
                    std::path::Path::new(&*options.site_root).join(&*options.site_pkg_dir),
                )
                .precompressed_br()
                .precompressed_gzip(),
            ),
        )
        .fallback(leptos_axum::file_and_error_handler_with_context(
            context, shell,
        ))
        .with_state(options)
        .layer(axum::middleware::from_fn_with_state(
            access.clone(),
            console::gate,
        ))
        .layer(axum::middleware::from_fn(console::content_security_policy))
        .layer(axum::middleware::from_fn_with_state(
            trusted_proxies,
            console::client_address,
        ))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        // Pages and server-function answers gzipped for browsers that ask (a page of the Webhooks
        // list carries its rows twice, as HTML and as the island's data: 281 KB of HTML for 50
        // webhooks). The console's own files are already compressed and pass as they are. CSV
        // downloads stay plain: Chromium cancelled the streamed file once it was gzipped.
        .layer(
            tower_http::compression::CompressionLayer::new().compress_when({
                use tower_http::compression::predicate::{
                    DefaultPredicate, NotForContentType, Predicate,
                };
                DefaultPredicate::new().and(NotForContentType::const_new("text/csv"))
            }),
        );
    // The API limits bodies itself (`DefaultBodyLimit`), answering 413 in its JSON error format.
    Ok(api::router(engine, access)
        .merge(console)
        .layer(axum::middleware::from_fn(console::security_headers)))
}

/// An address a browser can open: a wildcard listen address becomes loopback.
fn browsable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from(([127, 0, 0, 1], addr.port()))
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

/// An engine for a one-off command (export, import): no workers are started.
pub async fn command_engine(
    database_url: &str,
    secrets: &SecretArgs,
    allow_private_targets: bool,
) -> anyhow::Result<Engine> {
    let clock = Arc::new(herald::delivery::clock::SystemClock);
    engine_for_command(database_url, secrets, allow_private_targets, clock).await
}

/// An engine for `herald seed`: no workers, time told by `clock`, and its own receiver on
/// 127.0.0.1 allowed as a target.
pub async fn command_engine_with_clock(
    database_url: &str,
    secrets: &SecretArgs,
    clock: Arc<dyn herald::delivery::clock::Clock>,
) -> anyhow::Result<Engine> {
    engine_for_command(database_url, secrets, true, clock).await
}

async fn engine_for_command(
    database_url: &str,
    secrets: &SecretArgs,
    allow_private_targets: bool,
    clock: Arc<dyn herald::delivery::clock::Clock>,
) -> anyhow::Result<Engine> {
    let store = open_store(database_url).await?;
    let sealer = sealer(secrets, database_url)?;
    let config = EngineConfig {
        guard: GuardPolicy {
            allow_private: allow_private_targets,
            require_https: false,
        },
        clock,
        ..EngineConfig::default()
    };
    Ok(Engine::new(store, sealer, config))
}

/// The sealing key: `HERALD_SECRET_KEY`, or with SQLite a key file beside the database.
fn sealer(args: &SecretArgs, database_url: &str) -> anyhow::Result<Sealer> {
    if let Some(text) = &args.secret_key {
        return Sealer::from_key_text(text).context("HERALD_SECRET_KEY");
    }
    let Some(db_path) = sqlite_path(database_url) else {
        bail!("HERALD_SECRET_KEY is required with PostgreSQL (every Herald process must share it); generate one with `openssl rand -hex 32`");
    };
    let path = args.key_file.clone().unwrap_or_else(|| {
        let mut p = db_path.into_os_string();
        p.push(".key");
        PathBuf::from(p)
    });
    let (sealer, created) = Sealer::from_key_file(&path)?;
    if created {
        tracing::info!(path = %path.display(), "created a new secret-sealing key file (mode 0600); back it up with the database");
    } else {
        tracing::info!(path = %path.display(), "sealing secrets with the key file");
    }
    Ok(sealer)
}

/// The file a `sqlite:` URL points at.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// A database URL safe to print (password removed).
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Opens the store alone (for `migrate` and `api-key` commands).
pub async fn open_store(database_url: &str) -> anyhow::Result<Arc<dyn Store>> {
    store::connect(database_url)
        .await
        .with_context(|| format!("opening the database {}", redact_url(database_url)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_and_redaction() {
        assert_eq!(
            sqlite_path("sqlite://herald.db?mode=rwc"),
            Some(PathBuf::from("herald.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/x.db"),
            Some(PathBuf::from("/tmp/x.db"))
        );
        assert_eq!(sqlite_path("postgres://x"), None);
        assert_eq!(
            redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
    }
}
