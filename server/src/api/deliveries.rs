//! `/api/v1/deliveries`: dead letters (and other deliveries), replay of one, and bulk replay by
//! filter as a background job (`/replay-jobs`).

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{ApiJson, ApiQuery, Caller};
use super::{ApiState, Items};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use herald::domain::ids::DeliveryId;
use herald::domain::replay::{ReplayFilter, ReplayJobView};
use herald::domain::views::DeliveryPageView;
use herald::store::DeliveryQuery;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(export))
        .routes(routes!(replay))
        .routes(routes!(bulk_replay))
        .routes(routes!(list_jobs))
        .routes(routes!(read_job))
}

/// `status`: pending, in_flight, succeeded or failed (the dead letters); empty or `all` for every
/// status.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    webhook_id: String,
    /// Only deliveries of this event type.
    #[serde(default)]
    event_type: String,
    /// Accepted at or after (RFC 3339 or `YYYY-MM-DD`).
    #[serde(default)]
    start: String,
    /// Accepted before (a date-only `end` includes that day).
    #[serde(default)]
    end: String,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    cursor: String,
    /// 1–500, default 100.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// Deliveries, newest first (`?status=failed` lists the dead letters), filtered by webhook, event
/// type and the date they were accepted, a page at a time: pass `next_cursor` back as `cursor`
/// for the next page (it is null on the last).
#[utoipa::path(get, path = "/deliveries", operation_id = "list_deliveries", tag = "deliveries", params(ListQuery), security(("api_key" = [])),
    responses((status = 200, body = DeliveryPageView), (status = 422, body = ErrorBody)))]
async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<DeliveryPageView>> {
    let filter = ReplayFilter {
        webhook_id: q.webhook_id,
        event_type: q.event_type,
        start: q.start,
        end: q.end,
    };
    let query = DeliveryQuery::from_filters(&q.status, &filter, &q.cursor, q.limit.unwrap_or(100))?;
    let page = state
        .engine
        .store()
        .list_deliveries(&caller.program, &query)
        .await?;
    Ok(Json((&page).into()))
}

/// The deliveries as CSV (`text/csv`), newest first, with the list's filters (`?status=failed`:
/// the dead letters): up to 100,000 rows, streamed (a last line says when more matched).
/// Columns: delivery_id, accepted_at, webhook_name, webhook_id, event_type, event_id, trigger,
/// status, held, tries, next_attempt_at, updated_at, last_error.
#[utoipa::path(get, path = "/deliveries/export", operation_id = "export_deliveries", tag = "deliveries", params(crate::csv_export::DeliveryFilters), security(("api_key" = [])),
    responses((status = 200, description = "The matching deliveries as CSV", content_type = "text/csv", body = String), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn export(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(filters): ApiQuery<crate::csv_export::DeliveryFilters>,
) -> ApiResult<axum::response::Response> {
    Ok(crate::csv_export::export(
        &state.engine,
        caller.program.clone(),
        filters,
    )?)
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

#[derive(serde::Serialize, ToSchema)]
struct Started {
    /// The job (the one already running over the same filter, when `existing`).
    job: ReplayJobView,
    /// True when a job over the same filter was already running: nothing new was started.
    existing: bool,
}

/// Replay every dead letter matching a filter (webhook, event type, accepted between `start` and
/// `end`; empty fields match all) as a background job. Starting the same filter again while its
/// job runs returns that job. Follow its progress at `GET /replay-jobs/{id}`.
#[utoipa::path(post, path = "/deliveries/replay", operation_id = "bulk_replay", tag = "deliveries",
    request_body = ReplayFilter, security(("api_key" = [])),
    responses((status = 202, body = Started), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn bulk_replay(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(filter): ApiJson<ReplayFilter>,
) -> ApiResult<(StatusCode, Json<Started>)> {
    let (job, new) = state
        .engine
        .start_bulk_replay(&caller.actor, &filter)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Started {
            job,
            existing: !new,
        }),
    ))
}

/// The program's latest bulk replay jobs, newest first.
#[utoipa::path(get, path = "/replay-jobs", operation_id = "list_replay_jobs", tag = "deliveries", security(("api_key" = [])),
    responses((status = 200, body = Items<ReplayJobView>)))]
async fn list_jobs(
    State(state): State<ApiState>,
    caller: Caller,
) -> ApiResult<Json<Items<ReplayJobView>>> {
    let items = state.engine.bulk_replays(&caller.actor, 50).await?;
    Ok(Json(Items { items }))
}

/// One bulk replay job: `status` (`running`, `done`), `total` dead letters matched at the start
/// and how many are `replayed` so far.
#[utoipa::path(get, path = "/replay-jobs/{id}", operation_id = "get_replay_job", tag = "deliveries",
    params(("id" = String, Path, description = "A replay job id (rpl_…)")), security(("api_key" = [])),
    responses((status = 200, body = ReplayJobView), (status = 404, body = ErrorBody)))]
async fn read_job(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ReplayJobView>> {
    Ok(Json(state.engine.bulk_replay(&caller.actor, &id).await?))
}
