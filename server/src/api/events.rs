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
    OpenApiRouter::new().routes(routes!(ingest))
}

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

/// What ingest answers.
#[derive(serde::Serialize, ToSchema)]
struct Accepted {
    event_id: uuid::Uuid,
    /// Deliveries fanned out (0 for a duplicate).
    deliveries: usize,
    /// Present and true when the event id was already stored.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    duplicate: bool,
}

/// Accept an event: stored durably with one delivery per matching webhook before the answer.
#[utoipa::path(post, path = "/events", tag = "events", request_body = IngestBody,
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
    let event = NewEvent::parse(
        &body.event_type,
        body.data,
        body.event_id.as_deref(),
        body.event_timestamp,
        herald::store::now(),
    )
    .map_err(ApiError::from)?;
    let outcome = state.engine.ingest(&caller.program, event).await?;
    let status = if outcome.duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((
        status,
        Json(Accepted {
            event_id: outcome.event_id,
            deliveries: outcome.deliveries,
            duplicate: outcome.duplicate,
        }),
    ))
}
