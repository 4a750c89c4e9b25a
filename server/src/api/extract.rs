//! Extractors whose rejections are API errors (JSON bodies, query strings) and the API-key
//! authentication every `/api/v1` route except the OpenAPI document requires.

use super::error::ApiError;
use super::ApiState;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use herald::auth::Actor;
use herald::domain::account::KeyScope;
use herald::domain::ids::ProgramId;

/// `axum::Json` with rejections in the API's error format.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    axum::Json<T>: FromRequest<S, Rejection = axum::extract::rejection::JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(v) = axum::Json::<T>::from_request(req, state).await?;
        Ok(Self(v))
    }
}

/// `axum::extract::Query` with rejections in the API's error format.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(v) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(v))
    }
}

/// The caller of an API route: an API key, acting as an admin of its program. A key with the
/// `ingest` scope is refused (403) everywhere but `POST /events` and `POST /events/batch`.
#[derive(Debug, Clone)]
pub struct Caller {
    pub program: ProgramId,
    pub actor: Actor,
    /// The display prefix of the key the request was made with (a key cannot revoke itself).
    pub key_prefix: String,
}

/// Whether an `ingest`-scope key may make this request.
fn ingest_allows(parts: &Parts) -> bool {
    let path = parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| parts.uri.path().to_owned(), |u| u.path().to_owned());
    parts.method == axum::http::Method::POST
        && matches!(
            path.trim_end_matches('/'),
            "/api/v1/events" | "/api/v1/events/batch" | "/events" | "/events/batch"
        )
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::unauthorized("send an API key as Authorization: Bearer <key>")
            })?;
        let key = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .ok_or_else(|| ApiError::unauthorized("the API key is missing or malformed"))?;
        let (actor, scope) = state
            .access
            .authenticate_key(key)
            .await?
            .ok_or_else(|| ApiError::unauthorized("the API key is not valid"))?;
        if scope == KeyScope::Ingest && !ingest_allows(parts) {
            return Err(ApiError::forbidden_because(
                "this API key may only post events (scope ingest); use an admin key",
            ));
        }
        Ok(Self {
            program: actor.program.clone(),
            actor,
            key_prefix: herald::auth::api_key::display_prefix(key).to_owned(),
        })
    }
}
