//! `POST /api/v1/events`: the loyalty platform's way in.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, Caller};
use super::ApiState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use herald::domain::event::NewEvent;
use serde::Deserialize;
use serde_json::{json, Value};

pub fn router() -> Router<ApiState> {
    Router::new().route("/events", post(ingest))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IngestBody {
    event_type: String,
    data: Value,
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default)]
    event_timestamp: Option<DateTime<Utc>>,
}

#[tracing::instrument(skip_all)]
async fn ingest(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<IngestBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let event = NewEvent::parse(
        &body.event_type,
        body.data,
        body.event_id.as_deref(),
        body.event_timestamp,
        herald::store::now(),
    )
    .map_err(ApiError::from)?;
    let outcome = state.engine.ingest(&caller.program, event).await?;
    Ok(if outcome.duplicate {
        (
            StatusCode::OK,
            Json(json!({"event_id": outcome.event_id, "deliveries": 0, "duplicate": true})),
        )
    } else {
        (
            StatusCode::ACCEPTED,
            Json(json!({"event_id": outcome.event_id, "deliveries": outcome.deliveries})),
        )
    })
}
