//! Extractors whose rejections are API errors (JSON bodies, query strings) and the API-key
//! authentication every `/api/v1` route except the OpenAPI document requires.

use super::error::ApiError;
use super::ApiState;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use herald::auth::Actor;
use herald::domain::account::KeyScope;
use herald::domain::ids::ProgramId;

/// A JSON body in the API's error format, read with `strict`: an object where the document says
/// object, at every depth. Every request body of the API is an object, and serde reads a struct
/// from an array too, by position: `[]` would pass as `{}` (a replay of every dead letter, alert
/// settings reset) and a list of ids as the first fields. A client's mistaken array is refused
/// (422 naming the field, `body` for the whole), never acted on.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::not_json());
        }
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(ApiError::from)?;
        read_body(&body).map(Self)
    }
}

/// Reads a request body as `T` (see `ApiJson`): 400 when it is not JSON, 422 when it is not an
/// object or not what `T` takes.
pub fn read_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().find(|b| !json_space(b)) != Some(&b'{') {
        serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(ApiError::json_syntax)?;
        return Err(ApiError::validation(
            "body",
            "the request body must be a JSON object",
        ));
    }
    let mut reader = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(super::strict::Strict(&mut reader)).map_err(
        |e| match e.inner().classify() {
            serde_json::error::Category::Data => {
                let path = e.path().to_string();
                let path = (path != ".").then_some(path);
                ApiError::json_data(path, e.to_string())
            }
            _ => ApiError::json_syntax(e),
        },
    )?;
    reader.end().map_err(ApiError::json_syntax)?;
    Ok(value)
}

/// Whitespace as JSON has it (space, tab, line feed, carriage return): not form feed or
/// vertical tab, which `u8::is_ascii_whitespace` counts too.
pub fn json_space(b: &u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// `application/json`, or another `application/…+json` type, parameters allowed (as `axum::Json`).
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence
        .strip_prefix("application/")
        .is_some_and(|sub| sub == "json" || sub.ends_with("+json"))
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
