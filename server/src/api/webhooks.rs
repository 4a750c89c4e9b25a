//! `/api/v1/webhooks`: create, list, read, update, delete, and the per-webhook actions (Send Test,
//! Verify, secret reveal and rotation).

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiQuery, Caller};
use super::{ApiState, Items};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use herald::delivery::webhooks::{Saved, TestOutcome, VerifyOutcome};
use herald::domain::ids::WebhookId;
use herald::domain::query::parse_range;
use herald::domain::settings::{WebhookDraft, WebhookPatch};
use herald::domain::views::WebhookView;
use herald::store::WebhookQuery;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/webhooks", post(create).get(list))
        .route("/webhooks/{id}", get(read).patch(update).delete(remove))
        .route("/webhooks/{id}/test", post(send_test))
        .route("/webhooks/{id}/verify", post(verify))
        .route("/webhooks/{id}/secret", get(reveal_secret))
        .route("/webhooks/{id}/rotate-secret", post(rotate_secret))
}

fn webhook_id(raw: &str) -> ApiResult<WebhookId> {
    WebhookId::parse(raw).ok_or_else(|| ApiError::not_found("webhook"))
}

/// A webhook, plus its secret on the one response that reveals it.
#[derive(Serialize)]
struct SavedView {
    #[serde(flatten)]
    webhook: WebhookView,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl From<Saved> for SavedView {
    fn from(s: Saved) -> Self {
        Self {
            webhook: (&s.webhook).into(),
            secret: s.secret,
        }
    }
}

async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(draft): ApiJson<WebhookDraft>,
) -> ApiResult<(StatusCode, Json<SavedView>)> {
    let saved = state.engine.create_webhook(&caller.program, &draft).await?;
    Ok((StatusCode::CREATED, Json(saved.into())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    name: String,
    #[serde(default)]
    start: String,
    #[serde(default)]
    end: String,
}

async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Items<WebhookView>>> {
    let (created_from, created_before) = parse_range(&q.start, &q.end)?;
    let query = WebhookQuery {
        name: Some(q.name),
        created_from,
        created_before,
    };
    let hooks = state
        .engine
        .store()
        .list_webhooks(&caller.program, &query)
        .await?;
    Ok(Json(Items {
        items: hooks.iter().map(Into::into).collect(),
    }))
}

async fn read(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<WebhookView>> {
    let w = state
        .engine
        .get_webhook(&caller.program, &webhook_id(&id)?)
        .await?;
    Ok(Json((&w).into()))
}

async fn update(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<WebhookPatch>,
) -> ApiResult<Json<SavedView>> {
    let saved = state
        .engine
        .update_webhook(&caller.program, &webhook_id(&id)?, patch)
        .await?;
    Ok(Json(saved.into()))
}

async fn remove(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .engine
        .delete_webhook(&caller.program, &webhook_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TestBody {
    #[serde(default)]
    event_type: Option<String>,
}

async fn send_test(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<TestOutcome>> {
    // The body is optional: an empty one tests the first subscribed event type.
    let body: TestBody = if body.iter().all(u8::is_ascii_whitespace) {
        TestBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => ApiError::validation("event_type", e.to_string()),
            _ => ApiError::bad_request(format!("the body is not valid JSON: {e}")),
        })?
    };
    let event_type = body.event_type;
    let outcome = state
        .engine
        .send_test(&caller.program, &webhook_id(&id)?, event_type.as_deref())
        .await?;
    Ok(Json(outcome))
}

async fn verify(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<VerifyOutcome>> {
    Ok(Json(
        state
            .engine
            .verify(&caller.program, &webhook_id(&id)?)
            .await?,
    ))
}

async fn reveal_secret(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let secret = state
        .engine
        .reveal_secret(&caller.program, &webhook_id(&id)?)
        .await?;
    Ok(Json(json!({ "secret": secret })))
}

async fn rotate_secret(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let secret = state
        .engine
        .rotate_secret(&caller.program, &webhook_id(&id)?)
        .await?;
    Ok(Json(
        json!({ "secret": secret, "previous_valid_for_hours": 24 }),
    ))
}
