//! Prometheus `/metrics`: the `metrics` facade's recorder (installed once per process), the
//! engine's counters and histograms (`herald::delivery::observe`), and gauges read from the store
//! at scrape time (deliveries pending, in flight and dead-lettered; database connections). Off
//! unless `HERALD_METRICS_TOKEN` (on the main address, bearer token) or `HERALD_METRICS_ADDR` (an
//! address of its own) is set.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use herald::delivery::Engine;
use metrics::gauge;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, OnceLock};
use subtle::ConstantTimeEq;

/// Histogram buckets for every `_seconds` metric: from a millisecond (a fast receiver) to an hour
/// (event-to-delivery lag across retries).
const BUCKETS: [f64; 18] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 1800.0, 3600.0,
];

/// Buckets for the write path's waits and transactions (`herald_write_wait_seconds`,
/// `herald_write_seconds`): a group commit takes a fraction of a millisecond when all is well.
const WRITE_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
                .and_then(|b| {
                    // Exact names are matched before suffixes.
                    b.set_buckets_for_metric(
                        Matcher::Full("herald_write_wait_seconds".into()),
                        &WRITE_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("herald_write_seconds".into()),
                        &WRITE_BUCKETS,
                    )
                })
                .expect("bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

/// What the `/metrics` handlers share.
#[derive(Clone)]
pub struct MetricsState {
    pub engine: Engine,
    /// Required bearer token (`None`: the separate, unauthenticated listener).
    pub token: Option<Arc<str>>,
    pub handle: PrometheusHandle,
}

pub async fn scrape(State(state): State<MetricsState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "send the metrics token as Authorization: Bearer <token>\n",
            )
                .into_response();
        }
    }
    match state.engine.store().queue_gauges().await {
        Ok(g) => {
            gauge!("herald_queue_depth", "state" => "pending").set(g.pending as f64);
            gauge!("herald_queue_depth", "state" => "in_flight").set(g.in_flight as f64);
            gauge!("herald_queue_depth", "state" => "dead_lettered").set(g.failed as f64);
            gauge!("herald_db_connections", "state" => "open").set(f64::from(g.pool_connections));
            gauge!("herald_db_connections", "state" => "idle").set(f64::from(g.pool_idle));
            gauge!("herald_database_up").set(1.0);
            match state.engine.oldest_due_seconds().await {
                Ok(age) => gauge!("herald_queue_oldest_due_seconds").set(age),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: reading the oldest due delivery failed")
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: reading the queue figures failed");
            gauge!("herald_database_up").set(0.0);
        }
    }
    let writable = state.engine.write_trouble().is_none();
    gauge!("herald_database_writable").set(if writable { 1.0 } else { 0.0 });
    gauge!("herald_tasks_stopped").set(state.engine.stopped_tasks().len() as f64);
    if state.engine.store().database_file().is_some() {
        metrics::counter!("herald_sqlite_wal_commits_gathered_total")
            .absolute(herald::store::wal_commits_gathered());
    }
    if let Some(disk) = state.engine.disk() {
        gauge!("herald_database_disk_free_bytes").set(disk.space.free as f64);
        gauge!("herald_database_disk_size_bytes").set(disk.space.total as f64);
        gauge!("herald_database_disk_low").set(if disk.low { 1.0 } else { 0.0 });
    }
    state.handle.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.handle.render(),
    )
        .into_response()
}
