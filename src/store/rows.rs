//! Row structs as both backends decode them (`from_row!` implements `sqlx::FromRow` for either), and their
//! conversion into the store's records. A value that fails to convert is reported as corrupt data
//! rather than silently repaired.

use super::decode::from_row;
use super::model::*;
use super::{Result, StoreError};
use crate::delivery::queue::Claim;
use crate::domain::delivery::{AttemptStatus, DeliveryStatus, Trigger};
use crate::domain::event::EventType;
use crate::domain::filter::Filter;
use crate::domain::ids::{AttemptId, DeliveryId, EventId, ProgramId, WebhookId};
use crate::domain::webhook::{AuthKind, Backoff, RetryPolicy, TargetUrl, WebhookName};
use chrono::{DateTime, Utc};
use sqlx::types::Json;

pub type Headers = Vec<(String, String)>;

pub struct WebhookRow {
    id: String,
    program_id: String,
    name: String,
    url: String,
    method: String,
    description: String,
    auth_kind: String,
    auth_param: Option<String>,
    secrets: String,
    filter: Json<serde_json::Value>,
    retry_attempts: i64,
    retry_delay_seconds: i64,
    retry_backoff: String,
    timeout_seconds: i64,
    rate_limit_per_second: Option<i64>,
    sandbox: bool,
    enabled: bool,
    version: i64,
    total_attempts: i64,
    successful_attempts: i64,
    last_success_at: Option<DateTime<Utc>>,
    last_failure_at: Option<DateTime<Utc>>,
    last_attempt_failed: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    disabled_reason: Option<String>,
    failing_since: Option<DateTime<Utc>>,
    failures_in_a_row: i64,
    headers: Json<serde_json::Value>,
    ordering_key: Option<String>,
    enabled_at: Option<DateTime<Utc>>,
    event_types: Option<String>,
}
from_row!(WebhookRow {
    id,
    program_id,
    name,
    url,
    method,
    description,
    auth_kind,
    auth_param,
    secrets,
    filter,
    retry_attempts,
    retry_delay_seconds,
    retry_backoff,
    timeout_seconds,
    rate_limit_per_second,
    sandbox,
    enabled,
    version,
    total_attempts,
    successful_attempts,
    last_success_at,
    last_failure_at,
    last_attempt_failed,
    created_at,
    updated_at,
    disabled_reason,
    failing_since,
    failures_in_a_row,
    headers,
    ordering_key,
    enabled_at,
    event_types
});

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

impl TryFrom<WebhookRow> for Webhook {
    type Error = StoreError;

    fn try_from(r: WebhookRow) -> Result<Self> {
        let backoff =
            Backoff::from_stored(&r.retry_backoff).map_err(|e| corrupt("retry_backoff", e))?;
        let record = WebhookRecord {
            id: WebhookId::from_trusted(r.id),
            program_id: ProgramId::from_trusted(r.program_id),
            name: WebhookName::parse(&r.name).map_err(|e| corrupt("name", e))?,
            url: TargetUrl::parse(&r.url).map_err(|e| corrupt("url", e))?,
            method: r.method,
            description: r.description,
            auth_kind: AuthKind::parse(&r.auth_kind).map_err(|e| corrupt("auth_kind", e))?,
            auth_param: r.auth_param,
            sealed_secrets: r.secrets,
            event_types: r
                .event_types
                .map(|s| s.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
            filter: Filter::parse(&r.filter.0).map_err(|e| corrupt("filter", e))?,
            headers: serde_json::from_value(r.headers.0).map_err(|e| corrupt("headers", e))?,
            ordering_key: r.ordering_key,
            retry: RetryPolicy::new(
                r.retry_attempts,
                r.retry_delay_seconds,
                backoff,
                r.timeout_seconds,
            )
            .map_err(|e| corrupt("retry", e))?,
            rate_limit_per_second: r.rate_limit_per_second.map(|n| n as u32),
            sandbox: r.sandbox,
            enabled: r.enabled,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        };
        let target = record.url.parsed().map_err(|e| corrupt("url", e))?;
        Ok(Webhook {
            record,
            target,
            stats: WebhookStats {
                total_attempts: r.total_attempts,
                successful_attempts: r.successful_attempts,
                last_success_at: r.last_success_at,
                last_failure_at: r.last_failure_at,
                last_attempt_failed: r.last_attempt_failed,
                disabled_reason: r.disabled_reason,
                failing_since: r.failing_since,
                failures_in_a_row: r.failures_in_a_row,
                enabled_at: r.enabled_at,
            },
        })
    }
}

pub struct ClaimedRow {
    delivery_id: String,
    claim_count: i64,
    tries: i64,
    interruptions: i64,
    delivery_trigger: String,
    event_id: String,
    event_type: String,
    body: String,
    event_created_at: DateTime<Utc>,
    webhook: WebhookRow,
}
from_row!(ClaimedRow { delivery_id, claim_count, tries, interruptions, delivery_trigger, event_id, event_type, body, event_created_at } flatten { webhook });

impl TryFrom<ClaimedRow> for Claim {
    type Error = StoreError;

    fn try_from(r: ClaimedRow) -> Result<Self> {
        Ok(Claim {
            delivery_id: DeliveryId::from_trusted(r.delivery_id),
            claim_count: r.claim_count,
            tries: r.tries,
            interruptions: r.interruptions,
            trigger: Trigger::parse(&r.delivery_trigger)
                .ok_or_else(|| corrupt("trigger", &r.delivery_trigger))?,
            event_id: EventId::from_trusted(r.event_id),
            event_type: EventType::from_trusted(r.event_type),
            body: r.body.into(),
            accepted_at: r.event_created_at,
            webhook: std::sync::Arc::new(r.webhook.try_into()?),
        })
    }
}

pub struct AttemptSummaryRow {
    id: String,
    webhook_id: String,
    webhook_name: String,
    delivery_id: Option<String>,
    event_id: String,
    event_type: String,
    attempt: i64,
    trigger: String,
    status: String,
    status_code: Option<i32>,
    error: Option<String>,
    latency_ms: Option<i64>,
    lag_ms: Option<i64>,
    created_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
    superseded: bool,
}
from_row!(AttemptSummaryRow {
    id,
    webhook_id,
    webhook_name,
    delivery_id,
    event_id,
    event_type,
    attempt,
    trigger,
    status,
    status_code,
    error,
    latency_ms,
    lag_ms,
    created_at,
    delivered_at,
    superseded
});

impl TryFrom<AttemptSummaryRow> for AttemptSummary {
    type Error = StoreError;

    fn try_from(r: AttemptSummaryRow) -> Result<Self> {
        Ok(AttemptSummary {
            id: AttemptId::from_trusted(r.id),
            webhook_id: WebhookId::from_trusted(r.webhook_id),
            webhook_name: r.webhook_name,
            delivery_id: r.delivery_id.map(DeliveryId::from_trusted),
            event_id: r.event_id,
            event_type: r.event_type,
            attempt: r.attempt,
            trigger: Trigger::parse(&r.trigger).ok_or_else(|| corrupt("trigger", &r.trigger))?,
            status: AttemptStatus::parse(&r.status).ok_or_else(|| corrupt("status", &r.status))?,
            status_code: r.status_code,
            error: r.error,
            latency_ms: r.latency_ms,
            lag_ms: r.lag_ms,
            created_at: r.created_at,
            delivered_at: r.delivered_at,
            superseded: r.superseded,
            member: None,
        })
    }
}

pub struct AttemptDetailRow {
    summary: AttemptSummaryRow,
    request_url: String,
    request_headers: Json<Headers>,
    request_body: String,
    response_headers: Option<Json<Headers>>,
    response_body: Option<String>,
}
from_row!(AttemptDetailRow { request_url, request_headers, request_body, response_headers, response_body } flatten { summary });

impl TryFrom<AttemptDetailRow> for AttemptDetail {
    type Error = StoreError;

    fn try_from(r: AttemptDetailRow) -> Result<Self> {
        Ok(AttemptDetail {
            summary: r.summary.try_into()?,
            request_url: r.request_url,
            request_headers: r.request_headers.0,
            request_body: r.request_body,
            response_headers: r.response_headers.map(|j| j.0),
            response_body: r.response_body,
        })
    }
}

pub struct DeliveryRow {
    id: String,
    webhook_id: String,
    webhook_name: String,
    event_id: String,
    event_type: String,
    trigger: String,
    status: String,
    tries: i64,
    next_attempt_at: DateTime<Utc>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}
from_row!(DeliveryRow {
    id,
    webhook_id,
    webhook_name,
    event_id,
    event_type,
    trigger,
    status,
    tries,
    next_attempt_at,
    last_error,
    created_at,
    updated_at
});

impl TryFrom<DeliveryRow> for DeliverySummary {
    type Error = StoreError;

    fn try_from(r: DeliveryRow) -> Result<Self> {
        Ok(DeliverySummary {
            id: DeliveryId::from_trusted(r.id),
            webhook_id: WebhookId::from_trusted(r.webhook_id),
            webhook_name: r.webhook_name,
            event_id: r.event_id,
            event_type: r.event_type,
            trigger: Trigger::parse(&r.trigger).ok_or_else(|| corrupt("trigger", &r.trigger))?,
            status: DeliveryStatus::parse(&r.status).ok_or_else(|| corrupt("status", &r.status))?,
            tries: r.tries,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// Converts rows, failing on the first corrupt one.
pub fn convert<R, T: TryFrom<R, Error = StoreError>>(rows: Vec<R>) -> Result<Vec<T>> {
    rows.into_iter().map(T::try_from).collect()
}
