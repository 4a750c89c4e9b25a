//! `/api/v1/deliveries`: dead letters (and other deliveries) and replay.

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{ApiQuery, Caller};
use super::{ApiState, Items};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use herald::domain::delivery::DeliveryStatus;
use herald::domain::ids::{DeliveryId, WebhookId};
use herald::domain::views::DeliveryView;
use herald::store::DeliveryQuery;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(replay))
}

/// `status`: pending, in_flight, succeeded or failed (the dead letters).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    webhook_id: String,
    /// 1–500, default 100.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// Deliveries, newest first (`?status=failed` lists the dead letters).
#[utoipa::path(get, path = "/deliveries", operation_id = "list_deliveries", tag = "deliveries", params(ListQuery), security(("api_key" = [])),
    responses((status = 200, body = Items<DeliveryView>), (status = 422, body = ErrorBody)))]
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
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::validation(
            "limit",
            "limit must be between 1 and 500",
        ));
    }
    let query = DeliveryQuery {
        status,
        webhook_id,
        limit,
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

/// Replay a delivery: a finished one (succeeded or dead-lettered) is queued again with a fresh
/// retry budget; one waiting for its next retry is tried now (budget unchanged). A delivery being
/// attempted at this moment answers 409.
#[utoipa::path(post, path = "/deliveries/{id}/replay", operation_id = "replay_delivery", tag = "deliveries",
    params(("id" = String, Path, description = "A delivery id (dlv_…)")), security(("api_key" = [])),
    responses((status = 202, description = "Queued again, or due now"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Being attempted right now")))]
async fn replay(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = DeliveryId::parse(&id).ok_or_else(|| ApiError::not_found("delivery"))?;
    state.engine.replay(&caller.actor, &id).await?;
    Ok(StatusCode::ACCEPTED)
}
