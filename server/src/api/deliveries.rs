//! `/api/v1/deliveries`: dead letters (and other deliveries) and replay.

use super::error::{ApiError, ApiResult};
use super::extract::{ApiQuery, Caller};
use super::{ApiState, Items};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use herald::domain::delivery::DeliveryStatus;
use herald::domain::ids::{DeliveryId, WebhookId};
use herald::domain::views::DeliveryView;
use herald::store::DeliveryQuery;
use serde::Deserialize;

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/deliveries", get(list))
        .route("/deliveries/{id}/replay", post(replay))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    webhook_id: String,
    limit: Option<u32>,
}

async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Items<DeliveryView>>> {
    let status = match q.status.as_str() {
        "" => None,
        raw => Some(DeliveryStatus::parse(raw).ok_or_else(|| {
            ApiError::validation(
                "status",
                "status must be pending, in_flight, succeeded or failed",
            )
        })?),
    };
    let webhook_id =
        match q.webhook_id.as_str() {
            "" => None,
            raw => Some(WebhookId::parse(raw).ok_or_else(|| {
                ApiError::validation("webhook_id", "webhook_id is not a webhook id")
            })?),
        };
    let query = DeliveryQuery {
        status,
        webhook_id,
        limit: q.limit.unwrap_or(100).min(500),
    };
    let items = state
        .engine
        .store()
        .list_deliveries(&caller.program, &query)
        .await?;
    Ok(Json(Items {
        items: items.iter().map(Into::into).collect(),
    }))
}

async fn replay(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = DeliveryId::parse(&id).ok_or_else(|| ApiError::not_found("delivery"))?;
    state.engine.replay(&caller.program, &id).await?;
    Ok(StatusCode::ACCEPTED)
}
