//! The REST API's contract: every error of the API table, with the right status and a JSON body
//! naming what is wrong; webhook CRUD; list filters. Run against SQLite and PostgreSQL.

use crate::helpers::*;
use axum::http::StatusCode;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}

async fn ingest_errors_are_clear(backend: Backend) {
    let Some(app) = spawn_app(backend, "ingest_errors").await else {
        return;
    };
    let url = app.url("/api/v1/events");
    // 401: no key, malformed key, unknown key.
    let r = app.client.post(&url).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(error_code(&r.json().await.unwrap()), "unauthorized");
    let r = app
        .client
        .post(&url)
        .bearer_auth("nope")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let forged = herald::auth::api_key::generate().plain;
    let r = app
        .client
        .post(&url)
        .bearer_auth(forged)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // 400: not JSON.
    let r = app
        .client
        .post(&url)
        .bearer_auth(&app.key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(&r.json().await.unwrap()), "bad_request");

    // 413: over 256 KiB.
    let big = json!({"event_type": "points.awarded", "data": {"blob": "x".repeat(300 * 1024)}});
    let (status, body) = app.post("/api/v1/events", big).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(error_code(&body), "payload_too_large");

    // 422: each invalid field is named.
    for (body, field) in [
        (
            json!({"event_type": "nope.nothing", "data": {}}),
            "event_type",
        ),
        (
            json!({"event_type": "points.awarded", "data": [1, 2]}),
            "data",
        ),
        (
            json!({"event_type": "points.awarded", "data": {}, "event_id": "not-a-uuid"}),
            "event_id",
        ),
        (json!({"data": {}}), "event_type"),
        (
            json!({"event_type": "points.awarded", "data": {}, "event_timestamp": "yesterday"}),
            "body",
        ),
        (
            json!({"event_type": "points.awarded", "data": {}, "extra": 1}),
            "extra",
        ),
    ] {
        let (status, err) = app.post("/api/v1/events", body.clone()).await;
        assert_eq!(status, 422, "{body} -> {err}");
        assert_eq!(error_code(&err), "validation");
        if field != "body" {
            assert_eq!(err["error"]["field"], field, "{body} -> {err}");
        }
        assert!(!err["error"]["message"].as_str().unwrap().is_empty());
    }
    // Nothing half-written: no event was stored by any of those.
    let (status, ok) = app
        .post(
            "/api/v1/events",
            json!({"event_type": "points.awarded", "data": {}}),
        )
        .await;
    assert_eq!((status.as_u16(), ok["deliveries"].as_u64()), (202, Some(0)));
    app.stop().await;
}

async fn webhook_crud_and_errors(backend: Backend) {
    let Some(app) = spawn_app(backend, "webhook_crud").await else {
        return;
    };
    let base = json!({"name": "CRM", "url": "https://crm.example.com/hooks", "event_types": ["user.created"]});
    let created = app.create_webhook(base.clone()).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created["retry"],
        json!({"attempts": 5, "delay_seconds": 30, "backoff": "exponential", "timeout_seconds": 15})
    );
    assert_eq!(created["auth"], json!({"kind": "signature"}));
    assert_eq!(created["status"], "active");
    assert_eq!(created["success_rate"], Value::Null);

    // 409: the same name again (any case).
    let mut dup = base.clone();
    dup["name"] = json!("crm");
    let (status, err) = app.post("/api/v1/webhooks", dup).await;
    assert_eq!(status, 409);
    assert_eq!(
        (error_code(&err), err["error"]["field"].as_str()),
        ("conflict", Some("name"))
    );

    // 422 with the field named.
    for (patch, field) in [
        (json!({"url": "ftp://x"}), "url"),
        (json!({"name": "  "}), "name"),
        (json!({"event_types": []}), "event_types"),
        (json!({"event_types": ["nope"]}), "event_types"),
        (
            json!({"retry": {"attempts": 11, "delay_seconds": 1, "backoff": "fixed", "timeout_seconds": 5}}),
            "retry.attempts",
        ),
        (
            json!({"retry": {"attempts": 1, "delay_seconds": 1, "backoff": "fixed", "timeout_seconds": 61}}),
            "retry.timeout_seconds",
        ),
        (
            json!({"filter": [{"path": "data.tier", "op": "between", "value": 1}]}),
            "filter[0]",
        ),
        (json!({"auth": {"kind": "basic"}}), "auth.username"),
        (
            json!({"auth": {"kind": "basic", "username": "u"}}),
            "auth.password",
        ),
        (
            json!({"auth": {"kind": "signature", "secret": "whsec_short"}}),
            "auth.secret",
        ),
        (json!({"rate_limit_per_second": 0}), "rate_limit_per_second"),
    ] {
        let mut body = base.clone();
        body["name"] = json!("Another");
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, err) = app.post("/api/v1/webhooks", body).await;
        assert_eq!(status, 422, "{patch} -> {err}");
        assert_eq!(err["error"]["field"], field, "{patch} -> {err}");
    }

    // Read, patch (partial), list filters, delete.
    let (status, read) = app.get(&format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(status, 200);
    assert!(read.get("secret").is_none());
    let (status, patched) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            Some(json!({"enabled": false, "description": "CRM sync"})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        (patched["enabled"].as_bool(), patched["status"].as_str()),
        (Some(false), Some("inactive"))
    );
    assert_eq!(patched["name"], "CRM");
    assert!(
        patched.get("secret").is_none(),
        "an unchanged secret is not shown again"
    );
    let (_, switched) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            Some(json!({"auth": {"kind": "basic", "username": "u", "password": "p"}})),
        )
        .await;
    assert_eq!(switched["auth"], json!({"kind": "basic", "username": "u"}));
    let (status, _) = app.get(&format!("/api/v1/webhooks/{id}/secret")).await;
    assert_eq!(status, 409, "Basic webhooks have no signing secret");

    app.create_webhook(json!({"name": "Points Pipe", "url": "https://p.example.com", "event_types": ["points.awarded"]})).await;
    let (_, list) = app.get("/api/v1/webhooks?name=pipe").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let (_, list) = app
        .get(&format!("/api/v1/webhooks?start={today}&end={today}"))
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let (_, list) = app.get("/api/v1/webhooks?end=2000-01-01").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    let (status, err) = app.get("/api/v1/webhooks?start=someday").await;
    assert_eq!(
        (status.as_u16(), err["error"]["field"].as_str()),
        (422, Some("start"))
    );

    // A page at a time, newest first: the cursor continues; null on the last page.
    app.create_webhook(
        json!({"name": "Third", "url": "https://t.example.com", "event_types": ["points.awarded"]}),
    )
    .await;
    let (status, first) = app.get("/api/v1/webhooks?limit=2").await;
    assert_eq!(status, 200, "{first}");
    let names = |page: &serde_json::Value| {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&first), ["Third", "Points Pipe"]);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let (_, rest) = app
        .get(&format!("/api/v1/webhooks?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(names(&rest), ["CRM"]);
    assert!(rest["next_cursor"].is_null(), "{rest}");
    let (_, all) = app.get("/api/v1/webhooks").await;
    assert_eq!(names(&all).len(), 3);
    assert!(all["next_cursor"].is_null());
    for (query, field) in [
        ("cursor=garbage", "cursor"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
    ] {
        let (status, err) = app.get(&format!("/api/v1/webhooks?{query}")).await;
        assert_eq!(
            (status.as_u16(), err["error"]["field"].as_str()),
            (422, Some(field)),
            "{query}: {err}"
        );
    }

    let (status, _) = app
        .call(Method::DELETE, &format!("/api/v1/webhooks/{id}"), None)
        .await;
    assert_eq!(status, 204);
    let (status, err) = app.get(&format!("/api/v1/webhooks/{id}")).await;
    assert_eq!((status.as_u16(), error_code(&err)), (404, "not_found"));
    let (status, _) = app
        .call(Method::DELETE, &format!("/api/v1/webhooks/{id}"), None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = app.get("/api/v1/webhooks/garbage").await;
    assert_eq!(status, 404);
    let (status, err) = app.get("/api/v1/no-such-route").await;
    assert_eq!((status.as_u16(), error_code(&err)), (404, "not_found"));
    app.stop().await;
}

async fn catalog_audit_queries_and_health(backend: Backend) {
    let Some(app) = spawn_app(backend, "catalog").await else {
        return;
    };
    let (status, types) = app.get("/api/v1/event-types").await;
    assert_eq!(status, 200);
    let items = types["items"].as_array().unwrap();
    assert_eq!(items.len(), 26);
    for incentable in ["member.created", "member.updated", "member.tier_changed"] {
        assert!(
            items.iter().any(|t| t["name"] == incentable),
            "{incentable}"
        );
    }
    let points = items
        .iter()
        .find(|t| t["name"] == "points.awarded")
        .unwrap();
    assert_eq!(points["feed"], "points");
    assert_eq!(points["schema"]["type"], "object");
    assert!(points["example"]["points"].is_number());

    for (q, field) in [
        ("limit=500", "limit"),
        ("status=maybe", "status"),
        ("cursor=zzz", "cursor"),
        ("webhook_id=x", "webhook_id"),
    ] {
        let (status, err) = app.get(&format!("/api/v1/attempts?{q}")).await;
        assert_eq!(
            (status.as_u16(), err["error"]["field"].as_str()),
            (422, Some(field)),
            "{q}"
        );
    }
    let (status, page) = app.get("/api/v1/attempts").await;
    assert_eq!(status, 200);
    assert_eq!(page["items"], json!([]));
    assert_eq!(page["next_cursor"], Value::Null);

    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await;
}

async fn openapi_document_describes_every_route(backend: Backend) {
    let Some(app) = spawn_app(backend, "openapi").await else {
        return;
    };
    // Public: no key needed.
    let r = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["servers"][0]["url"], "/api/v1");
    let expected = [
        ("/events", "post"),
        ("/events/batch", "post"),
        ("/event-types", "get"),
        ("/webhooks", "post"),
        ("/webhooks", "get"),
        ("/webhooks/{id}", "get"),
        ("/webhooks/{id}", "patch"),
        ("/webhooks/{id}", "delete"),
        ("/webhooks/{id}/test", "post"),
        ("/webhooks/{id}/verify", "post"),
        ("/webhooks/{id}/secret", "get"),
        ("/webhooks/{id}/rotate-secret", "post"),
        ("/attempts", "get"),
        ("/attempts/{id}", "get"),
        ("/attempts/export", "get"),
        ("/deliveries/export", "get"),
        ("/deliveries", "get"),
        ("/deliveries/{id}/replay", "post"),
        ("/webhooks/{id}/insights", "get"),
        ("/insights", "get"),
        ("/program/export", "post"),
        ("/program/import/preview", "post"),
        ("/program/import", "post"),
        ("/event-types/{name}/validation", "put"),
        ("/alerts", "get"),
        ("/alerts/settings", "get"),
        ("/alerts/settings", "put"),
        ("/alerts/test", "post"),
        ("/deliveries/replay", "post"),
        ("/replay-jobs", "get"),
        ("/replay-jobs/{id}", "get"),
        ("/api-keys", "get"),
        ("/api-keys", "post"),
        ("/api-keys/{id}", "delete"),
        ("/users", "get"),
        ("/users", "post"),
        ("/users/{id}", "delete"),
    ];
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        operations,
        expected.len(),
        "the document lists routes this test does not know"
    );
    assert!(doc["components"]["schemas"]["WebhookDraft"].is_object());
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
    // The limits the API holds bodies to are stated in the document, as the code has them (the
    // fuzz test then sends values past each one and expects them refused).
    use herald::domain::webhook::RetryPolicy;
    let schemas = &doc["components"]["schemas"];
    let retry = &schemas["RetryDraft"]["properties"];
    let range = |field: &Value| (field["minimum"].as_i64(), field["maximum"].as_i64());
    assert_eq!(
        range(&retry["attempts"]),
        (Some(0), Some(RetryPolicy::MAX_ATTEMPTS.into()))
    );
    assert_eq!(
        range(&retry["delay_seconds"]),
        (Some(1), Some(RetryPolicy::MAX_DELAY_SECONDS.into()))
    );
    assert_eq!(
        range(&retry["timeout_seconds"]),
        (Some(1), Some(RetryPolicy::MAX_TIMEOUT_SECONDS.into()))
    );
    for body in ["WebhookDraft", "WebhookPatch"] {
        let fields = &schemas[body]["properties"];
        assert_eq!(
            range(&fields["rate_limit_per_second"]),
            (Some(1), Some(10_000)),
            "{body}"
        );
        assert_eq!(
            fields["headers"]["maxItems"].as_u64(),
            Some(herald::domain::headers::MAX_HEADERS as u64),
            "{body}: {}",
            fields["headers"]
        );
    }
    let batch = &schemas["BatchBody"]["properties"]["events"];
    assert_eq!(
        (batch["minItems"].as_u64(), batch["maxItems"].as_u64()),
        (Some(1), Some(500))
    );
    let window = &schemas["AlertSettingsDraft"]["properties"]["window_minutes"];
    assert_eq!(range(window), (Some(1), Some(1440)));
    // The text fields' lengths are stated in words (Herald trims before it counts): each number
    // read from the document is the one the API holds a webhook to, at the limit and one past it.
    let stated = |schema: &str, field: &str, before: &str| -> usize {
        let text = schemas[schema]["properties"][field]["description"]
            .as_str()
            .unwrap_or_default();
        let at = text
            .find(before)
            .unwrap_or_else(|| panic!("{schema}.{field}: no '{before}' in {text:?}"));
        text[at + before.len()..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{schema}.{field}: no number after '{before}' in {text:?}"))
    };
    let hook = |tag: &str, patch: Value| {
        let mut body = json!({"name": format!("Limits {tag}"), "url": "https://limits.example.com",
            "event_types": ["points.awarded"]});
        body.as_object_mut()
            .unwrap()
            .extend(patch.as_object().unwrap().clone());
        body
    };
    // What is limited, the limit, the field a refusal names, a body holding `n` characters.
    type Limit<'a> = (&'a str, usize, &'a str, fn(usize) -> Value);
    let limits: [Limit; 4] = [
        (
            "name",
            stated("WebhookDraft", "name", "1 to "),
            "name",
            |n| json!({"name": "n".repeat(n)}),
        ),
        (
            "description",
            stated("WebhookDraft", "description", "Up to "),
            "description",
            |n| json!({"description": "d".repeat(n)}),
        ),
        (
            "header value",
            stated("HeaderDraft", "value", "Up to "),
            "headers[0].value",
            |n| json!({"headers": [{"name": "X-Tenant", "value": "v".repeat(n)}]}),
        ),
        (
            "password",
            stated("AuthDraft", "password", "Basic Auth: 1 to "),
            "auth.password",
            |n| json!({"auth": {"kind": "basic", "username": "crm", "password": "p".repeat(n)}}),
        ),
    ];
    for (what, max, field, body) in &limits {
        let (status, answer) = app.post("/api/v1/webhooks", hook(what, body(*max))).await;
        assert_eq!(status, StatusCode::CREATED, "{what} at {max}: {answer}");
        let (status, answer) = app
            .post(
                "/api/v1/webhooks",
                hook(&format!("{what} over"), body(max + 1)),
            )
            .await;
        assert_eq!(
            (status, answer["error"]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(*field)),
            "{what} at {}: {answer}",
            max + 1
        );
    }
    app.stop().await;
}

async fn batch_ingest_is_validated_whole_and_fans_out_each_event(backend: Backend) {
    let Some(app) = spawn_app(backend, "batch ingest").await else {
        return;
    };
    let receiver = TestReceiver::start().await;
    app.create_webhook(
        json!({"name": "Batch", "url": receiver.url, "event_types": ["points.awarded"]}),
    )
    .await;
    let event = |i: u32| json!({"event_type": "points.awarded", "data": {"user_id": format!("u{i}"), "points": i}});
    // One bad event refuses the whole batch, naming it; nothing is stored.
    let (status, body) = app
        .post(
            "/api/v1/events/batch",
            json!({"events": [event(1), {"event_type": "nope", "data": {}}, event(3)]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "events[1].event_type", "{body}");
    let (status, body) = app
        .post("/api/v1/events/batch", json!({"events": []}))
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("events"))
    );
    let too_many: Vec<Value> = (0..501).map(event).collect();
    let (status, _) = app
        .post("/api/v1/events/batch", json!({"events": too_many}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // A good batch: each event stored and delivered once; a repeated event id is reported.
    let id = uuid::Uuid::new_v4().to_string();
    let mut events: Vec<Value> = (0..20).map(event).collect();
    events[0]["event_id"] = json!(id);
    let (status, body) = app
        .post("/api/v1/events/batch", json!({"events": events}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 20);
    assert_eq!(items[0]["event_id"], json!(id));
    assert!(items.iter().all(|i| i["deliveries"] == 1));
    let got = receiver.wait_for(20, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 20);
    let (status, body) = app
        .post(
            "/api/v1/events/batch",
            json!({"events": [{"event_type": "points.awarded", "event_id": id, "data": {}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["items"][0]["duplicate"], true);
    assert_eq!(body["items"][0]["deliveries"], 0);
    // Read from the store rather than waited for: the duplicate made no delivery, so nothing
    // can send it again (a pause before counting the receiver's requests passes on a slow
    // machine whatever happens).
    let (_, all) = app.get("/api/v1/deliveries?status=all&limit=500").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 20, "{all}");
    assert_eq!(
        receiver.received().len(),
        20,
        "the duplicate was not delivered again"
    );
    app.stop().await;
}

/// Optimistic concurrency: a write naming the version it read is refused with 409 once someone
/// else changed the webhook; a write without a version (a toggle, a rotation) applies to the
/// latest settings and is never lost.
async fn stale_writes_are_refused_and_nothing_is_lost(backend: Backend) {
    let Some(app) = spawn_app(backend, "stale_writes").await else {
        return;
    };
    let w = app
        .create_webhook(json!({"name": "Versioned", "url": "https://crm.example.com/hooks", "event_types": ["user.created"]}))
        .await;
    let id = w["id"].as_str().unwrap();
    assert_eq!(w["version"], 1);
    let path = format!("/api/v1/webhooks/{id}");
    let patch = |body: Value| app.call(Method::PATCH, &path, Some(body));
    let (status, edited) = patch(json!({"description": "first edit", "version": 1})).await;
    assert_eq!(
        (status.as_u16(), edited["version"].as_i64()),
        (200, Some(2)),
        "{edited}"
    );
    // Someone else toggles it off meanwhile (no version: applies to the latest).
    let (status, toggled) = patch(json!({"enabled": false})).await;
    assert_eq!(
        (status.as_u16(), toggled["version"].as_i64()),
        (200, Some(3))
    );
    // An edit made from version 2 is now stale.
    let (status, err) = patch(json!({"description": "second edit", "version": 2})).await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["error"]["field"], "version");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("changed by someone else"));
    let (_, now) = app.get(&path).await;
    assert_eq!(
        (now["description"].as_str(), now["enabled"].as_bool()),
        (Some("first edit"), Some(false))
    );
    // A rotation applies on top, and the secret it returns is the one that signs.
    let (status, rotated) = app.post(&format!("{path}/rotate-secret"), json!({})).await;
    assert_eq!(status, 200);
    let (_, revealed) = app.get(&format!("{path}/secret")).await;
    assert_eq!(revealed["secret"], rotated["secret"]);
    let (_, now) = app.get(&path).await;
    assert_eq!(now["version"], 4);
    // Switched on when created, and again now: `enabled_at` moves with the switch only.
    assert_eq!(now["enabled_at"], now["created_at"], "{now}");
    let (status, on) = patch(json!({"enabled": true})).await;
    assert_eq!(status, 200, "{on}");
    let (created, switched) = (
        chrono::DateTime::parse_from_rfc3339(now["created_at"].as_str().unwrap()).unwrap(),
        chrono::DateTime::parse_from_rfc3339(on["enabled_at"].as_str().unwrap()).unwrap(),
    );
    assert!(switched > created, "{on}");
    app.stop().await;
}

/// Schema validation of `data` is off by default and opt-in per event type: once on, an event
/// whose data breaks the type's schema is refused with the failing path, alone or in a batch
/// (where nothing of the batch is stored), while other types are untouched.
async fn schema_validation_is_opt_in_per_event_type(backend: Backend) {
    let Some(app) = spawn_app(backend, "schema validation").await else {
        return;
    };
    app.create_webhook(json!({"name": "Points", "url": "https://p.example.com", "event_types": ["points.awarded"]}))
        .await;
    let bad = json!({"event_type": "points.awarded", "data": {"user_id": "u1", "points": "many", "reason": "x", "balance": 1}});
    let (status, body) = app.post("/api/v1/events", bad.clone()).await;
    assert_eq!(status, 202, "off by default: {body}");

    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/event-types/points.awarded/validation",
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["validate_data"], true);
    let (_, types) = app.get("/api/v1/event-types").await;
    let on: Vec<&str> = types["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["validate_data"] == true)
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(on, ["points.awarded"]);

    let (status, body) = app.post("/api/v1/events", bad.clone()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "data.points", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("must be an integer"),
        "{body}"
    );
    let (status, body) = app
        .post("/api/v1/events", json!({"event_type": "points.awarded", "data": {"user_id": "u1", "points": 5, "balance": 1}}))
        .await;
    assert_eq!(
        (status.as_u16(), body["error"]["field"].as_str()),
        (422, Some("data.reason")),
        "{body}"
    );
    let good = json!({"user_id": "u1", "points": 5, "reason": "purchase", "balance": 10});
    let (status, body) = app
        .post(
            "/api/v1/events",
            json!({"event_type": "points.awarded", "data": good}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    // Other types are not checked.
    let (status, _) = app
        .post(
            "/api/v1/events",
            json!({"event_type": "reward.redeemed", "data": {"anything": true}}),
        )
        .await;
    assert_eq!(status, 202);

    // A batch with one bad event stores none of it.
    let first = "6f1c1a52-5d1a-4c43-9a57-3c1f7d0e7a11";
    let (status, body) = app
        .post(
            "/api/v1/events/batch",
            json!({"events": [
                {"event_type": "points.awarded", "event_id": first, "data": good},
                bad,
            ]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "events[1].data.points", "{body}");
    let (status, body) = app
        .post(
            "/api/v1/events",
            json!({"event_type": "points.awarded", "event_id": first, "data": good}),
        )
        .await;
    assert_eq!(
        status, 202,
        "the batch's first event was not stored: {body}"
    );
    assert_eq!(body["duplicate"], Value::Null, "{body}");

    let (status, _) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/event-types/nope.nope/validation",
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, 404);
    app.call(
        reqwest::Method::PUT,
        "/api/v1/event-types/points.awarded/validation",
        Some(json!({"enabled": false})),
    )
    .await;
    let (status, _) = app.post("/api/v1/events", bad).await;
    assert_eq!(status, 202, "off again");
    app.stop().await;
}

/// Every JSON body of the API is an object. serde reads a struct from an array as well, by
/// position, so without a check `[]` passed as `{}`: a replay of every dead letter, alert
/// settings put back to their defaults. An array is refused with 422 naming the body, and
/// nothing is done.
async fn array_bodies_are_refused_not_read_by_position(backend: Backend) {
    let Some(app) = spawn_app(backend, "array_bodies").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    let hook = app
        .create_webhook(json!({"name": "Arrays", "url": rx.url,
            "event_types": ["points.awarded"]}))
        .await;
    let id = hook["id"].as_str().unwrap().to_owned();
    let settings = json!({"email_enabled": true, "smtp_host": "smtp.example.com",
        "from": "herald@example.com", "recipients": "ops@example.com"});
    let (status, saved) = app
        .call(Method::PUT, "/api/v1/alerts/settings", Some(settings))
        .await;
    assert_eq!(status, 200, "{saved}");

    let routes = [
        (Method::POST, "/api/v1/events".to_owned()),
        (Method::POST, "/api/v1/events/batch".to_owned()),
        (Method::POST, "/api/v1/webhooks".to_owned()),
        (Method::PATCH, format!("/api/v1/webhooks/{id}")),
        (Method::POST, format!("/api/v1/webhooks/{id}/test")),
        (Method::PUT, "/api/v1/alerts/settings".to_owned()),
        (Method::POST, "/api/v1/deliveries/replay".to_owned()),
        (Method::POST, "/api/v1/program/export".to_owned()),
        (Method::POST, "/api/v1/program/import/preview".to_owned()),
        (Method::POST, "/api/v1/program/import".to_owned()),
        (Method::POST, "/api/v1/api-keys".to_owned()),
        (Method::POST, "/api/v1/users".to_owned()),
        (
            Method::PUT,
            "/api/v1/event-types/points.awarded/validation".to_owned(),
        ),
    ];
    for (method, path) in routes {
        for body in [json!([]), json!(["wh_a", "points.awarded"]), json!(7)] {
            let (status, answer) = app.call(method.clone(), &path, Some(body.clone())).await;
            assert_eq!(status, 422, "{method} {path} {body}: {answer}");
            assert_eq!(
                answer["error"]["field"], "body",
                "{method} {path}: {answer}"
            );
            assert_eq!(
                answer["error"]["message"], "the request body must be a JSON object",
                "{method} {path}: {answer}"
            );
        }
        // Not JSON at all is still a 400, whatever its first character (a form feed is not
        // JSON whitespace: Send Test, whose body is optional, read it as an empty body), and
        // whitespace alone is no JSON either (Send Test took a tab for no body).
        for text in ["[1,", "\u{c}", "\u{c}{}", "\t", " \r\n"] {
            let r = app
                .client
                .request(method.clone(), app.url(&path))
                .bearer_auth(&app.key)
                .header("content-type", "application/json")
                .body(text)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{method} {path} {text:?}");
        }
    }

    // Inside a body too: an array where the document says object is refused, and the field
    // names where it was.
    let valid = json!({"name": "Nested", "url": rx.url, "event_types": ["points.awarded"]});
    for (key, value, field) in [
        ("retry", json!([]), "retry"),
        // Read by position, this was 3 attempts, 60 s apart, exponential, 10 s timeout.
        ("retry", json!([3, 60, "exponential", 10]), "retry"),
        ("auth", json!(["jwt", "a-secret-of-enough-length"]), "auth"),
        ("headers", json!([["X-Team", "loyalty"]]), "headers[0]"),
    ] {
        let mut body = valid.clone();
        body[key] = value.clone();
        let (status, answer) = app.post("/api/v1/webhooks", body).await;
        assert_eq!(status, 422, "{key}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{key}: {answer}");
        let patch = Value::Object([(key.to_owned(), value.clone())].into_iter().collect());
        let (status, answer) = app
            .call(
                Method::PATCH,
                &format!("/api/v1/webhooks/{id}"),
                Some(patch),
            )
            .await;
        assert_eq!(status, 422, "PATCH {key}: {answer}");
        assert_eq!(answer["error"]["field"], field, "PATCH {key}: {answer}");
    }
    let (status, answer) = app
        .post(
            "/api/v1/events/batch",
            json!({"events": [{"event_type": "points.awarded", "data": {}}, []]}),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["field"], "events[1]", "{answer}");
    // A type error names its field as well.
    let (status, answer) = app
        .post("/api/v1/events", json!({"event_type": 5, "data": {}}))
        .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["field"], "event_type", "{answer}");

    // Nothing was acted on: no replay job, the settings as saved, no event stored, no webhook
    // made or changed.
    let (status, jobs) = app.get("/api/v1/replay-jobs").await;
    assert_eq!(status, 200, "{jobs}");
    assert_eq!(jobs["items"], json!([]), "{jobs}");
    let (status, now) = app.get("/api/v1/alerts/settings").await;
    assert_eq!((status, now), (StatusCode::OK, saved));
    let (status, deliveries) = app.get("/api/v1/deliveries?status=all").await;
    assert_eq!(status, 200, "{deliveries}");
    assert_eq!(deliveries["items"], json!([]), "{deliveries}");
    let (status, hooks) = app.get("/api/v1/webhooks").await;
    assert_eq!(status, 200, "{hooks}");
    assert_eq!(hooks["items"].as_array().unwrap().len(), 1, "{hooks}");
    assert_eq!(hooks["items"][0]["version"], hook["version"], "{hooks}");
    // An object still goes through.
    let (status, body) = app
        .post(&format!("/api/v1/webhooks/{id}/test"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(rx.wait_for(1, Duration::from_secs(10)).await.len(), 1);
    app.stop().await;
}

/// Text that holds control characters where they mean nothing is refused by name, on both
/// backends alike: PostgreSQL cannot store or compare NUL, so these were 500s there (an API key
/// named with one, a description, a filter value, a search term), and SQLite stored them.
async fn control_characters_in_text_are_refused_by_name(backend: Backend) {
    let Some(app) = spawn_app(backend, "control_characters").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    let valid = json!({"name": "Texts", "url": rx.url, "event_types": ["points.awarded"]});
    let mut cases = Vec::new();
    for (key, value, field) in [
        ("description", json!("a\u{0}b"), "description"),
        ("description", json!("bell\u{7}"), "description"),
        (
            "filter",
            json!([{"path": "data.tier", "op": "eq", "value": "Gold\u{0}"}]),
            "filter[0]",
        ),
        (
            "filter",
            json!([{"path": "data.tier", "op": "in", "value": [{"k\u{0}": 1}]}]),
            "filter[0]",
        ),
        (
            "filter",
            json!([{"path": "data.ti\u{0}er", "op": "exists", "value": null}]),
            "filter[0]",
        ),
    ] {
        let mut body = valid.clone();
        body[key] = value;
        cases.push((Method::POST, "/api/v1/webhooks".to_owned(), body, field));
    }
    for (name, field) in [("key\u{0}", "name"), ("line\nbreak", "name")] {
        cases.push((
            Method::POST,
            "/api/v1/api-keys".to_owned(),
            json!({"name": name}),
            field,
        ));
    }
    let settings = json!({"email_enabled": false, "smtp_host": "smtp.example.com",
        "from": "herald@example.com", "recipients": "ops@example.com"});
    for (key, value) in [
        ("smtp_host", "smtp\u{0}.example.com"),
        ("smtp_username", "user\u{0}"),
        ("smtp_password", "pass\u{0}word"),
        ("from", "herald\u{0}@example.com"),
        ("recipients", "ops@example.com\u{0}"),
    ] {
        let mut body = settings.clone();
        body[key] = json!(value);
        cases.push((Method::PUT, "/api/v1/alerts/settings".to_owned(), body, key));
    }
    for (method, path, body, field) in cases {
        let (status, answer) = app.call(method.clone(), &path, Some(body.clone())).await;
        assert_eq!(status, 422, "{method} {path} {body}: {answer}");
        assert_eq!(
            answer["error"]["field"], field,
            "{method} {path} {body}: {answer}"
        );
    }
    for (path, field) in [
        ("/api/v1/webhooks?name=a%00b", "name"),
        ("/api/v1/webhooks?name=%07", "name"),
        ("/api/v1/attempts?q=a%00b", "q"),
    ] {
        let (status, answer) = app.get(path).await;
        assert_eq!(status, 422, "{path}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{path}: {answer}");
    }
    // Nothing was stored: no webhook, only the test's own API key, the settings untouched.
    let (status, hooks) = app.get("/api/v1/webhooks").await;
    assert_eq!(status, 200, "{hooks}");
    assert_eq!(hooks["items"], json!([]), "{hooks}");
    let (status, keys) = app.get("/api/v1/api-keys").await;
    assert_eq!(status, 200, "{keys}");
    assert_eq!(keys["items"].as_array().unwrap().len(), 1, "{keys}");
    let (status, now) = app.get("/api/v1/alerts/settings").await;
    assert_eq!(status, 200, "{now}");
    assert_eq!(now["smtp_host"], "", "{now}");
    // Line breaks and tabs are still text in a description, and several recipients may come
    // one per line; a search term without control characters finds what it names.
    let mut body = valid.clone();
    body["description"] = json!("Tier changes\n\tfor the CRM");
    let (status, hook) = app.post("/api/v1/webhooks", body).await;
    assert_eq!(status, 201, "{hook}");
    assert_eq!(hook["description"], "Tier changes\n\tfor the CRM", "{hook}");
    let mut body = settings.clone();
    body["recipients"] = json!("ops@example.com\r\nteam@example.com");
    let (status, saved) = app
        .call(Method::PUT, "/api/v1/alerts/settings", Some(body))
        .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(
        saved["recipients"],
        json!(["ops@example.com", "team@example.com"])
    );
    let (status, found) = app.get("/api/v1/webhooks?name=text").await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["items"].as_array().unwrap().len(), 1, "{found}");
    let (status, found) = app.get("/api/v1/attempts?q=text").await;
    assert_eq!(status, 200, "{found}");
    app.stop().await;
}

on_both_backends!(
    schema_validation_is_opt_in_per_event_type,
    array_bodies_are_refused_not_read_by_position,
    control_characters_in_text_are_refused_by_name,
    stale_writes_are_refused_and_nothing_is_lost,
    batch_ingest_is_validated_whole_and_fans_out_each_event,
    ingest_errors_are_clear,
    webhook_crud_and_errors,
    catalog_audit_queries_and_health,
    openapi_document_describes_every_route,
    the_audit_log_and_the_deliveries_download_as_csv_with_the_lists_filters,
);

/// A SQLite database another process holds locked: ingest answers 503 with `Retry-After` and a
/// clear error (never 202 without storing), and works again once the lock is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_locked_answers_503_and_recovers() {
    let app = spawn_app(Backend::Sqlite, "sqlite_locked").await.unwrap();
    let path = app.sqlite_path().unwrap();
    let mut locker =
        <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!("sqlite://{path}"))
            .await
            .unwrap();
    sqlx::Executor::execute(&mut locker, "BEGIN EXCLUSIVE")
        .await
        .unwrap();
    let id = uuid::Uuid::new_v4().to_string();
    let body = json!({"event_type": "points.awarded", "data": {}, "event_id": id});
    let resp = app
        .client
        .post(app.url("/api/v1/events"))
        .bearer_auth(&app.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "2");
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "unavailable", "{err}");
    sqlx::Executor::execute(&mut locker, "ROLLBACK")
        .await
        .unwrap();
    drop(locker);
    let (status, ok) = app.post("/api/v1/events", body).await;
    assert_eq!(
        (status.as_u16(), ok["event_id"].as_str()),
        (202, Some(id.as_str())),
        "{ok}"
    );
    app.stop().await;
}

/// One event posted with the test key: the status, whether `Retry-After` came, the body.
async fn post_event(app: &TestApp) -> (u16, bool, Value) {
    let resp = app
        .client
        .post(app.url("/api/v1/events"))
        .bearer_auth(&app.key)
        .json(&json!({"event_type": "points.awarded", "data": {}}))
        .send()
        .await
        .unwrap();
    let retry_after = resp.headers().contains_key("retry-after");
    (
        resp.status().as_u16(),
        retry_after,
        resp.json().await.unwrap(),
    )
}

/// `refused` is an `unavailable` error whose message holds `why`, and `/healthz` answers 503
/// with the same words in its reason.
async fn assert_told_unavailable(app: &TestApp, refused: &Value, why: &str) {
    assert_eq!(refused["error"]["code"], "unavailable", "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains(why), "{refused}");
    let (status, health) = app.get("/healthz").await;
    assert_eq!(status, 503, "{health}");
    assert!(health["reason"].as_str().unwrap().contains(why), "{health}");
}

/// The SQLite file deleted (or replaced) while Herald has it open, an operator's slip or a
/// cleanup script: SQLite would go on writing into the file it holds, which then exists nowhere
/// else, and everything accepted would be gone at the next start. Ingest refuses with a `503`
/// that says what happened and how to get the data back, never a `202`; `/healthz` says it too;
/// no other write is taken either; reads still answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_deleted_under_herald_is_refused_not_written_into() {
    let app = spawn_app(Backend::Sqlite, "sqlite_deleted").await.unwrap();
    let path = app.sqlite_path().unwrap();
    assert_eq!(post_event(&app).await.0, 202);
    std::fs::remove_file(&path).unwrap();
    let (status, retry_after, refused) = post_event(&app).await;
    assert_eq!((status, retry_after), (503, true), "{refused}");
    assert_told_unavailable(
        &app,
        &refused,
        "was deleted or replaced while Herald had it open (its data is still readable at /proc/",
    )
    .await;
    // Nor is any other write taken: a webhook created now would be gone at the next start.
    let hook = json!({"name": "CRM", "url": "https://crm.example.com/hooks", "event_types": ["user.created"]});
    let (status, refused) = app.post("/api/v1/webhooks", hook).await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(error_code(&refused), "unavailable", "{refused}");
    assert!(
        !std::path::Path::new(&path).exists(),
        "no empty file made in its place"
    );
    let (status, list) = app.get("/api/v1/webhooks").await;
    assert_eq!(status, 200, "reads still answer: {list}");
    app.stop().await;
}

/// A session of an operator's on the test's database, free of what the tests set on it for
/// Herald's sessions (read-only, timeouts, isolation): it writes, waits and commits as it is told.
async fn operator_session(app: &TestApp) -> sqlx::PgConnection {
    let mut session = <sqlx::PgConnection as sqlx::Connection>::connect(&app.database_url)
        .await
        .unwrap();
    sqlx::Executor::execute(
        &mut session,
        "SET default_transaction_read_only = off; SET statement_timeout = 0; \
         SET lock_timeout = 0; SET default_transaction_isolation = 'read committed'",
    )
    .await
    .unwrap();
    session
}

/// Sets (or with `None` resets) a PostgreSQL setting on the test's database, as an operator
/// would, and ends Herald's sessions so its pools open new ones that have it.
async fn set_for_new_sessions(app: &TestApp, setting: &str, value: Option<&str>) {
    let name = url::Url::parse(&app.database_url).unwrap().path()[1..].to_owned();
    let mut admin = operator_session(app).await;
    let change = match value {
        Some(value) => format!("ALTER DATABASE \"{name}\" SET {setting} = {value}"),
        None => format!("ALTER DATABASE \"{name}\" RESET {setting}"),
    };
    sqlx::Executor::execute(&mut admin, change.as_str())
        .await
        .unwrap();
    sqlx::Executor::execute(
        &mut admin,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .await
    .unwrap();
}

/// Posts until ingest says `why` (the first posts may meet sessions just ended): every refusal
/// is a 503 with `Retry-After`, never a 500, and `/healthz` says it too.
async fn assert_refused_until_told(app: &TestApp, why: &str) {
    let mut answers = vec![];
    for _ in 0..20 {
        let answer = post_event(app).await;
        let told = answer.2.to_string().contains(why);
        answers.push(answer);
        if told {
            break;
        }
    }
    assert!(
        answers
            .iter()
            .all(|(status, after, _)| *status == 503 && *after),
        "every refusal a 503 with Retry-After: {answers:?}"
    );
    let (_, _, refused) = answers.last().unwrap();
    assert_told_unavailable(app, refused, why).await;
}

/// Posts until ingest takes an event again: nothing but 503s before it, and `/healthz` healthy.
async fn assert_taken_again(app: &TestApp) {
    let mut statuses = vec![];
    for _ in 0..20 {
        let (status, _, _) = post_event(app).await;
        statuses.push(status);
        if status == 202 {
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&202), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [202, 503].contains(s)),
        "{statuses:?}"
    );
    let (status, health) = app.get("/healthz").await;
    assert_eq!(status, 200, "{health}");
}

/// PostgreSQL that takes no writes (a standby Herald is still connected to after a failover, or
/// a database set read-only): ingest answers 503 with `Retry-After` and a reason saying so, never
/// a 500; `/healthz` says it too; and once the database takes writes again, so does Herald.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_read_only_answers_503_and_recovers() {
    let Some(app) = spawn_app(Backend::Postgres, "postgres_read_only").await else {
        return;
    };
    assert_eq!(post_event(&app).await.0, 202);
    set_for_new_sessions(&app, "default_transaction_read_only", Some("on")).await;
    assert_refused_until_told(&app, "the database is read-only").await;
    set_for_new_sessions(&app, "default_transaction_read_only", None).await;
    assert_taken_again(&app).await;
    app.stop().await;
}

/// An operator's `lock_timeout` or `statement_timeout` breaking Herald's writes off while a
/// migration or a long job holds the table they need: ingest answers 503 with `Retry-After` and a
/// reason naming the timeout, never a 500 (as it did), and takes events again once the lock is
/// let go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_timeouts_answer_503_and_recover() {
    for (setting, why) in [
        ("lock_timeout", "the database timed out waiting for a lock"),
        ("statement_timeout", "the database cancelled a statement"),
    ] {
        let Some(app) = spawn_app(Backend::Postgres, &format!("postgres_{setting}")).await else {
            return;
        };
        assert_eq!(post_event(&app).await.0, 202);
        set_for_new_sessions(&app, setting, Some("'200ms'")).await;
        let mut holder = operator_session(&app).await;
        let mut held = sqlx::Connection::begin(&mut holder).await.unwrap();
        sqlx::Executor::execute(&mut *held, "LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
            .await
            .unwrap();
        assert_refused_until_told(&app, why).await;
        held.rollback().await.unwrap();
        assert_taken_again(&app).await;
        app.stop().await;
    }
}

/// How many sessions of the test's database wait for a lock, asked until one does (at most
/// 5,000 times): Herald's write, blocked by the test's own transaction.
async fn waiting_for_a_lock(watcher: &mut sqlx::PgConnection) -> i64 {
    let mut waiting = 0;
    for _ in 0..5_000 {
        waiting = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut *watcher)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
    }
    waiting
}

/// Runs `request` while another transaction holds the program's row changed, and commits that
/// change once Herald waits for the row: under repeatable read Herald's transaction then meets a
/// row changed after its snapshot, a serialization failure (40001).
async fn colliding<T>(app: &TestApp, request: impl std::future::Future<Output = T>) -> T {
    let (mut holder, mut watcher) = (operator_session(app).await, operator_session(app).await);
    let mut held = sqlx::Connection::begin(&mut holder).await.unwrap();
    sqlx::query("UPDATE programs SET name = name WHERE id = $1")
        .bind(&app.program)
        .execute(&mut *held)
        .await
        .unwrap();
    let release = async {
        let waiting = waiting_for_a_lock(&mut watcher).await;
        held.commit().await.unwrap();
        waiting
    };
    let (answer, waiting) = tokio::join!(request, release);
    assert_eq!(waiting, 1, "Herald waited for the program's row");
    answer
}

/// A database whose default isolation an operator raised (repeatable read, or serializable):
/// a write that meets a row changed by a transaction that committed meanwhile fails with a
/// serialization failure (40001), which succeeds when sent again. Ingest sends it again at once
/// (the event is taken); any other write answers 503 with `Retry-After` and the reason, never a
/// 500 (as it did), and succeeds when sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_serialization_failures_are_retried_or_answered_503() {
    let Some(app) = spawn_app(Backend::Postgres, "postgres_serialization").await else {
        return;
    };
    set_for_new_sessions(
        &app,
        "default_transaction_isolation",
        Some("'repeatable read'"),
    )
    .await;
    assert_taken_again(&app).await;

    let (status, _, taken) = colliding(&app, post_event(&app)).await;
    assert_eq!(status, 202, "{taken}");

    let hook = json!({"name": "CRM", "url": "https://crm.example.com/hooks", "event_types": ["user.created"]});
    let (status, refused) = colliding(&app, app.post("/api/v1/webhooks", hook.clone())).await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(error_code(&refused), "unavailable", "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("broke off the write in a conflict with another"),
        "{refused}"
    );
    app.create_webhook(hook).await;
    app.stop().await;
}

/// A deadlock at ingest (40P01). Another transaction inserted an event with the id Herald is
/// about to store and has not committed: Herald's insert waits for it, holding its share lock on
/// the program's row (the subscriber-list check). That transaction then asks for the program's
/// row: a cycle. PostgreSQL breaks it by ending Herald's transaction (Herald's session checks
/// for deadlocks after a second, the other's only after a minute), and the other transaction's
/// update goes through, which it could not have otherwise. Ingest sends its write again at once;
/// once the other transaction rolls back, the event is taken: 202, stored once, never a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_deadlock_at_ingest_is_tried_again() {
    let Some(app) = spawn_app(Backend::Postgres, "postgres_deadlock").await else {
        return;
    };
    let id = herald::domain::ids::EventId::generate().to_string();
    let (mut holder, mut watcher) = (operator_session(&app).await, operator_session(&app).await);
    let mut held = sqlx::Connection::begin(&mut holder).await.unwrap();
    sqlx::query("SET LOCAL deadlock_timeout = '60s'")
        .execute(&mut *held)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO events (program_id, id, event_type, event_timestamp, body, created_at) \
         VALUES ($1, $2, 'points.awarded', now(), '{}', now())",
    )
    .bind(&app.program)
    .bind(&id)
    .execute(&mut *held)
    .await
    .unwrap();
    let post = app
        .client
        .post(app.url("/api/v1/events"))
        .bearer_auth(&app.key)
        .json(&json!({"event_type": "points.awarded", "event_id": id, "data": {}}))
        .send();
    let collide = async {
        let waiting = waiting_for_a_lock(&mut watcher).await;
        // Waits for Herald's share lock on the row until the deadlock check ends Herald's
        // transaction; an error here would mean this transaction was the one ended.
        sqlx::query("UPDATE programs SET name = name WHERE id = $1")
            .bind(&app.program)
            .execute(&mut *held)
            .await
            .expect("Herald's transaction, not this one, is broken off");
        held.rollback().await.unwrap();
        waiting
    };
    let (answer, waiting) = tokio::join!(post, collide);
    assert_eq!(waiting, 1, "Herald waited for the uncommitted event");
    let answer = answer.unwrap();
    let status = answer.status();
    let body: Value = answer.json().await.unwrap();
    assert_eq!(status, 202, "{body}");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE id = $1")
        .bind(&id)
        .fetch_one(&mut watcher)
        .await
        .unwrap();
    assert_eq!(stored, 1, "the event is stored once");
    app.stop().await;
}

/// After an upgrade, events stored before Herald kept their member beside them are found by
/// member with nobody doing anything: starting Herald starts the walk that fills them in (the
/// walk itself is `the_backfill_gives_earlier_events_their_member` in the store conformance).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_herald_fills_in_earlier_events_members() {
    let (url, dir) = database(Backend::Sqlite, "backfill_start").await.unwrap();
    let store = herald::store::connect(&url).await.unwrap();
    let now = herald::store::now();
    let earlier = herald::store::StoredEvent {
        program_id: store.default_program().await.unwrap(),
        id: herald::domain::ids::EventId::generate(),
        event_type: herald::domain::event::EventType::parse("points.awarded").unwrap(),
        event_timestamp: now,
        body: r#"{"member_id":"m_before"}"#.into(),
        created_at: now,
        member: None,
    };
    assert_eq!(store.ingest(&earlier, &[]).await.unwrap(), Some(0));
    drop(store);

    let app = spawn_with(serve_args(&url), dir).await;
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let member = eventually(Duration::from_secs(30), || async {
        sqlx::query_scalar::<_, Option<String>>("SELECT member FROM events WHERE id = $1")
            .bind(earlier.id.as_str())
            .fetch_one(&pool)
            .await
            .unwrap()
    })
    .await;
    assert_eq!(member.as_deref(), Some("m_before"));
    pool.close().await;
    app.stop().await;
}

/// `/metrics` exists only when configured: behind its bearer token on the main address, or
/// without one on an address of its own. After one delivery it shows the attempt, the finished
/// delivery, the lag histogram, the ingest count and the queue gauges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_only_when_configured() {
    let plain = spawn_app(Backend::Sqlite, "no_metrics").await.unwrap();
    let r = plain
        .client
        .get(plain.url("/metrics"))
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert!(
        !body.contains("# TYPE"),
        "metrics served without being configured"
    );
    plain.stop().await;

    let (url, dir) = database(Backend::Sqlite, "metrics").await.unwrap();
    let mut args = serve_args(&url);
    args.metrics.metrics_token = Some("scrape-me".into());
    args.metrics.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    let app = spawn_with(args, dir).await;
    let rx = TestReceiver::start().await;
    let hook = app
        .create_webhook(
            json!({"name": "Measured", "url": rx.url, "event_types": ["points.awarded"]}),
        )
        .await;
    let id = hook["id"].as_str().unwrap().to_owned();
    // A second endpoint answers 410 Gone: Herald switches it off and counts that.
    let gone = TestReceiver::start().await;
    gone.script([Reply::Status(410)]);
    app.create_webhook(
        json!({"name": "Gone away", "url": gone.url, "event_types": ["points.awarded"],
            "retry": {"attempts": 0, "delay_seconds": 60, "backoff": "fixed", "timeout_seconds": 5}}),
    )
    .await;
    let (status, _) = app
        .post(
            "/api/v1/events",
            json!({"event_type": "points.awarded", "data": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    rx.wait_for(1, Duration::from_secs(10)).await;

    let metrics = app.url("/metrics");
    let r = app.client.get(&metrics).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .get(&metrics)
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let scrape = || async {
        let r = app
            .client
            .get(&metrics)
            .bearer_auth("scrape-me")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    };
    // The attempt is counted once its result is recorded.
    let webhook = id.as_str();
    let text = eventually(Duration::from_secs(10), || async {
        let text = scrape().await;
        let samples = prometheus_samples(&text);
        sample(
            &samples,
            "herald_deliveries_finished_total",
            &[("webhook_id", webhook)],
        )
        .is_some()
        .then_some(text)
    })
    .await
    .expect("the delivery never showed up in /metrics");
    let samples = prometheus_samples(&text);
    let value = |name: &str, labels: &[(&str, &str)]| {
        sample(&samples, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
    };
    assert_eq!(
        value(
            "herald_attempts_total",
            &[("webhook_id", webhook), ("outcome", "success")]
        ),
        1.0
    );
    assert_eq!(
        value(
            "herald_deliveries_finished_total",
            &[("webhook_id", webhook), ("outcome", "succeeded")]
        ),
        1.0
    );
    assert!(value("herald_delivery_lag_seconds_count", &[]) >= 1.0);
    assert!(value("herald_attempt_duration_seconds_bucket", &[("le", "+Inf")]) >= 1.0);
    assert!(value("herald_events_ingested_total", &[("duplicate", "false")]) >= 1.0);
    // The write path: the event waited for a transaction, which was timed and counted its rows;
    // its waits have buckets below a millisecond.
    assert!(value("herald_write_wait_seconds_count", &[("kind", "events")]) >= 1.0);
    assert!(
        value(
            "herald_write_wait_seconds_bucket",
            &[("kind", "events"), ("le", "0.0001")]
        ) >= 0.0
    );
    assert!(value("herald_write_seconds_count", &[]) >= 1.0);
    assert!(value("herald_write_rows_total", &[("kind", "events")]) >= 1.0);
    assert_eq!(value("herald_queue_depth", &[("state", "pending")]), 0.0);
    assert_eq!(value("herald_queue_oldest_due_seconds", &[]), 0.0);
    assert!(value("herald_db_connections", &[("state", "open")]) >= 1.0);
    assert_eq!(value("herald_database_up", &[]), 1.0);
    // SQLite's writer committed through the VFS that writes a commit's WAL frames in one go.
    assert!(value("herald_sqlite_wal_commits_gathered_total", &[]) >= 1.0);
    let disabled = eventually(Duration::from_secs(10), || async {
        sample(
            &prometheus_samples(&scrape().await),
            "herald_auto_disables_total",
            &[("reason", "gone")],
        )
    })
    .await;
    assert!(
        disabled.is_some_and(|n| n >= 1.0),
        "the 410 switch-off was not counted"
    );

    // Each queued try records its event-to-delivery lag; Send Test has none. (The counters move
    // when the request finishes; its attempt row is committed with the next batch of results.)
    let attempts = eventually(Duration::from_secs(10), || async {
        let a = app.attempts(&id).await;
        (!a.is_empty()).then_some(a)
    })
    .await
    .expect("the attempt never reached the audit log");
    let lag = attempts[0]["lag_ms"]
        .as_i64()
        .expect("lag_ms on a queued attempt");
    assert!((0..10_000).contains(&lag), "{}", attempts[0]);
    let (status, _) = app
        .post(&format!("/api/v1/webhooks/{id}/test"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let attempts = app.attempts(&id).await;
    let test = attempts.last().unwrap();
    assert_eq!(test["trigger"], "test", "{test}");
    assert!(test["lag_ms"].is_null(), "{test}");

    // The separate listener needs no token.
    let separate = format!("http://{}/metrics", app.metrics_addr.unwrap());
    let r = app.client.get(&separate).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("herald_queue_depth"));
    app.stop().await;
}

/// One sample of the Prometheus text format: name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// Parses the Prometheus text exposition format strictly: every line is a `# HELP`/`# TYPE`
/// comment or `name{label="value",…} number`; anything else fails the test.
fn prometheus_samples(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            assert!(
                comment.starts_with("HELP ") || comment.starts_with("TYPE "),
                "unexpected comment: {line}"
            );
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, Vec::new()),
            Some((name, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels: {line}"));
                let labels = body
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .map(|pair| {
                        let (k, v) = pair
                            .split_once("=\"")
                            .unwrap_or_else(|| panic!("bad label in {line}"));
                        (k.to_owned(), v.trim_end_matches('"').to_owned())
                    })
                    .collect();
                (name, labels)
            }
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line}"
        );
        samples.push((name.to_owned(), labels, value));
    }
    samples
}

/// The value of the first sample named `name` carrying every label in `labels`.
fn sample(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| *v)
}

/// Runs the `herald` command line with `args` on `app`'s database, as another process would.
fn run_herald(app: &TestApp, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .args(["--database-url", &app.database_url])
        .output()
        .unwrap()
}

/// `run_herald`, which must succeed: what it printed on stdout and on stderr.
fn herald_ok(app: &TestApp, args: &[&str]) -> (String, String) {
    let out = run_herald(app, args);
    assert!(
        out.status.success(),
        "herald {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// An `ingest` key posts events (single and batch) and is refused everywhere else with a 403
/// that says why; the command line creates, lists and revokes keys with their scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_keys_post_events_and_nothing_else() {
    let app = spawn_app(Backend::Sqlite, "scopes").await.unwrap();
    let cli = |args: &[&str]| herald_ok(&app, &[&["api-key"], args].concat()).0;
    let ingest = cli(&["create", "--name", "platform", "--scope", "ingest"])
        .trim()
        .to_owned();
    let call = |method: Method, path: &str, body: Option<Value>| {
        let mut req = app
            .client
            .request(method, app.url(path))
            .bearer_auth(&ingest);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send()
    };
    let r = call(
        Method::POST,
        "/api/v1/events",
        Some(json!({"event_type": "points.awarded", "data": {}})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    let r = call(
        Method::POST,
        "/api/v1/events/batch",
        Some(json!({"events": [{"event_type": "points.awarded", "data": {}}]})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    for (method, path) in [
        (Method::GET, "/api/v1/webhooks"),
        (Method::POST, "/api/v1/webhooks"),
        (Method::GET, "/api/v1/attempts"),
        (Method::GET, "/api/v1/deliveries"),
    ] {
        let r = call(method.clone(), path, Some(json!({}))).await.unwrap();
        assert_eq!(r.status(), 403, "{method} {path}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("scope ingest"),
            "{body}"
        );
    }
    // The admin key of the test app still does everything.
    let (status, _) = app.get("/api/v1/webhooks").await;
    assert_eq!(status, StatusCode::OK);

    let listed = cli(&["list"]);
    let line = listed
        .lines()
        .find(|l| l.contains("\tplatform\t"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(
        line.contains("\tingest\t") && line.ends_with("active"),
        "{line}"
    );
    let id = line.split('\t').next().unwrap();
    cli(&["revoke", id]);
    assert!(cli(&["list"])
        .lines()
        .any(|l| l.starts_with(id) && l.contains("revoked")));
    app.stop().await;
}

/// A key revoked, or its program archived, by another process (the command line here) is
/// refused by a running server from its next look for such changes (every second), not only
/// once its key cache's minute is up; a program restored the same way lets its keys in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_refused_by_another_process_are_refused_here_from_the_next_look() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if let Some(app) = spawn_app(backend, "key-refusals").await {
            refused_elsewhere_refused_here(app).await;
        }
    }
}

async fn refused_elsewhere_refused_here(app: TestApp) {
    let herald = |args: &[&str]| herald_ok(&app, args).0;
    let post = |key: String| {
        app.client
            .post(app.url("/api/v1/events"))
            .bearer_auth(key)
            .json(&json!({"event_type": "points.awarded", "data": {}}))
            .send()
    };
    let key = herald(&["api-key", "create", "--name", "crm"])
        .trim()
        .to_owned();
    // Accepted once, so this server holds it in its key cache as valid.
    assert_eq!(
        post(key.clone()).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    let listed = herald(&["api-key", "list"]);
    let id = listed
        .lines()
        .find(|l| l.split('\t').nth(1) == Some("crm"))
        .and_then(|l| l.split('\t').next())
        .unwrap_or_else(|| panic!("crm not listed: {listed}"))
        .to_owned();
    herald(&["api-key", "revoke", &id]);
    app.access.notice_key_refusals().await.unwrap();
    assert_eq!(post(key).await.unwrap().status(), StatusCode::UNAUTHORIZED);

    let program = herald(&["program", "create", "--name", "Summer"])
        .trim()
        .to_owned();
    let key = herald(&[
        "api-key",
        "create",
        "--name",
        "summer",
        "--program",
        &program,
    ])
    .trim()
    .to_owned();
    assert_eq!(
        post(key.clone()).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    herald(&["program", "archive", &program]);
    app.access.notice_key_refusals().await.unwrap();
    assert_eq!(
        post(key.clone()).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    herald(&["program", "restore", &program]);
    app.access.notice_key_refusals().await.unwrap();
    assert_eq!(post(key).await.unwrap().status(), StatusCode::ACCEPTED);
    app.stop().await;
}

/// `herald program` archives and restores a program from the command line: the list shows it
/// archived, a key of the program is refused while it is (a key this server has not seen yet,
/// so no cached answer hides it), and works again once it is restored. An unknown program is an
/// error that says so, with exit status 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn programs_are_archived_and_restored_from_the_command_line() {
    let app = spawn_app(Backend::Sqlite, "program-cli").await.unwrap();
    let ok = |args: &[&str]| herald_ok(&app, args);
    let (id, _) = ok(&["program", "create", "--name", "Spring promo"]);
    let id = id.trim().to_owned();
    let (key, _) = ok(&["api-key", "create", "--name", "promo", "--program", &id]);
    let key = key.trim().to_owned();
    let listed = |want: &str| {
        let (list, _) = ok(&["program", "list"]);
        let line = list
            .lines()
            .find(|l| l.starts_with(&format!("{id}\tSpring promo\t")))
            .unwrap_or_else(|| panic!("{id} not listed: {list}"))
            .to_owned();
        assert!(
            line.ends_with(want) || line.contains(&format!("\t{want} ")),
            "{line}"
        );
    };
    let post = || {
        app.client
            .post(app.url("/api/v1/events"))
            .bearer_auth(&key)
            .json(&json!({"event_type": "points.awarded", "data": {}}))
            .send()
    };
    listed("active");

    let (_, said) = ok(&["program", "archive", "Spring promo"]);
    assert!(said.contains("archived 'Spring promo'"), "{said}");
    listed("archived");
    assert_eq!(post().await.unwrap().status(), StatusCode::UNAUTHORIZED);

    let (_, said) = ok(&["program", "restore", &id]);
    assert!(said.contains("restored 'Spring promo'"), "{said}");
    listed("active");
    assert_eq!(post().await.unwrap().status(), StatusCode::ACCEPTED);

    for verb in ["archive", "restore"] {
        let out = run_herald(&app, &["program", verb, "No such program"]);
        assert_eq!(out.status.code(), Some(1), "{verb}");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("error: program not found"), "{verb}: {said}");
    }
    app.stop().await;
}

/// A client that starts a request and never finishes it cannot keep Herald from stopping: once
/// the shutdown grace has passed, the connection is closed and the server returns.
#[tokio::test]
async fn a_request_never_finished_does_not_keep_herald_running() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (url, dir) = database(Backend::Sqlite, "stuck client").await.unwrap();
    let mut args = serve_args(&url);
    args.shutdown_grace_seconds = 1;
    let app = spawn_with(args, dir).await;
    let mut stuck = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    // A complete request first, so the connection is known to be served...
    stuck
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: herald\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut buf = [0u8; 1];
        let n = stuck.read(&mut buf).await.unwrap();
        assert!(n > 0, "the connection closed before /healthz answered");
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    // ...then one whose body never arrives.
    let head = format!(
        "POST /api/v1/events HTTP/1.1\r\nhost: herald\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\nexpect: 100-continue\r\n\r\n",
        app.key
    );
    stuck.write_all(head.as_bytes()).await.unwrap();
    // The interim answer comes once the handler reads the body: the request is under way.
    // (What is read first is the rest of /healthz's answer: its body.)
    let continued = |b: &[u8]| b.windows(25).any(|w| w == b"HTTP/1.1 100 Continue\r\n\r\n");
    let mut interim = Vec::new();
    while !continued(&interim) {
        let mut buf = [0u8; 256];
        let n = stuck.read(&mut buf).await.unwrap();
        assert!(n > 0, "the connection closed before the body was asked for");
        interim.extend_from_slice(&buf[..n]);
    }
    stuck.write_all(b"{\"event").await.unwrap();
    let stopped = tokio::time::timeout(Duration::from_secs(60), app.stop()).await;
    assert!(
        stopped.is_ok(),
        "Herald was still running 60 s after it was told to stop"
    );
    drop(stuck);
}

/// The console's files travel compressed: a release site's `.br` and `.gz` copies are chosen by
/// the request's Accept-Encoding (the plain file otherwise), and every answer for them makes the
/// browser revalidate (their names do not change between releases), 304 while unchanged.
#[tokio::test]
async fn console_files_are_served_precompressed_and_revalidated() {
    let site = tempfile::tempdir().unwrap();
    let pkg = site.path().join("pkg");
    std::fs::create_dir(&pkg).unwrap();
    std::fs::write(pkg.join("herald.wasm"), b"plain wasm bytes").unwrap();
    std::fs::write(pkg.join("herald.wasm.br"), b"brotli bytes").unwrap();
    std::fs::write(pkg.join("herald.wasm.gz"), b"gzip bytes").unwrap();
    // Read when the router is built (this test's process only, under nextest).
    std::env::set_var("LEPTOS_SITE_ROOT", site.path());
    let app = spawn_app(Backend::Sqlite, "precompressed").await.unwrap();
    let client = reqwest::Client::new();
    let fetch = |encoding: &'static str| {
        let (client, url) = (client.clone(), app.url("/pkg/herald.wasm"));
        async move {
            let mut req = client.get(url);
            if !encoding.is_empty() {
                req = req.header("accept-encoding", encoding);
            }
            req.send().await.unwrap()
        }
    };
    for (accepts, encoding, body) in [
        ("br, gzip", Some("br"), "brotli bytes"),
        ("gzip", Some("gzip"), "gzip bytes"),
        ("", None, "plain wasm bytes"),
    ] {
        let resp = fetch(accepts).await;
        assert_eq!(resp.status(), StatusCode::OK, "accepting {accepts:?}");
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(header("content-encoding").as_deref(), encoding);
        assert_eq!(header("content-type").as_deref(), Some("application/wasm"));
        assert_eq!(header("cache-control").as_deref(), Some("no-cache"));
        if encoding.is_some() {
            assert!(
                header("vary").is_some_and(|v| v.to_ascii_lowercase().contains("accept-encoding")),
                "a cache keeps the encodings apart"
            );
        }
        assert_eq!(resp.text().await.unwrap(), body);
    }
    let modified = fetch("br")
        .await
        .headers()
        .get("last-modified")
        .cloned()
        .expect("Last-Modified");
    let again = client
        .get(app.url("/pkg/herald.wasm"))
        .header("accept-encoding", "br")
        .header("if-modified-since", modified)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()["cache-control"], "no-cache");
    let missing = client.get(app.url("/pkg/nothing.js")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.headers().get("cache-control").is_none());
    app.stop().await;
}

/// A background task that ends by panicking (a bug) is not left unnoticed: `/healthz` answers
/// 503 naming it and what has stopped working, and the engine keeps it for the console; events
/// are still accepted. Aborting a watched task's handle (as shutdown does) ends the task itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_task_that_panics_fails_the_health_check() {
    let Some(app) = spawn_app(Backend::Sqlite, "panicking task").await else {
        return;
    };
    let (status, health) = app.get("/healthz").await;
    assert_eq!(status, StatusCode::OK, "{health}");
    app.engine
        .watch_task("alerts", async {
            panic!("the alert settings were never read");
        })
        .await
        .unwrap();
    let stopped = app.engine.stopped_tasks();
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    assert_eq!(
        (stopped[0].task, stopped[0].panic.as_str()),
        ("alerts", "the alert settings were never read")
    );
    let (status, health) = app.get("/healthz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{health}");
    let reason = health["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("Herald's alerts stopped after an internal error at ")
            && reason.ends_with(
                "(the alert settings were never read): alerts are neither sent nor e-mailed; \
                 restart Herald"
            ),
        "{reason}"
    );
    let (status, body) = app
        .post(
            "/api/v1/events",
            json!({"event_type": "points.awarded", "data": {"still": "accepted"}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let (alive, ended) = tokio::sync::oneshot::channel::<()>();
    let watched = app.engine.watch_task("retention", async move {
        let _alive = alive;
        std::future::pending::<()>().await
    });
    watched.abort();
    assert!(
        ended.await.is_err(),
        "the watched task ended (its end of the channel dropped)"
    );
    assert_eq!(app.engine.stopped_tasks().len(), 1, "an abort is no panic");
    app.stop().await;
}

/// The audit log and the deliveries as CSV (`GET /api/v1/attempts/export`, `GET
/// /api/v1/deliveries/export`, and the console's Download CSV links): the lists' filters, every
/// row of a result longer than one page read, newest first, cells quoted where they must be and
/// defused where a spreadsheet would run them, a held delivery told as held; the console's files
/// for a signed-in member of the program only.
async fn the_audit_log_and_the_deliveries_download_as_csv_with_the_lists_filters(backend: Backend) {
    let Some(app) = spawn_app(backend, "audit csv").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    let formula = app
        .create_webhook(
            json!({"name": "=HYPERLINK(\"x\")", "url": rx.url, "event_types": ["points.awarded"]}),
        )
        .await;
    app.create_webhook(
        json!({"name": "Plain, with a comma", "url": rx.url, "event_types": ["points.awarded"]}),
    )
    .await;
    let events = 110; // 220 attempts: more than the export's page of 200
    let batch: Vec<Value> = (0..events)
        .map(|i| json!({"event_type": "points.awarded", "data": {"i": i, "user_id": format!("u_{i}")}}))
        .collect();
    let (status, body) = app
        .post("/api/v1/events/batch", json!({"events": batch}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    rx.wait_for(2 * events, Duration::from_secs(30)).await;

    // Results are written just after the receiver has them: read until all 220 are there.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let text = loop {
        let (status, kind, text) = export_csv(&app, "").await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(kind.as_deref(), Some("text/csv; charset=utf-8"));
        if text.lines().count() > 2 * events || std::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], server::csv_export::ATTEMPT_COLUMNS);
    assert_eq!(lines.len(), 1 + 2 * events, "every attempt, across pages");
    let times: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(",\"'=HYPERLINK(\"\"x\"\")\",")),
        "a formula is quoted and defused: {}",
        lines[1]
    );
    assert!(lines
        .iter()
        .any(|l| l.contains(",\"Plain, with a comma\",")));
    assert!(lines[1..].iter().all(|l| l.contains(",points.awarded,")));
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.rsplit(',').next().unwrap().starts_with("u_")),
        "each line ends with the member its event is about: {}",
        lines[1]
    );

    // The list's filters.
    let id = formula["id"].as_str().unwrap().to_owned();
    let (_, _, one) = export_csv(&app, &format!("?webhook_id={id}&status=success")).await;
    let rows: Vec<&str> = one
        .split("\r\n")
        .skip(1)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(rows.len(), events);
    assert!(rows.iter().all(|l| l.contains(&id)));
    let (status, _, err) = export_csv(&app, "?start=yesterday").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert!(err.contains("start"), "{err}");

    // The console's link: the same file for a signed-in member, a sign-in for anyone else.
    let path = format!(
        "/p/{}/audit-logs.csv?webhook_id={id}&status=success",
        app.program
    );
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let anonymous = no_redirects.get(app.url(&path)).send().await.unwrap();
    assert!(
        anonymous.status().is_redirection(),
        "{}",
        anonymous.status()
    );
    let cookie = app.console_session().await;
    let signed_in = no_redirects
        .get(app.url(&path))
        .header(reqwest::header::COOKIE, format!("herald_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::OK);
    assert!(signed_in
        .headers()
        .get(reqwest::header::CONTENT_DISPOSITION)
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"herald-audit-log-"));
    assert_eq!(signed_in.text().await.unwrap(), one);
    let elsewhere = no_redirects
        .get(app.url("/p/prg_00000000000000000000000000000000/audit-logs.csv"))
        .header(reqwest::header::COOKIE, format!("herald_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert!(
        matches!(elsewhere.status().as_u16(), 403 | 303 | 307),
        "{}",
        elsewhere.status()
    );

    // The deliveries: all delivered, none dead; one held while its webhook is off.
    let rows = |text: &str| -> Vec<String> {
        let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
        assert_eq!(lines.next(), Some(server::csv_export::DELIVERY_COLUMNS));
        lines.map(str::to_owned).collect()
    };
    let (status, kind, done) = export_csv_of(&app, "deliveries", "?status=succeeded").await;
    assert_eq!(
        (status, kind.as_deref()),
        (StatusCode::OK, Some("text/csv; charset=utf-8"))
    );
    assert_eq!(
        rows(&done).len(),
        2 * events,
        "every delivery, across pages"
    );
    let (_, _, dead) = export_csv_of(&app, "deliveries", "?status=failed").await;
    assert!(rows(&dead).is_empty(), "{dead}");
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .post(
            "/api/v1/events",
            json!({"event_type": "points.awarded", "data": {"held": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let query = format!("?status=pending&webhook_id={id}");
    let (_, _, waiting) = export_csv_of(&app, "deliveries", &query).await;
    let held = rows(&waiting);
    assert_eq!(held.len(), 1, "{waiting}");
    assert!(
        held[0].contains(",points.awarded,") && held[0].contains(",pending,true,0,,"),
        "held, and no next try named: {}",
        held[0]
    );
    let console = no_redirects
        .get(app.url(&format!("/p/{}/deliveries.csv{query}", app.program)))
        .header(reqwest::header::COOKIE, format!("herald_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(console.status(), StatusCode::OK);
    assert_eq!(console.text().await.unwrap(), waiting);
    app.stop().await;
}

/// `GET /api/v1/attempts/export{query}`: the status, the content type and the body.
async fn export_csv(app: &TestApp, query: &str) -> (StatusCode, Option<String>, String) {
    export_csv_of(app, "attempts", query).await
}

/// `GET /api/v1/{list}/export{query}`: the status, the content type and the body.
async fn export_csv_of(
    app: &TestApp,
    list: &str,
    query: &str,
) -> (StatusCode, Option<String>, String) {
    let r = app
        .client
        .get(app.url(&format!("/api/v1/{list}/export{query}")))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    let kind = r
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status(), kind, r.text().await.unwrap())
}
