//! `/api/v1/attempts`: the audit log, newest first, keyset-paged.

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{ApiQuery, Caller};
use super::ApiState;
use axum::extract::{Path, State};
use axum::Json;
use herald::domain::ids::AttemptId;
use herald::domain::views::{AttemptDetailView, AttemptPageView};
use herald::store::AttemptQuery;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(export))
        .routes(routes!(read))
}

/// Audit-log filters; `q` is an event id, a member id (exactly as the event's `member_id`, or
/// `user_id`, gave it) or part of a webhook name; `cursor` comes from a previous page; `limit` is
/// 1–200 (default 50).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    webhook_id: String,
    #[serde(default)]
    start: String,
    #[serde(default)]
    end: String,
    #[serde(default)]
    status: String,
    /// An event id, a member id (as the event's `member_id`, or `user_id` when it has none, gave
    /// it), or part of a webhook name.
    #[serde(default)]
    q: String,
    #[serde(default)]
    cursor: String,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
}

/// The audit log, newest first, keyset-paged.
#[utoipa::path(get, path = "/attempts", operation_id = "list_attempts", tag = "audit log", params(ListQuery), security(("api_key" = [])),
    responses((status = 200, body = AttemptPageView), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<AttemptPageView>> {
    let query = AttemptQuery::from_filters(
        &q.webhook_id,
        &q.start,
        &q.end,
        &q.status,
        &q.q,
        &q.cursor,
        q.limit,
    )?;
    let page = state
        .engine
        .store()
        .list_attempts(&caller.program, &query)
        .await?;
    Ok(Json((&page).into()))
}

/// The audit log as CSV (`text/csv`), newest first, with the list's filters: up to 100,000 rows,
/// streamed (a last line says when more matched). Columns: attempt_id, created_at, webhook_name,
/// webhook_id, event_type, event_id, delivery_id, attempt, trigger, status, status_code,
/// latency_ms, lag_ms, delivered_at, superseded, error, member.
#[utoipa::path(get, path = "/attempts/export", operation_id = "export_attempts", tag = "audit log", params(crate::csv_export::AttemptFilters), security(("api_key" = [])),
    responses((status = 200, description = "The matching attempts as CSV", content_type = "text/csv", body = String), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn export(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(filters): ApiQuery<crate::csv_export::AttemptFilters>,
) -> ApiResult<axum::response::Response> {
    Ok(crate::csv_export::export(
        &state.engine,
        caller.program.clone(),
        filters,
    )?)
}

/// One attempt with its request (credentials redacted) and response.
#[utoipa::path(get, path = "/attempts/{id}", operation_id = "get_attempt", tag = "audit log",
    params(("id" = String, Path, description = "An attempt id (att_…)")), security(("api_key" = [])),
    responses((status = 200, body = AttemptDetailView), (status = 404, body = ErrorBody)))]
async fn read(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<AttemptDetailView>> {
    let id = AttemptId::parse(&id).ok_or_else(|| ApiError::not_found("attempt"))?;
    let detail = state
        .engine
        .store()
        .get_attempt(&caller.program, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("attempt"))?;
    Ok(Json((&detail).into()))
}
