//! `/api/v1/alerts`: the program's recent alerts, its alert settings (e-mail over SMTP, grouping
//! window) and a test message. Operational webhooks need nothing here: subscribe a webhook to
//! `delivery.exhausted`, `endpoint.disabled` or `endpoint.recovered`.

use super::error::{ApiResult, ErrorBody};
use super::extract::{ApiJson, ApiQuery, Caller};
use super::{ApiState, Items};
use axum::extract::State;
use axum::Json;
use herald::domain::alerts::{AlertSettingsDraft, AlertSettingsView, AlertView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(read_settings, save_settings))
        .routes(routes!(test))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// At most this many (1 to 200, default 50).
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 200)]
    limit: i64,
}

fn default_limit() -> i64 {
    50
}

/// The program's latest alerts, newest first: each groups the occurrences of one kind on one
/// webhook within the alert window (`count`), with when it was sent and any e-mail error.
#[utoipa::path(get, path = "/alerts", operation_id = "list_alerts", tag = "alerts", params(ListQuery), security(("api_key" = [])),
    responses((status = 200, body = Items<AlertView>), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Items<AlertView>>> {
    if !(1..=200).contains(&q.limit) {
        return Err(super::error::ApiError::validation(
            "limit",
            "limit must be between 1 and 200",
        ));
    }
    let items = state.engine.recent_alerts(&caller.actor, q.limit).await?;
    Ok(Json(Items { items }))
}

/// The program's alert settings (the SMTP password only as `smtp_password_set`).
#[utoipa::path(get, path = "/alerts/settings", operation_id = "get_alert_settings", tag = "alerts", security(("api_key" = [])),
    responses((status = 200, body = AlertSettingsView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn read_settings(
    State(state): State<ApiState>,
    caller: Caller,
) -> ApiResult<Json<AlertSettingsView>> {
    Ok(Json(state.engine.alert_settings(&caller.actor).await?))
}

/// Replace the alert settings. `smtp_password` left out keeps the stored one; `""` removes it.
#[utoipa::path(put, path = "/alerts/settings", operation_id = "save_alert_settings", tag = "alerts", request_body = AlertSettingsDraft, security(("api_key" = [])),
    responses((status = 200, body = AlertSettingsView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn save_settings(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(draft): ApiJson<AlertSettingsDraft>,
) -> ApiResult<Json<AlertSettingsView>> {
    Ok(Json(
        state
            .engine
            .save_alert_settings(&caller.actor, &draft)
            .await?,
    ))
}

#[derive(Serialize, ToSchema)]
struct Sent {
    /// Where the test message went.
    message: String,
}

/// E-mail a test alert with the saved settings now. `409` says why it could not be sent (e-mail
/// off, or what the SMTP server answered).
#[utoipa::path(post, path = "/alerts/test", operation_id = "send_test_alert", tag = "alerts", security(("api_key" = [])),
    responses((status = 200, body = Sent), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn test(State(state): State<ApiState>, caller: Caller) -> ApiResult<Json<Sent>> {
    let message = state.engine.send_test_alert(&caller.actor).await?;
    Ok(Json(Sent { message }))
}
