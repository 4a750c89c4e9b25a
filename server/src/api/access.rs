//! `/api/v1/api-keys` and `/api/v1/users`: the program's API keys and members, for automation
//! (what Settings does in the console). A new key is shown once; a request cannot revoke the key
//! it is made with.

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{ApiJson, Caller};
use super::{ApiState, Items};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use herald::domain::account::{ApiKeyView, KeyScope, NewApiKey, Role, UserView};
use herald::domain::ids::{ApiKeyId, UserId};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
        .routes(routes!(list_users, add_user))
        .routes(routes!(remove_user))
}

/// A key to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewKey {
    /// 1 to 100 characters, unique in the program.
    name: String,
    /// `admin` (the default: the whole API) or `ingest` (post events only).
    #[serde(default)]
    scope: Option<KeyScope>,
}

/// The program's API keys (revoked ones too), newest first; never the keys themselves.
#[utoipa::path(get, path = "/api-keys", operation_id = "list_api_keys", tag = "access", security(("api_key" = [])),
    responses((status = 200, body = Items<ApiKeyView>)))]
async fn list_keys(
    State(state): State<ApiState>,
    caller: Caller,
) -> ApiResult<Json<Items<ApiKeyView>>> {
    let keys = state.access.list_api_keys(&caller.program).await?;
    Ok(Json(Items {
        items: keys.iter().map(Into::into).collect(),
    }))
}

/// Create a key; `key` in the answer is its only plain copy.
#[utoipa::path(post, path = "/api-keys", operation_id = "create_api_key", tag = "access", request_body = NewKey,
    security(("api_key" = [])),
    responses((status = 201, body = NewApiKey), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_key(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewKey>,
) -> ApiResult<(StatusCode, Json<NewApiKey>)> {
    let (key, summary) = state
        .access
        .create_api_key(&caller.actor, &body.name, body.scope.unwrap_or_default())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(NewApiKey {
            key,
            view: (&summary).into(),
        }),
    ))
}

/// Revoke a key: refused at once by this process, within a minute by others. The key making the
/// request cannot revoke itself (`409`): use another admin key or the console.
#[utoipa::path(delete, path = "/api-keys/{id}", operation_id = "revoke_api_key", tag = "access",
    params(("id" = String, Path, description = "An API key id (key_…)")), security(("api_key" = [])),
    responses((status = 204, description = "Revoked"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn revoke_key(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = ApiKeyId::parse(&id).ok_or_else(|| ApiError::not_found("API key"))?;
    let keys = state.access.list_api_keys(&caller.program).await?;
    if keys
        .iter()
        .any(|k| k.id == id && k.prefix == caller.key_prefix && k.revoked_at.is_none())
    {
        return Err(ApiError::conflict(
            "this request is made with that key; revoke it with another admin key or in the console",
            None,
        ));
    }
    state.access.revoke_api_key(&caller.actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A member to add.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewMember {
    email: String,
    /// `admin` or `viewer`.
    role: Role,
    /// For a new account (at least 10 characters); left out when the e-mail already has an
    /// account, which then joins this program with its own password.
    #[serde(default)]
    password: String,
}

/// The program's members with their roles.
#[utoipa::path(get, path = "/users", operation_id = "list_users", tag = "access", security(("api_key" = [])),
    responses((status = 200, body = Items<UserView>)))]
async fn list_users(
    State(state): State<ApiState>,
    caller: Caller,
) -> ApiResult<Json<Items<UserView>>> {
    let members = state.access.list_members(&caller.program).await?;
    Ok(Json(Items {
        items: members.iter().map(Into::into).collect(),
    }))
}

/// Add a member: a new account, or an existing one joining this program.
#[utoipa::path(post, path = "/users", operation_id = "add_user", tag = "access", request_body = NewMember,
    security(("api_key" = [])),
    responses((status = 201, body = UserView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_user(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewMember>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let added = state
        .access
        .add_member(&caller.actor, &body.email, &body.password, body.role)
        .await?;
    Ok((StatusCode::CREATED, Json((&added.member).into())))
}

/// Take a member out of the program (their account stays for their other programs).
#[utoipa::path(delete, path = "/users/{id}", operation_id = "remove_user", tag = "access",
    params(("id" = String, Path, description = "A user id (usr_…)")), security(("api_key" = [])),
    responses((status = 204, description = "Removed"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn remove_user(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = UserId::parse(&id).ok_or_else(|| ApiError::not_found("user"))?;
    state.access.remove_member(&caller.actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
