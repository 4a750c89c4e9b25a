//! The REST API's one error type: `{"error": {"code", "message", "field"?}}` with the matching
//! status. Internal failures are logged with their cause and answered with an opaque message.

use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use herald::auth::AccessError;
use herald::delivery::EngineError;
use herald::domain::ValidationError;
use herald::store::StoreError;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "your role does not allow this",
        )
    }

    /// A `403` that says why (e.g. a key whose scope does not cover the route).
    pub fn forbidden_because(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn conflict(message: impl Into<String>, field: Option<&str>) -> Self {
        Self {
            field: field.map(str::to_owned),
            ..Self::new(StatusCode::CONFLICT, "conflict", message)
        }
    }

    /// `422`: a JSON body whose content is not what the operation takes. The field is `path`
    /// where the reader knew it (`retry.attempts`, `events[2].data`), else the one the message
    /// names (`unknown field `foo``, `missing field `url``), else `body`.
    pub fn json_data(path: Option<String>, message: String) -> Self {
        let field = path
            .or_else(|| field_of(&message))
            .unwrap_or_else(|| "body".to_owned());
        Self::validation(field, message)
    }

    /// `400`: a body that is not JSON at all.
    pub fn json_syntax(detail: impl std::fmt::Display) -> Self {
        Self::bad_request(format!("the body is not valid JSON: {detail}"))
    }

    /// `400`: a body sent without a JSON content type.
    pub fn not_json() -> Self {
        Self::bad_request("send the body as JSON with content-type: application/json")
    }

    /// `413`: a body over the API's limit (`api::BODY_LIMIT`).
    fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is larger than 256 KiB",
        )
    }

    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", message)
        }
    }

    /// `503` with `Retry-After`: Herald cannot take this right now (shutting down, database
    /// unreachable or full); nothing was stored.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    pub fn internal(source: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %source, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(field) = self.field {
            error["field"] = json!(field);
        }
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

/// What `Retry-After` says on a `503`.
const RETRY_AFTER_SECONDS: &str = "2";

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        Self::validation(e.field, e.message)
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Validation(v) => v.into(),
            EngineError::NotFound(what) => Self::not_found(what),
            EngineError::Conflict { field } => Self::conflict(
                format!("a webhook with this {field} already exists"),
                Some(field),
            ),
            e @ EngineError::Stale => Self::conflict(e.to_string(), Some("version")),
            EngineError::Refused(message) => Self::conflict(message, None),
            EngineError::Unavailable(message) => Self::unavailable(message),
            EngineError::Forbidden => Self::forbidden(),
            e @ EngineError::Unstorable => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                e.to_string(),
            ),
            EngineError::Store(e) => Self::internal(&e),
            EngineError::Seal(e) => Self::internal(&e),
        }
    }
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Validation(v) => v.into(),
            AccessError::Forbidden => Self::forbidden(),
            AccessError::NotFound(what) => Self::not_found(what),
            AccessError::Store(e) => EngineError::from(e).into(),
            AccessError::Internal => Self::internal(&"access failure (logged above)"),
            AccessError::Conflict(field) => Self::conflict(
                format!("a {field} with this value already exists"),
                Some(field),
            ),
            AccessError::Refused(message) => Self::conflict(message, None),
            e @ (AccessError::InvalidLogin | AccessError::Throttled(_)) => {
                Self::unauthorized(e.to_string())
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        EngineError::from(e).into()
    }
}

/// The field a serde message is about: the first `name` in backticks.
fn field_of(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::too_large()
        } else {
            Self::bad_request(r.body_text())
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        let message = r.body_text();
        Self::validation(
            field_of(&message).unwrap_or_else(|| "query".to_owned()),
            message,
        )
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The body of every error response (for the OpenAPI document).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct ErrorDetail {
    /// `bad_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`, `payload_too_large`,
    /// `validation`, `unavailable` (503, with `Retry-After`) or `internal`.
    code: String,
    message: String,
    /// The input the error is about, when there is one (e.g. `url`, `retry.timeout_seconds`).
    field: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutting_down_is_503_with_retry_after_and_internal_failures_are_opaque() {
        let r = ApiError::from(EngineError::Unavailable(
            "Herald is shutting down; try again shortly".into(),
        ))
        .into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            r.headers()[axum::http::header::RETRY_AFTER],
            RETRY_AFTER_SECONDS
        );
        let e = ApiError::from(AccessError::Internal);
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.message, "internal error; see the server log");
        let stale = ApiError::from(EngineError::Stale);
        assert_eq!(
            (stale.status, stale.field.as_deref()),
            (StatusCode::CONFLICT, Some("version"))
        );
    }
}
