//! The REST API, `/api/v1`: thin handlers that parse input, call the engine or the store, and map
//! errors. Each resource module exports a `router()`; this module merges them, applies the body
//! limit, and adds `/healthz`.

mod access;
mod alerts;
mod attempts;
mod deliveries;
pub mod error;
mod event_types;
mod events;
pub mod extract;
mod insights;
mod strict;
mod transfer;
mod webhooks;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use herald::auth::Access;
use herald::delivery::Engine;
use std::sync::Arc;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// Largest request body the API accepts (an event with its data, or a webhook).
pub const BODY_LIMIT: usize = 256 * 1024;

/// What API handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub engine: Engine,
    pub access: Access,
}

/// The OpenAPI document's frame; every path in it comes from the handlers' own annotations,
/// registered together with their routes, so the document cannot drift from the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Herald API",
        description = "Webhook delivery for loyalty programs: post events, manage webhooks, read the audit log."
    ),
    servers((url = "/api/v1")),
    modifiers(&BearerKey),
    components(schemas(error::ErrorBody))
)]
struct ApiDoc;

/// Declares the `Authorization: Bearer <api key>` scheme the paths refer to as `api_key`.
struct BearerKey;

impl utoipa::Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Adds the answers every operation can give besides its own: a malformed request (`400`), a
/// missing or wrong API key (`401`), a key whose scope is `ingest` outside the ingest routes
/// (`403`), a body over the limit (`413`, operations with a body) and a database that cannot
/// take work now (`503` with `Retry-After`).
struct CommonResponses;

impl utoipa::Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{header::Header, ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new().description(description).content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in operations.into_iter().flatten() {
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let has_body = op.request_body.is_some();
                let responses = &mut op.responses.responses;
                let mut add = |status: &str, response: ResponseBuilder| {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| response.build().into());
                };
                add(
                    "400",
                    error("The request is malformed (query string, path or JSON)"),
                );
                if secured {
                    add("401", error("The API key is missing or not valid"));
                }
                let ingest = matches!(
                    op.operation_id.as_deref(),
                    Some("ingest_event" | "ingest_events")
                );
                if secured && !ingest {
                    add(
                        "403",
                        error("The API key's scope is ingest: it may only post events"),
                    );
                }
                if has_body {
                    add("413", error("The body is larger than 256 KiB"));
                }
                add(
                    "503",
                    error("The database cannot take work now; try again after Retry-After seconds")
                        .header(
                            "Retry-After",
                            Header::new(
                                utoipa::openapi::ObjectBuilder::new()
                                    .schema_type(utoipa::openapi::Type::Integer),
                            ),
                        ),
                );
            }
        }
    }
}

/// Links from the operations that return ids to those that take them, so clients (and fuzzers
/// such as schemathesis) can follow a created webhook or a listed attempt to its operations.
/// Written into the JSON (utoipa 5 spells `operationId` as `operation_id` in links).
fn add_links(doc: &mut serde_json::Value) {
    let sources: [(&str, &str, &str, &[&str]); 3] = [
        (
            "create_webhook",
            "201",
            "$response.body#/id",
            &[
                "get_webhook",
                "update_webhook",
                "delete_webhook",
                "rotate_webhook_secret",
                "get_webhook_secret",
                "send_test_event",
                "verify_webhook",
            ],
        ),
        (
            "list_attempts",
            "200",
            "$response.body#/items/0/id",
            &["get_attempt"],
        ),
        (
            "list_deliveries",
            "200",
            "$response.body#/items/0/id",
            &["replay_delivery"],
        ),
    ];
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for op in paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
    {
        let Some((_, status, id, targets)) = sources
            .iter()
            .find(|(source, ..)| op["operationId"] == *source)
        else {
            continue;
        };
        let links = &mut op["responses"][*status]["links"];
        for target in *targets {
            links[*target] = serde_json::json!({"operationId": target, "parameters": {"id": id}});
        }
    }
}

/// The length limits of the text fields a webhook takes, in words. Herald trims surrounding
/// spaces before it checks a length, so a `maxLength` on the raw string would refuse values the
/// API accepts; and the Basic password, taken as given, is read only with `kind: basic`. So the
/// limits go in each field's description, not into constraints (which schemathesis would hold
/// the API to with any kind).
fn document_lengths(schemas: &mut serde_json::Value) {
    use herald::domain::headers::{MAX_NAME_LEN, MAX_VALUE_LEN, NAME_CHARS};
    use herald::domain::webhook::{
        WebhookName, HEADERS_HERALD_SETS, MAX_BASIC_LEN, MAX_DESCRIPTION_CHARS,
        MAX_ORDERING_KEY_LEN, MAX_SIGNATURE_HEADER_LEN,
    };
    const TRIMMED: &str = "Surrounding spaces are trimmed first.";
    // Adds `limit` to the field's description, after what the derive wrote.
    fn limit(field: &mut serde_json::Value, limit: String) {
        let text = match field["description"].as_str() {
            Some(before) if !before.is_empty() => format!("{before} {limit}"),
            _ => limit,
        };
        field["description"] = serde_json::Value::String(text);
    }
    for name in ["WebhookDraft", "WebhookPatch"] {
        let props = &mut schemas[name]["properties"];
        limit(
            &mut props["name"],
            format!(
                "1 to {} characters, no control characters, unique in the program (ignoring case). {TRIMMED}",
                WebhookName::MAX_CHARS
            ),
        );
        limit(
            &mut props["description"],
            format!(
                "Up to {MAX_DESCRIPTION_CHARS} characters; line breaks and tabs, no other control characters. {TRIMMED}"
            ),
        );
        limit(
            &mut props["ordering_key"],
            format!(
                "Up to {MAX_ORDERING_KEY_LEN} characters: segments of letters, digits, `_` and `-`, joined by `.`."
            ),
        );
    }
    let header = &mut schemas["HeaderDraft"]["properties"];
    limit(
        &mut header["name"],
        format!(
            "An HTTP header name of up to {MAX_NAME_LEN} characters ({NAME_CHARS}), not one Herald or HTTP sets. {TRIMMED}"
        ),
    );
    limit(
        &mut header["value"],
        format!(
            "Up to {MAX_VALUE_LEN} printable ASCII characters (tabs allowed, no line breaks). {TRIMMED}"
        ),
    );
    let auth = &mut schemas["AuthDraft"]["properties"];
    limit(
        &mut auth["username"],
        format!(
            "Basic Auth: 1 to {MAX_BASIC_LEN} characters, without `:` or control characters. {TRIMMED}"
        ),
    );
    limit(
        &mut auth["password"],
        format!("Basic Auth: 1 to {MAX_BASIC_LEN} bytes (UTF-8), taken as given."),
    );
    let taken: Vec<String> = HEADERS_HERALD_SETS
        .iter()
        .map(|h| format!("`{h}`"))
        .collect();
    limit(
        &mut auth["header"],
        format!(
            "Up to {MAX_SIGNATURE_HEADER_LEN} letters, digits and `-`; not {} or a `webhook-` header. {TRIMMED}",
            taken.join(", ")
        ),
    );
}

/// The validation rules the domain applies, written into the schemas of what clients send (the
/// derive sees only Rust types): catalog event types, URL scheme, retry and rate-limit ranges.
/// Only rules the API enforces exactly as stated go here, so a request that breaks one is
/// always refused.
fn document_constraints(doc: &mut serde_json::Value) {
    use herald::domain::catalog::EVENT_NAMES;
    use herald::domain::webhook::RetryPolicy;
    use serde_json::json;
    let schemas = &mut doc["components"]["schemas"];
    let event_type = json!({"type": "string", "enum": EVENT_NAMES});
    let url = json!({"type": "string", "maxLength": 2048, "pattern": "^[hH][tT][tT][pP][sS]?://"});
    let method = json!({"type": "string", "pattern": "^[pP][oO][sS][tT]$"});
    let event_types = json!({"type": "array", "minItems": 1, "items": event_type});
    let rate = json!({"type": ["integer", "null"], "minimum": 1, "maximum": 10_000});
    for name in ["WebhookDraft", "WebhookPatch"] {
        let props = &mut schemas[name]["properties"];
        props["url"] = url.clone();
        props["method"] = method.clone();
        props["event_types"] = event_types.clone();
        props["rate_limit_per_second"] = rate.clone();
    }
    // In a patch, `null` (like leaving a field out) keeps the current value.
    let patch = &mut schemas["WebhookPatch"]["properties"];
    patch["url"]["type"] = json!(["string", "null"]);
    patch["method"]["type"] = json!(["string", "null"]);
    patch["event_types"]["type"] = json!(["array", "null"]);
    let retry = &mut schemas["RetryDraft"]["properties"];
    retry["attempts"] =
        json!({"type": "integer", "minimum": 0, "maximum": RetryPolicy::MAX_ATTEMPTS});
    retry["delay_seconds"] =
        json!({"type": "integer", "minimum": 1, "maximum": RetryPolicy::MAX_DELAY_SECONDS});
    retry["timeout_seconds"] =
        json!({"type": "integer", "minimum": 1, "maximum": RetryPolicy::MAX_TIMEOUT_SECONDS});
    retry["backoff"] = json!({"type": "string", "enum": ["fixed", "exponential", "schedule"]});
    // Read (and checked) only with backoff `schedule`; with another backoff it is ignored
    // whatever it holds, so the document states its limits in words, not as constraints a
    // request with another backoff would break.
    retry["schedule"] = json!({"type": "array", "items": {"type": "integer"},
        "description": format!("With backoff `schedule`: the delay before each retry, in seconds \
            (1 to {} of them, each 0 to {}); ignored with another backoff.",
            RetryPolicy::MAX_ATTEMPTS, RetryPolicy::MAX_DELAY_SECONDS)});
    schemas["AuthDraft"]["properties"]["kind"] =
        json!({"type": "string", "enum": ["signature", "jwt", "basic", "none"]});
    document_lengths(schemas);
    let postable: Vec<&str> = EVENT_NAMES
        .iter()
        .copied()
        .filter(|n| !herald::domain::catalog::is_operational(n))
        .collect();
    schemas["IngestBody"]["properties"]["event_type"] = json!({"type": "string",
        "enum": postable, "description": "A catalog event type, e.g. `points.awarded` (not the operational `delivery.*` and `endpoint.*` ones, which Herald raises itself)."});
    schemas["IngestBody"]["properties"]["event_id"] = json!({"type": ["string", "null"],
        "format": "uuid", "description": "Your own UUID for idempotency; Herald makes one when absent."});
    let mut test_types: Vec<serde_json::Value> = EVENT_NAMES.iter().map(|n| json!(n)).collect();
    test_types.push(serde_json::Value::Null);
    schemas["TestBody"]["properties"]["event_type"] = json!({"type": ["string", "null"],
        "enum": test_types, "description": "The catalog event whose example to send; defaults to the first subscribed type."});
}

pub fn router(engine: Engine, access: Access) -> Router {
    let state = ApiState { engine, access };
    let (v1, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(events::router())
        .merge(event_types::router())
        .merge(webhooks::router())
        .merge(attempts::router())
        .merge(deliveries::router())
        .merge(insights::router())
        .merge(alerts::router())
        .merge(access::router())
        .merge(transfer::router())
        .split_for_parts();
    // After the merge: the paths exist only now.
    let mut doc = doc;
    utoipa::Modify::modify(&CommonResponses, &mut doc);
    let mut doc = serde_json::to_value(&doc).expect("the OpenAPI document serialises");
    document_constraints(&mut doc);
    add_links(&mut doc);
    let doc = Arc::new(doc);
    let v1 = v1
        .route(
            "/openapi.json",
            get(move || async move { Json(doc.as_ref().clone()) }),
        )
        .fallback(|| async { error::ApiError::not_found("route") });
    Router::new()
        .nest("/api/v1", v1)
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// 200 when the database answers and takes Herald's writes; 503 when it does not answer, or when
/// the latest write failed for its sake (a full disk leaves it readable while every event is
/// refused) within the last minute and none has succeeded since, with the reason. While the
/// database's disk is nearly full, `warnings` says so (still 200: events are stored).
async fn healthz(State(state): State<ApiState>) -> (StatusCode, Json<serde_json::Value>) {
    let (status, mut body) = health_status(&state).await;
    if let Some(warning) = state.engine.disk_warning() {
        body["warnings"] = serde_json::json!([warning]);
    }
    (status, Json(body))
}

async fn health_status(state: &ApiState) -> (StatusCode, serde_json::Value) {
    if let Err(e) = state.engine.store().ping().await {
        tracing::warn!(error = %e, "health check failed");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "unavailable",
                "reason": "the database does not answer"}),
        );
    }
    if let Some(stopped) = state.engine.stopped_tasks().first() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "unavailable", "reason": stopped.describe(),
                "since": stopped.at}),
        );
    }
    match state.engine.write_trouble() {
        Some(t) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "unavailable",
                "reason": format!("writes are failing: {}", t.reason), "since": t.since}),
        ),
        None => (StatusCode::OK, serde_json::json!({"status": "ok"})),
    }
}

/// `{"items": [...]}`, the shape of every list.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}
