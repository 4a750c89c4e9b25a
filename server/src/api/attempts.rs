//! `/api/v1/attempts`: the audit log, newest first, keyset-paged.

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{ApiQuery, Caller};
use super::ApiState;
use axum::extract::{Path, State};
use axum::Json;
use herald::domain::delivery::AttemptStatus;
use herald::domain::ids::{AttemptId, WebhookId};
use herald::domain::query::parse_range;
use herald::domain::views::{AttemptDetailView, AttemptPageView};
use herald::store::{AttemptQuery, Cursor};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(read))
}

/// Audit-log filters; `q` is an event id or part of a webhook name; `cursor` comes from a
/// previous page; `limit` is 1–200 (default 50).
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
    #[serde(default)]
    q: String,
    #[serde(default)]
    cursor: String,
    limit: Option<u32>,
}

/// Parses the audit-log query the API and the console share.
pub fn attempt_query(
    webhook_id: &str,
    start: &str,
    end: &str,
    status: &str,
    search: &str,
    cursor: &str,
    limit: Option<u32>,
) -> ApiResult<AttemptQuery> {
    let (created_from, created_before) = parse_range(start, end)?;
    let webhook_id =
        match webhook_id.trim() {
            "" => None,
            raw => Some(WebhookId::parse(raw).ok_or_else(|| {
                ApiError::validation("webhook_id", "webhook_id is not a webhook id")
            })?),
        };
    let status = match status.trim() {
        "" => None,
        raw => Some(AttemptStatus::parse(raw).ok_or_else(|| {
            ApiError::validation("status", "status must be success, failure or sandboxed")
        })?),
    };
    let cursor = match cursor.trim() {
        "" => None,
        raw => Some(Cursor::decode(raw).ok_or_else(|| {
            ApiError::validation("cursor", "cursor is not one this API returned")
        })?),
    };
    let limit = limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::validation(
            "limit",
            "limit must be between 1 and 200",
        ));
    }
    Ok(AttemptQuery {
        webhook_id,
        created_from,
        created_before,
        status,
        search: Some(search.to_owned()),
        cursor,
        limit,
    })
}

/// The audit log, newest first, keyset-paged.
#[utoipa::path(get, path = "/attempts", tag = "audit log", params(ListQuery), security(("api_key" = [])),
    responses((status = 200, body = AttemptPageView), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<AttemptPageView>> {
    let query = attempt_query(
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

/// One attempt with its request (credentials redacted) and response.
#[utoipa::path(get, path = "/attempts/{id}", tag = "audit log",
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
