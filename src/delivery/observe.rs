//! What the engine tells operators about each event and attempt: Prometheus metrics (through the
//! `metrics` facade; `herald serve` installs the exporter when `/metrics` is configured, and
//! without one these calls cost next to nothing) and one log line per failed attempt, with the
//! webhook, event, delivery and attempt ids as fields.
//!
//! Metric names (see the README): `herald_events_ingested_total{duplicate}`,
//! `herald_attempts_total{webhook_id,outcome}`, `herald_deliveries_finished_total{webhook_id,
//! outcome}`, `herald_retries_scheduled_total{webhook_id}`, `herald_attempt_duration_seconds`,
//! `herald_delivery_lag_seconds`; the queue and pool gauges are read at scrape time.

use super::queue::{Claim, NextStep, Outcome};
use crate::domain::ids::{DeliveryId, EventId, WebhookId};
use chrono::{DateTime, Utc};
use metrics::{counter, histogram};
use std::time::Duration;

/// Events stored by one ingest (`duplicate`: the id was already there).
pub fn ingested(duplicate: bool) {
    counter!("herald_events_ingested_total", "duplicate" => if duplicate { "true" } else { "false" })
        .increment(1);
}

/// What an attempt's figures and log line name, taken from its claim before the try.
pub struct Subject {
    webhook_id: WebhookId,
    event_id: EventId,
    delivery_id: DeliveryId,
    accepted_at: DateTime<Utc>,
}

impl Subject {
    pub fn of(claim: &Claim) -> Self {
        Self {
            webhook_id: claim.webhook.record.id.clone(),
            event_id: claim.event_id.clone(),
            delivery_id: claim.delivery_id.clone(),
            accepted_at: claim.accepted_at,
        }
    }
}

/// One try of a queued delivery has an outcome.
pub fn attempted(claim: &Subject, outcome: &Outcome, took: Duration, now: DateTime<Utc>) {
    let webhook = claim.webhook_id.to_string();
    let a = &outcome.attempt;
    let status = a.status.as_str();
    counter!("herald_attempts_total", "webhook_id" => webhook.clone(), "outcome" => status)
        .increment(1);
    histogram!("herald_attempt_duration_seconds").record(took.as_secs_f64());
    match outcome.next {
        NextStep::Succeeded => {
            counter!("herald_deliveries_finished_total", "webhook_id" => webhook, "outcome" => "succeeded")
                .increment(1);
            let lag = (now - claim.accepted_at).to_std().unwrap_or_default();
            histogram!("herald_delivery_lag_seconds").record(lag.as_secs_f64());
        }
        NextStep::RetryAt(at) => {
            counter!("herald_retries_scheduled_total", "webhook_id" => webhook).increment(1);
            tracing::info!(
                webhook_id = %claim.webhook_id,
                event_id = %claim.event_id,
                delivery_id = %claim.delivery_id,
                attempt_id = %a.id,
                attempt = a.attempt,
                status_code = a.status_code,
                error = a.error.as_deref().unwrap_or_default(),
                retry_at = %at,
                "delivery attempt failed; retrying"
            );
        }
        NextStep::Failed => {
            counter!("herald_deliveries_finished_total", "webhook_id" => webhook, "outcome" => "dead_lettered")
                .increment(1);
            tracing::warn!(
                webhook_id = %claim.webhook_id,
                event_id = %claim.event_id,
                delivery_id = %claim.delivery_id,
                attempt_id = %a.id,
                attempt = a.attempt,
                status_code = a.status_code,
                error = a.error.as_deref().unwrap_or_default(),
                "delivery dead-lettered: its retry budget is spent"
            );
        }
    }
}
