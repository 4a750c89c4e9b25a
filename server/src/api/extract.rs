//! Extractors whose rejections are API errors (JSON bodies, query strings) and the API-key
//! authentication every `/api/v1` route except the OpenAPI document requires.

use super::error::ApiError;
use super::ApiState;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use herald::auth::api_key;
use herald::domain::ids::ProgramId;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// The program an API key acts for (as an admin of it).
#[derive(Debug, Clone)]
pub struct Caller {
    pub program: ProgramId,
}

/// Keys recently seen valid. Keeps the hot ingest path off the database; a revoked key stops
/// working within `KEY_CACHE_TTL`, and `last_used_at` moves at most once per that interval.
#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, (ProgramId, Instant)>>,
}

const KEY_CACHE_TTL: Duration = Duration::from_secs(60);

impl KeyCache {
    fn get(&self, hash: &str) -> Option<ProgramId> {
        let entries = self.entries.lock().expect("key cache");
        entries
            .get(hash)
            .filter(|(_, at)| at.elapsed() < KEY_CACHE_TTL)
            .map(|(p, _)| p.clone())
    }

    fn put(&self, hash: String, program: ProgramId) {
        let mut entries = self.entries.lock().expect("key cache");
        if entries.len() > 10_000 {
            entries.retain(|_, (_, at)| at.elapsed() < KEY_CACHE_TTL);
        }
        entries.insert(hash, (program, Instant::now()));
    }
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
            .filter(|k| api_key::looks_valid(k))
            .ok_or_else(|| ApiError::unauthorized("the API key is missing or malformed"))?;
        let hash = api_key::hash(key);
        if let Some(program) = state.keys.get(&hash) {
            return Ok(Self { program });
        }
        let found = state
            .engine
            .store()
            .use_api_key(&hash, herald::store::now())
            .await?;
        let (_, program) =
            found.ok_or_else(|| ApiError::unauthorized("the API key is not valid"))?;
        state.keys.put(hash, program.clone());
        Ok(Self { program })
    }
}
