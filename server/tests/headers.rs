//! Custom headers through the whole application (REST API, dispatcher, a real receiver on
//! 127.0.0.1, both backends): plain and secret values arrive as configured, a secret value is
//! masked in the API, redacted in the audit log and never stored in the clear, an edit that
//! leaves it empty keeps it, and headers Herald or the auth method set are refused by row.

use crate::helpers::*;
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

const TOKEN: &str = "tok-8f1e0c55-never-stored-plain";

/// The request headers of the `n`th attempt of `webhook` (waiting for it to be recorded).
async fn attempt_headers(app: &TestApp, webhook: &str, n: usize) -> Vec<(String, String)> {
    let attempts = eventually(Duration::from_secs(20), || async {
        let all = app.attempts(webhook).await;
        (all.len() >= n).then_some(all)
    })
    .await
    .expect("the attempt is recorded");
    let newest = &attempts[n - 1];
    let (status, detail) = app
        .get(&format!(
            "/api/v1/attempts/{}",
            newest["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    serde_json::from_value(detail["request"]["headers"].clone()).unwrap()
}

/// Everything stored for webhooks, as text (SQLite: the database file and its WAL).
async fn stored_text(app: &TestApp) -> String {
    match app.sqlite_path() {
        Some(path) => {
            let mut all = std::fs::read(&path).unwrap();
            if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
                all.extend(wal);
            }
            String::from_utf8_lossy(&all).into_owned()
        }
        None => {
            let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
            let rows: Vec<String> =
                sqlx::query_scalar("SELECT headers::text || secrets FROM webhooks")
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            rows.concat()
        }
    }
}

async fn custom_headers_arrive_masked_redacted_and_sealed(backend: Backend) {
    let Some(app) = spawn_app(backend, "custom headers").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    let created = app
        .create_webhook(json!({
            "name": "CRM", "url": rx.url, "event_types": ["points.awarded"],
            "headers": [
                {"name": "X-Tenant", "value": " acme "},
                {"name": "X-Api-Token", "value": TOKEN, "secret": true},
            ],
        }))
        .await;
    let id = created["webhook"]["id"]
        .as_str()
        .or(created["id"].as_str())
        .unwrap()
        .to_owned();
    let (_, view) = app.get(&format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(
        view["headers"],
        json!([
            {"name": "X-Tenant", "value": "acme", "secret": false},
            {"name": "X-Api-Token", "value": "••••••••", "secret": true},
        ])
    );

    let (status, body) = app
        .post(
            "/api/v1/events",
            json!({"event_type": "points.awarded", "data": {"user_id": "u_1", "points": 5}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let got = rx.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(got[0].headers["x-tenant"], "acme");
    assert_eq!(got[0].headers["x-api-token"], TOKEN);
    assert!(got[0].headers.contains_key("webhook-signature"));

    // The audit log shows the plain header and hides the secret one.
    let logged = attempt_headers(&app, &id, 1).await;
    assert!(
        logged.contains(&("x-tenant".into(), "acme".into())),
        "{logged:?}"
    );
    assert!(
        logged.contains(&("x-api-token".into(), "[redacted]".into())),
        "{logged:?}"
    );
    let stored = stored_text(&app).await;
    assert!(stored.contains("X-Api-Token"), "the header name is stored");
    assert!(
        !stored.contains(TOKEN),
        "the secret value is stored in the clear"
    );

    // An edit that leaves the secret empty keeps it; the plain value changes.
    let (status, body) = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            Some(json!({"headers": [
                {"name": "X-Tenant", "value": "globex"},
                {"name": "X-Api-Token", "value": "", "secret": true},
            ]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.post(
        "/api/v1/events",
        json!({"event_type": "points.awarded", "data": {"user_id": "u_2", "points": 7}}),
    )
    .await;
    let got = rx.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(got[1].headers["x-tenant"], "globex");
    assert_eq!(got[1].headers["x-api-token"], TOKEN);

    // Dropping the header stops sending it.
    let (status, body) = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            Some(json!({"headers": []})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.post(
        "/api/v1/events",
        json!({"event_type": "points.awarded", "data": {"user_id": "u_3", "points": 9}}),
    )
    .await;
    let got = rx.wait_for(3, Duration::from_secs(20)).await;
    assert!(!got[2].headers.contains_key("x-api-token"));
    assert!(!got[2].headers.contains_key("x-tenant"));
    app.stop().await;
}

async fn headers_herald_sets_are_refused_by_row(backend: Backend) {
    let Some(app) = spawn_app(backend, "refused headers").await else {
        return;
    };
    let base = |auth: Value, headers: Value| {
        json!({
            "name": "Refused", "url": "http://127.0.0.1:9/hook", "event_types": ["points.awarded"],
            "auth": auth, "headers": headers,
        })
    };
    let signature = json!({"kind": "signature"});
    let basic = json!({"kind": "basic", "username": "u", "password": "p4ssword"});
    for (auth, headers, field, says) in [
        (
            signature.clone(),
            json!([{"name": "X-Ok", "value": "1"}, {"name": "Host", "value": "evil"}]),
            "headers[1].name",
            "'Host' is set by Herald",
        ),
        (
            signature.clone(),
            json!([{"name": "Webhook-Id", "value": "x"}]),
            "headers[0].name",
            "cannot be replaced",
        ),
        (
            basic.clone(),
            json!([{"name": "Authorization", "value": "Bearer x"}]),
            "headers[0].name",
            "Basic Auth credentials",
        ),
        (
            signature.clone(),
            json!([{"name": "X-Token", "value": "", "secret": true}]),
            "headers[0].value",
            "Enter a value for 'X-Token'",
        ),
        (
            signature.clone(),
            json!([{"name": "X-A", "value": "1"}, {"name": "x-a", "value": "2"}]),
            "headers[1].name",
            "listed twice",
        ),
    ] {
        let (status, body) = app.post("/api/v1/webhooks", base(auth, headers)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["field"], field, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    let (_, list) = app.get("/api/v1/webhooks").await;
    assert!(
        !list.to_string().contains("Refused"),
        "nothing was half-written: {list}"
    );
    // Authorization is free when the auth method does not use it.
    let (status, body) = app
        .post(
            "/api/v1/webhooks",
            base(
                signature,
                json!([{"name": "Authorization", "value": "Bearer gateway", "secret": true}]),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.stop().await;
}

on_both_backends!(
    custom_headers_arrive_masked_redacted_and_sealed,
    headers_herald_sets_are_refused_by_row
);
