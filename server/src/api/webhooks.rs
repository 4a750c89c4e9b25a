//! `/api/v1/webhooks`: create, list, read, update, delete, and the per-webhook actions (Send Test,
//! Verify, secret reveal and rotation).

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{ApiJson, ApiQuery, Caller};
use super::ApiState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use herald::delivery::webhooks::Saved;
use herald::domain::ids::WebhookId;
use herald::domain::insights::Window;
use herald::domain::settings::{WebhookDraft, WebhookPatch};
use herald::domain::views::{
    InsightsView, SavedWebhook, TestOutcome, VerifyOutcome, WebhookPageView, WebhookView,
};
use herald::store::WebhookQuery;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(read, update, remove))
        .routes(routes!(send_test))
        .routes(routes!(verify))
        .routes(routes!(reveal_secret))
        .routes(routes!(rotate_secret))
        .routes(routes!(insights))
}

fn webhook_id(raw: &str) -> ApiResult<WebhookId> {
    WebhookId::parse(raw).ok_or_else(|| ApiError::not_found("webhook"))
}

fn saved(s: Saved) -> SavedWebhook {
    SavedWebhook {
        webhook: (&s.webhook).into(),
        secret: s.secret,
    }
}

/// Create a webhook. A signature or JWT webhook's secret is in this response only.
#[utoipa::path(post, path = "/webhooks", operation_id = "create_webhook", tag = "webhooks", request_body = WebhookDraft,
    security(("api_key" = [])),
    responses((status = 201, body = SavedWebhook), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(draft): ApiJson<WebhookDraft>,
) -> ApiResult<(StatusCode, Json<SavedWebhook>)> {
    let created = state.engine.create_webhook(&caller.actor, &draft).await?;
    Ok((StatusCode::CREATED, Json(saved(created))))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Case-insensitive part of the name.
    #[serde(default)]
    name: String,
    /// Created on or after (RFC 3339 or YYYY-MM-DD).
    #[serde(default)]
    start: String,
    /// Created before (RFC 3339), or on or before a YYYY-MM-DD date.
    #[serde(default)]
    end: String,
    /// The window of each webhook's `figures`: `24h` (default), `7d` or `30d`.
    #[serde(default)]
    window: String,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    cursor: String,
    /// Webhooks per page: 1 to 500, 100 if left out.
    limit: Option<u32>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct WindowQuery {
    /// `24h` (default), `7d` or `30d`.
    #[serde(default)]
    window: String,
}

/// List webhooks, newest first, a page at a time: pass `next_cursor` back as `cursor` for the
/// next page (it is null on the last).
#[utoipa::path(get, path = "/webhooks", operation_id = "list_webhooks", tag = "webhooks", params(ListQuery), security(("api_key" = [])),
    responses((status = 200, body = WebhookPageView), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<WebhookPageView>> {
    let window = Window::parse(&q.window)?;
    let query =
        WebhookQuery::page_from_filters(&q.name, &q.start, &q.end, &q.cursor, q.limit, 100)?;
    let page = state
        .engine
        .webhook_page(&caller.program, query, window)
        .await?;
    Ok(Json(page))
}

/// A webhook's insights over a window: figures (attempts by outcome, success rate, retries,
/// latency and lag percentiles), flags, the hourly series and its charts as SVG.
#[utoipa::path(get, path = "/webhooks/{id}/insights", operation_id = "get_webhook_insights", tag = "webhooks",
    params(("id" = String, Path, description = "A webhook id (wh_…)"), WindowQuery), security(("api_key" = [])),
    responses((status = 200, body = InsightsView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn insights(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<WindowQuery>,
) -> ApiResult<Json<InsightsView>> {
    let window = Window::parse(&q.window)?;
    let (_, insights) = state
        .engine
        .webhook_insights(&caller.program, &webhook_id(&id)?, window)
        .await?;
    Ok(Json(insights))
}

/// Read a webhook (never its secret), with its figures over the last 24 hours and its flags.
#[utoipa::path(get, path = "/webhooks/{id}", operation_id = "get_webhook", tag = "webhooks", params(("id" = String, Path, description = "A webhook id (wh_…)")), security(("api_key" = [])),
    responses((status = 200, body = WebhookView), (status = 404, body = ErrorBody)))]
async fn read(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<WebhookView>> {
    let (view, _) = state
        .engine
        .webhook_insights(&caller.program, &webhook_id(&id)?, Window::Day)
        .await?;
    Ok(Json(view))
}

/// Change some of a webhook's settings; absent fields keep their value.
#[utoipa::path(patch, path = "/webhooks/{id}", operation_id = "update_webhook", tag = "webhooks", request_body = WebhookPatch, params(("id" = String, Path, description = "A webhook id (wh_…)")), security(("api_key" = [])),
    responses((status = 200, body = SavedWebhook), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn update(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<WebhookPatch>,
) -> ApiResult<Json<SavedWebhook>> {
    let updated = state
        .engine
        .update_webhook(&caller.actor, &webhook_id(&id)?, patch)
        .await?;
    Ok(Json(saved(updated)))
}

/// Delete a webhook: its pending deliveries stop; its audit rows stay.
#[utoipa::path(delete, path = "/webhooks/{id}", operation_id = "delete_webhook", tag = "webhooks", params(("id" = String, Path, description = "A webhook id (wh_…)")), security(("api_key" = [])),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)))]
async fn remove(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .engine
        .delete_webhook(&caller.actor, &webhook_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct TestBody {
    /// The catalog event whose example to send; defaults to the first subscribed type.
    #[serde(default)]
    event_type: Option<String>,
}

/// Send Test: posts the catalog example of an event type now, through the normal dispatch code.
#[utoipa::path(post, path = "/webhooks/{id}/test", operation_id = "send_test_event", tag = "webhooks", request_body(content = Option<TestBody>), params(("id" = String, Path, description = "A webhook id (wh_…)")), security(("api_key" = [])),
    responses((status = 200, body = TestOutcome), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn send_test(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<TestOutcome>> {
    // The body is optional: none at all tests the first subscribed event type. Whitespace alone
    // is a body, and not JSON (found by the fuzz run: `\t` was taken for no body).
    let body: TestBody = if body.is_empty() {
        TestBody::default()
    } else {
        super::extract::read_body(&body)?
    };
    let event_type = body.event_type;
    let outcome = state
        .engine
        .send_test(&caller.actor, &webhook_id(&id)?, event_type.as_deref())
        .await?;
    Ok(Json(outcome))
}

/// Verify: sends a signed `webhook.verification` ping; any 2xx is verified.
#[utoipa::path(post, path = "/webhooks/{id}/verify", operation_id = "verify_webhook", tag = "webhooks", params(("id" = String, Path, description = "A webhook id (wh_…)")), security(("api_key" = [])),
    responses((status = 200, body = VerifyOutcome), (status = 404, body = ErrorBody)))]
async fn verify(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<VerifyOutcome>> {
    Ok(Json(
        state
            .engine
            .verify(&caller.actor, &webhook_id(&id)?)
            .await?,
    ))
}

/// A signing secret, revealed on request.
#[derive(Serialize, ToSchema)]
struct SecretView {
    secret: String,
    /// After a rotation: how long the previous secret keeps signing.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_valid_for_hours: Option<u32>,
}

/// Reveal the current signing secret.
#[utoipa::path(get, path = "/webhooks/{id}/secret", operation_id = "get_webhook_secret", tag = "webhooks",
    params(("id" = String, Path, description = "A webhook id (wh_…)")), security(("api_key" = [])),
    responses((status = 200, body = SecretView), (status = 404, body = ErrorBody),
        (status = 409, description = "This auth method has no signing secret", body = ErrorBody)))]
async fn reveal_secret(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SecretView>> {
    let secret = state
        .engine
        .reveal_secret(&caller.actor, &webhook_id(&id)?)
        .await?;
    Ok(Json(SecretView {
        secret,
        previous_valid_for_hours: None,
    }))
}

/// Rotate the signing secret; the previous one keeps signing for 24 hours.
#[utoipa::path(post, path = "/webhooks/{id}/rotate-secret", operation_id = "rotate_webhook_secret", tag = "webhooks",
    params(("id" = String, Path, description = "A webhook id (wh_…)")), security(("api_key" = [])),
    responses((status = 200, body = SecretView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn rotate_secret(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SecretView>> {
    let secret = state
        .engine
        .rotate_secret(&caller.actor, &webhook_id(&id)?)
        .await?;
    Ok(Json(SecretView {
        secret,
        previous_valid_for_hours: Some(24),
    }))
}
