//! `POST /api/v1/events`: the loyalty platform's way in.

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{ApiJson, Caller};
use super::ApiState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use herald::domain::event::NewEvent;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(ingest))
        .routes(routes!(ingest_batch))
}

/// Most events one batch request may carry.
pub const MAX_BATCH: usize = 500;

/// An event from the loyalty platform.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct IngestBody {
    /// A catalog event type, e.g. `points.awarded`.
    event_type: String,
    /// The event's payload; must be a JSON object.
    #[schema(value_type = Object)]
    data: Value,
    /// Your own UUID for idempotency; Herald makes one when absent.
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default)]
    event_timestamp: Option<DateTime<Utc>>,
}

impl IngestBody {
    fn parse(self, now: DateTime<Utc>) -> Result<NewEvent, herald::domain::ValidationError> {
        if herald::domain::catalog::is_operational(&self.event_type) {
            return Err(herald::domain::ValidationError::new(
                "event_type",
                format!(
                    "'{}' is an operational event that Herald raises itself; it cannot be posted",
                    self.event_type
                ),
            ));
        }
        NewEvent::parse(
            &self.event_type,
            self.data,
            self.event_id.as_deref(),
            self.event_timestamp,
            now,
        )
    }
}

/// What ingest answers.
#[derive(serde::Serialize, ToSchema)]
struct Accepted {
    #[schema(value_type = String, format = Uuid)]
    event_id: herald::domain::ids::EventId,
    /// Deliveries fanned out (0 for a duplicate).
    deliveries: usize,
    /// Present and true when the event id was already stored.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    duplicate: bool,
}

/// Accept an event: stored durably with one delivery per matching webhook before the answer.
#[utoipa::path(post, path = "/events", operation_id = "ingest_event", tag = "events", request_body = IngestBody,
    security(("api_key" = [])),
    responses(
        (status = 202, description = "Stored and fanned out", body = Accepted),
        (status = 200, description = "This event_id was already stored; nothing new was written", body = Accepted),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
async fn ingest(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<IngestBody>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let event = body.parse(herald::store::now()).map_err(ApiError::from)?;
    let outcome = state.engine.ingest(&caller.program, event).await?;
    let status = if outcome.duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(accepted(&outcome))))
}

fn accepted(o: &herald::delivery::ingest::IngestOutcome) -> Accepted {
    Accepted {
        event_id: o.event_id.clone(),
        deliveries: o.deliveries,
        duplicate: o.duplicate,
    }
}

/// Many events in one request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    /// 1 to 500 events, each as `POST /events` takes it.
    #[schema(min_items = 1, max_items = 500)]
    events: Vec<IngestBody>,
}

/// What batch ingest answers: one result per event, in the order sent.
#[derive(serde::Serialize, ToSchema)]
struct BatchAccepted {
    items: Vec<Accepted>,
}

/// Accept up to 500 events at once. Every event is validated before any is stored: one invalid
/// event refuses the whole batch (`422`, its `field` names it as `events[i].…`). Each event is
/// stored and fanned out exactly as `POST /events` does (duplicates of stored event ids are
/// reported, not stored again), so retrying a failed batch with the same event ids is safe.
#[utoipa::path(post, path = "/events/batch", operation_id = "ingest_events", tag = "events", request_body = BatchBody,
    security(("api_key" = [])),
    responses(
        (status = 202, description = "Every event stored (or already stored) and fanned out", body = BatchAccepted),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
async fn ingest_batch(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<BatchBody>,
) -> ApiResult<(StatusCode, Json<BatchAccepted>)> {
    if body.events.is_empty() || body.events.len() > MAX_BATCH {
        return Err(ApiError::validation(
            "events",
            format!("send 1 to {MAX_BATCH} events per batch"),
        ));
    }
    let now = herald::store::now();
    let events = body
        .events
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            e.parse(now)
                .map_err(|v| ApiError::validation(format!("events[{i}].{}", v.field), v.message))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Every event passes its schema check (where the program asks for one) before any is stored.
    for (i, e) in events.iter().enumerate() {
        state
            .engine
            .check_data(&caller.program, e)
            .await
            .map_err(|err| match err {
                herald::delivery::EngineError::Validation(v) => {
                    ApiError::validation(format!("events[{i}].{}", v.field), v.message)
                }
                other => other.into(),
            })?;
    }
    // Stored together in one transaction: all of them, or (answered with an error) none.
    let items = state
        .engine
        .ingest_all_checked(&caller.program, events)
        .await?
        .iter()
        .map(accepted)
        .collect();
    Ok((StatusCode::ACCEPTED, Json(BatchAccepted { items })))
}
