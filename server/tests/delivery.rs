//! The delivery engine end to end: events posted to the real API are delivered over real HTTP to
//! receivers on 127.0.0.1, on SQLite and on PostgreSQL.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

fn hook(name: &str, url: &str, extra: Value) -> Value {
    let mut body = json!({
        "name": name,
        "url": url,
        "event_types": ["points.awarded", "member.tier_changed"],
        "retry": {"attempts": 2, "delay_seconds": 1, "backoff": "fixed", "timeout_seconds": 2}
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    body
}

async fn event(app: &TestApp, event_type: &str, data: Value) -> Value {
    let (status, json) = app
        .post(
            "/api/v1/events",
            json!({"event_type": event_type, "data": data}),
        )
        .await;
    assert_eq!(status, 202, "{json}");
    json
}

async fn delivers_signed_events_verifiable_by_the_official_library(backend: Backend) {
    let Some(app) = spawn_app(backend, "delivers_signed").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    let w = app.create_webhook(hook("Signed", &rx.url, json!({}))).await;
    let secret = w["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));

    let accepted = event(
        &app,
        "points.awarded",
        json!({"user_id": "u1", "points": 50}),
    )
    .await;
    assert_eq!(accepted["deliveries"], 1);
    let got = rx.wait_for(1, WAIT).await;
    let r = &got[0];
    assert_eq!(r.header("content-type"), "application/json");
    assert!(r.header("user-agent").starts_with("Herald/"));
    assert_eq!(
        r.header("webhook-id"),
        accepted["event_id"].as_str().unwrap()
    );
    let wh = standardwebhooks::Webhook::new(&secret).unwrap();
    let mut headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        headers.insert(name, r.header(name).parse().unwrap());
    }
    wh.verify(&r.body, &headers).expect("signature verifies");
    let body = r.json();
    assert_eq!(body["event_type"], "points.awarded");
    assert_eq!(body["schema_version"], "1.0.0");
    assert_eq!(body["data"], json!({"user_id": "u1", "points": 50}));

    // The audit log and the webhook's counters record the success.
    let id = w["id"].as_str().unwrap();
    let attempts = eventually(WAIT, || async {
        let a = app.attempts(id).await;
        (!a.is_empty()).then_some(a)
    })
    .await
    .unwrap();
    assert_eq!(attempts[0]["status"], "success");
    assert_eq!(attempts[0]["trigger"], "event");
    assert_eq!(attempts[0]["status_code"], 200);
    // The search by event id finds the try (indexed under the event's acceptance time).
    let found = app
        .search_attempts(accepted["event_id"].as_str().unwrap())
        .await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["id"], attempts[0]["id"]);
    let (_, detail) = app
        .get(&format!(
            "/api/v1/attempts/{}",
            attempts[0]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        detail["request"]["body"].as_str().unwrap().as_bytes(),
        &r.body[..]
    );
    assert_eq!(detail["response"]["body"], "ok");
    let (_, view) = app.get(&format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(view["success_rate"], 100.0);
    assert_eq!(view["status"], "active");
    assert!(view.get("secret").is_none(), "secrets are not in reads");
    app.stop().await;
}

async fn retries_after_failure_with_the_configured_delay(backend: Backend) {
    let Some(app) = spawn_app(backend, "retries").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    rx.script([Reply::Status(500)]);
    let w = app.create_webhook(hook("Flaky", &rx.url, json!({}))).await;
    event(&app, "points.awarded", json!({"n": 1})).await;
    let got = rx.wait_for(2, WAIT).await;
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_millis(950),
        "retry came after {gap:?}"
    );
    assert_eq!(
        got[0].header("webhook-id"),
        got[1].header("webhook-id"),
        "webhook-id is stable"
    );
    let id = w["id"].as_str().unwrap();
    let attempts = eventually(WAIT, || async {
        let a = app.attempts(id).await;
        (a.len() == 2).then_some(a)
    })
    .await
    .unwrap();
    assert_eq!(
        (
            attempts[0]["status"].as_str(),
            attempts[0]["error"].as_str()
        ),
        (Some("failure"), Some("HTTP 500"))
    );
    assert_eq!(
        (
            attempts[1]["status"].as_str(),
            attempts[1]["trigger"].as_str()
        ),
        (Some("success"), Some("retry"))
    );
    assert_eq!(attempts[1]["attempt"], 2);
    // Both tries show the body they sent, which is stored once (in the event), not per try.
    let sent = String::from_utf8(got[0].body.to_vec()).unwrap();
    for a in &attempts {
        let (_, detail) = app
            .get(&format!("/api/v1/attempts/{}", a["id"].as_str().unwrap()))
            .await;
        assert_eq!(detail["request"]["body"], sent.as_str(), "{detail}");
    }
    let copies = "SELECT COUNT(*) FROM attempts WHERE request_body <> ''";
    let copies: i64 = if app.database_url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
        sqlx::query_scalar(copies).fetch_one(&pool).await.unwrap()
    } else {
        let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
        sqlx::query_scalar(copies).fetch_one(&pool).await.unwrap()
    };
    assert_eq!(copies, 0, "attempts keep no copy of the event body");
    let (_, view) = app.get(&format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(view["success_rate"], 50.0);
    assert_eq!(view["status"], "active");
    app.stop().await;
}

async fn timeouts_and_refused_connections_fail_then_dead_letter_and_replay(backend: Backend) {
    let Some(app) = spawn_app(backend, "timeouts").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    rx.script([Reply::Delay(Duration::from_millis(2500), 200)]);
    let slow = app
        .create_webhook(hook("Slow", &rx.url, json!({"retry": {"attempts": 0, "delay_seconds": 1, "backoff": "fixed", "timeout_seconds": 1}})))
        .await;
    let closed = RefusingPort::new();
    let dead = app
        .create_webhook(json!({"name": "Dead", "url": format!("http://{}/hook", closed.addr), "event_types": ["reward.redeemed"],
            "retry": {"attempts": 1, "delay_seconds": 1, "backoff": "fixed", "timeout_seconds": 1}}))
        .await;
    event(&app, "points.awarded", json!({})).await;
    event(&app, "reward.redeemed", json!({})).await;

    let slow_id = slow["id"].as_str().unwrap();
    let a = eventually(WAIT, || async {
        app.attempts(slow_id).await.into_iter().next()
    })
    .await
    .unwrap();
    assert_eq!(a["status"], "failure");
    assert_eq!(a["error"], "timed out after 1 s");
    let dead_id = dead["id"].as_str().unwrap();
    let tries = eventually(WAIT, || async {
        let a = app.attempts(dead_id).await;
        (a.len() == 2).then_some(a)
    })
    .await
    .unwrap();
    let refused = format!(
        "connection refused at {}: nothing is listening there",
        closed.addr
    );
    assert!(
        tries[0]["error"].as_str().unwrap().starts_with(&refused),
        "{}",
        tries[0]["error"]
    );

    // Both are dead letters now.
    let failed = eventually(WAIT, || async {
        let (_, list) = app.get("/api/v1/deliveries?status=failed").await;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        (items.len() == 2).then_some(items)
    })
    .await
    .expect("two dead letters");
    let slow_delivery = failed.iter().find(|d| d["webhook_id"] == slow_id).unwrap();
    assert_eq!(slow_delivery["tries"], 1);
    // A page at a time: the cursor of the first page of one leads to the other, the last.
    let (status, first) = app.get("/api/v1/deliveries?status=failed&limit=1").await;
    assert_eq!(status, 200);
    assert_eq!(first["items"][0]["id"], failed[0]["id"]);
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let (status, second) = app
        .get(&format!(
            "/api/v1/deliveries?status=failed&limit=1&cursor={cursor}"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_eq!(second["items"][0]["id"], failed[1]["id"]);
    assert!(second["next_cursor"].is_null(), "{second}");
    let (status, refused) = app.get("/api/v1/deliveries?cursor=yesterday").await;
    assert_eq!(status, 422);
    assert_eq!(refused["error"]["field"], "cursor", "{refused}");
    let (status, refused) = app.get("/api/v1/deliveries?status=lost").await;
    assert_eq!(status, 422);
    assert_eq!(refused["error"]["field"], "status", "{refused}");
    let (status, every) = app.get("/api/v1/deliveries?status=all").await;
    assert_eq!(status, 200);
    assert_eq!(every["items"].as_array().unwrap().len(), 2, "{every}");

    // Replay: the receiver answers at once this time.
    let (status, _) = app
        .post(
            &format!(
                "/api/v1/deliveries/{}/replay",
                slow_delivery["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(status, 202);
    let replayed = eventually(WAIT, || async {
        app.attempts(slow_id)
            .await
            .into_iter()
            .find(|a| a["trigger"] == "replay")
    })
    .await
    .unwrap();
    assert_eq!(replayed["status"], "success");
    let (status, _) = app
        .post(
            &format!(
                "/api/v1/deliveries/{}/replay",
                "dlv_00000000000000000000000000000000"
            ),
            json!({}),
        )
        .await;
    assert_eq!(status, 404);
    app.stop().await;
}

async fn sandbox_records_but_sends_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend, "sandbox").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    let w = app
        .create_webhook(hook("Sandbox", &rx.url, json!({"sandbox": true})))
        .await;
    event(&app, "points.awarded", json!({"x": 1})).await;
    let id = w["id"].as_str().unwrap();
    let a = eventually(WAIT, || async { app.attempts(id).await.into_iter().next() })
        .await
        .unwrap();
    assert_eq!(a["status"], "sandboxed");
    let (_, detail) = app
        .get(&format!("/api/v1/attempts/{}", a["id"].as_str().unwrap()))
        .await;
    assert!(detail["request"]["headers"]
        .to_string()
        .contains("webhook-signature"));
    assert!(rx.received().is_empty());
    let (_, view) = app.get(&format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(view["total_attempts"], 0, "sandboxed attempts are not live");
    app.stop().await;
}

async fn event_ids_are_idempotent(backend: Backend) {
    let Some(app) = spawn_app(backend, "idempotent").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    app.create_webhook(hook("Once", &rx.url, json!({}))).await;
    let id = uuid::Uuid::new_v4().to_string();
    let body = json!({"event_type": "points.awarded", "data": {}, "event_id": id});
    let (first, a) = app.post("/api/v1/events", body.clone()).await;
    let (second, b) = app.post("/api/v1/events", body).await;
    assert_eq!((first.as_u16(), second.as_u16()), (202, 200));
    assert_eq!(a["event_id"], id);
    assert_eq!(b["duplicate"], true);
    rx.wait_for(1, WAIT).await;
    // One delivery stored for the event, so one request (read, not waited for).
    let (_, all) = app.get("/api/v1/deliveries?status=all").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1, "{all}");
    assert_eq!(rx.received().len(), 1);
    app.stop().await;
}

async fn subscriptions_and_filters_choose_the_receivers(backend: Backend) {
    let Some(app) = spawn_app(backend, "filters").await else {
        return;
    };
    let (gold, all, other) = (
        TestReceiver::start().await,
        TestReceiver::start().await,
        TestReceiver::start().await,
    );
    app.create_webhook(hook(
        "Gold only",
        &gold.url,
        json!({"filter": [{"path": "data.tier", "op": "eq", "value": "Gold"}]}),
    ))
    .await;
    app.create_webhook(hook("All tiers", &all.url, json!({})))
        .await;
    app.create_webhook(json!({"name": "Users", "url": other.url, "event_types": ["user.created"]}))
        .await;
    let silver = event(&app, "member.tier_changed", json!({"tier": "Silver"})).await;
    let goldev = event(&app, "member.tier_changed", json!({"tier": "Gold"})).await;
    assert_eq!(
        (silver["deliveries"].as_u64(), goldev["deliveries"].as_u64()),
        (Some(1), Some(2))
    );
    all.wait_for(2, WAIT).await;
    let g = gold.wait_for(1, WAIT).await;
    assert_eq!(g[0].json()["data"]["tier"], "Gold");
    assert!(other.received().is_empty());
    app.stop().await;
}

async fn jwt_and_basic_auth_reach_the_receiver(backend: Backend) {
    let Some(app) = spawn_app(backend, "auth_kinds").await else {
        return;
    };
    let (jrx, brx) = (TestReceiver::start().await, TestReceiver::start().await);
    let j = app
        .create_webhook(hook("Jwt", &jrx.url, json!({"auth": {"kind": "jwt"}})))
        .await;
    app.create_webhook(hook(
        "Basic",
        &brx.url,
        json!({"auth": {"kind": "basic", "username": "herald", "password": "s3cret pw"}}),
    ))
    .await;
    let accepted = event(&app, "points.awarded", json!({})).await;
    let got = jrx.wait_for(1, WAIT).await;
    let token = got[0]
        .header("authorization")
        .strip_prefix("Bearer ")
        .unwrap()
        .to_owned();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.set_issuer(&["herald"]);
    let claims = jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_secret(j["secret"].as_str().unwrap().as_bytes()),
        &v,
    )
    .expect("JWT verifies with the secret string")
    .claims;
    assert_eq!(claims["sub"], accepted["event_id"]);
    use sha2::Digest;
    let body_hash: String = sha2::Sha256::digest(&got[0].body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(claims["body_sha256"], body_hash);
    let b = brx.wait_for(1, WAIT).await;
    assert_eq!(
        b[0].header("authorization"),
        "Basic aGVyYWxkOnMzY3JldCBwdw=="
    );
    // The audit log never shows credentials.
    let jid = j["id"].as_str().unwrap();
    let a = eventually(WAIT, || async {
        app.attempts(jid).await.into_iter().next()
    })
    .await
    .unwrap();
    let (_, detail) = app
        .get(&format!("/api/v1/attempts/{}", a["id"].as_str().unwrap()))
        .await;
    assert!(detail.to_string().contains("Bearer [redacted]"));
    assert!(!detail.to_string().contains(&token));
    app.stop().await;
}

/// A receiver written against the loyalty platform's own snippet: it recomputes the hex
/// HMAC-SHA256 of the raw body with the secret and compares it to `X-Incentable-Signature`
/// (here as the snippet does it: `createHmac('sha256', secret).update(rawBody).digest('hex')`,
/// compared in constant time). Also the envelope's top-level member and timestamp.
async fn hmac_header_webhooks_verify_like_the_platform_snippet(backend: Backend) {
    let Some(app) = spawn_app(backend, "hmac_header").await else {
        return;
    };
    let (status, refused) = app
        .post(
            "/api/v1/webhooks",
            hook(
                "Reserved",
                "http://127.0.0.1:9/x",
                json!({"auth": {"kind": "hmac", "header": "webhook-signature"}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["field"], "auth.header", "{refused}");
    let rx = TestReceiver::start().await;
    let mut body = hook(
        "Incentable",
        &rx.url,
        json!({"auth": {"kind": "hmac", "header": "X-Incentable-Signature"}}),
    );
    body["event_types"] = json!(["member.created"]);
    let created = app.create_webhook(body).await;
    assert_eq!(created["auth"]["header"], "X-Incentable-Signature");
    let secret = created["secret"].as_str().unwrap().to_owned();
    event(
        &app,
        "member.created",
        json!({"member_id": "m_77", "email": "g@example.com"}),
    )
    .await;
    let got = rx.wait_for(1, WAIT).await;
    let signature = got[0].header("x-incentable-signature");
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&got[0].body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(signature.len(), 64);
    let mut check = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    check.update(&got[0].body);
    let given: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&signature[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    check
        .verify_slice(&given)
        .expect("constant-time check passes");
    assert_eq!(signature, expected);
    let envelope = got[0].json();
    assert_eq!(envelope["member_id"], "m_77");
    assert_eq!(envelope["timestamp"], envelope["event_timestamp"]);
    assert_eq!(envelope["event_type"], "member.created");
    // A tampered body does not verify.
    let mut tampered = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    tampered.update(&[&got[0].body[..], b" "].concat());
    assert!(tampered.verify_slice(&given).is_err());
    app.stop().await;
}

async fn retry_after_is_honoured(backend: Backend) {
    let Some(app) = spawn_app(backend, "retry_after").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    rx.script([Reply::StatusWithRetryAfter(429, 2)]);
    app.create_webhook(hook("Busy", &rx.url, json!({}))).await;
    event(&app, "points.awarded", json!({})).await;
    let got = rx.wait_for(2, WAIT).await;
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_millis(1900),
        "Retry-After: 2 but retried after {gap:?}"
    );
    app.stop().await;
}

async fn send_test_verify_and_rotation(backend: Backend) {
    let Some(app) = spawn_app(backend, "send_test").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    let w = app.create_webhook(hook("Tested", &rx.url, json!({}))).await;
    let id = w["id"].as_str().unwrap();
    let (status, outcome) = app
        .post(
            &format!("/api/v1/webhooks/{id}/test"),
            json!({"event_type": "reward.redeemed"}),
        )
        .await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["success"], true);
    assert_eq!(outcome["status_code"], 200);
    assert_eq!(outcome["response_body"], "ok");
    // A name given must be a catalog one: an empty or unknown one is refused, nothing sent.
    for name in ["", "  ", "nope.nothing"] {
        let (status, body) = app
            .post(
                &format!("/api/v1/webhooks/{id}/test"),
                json!({ "event_type": name }),
            )
            .await;
        assert_eq!(status, 422, "{name:?}: {body}");
        assert_eq!(body["error"]["field"], "event_type", "{name:?}: {body}");
    }
    let got = rx.received();
    assert_eq!(got.len(), 1, "only the first test was sent");
    assert_eq!(got[0].json()["event_type"], "reward.redeemed");
    assert_eq!(
        got[0].json()["data"]["coupon_code"],
        "COFFEE-8F2K",
        "the catalog example is sent"
    );
    let (_, verify) = app
        .post(&format!("/api/v1/webhooks/{id}/verify"), json!({}))
        .await;
    assert_eq!(verify["verified"], true);
    assert_eq!(
        rx.received()[1].json()["event_type"],
        "webhook.verification"
    );
    // Tests and verifications are in the audit log but do not move the figures.
    let a = app.attempts(id).await;
    assert_eq!(
        a.iter()
            .map(|a| a["trigger"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["test", "verify"]
    );
    // A test send's event is not stored; the search by its event id still finds the try.
    let found = app
        .search_attempts(a[0]["event_id"].as_str().unwrap())
        .await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["id"], a[0]["id"]);
    let (_, view) = app.get(&format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(view["total_attempts"], 0);

    // Reveal and rotate: after rotation both secrets sign.
    let (_, revealed) = app.get(&format!("/api/v1/webhooks/{id}/secret")).await;
    assert_eq!(revealed["secret"], w["secret"]);
    let (_, rotated) = app
        .post(&format!("/api/v1/webhooks/{id}/rotate-secret"), json!({}))
        .await;
    let new_secret = rotated["secret"].as_str().unwrap();
    assert_ne!(new_secret, w["secret"].as_str().unwrap());
    event(&app, "points.awarded", json!({})).await;
    let got = rx.wait_for(3, WAIT).await;
    let sig = got[2].header("webhook-signature");
    assert_eq!(sig.split(' ').count(), 2, "{sig}");
    for secret in [new_secret, w["secret"].as_str().unwrap()] {
        let wh = standardwebhooks::Webhook::new(secret).unwrap();
        let mut h = http::HeaderMap::new();
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            h.insert(name, got[2].header(name).parse().unwrap());
        }
        wh.verify(&got[2].body, &h).unwrap();
    }
    app.stop().await;
}

/// Six events at once to a webhook limited to one per second: all arrive about a second apart,
/// in the order they were accepted, and the requeues that hold the later ones back never push
/// the schedule out (this used to deliver two in 15 s). Other webhooks are not held up.
async fn rate_limits_space_deliveries(backend: Backend) {
    let Some(app) = spawn_app(backend, "rate_limit").await else {
        return;
    };
    let (limited, free) = (TestReceiver::start().await, TestReceiver::start().await);
    app.create_webhook(hook(
        "Limited",
        &limited.url,
        json!({"rate_limit_per_second": 1}),
    ))
    .await;
    app.create_webhook(hook("Free", &free.url, json!({}))).await;
    let mut accepted = vec![];
    for _ in 0..6 {
        accepted.push(event(&app, "points.awarded", json!({})).await["event_id"].clone());
    }
    // The unlimited webhook gets everything well before the limited one can.
    free.wait_for(6, WAIT).await;
    let got = limited.wait_for(6, WAIT).await;
    let span = got[5].at - got[0].at;
    assert!(
        span >= Duration::from_millis(4900) && span < Duration::from_secs(8),
        "6 deliveries at 1/s took {span:?}"
    );
    let order: Vec<Value> = got.iter().map(|r| json!(r.header("webhook-id"))).collect();
    assert_eq!(order, accepted, "in the order they were accepted");
    app.stop().await;
}

/// Endpoints that never answer hold at most their slow lane (2 requests each): with 8 request
/// slots and three hanging webhooks with 10 events queued each, a healthy webhook's event still
/// goes out at once, long before the hanging requests time out (30 s). Without per-webhook
/// lanes the hanging deliveries took all 8 slots for the whole timeout.
async fn hanging_endpoints_leave_slots_for_healthy_ones(backend: Backend) {
    let Some((app, silent)) = eight_slots_and_a_silent_endpoint(backend, "hanging").await else {
        return;
    };
    let retry =
        json!({"attempts": 1, "delay_seconds": 1, "backoff": "fixed", "timeout_seconds": 30});
    hanging_webhooks(&app, 3, &silent, &retry).await;
    for i in 0..10 {
        let (status, _) = app
            .post(
                "/api/v1/events",
                json!({"event_type": "points.awarded", "data": {"i": i}}),
            )
            .await;
        assert_eq!(status, 202);
    }
    let rx = TestReceiver::start().await;
    app.create_webhook(json!({"name": "Healthy", "url": rx.url,
        "event_types": ["reward.redeemed"], "retry": retry}))
        .await;
    let (status, _) = app
        .post(
            "/api/v1/events",
            json!({"event_type": "reward.redeemed", "data": {}}),
        )
        .await;
    assert_eq!(status, 202);
    rx.wait_for(1, Duration::from_secs(10)).await;
    drop(silent);
    app.stop().await;
}

/// Herald with 8 request slots on a fresh database, and an endpoint that never answers.
async fn eight_slots_and_a_silent_endpoint(
    backend: Backend,
    test: &str,
) -> Option<(TestApp, Silent)> {
    let (url, dir) = database(backend, test).await?;
    let mut args = serve_args(&url);
    args.concurrency = 8;
    Some((spawn_with(args, dir).await, Silent::start().await))
}

/// An endpoint on 127.0.0.1 that accepts connections and never answers (the sockets stay open
/// until it is dropped), counting them.
struct Silent {
    url: String,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Silent {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                open.push(socket);
            }
        });
        Self {
            url,
            accepted,
            task,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `n` webhooks named "Hanging 0", "Hanging 1", … for `points.awarded`, all sent to `silent`.
async fn hanging_webhooks(app: &TestApp, n: usize, silent: &Silent, retry: &Value) {
    for i in 0..n {
        app.create_webhook(json!({"name": format!("Hanging {i}"), "url": silent.url,
            "event_types": ["points.awarded"], "retry": retry}))
            .await;
    }
}

/// Webhooks known to hang hold half the request slots at most, however many of them there are:
/// six webhooks whose endpoint never answers (1 s timeout, 10 events each) and 8 slots. Once
/// each has timed out once, a new webhook's event goes out while their 60 deliveries are still
/// being tried, four at a time. Before the crowd mark (see `lanes`), their two slots each took
/// all 8, and the new webhook's event went out only behind 48 of them.
async fn webhooks_known_to_hang_hold_half_the_slots_at_most(backend: Backend) {
    let Some((app, silent)) = eight_slots_and_a_silent_endpoint(backend, "crowd").await else {
        return;
    };
    let retry =
        json!({"attempts": 0, "delay_seconds": 1, "backoff": "fixed", "timeout_seconds": 1});
    hanging_webhooks(&app, 6, &silent, &retry).await;
    for i in 0..10 {
        event(&app, "points.awarded", json!({"i": i})).await;
    }
    // Every hanging webhook has timed out once: each is now known to hang.
    let known = eventually(WAIT, || async {
        let failed = app.search_attempts("Hanging").await;
        let mut names: Vec<&str> = failed
            .iter()
            .filter_map(|a| a["webhook_name"].as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        (names.len() == 6).then_some(())
    })
    .await;
    assert!(known.is_some(), "each hanging webhook timed out once");
    let rx = TestReceiver::start().await;
    app.create_webhook(json!({"name": "Healthy", "url": rx.url,
        "event_types": ["reward.redeemed"], "retry": retry}))
        .await;
    event(&app, "reward.redeemed", json!({})).await;
    rx.wait_for(1, WAIT).await;
    let tried = silent.accepted();
    assert!(
        tried <= 30,
        "the healthy webhook's event went out behind {tried} of the 60 hanging deliveries"
    );
    drop(silent);
    app.stop().await;
}

/// An endpoint that holds every request until `open` is called, counting arrivals.
struct Gate {
    url: String,
    arrived: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    open: tokio::sync::watch::Sender<bool>,
}

impl Gate {
    async fn start() -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let arrived = std::sync::Arc::new(AtomicUsize::new(0));
        let (open, opened) = tokio::sync::watch::channel(false);
        let counter = arrived.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let (counter, mut opened) = (counter.clone(), opened.clone());
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let _ = opened.wait_for(|o| *o).await;
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, arrived, open }
    }

    fn arrived(&self) -> usize {
        self.arrived.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn wait_for(&self, n: usize) {
        let got = eventually(WAIT, || async { (self.arrived() >= n).then_some(()) }).await;
        assert!(got.is_some(), "{} of {n} requests arrived", self.arrived());
    }
}

/// An engine on `url` (default settings, private targets allowed) whose dispatcher's idle poll
/// is an hour, so a lost wake-up shows as work that never goes out; and an admin of its program.
async fn engine_polling_hourly(url: &str) -> (herald::delivery::Engine, herald::auth::Actor) {
    let store = herald::store::connect(url).await.unwrap();
    let sealer = herald::auth::seal::Sealer::from_key_text(SECRET_KEY).unwrap();
    let config = herald::delivery::EngineConfig {
        guard: herald::delivery::guard::GuardPolicy {
            allow_private: true,
            require_https: false,
        },
        idle_poll: Duration::from_secs(3600),
        ..Default::default()
    };
    let engine = herald::delivery::Engine::new(store, sealer, config);
    let admin = herald::auth::Actor::command_line(engine.store().default_program().await.unwrap());
    (engine, admin)
}

/// A webhook whose request slots are all taken is left out of claims, and ingest stops ringing
/// the dispatcher for it: work for another webhook still goes out at once, and the held
/// webhook's queued deliveries go out as soon as its requests finish. The dispatcher's idle
/// poll is an hour, so no timer would cover a lost wake-up.
async fn work_for_a_held_back_webhook_is_not_forgotten(backend: Backend) {
    let Some((url, _dir)) = database(backend, "held_back").await else {
        return;
    };
    let (engine, admin) = engine_polling_hourly(&url).await;
    let gate = Gate::start().await;
    let rx = TestReceiver::start().await;
    let retry =
        json!({"attempts": 1, "delay_seconds": 1, "backoff": "fixed", "timeout_seconds": 30});
    for (name, url, event_type) in [
        ("Held", &gate.url, "points.awarded"),
        ("Free", &rx.url, "reward.redeemed"),
    ] {
        let draft: herald::domain::settings::WebhookDraft = serde_json::from_value(
            json!({"name": name, "url": url, "event_types": [event_type], "retry": retry}),
        )
        .unwrap();
        engine.create_webhook(&admin, &draft).await.unwrap();
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let dispatcher = tokio::spawn(engine.clone().run(stopped));
    let ingest = |event_type: &'static str| {
        let (engine, program) = (engine.clone(), admin.program.clone());
        async move {
            let event = herald::domain::event::NewEvent::parse(
                event_type,
                json!({}),
                None,
                None,
                chrono::Utc::now(),
            )
            .unwrap();
            engine.ingest(&program, event).await.unwrap();
        }
    };
    // A new webhook has two request slots: two requests held at the gate fill them.
    ingest("points.awarded").await;
    ingest("points.awarded").await;
    gate.wait_for(2).await;
    // Queued behind them; after the first of these the dispatcher leaves the webhook out.
    for _ in 0..6 {
        ingest("points.awarded").await;
    }
    ingest("reward.redeemed").await;
    rx.wait_for(1, WAIT).await;
    assert_eq!(gate.arrived(), 2, "the held webhook got no third request");
    // Its requests finish: everything queued for it goes out, without any timer.
    gate.open.send(true).unwrap();
    gate.wait_for(8).await;
    stop.send(true).unwrap();
    dispatcher.await.unwrap();
}

/// A burst from many senders at once to one new webhook, with deliveries skipping the queue
/// (express, the default) and falling back to it as the webhook's slots fill: every event
/// arrives, and none waits for the idle poll (an hour here). Seen before the fix: a webhook left
/// out of a claim because ingest's handed-over deliveries were waiting for it, whose share grew
/// meanwhile, was never rung again, and its queued deliveries waited for the poll.
async fn a_burst_never_waits_for_the_idle_poll(backend: Backend) {
    let Some((url, _dir)) = database(backend, "burst").await else {
        return;
    };
    let (engine, admin) = engine_polling_hourly(&url).await;
    assert!(engine.config().express, "express dispatch is the default");
    let rx = TestReceiver::start().await;
    let draft: herald::domain::settings::WebhookDraft = serde_json::from_value(
        json!({"name": "Burst", "url": rx.url, "event_types": ["points.awarded"]}),
    )
    .unwrap();
    engine.create_webhook(&admin, &draft).await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let dispatcher = tokio::spawn(engine.clone().run(stopped));
    const SENDERS: usize = 16;
    const EACH: usize = 40;
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..SENDERS {
        let (engine, program) = (engine.clone(), admin.program.clone());
        senders.spawn(async move {
            for _ in 0..EACH {
                let event = herald::domain::event::NewEvent::parse(
                    "points.awarded",
                    json!({"points": 1}),
                    None,
                    None,
                    chrono::Utc::now(),
                )
                .unwrap();
                engine.ingest(&program, event).await.unwrap();
            }
        });
    }
    while senders.join_next().await.is_some() {}
    let got = rx.wait_for(SENDERS * EACH, WAIT).await;
    let ids: std::collections::HashSet<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), SENDERS * EACH, "every event arrived, once each");
    stop.send(true).unwrap();
    dispatcher.await.unwrap();
}

on_both_backends!(
    a_burst_never_waits_for_the_idle_poll,
    work_for_a_held_back_webhook_is_not_forgotten,
    hanging_endpoints_leave_slots_for_healthy_ones,
    webhooks_known_to_hang_hold_half_the_slots_at_most,
    delivers_signed_events_verifiable_by_the_official_library,
    retries_after_failure_with_the_configured_delay,
    timeouts_and_refused_connections_fail_then_dead_letter_and_replay,
    sandbox_records_but_sends_nothing,
    event_ids_are_idempotent,
    subscriptions_and_filters_choose_the_receivers,
    jwt_and_basic_auth_reach_the_receiver,
    hmac_header_webhooks_verify_like_the_platform_snippet,
    retry_after_is_honoured,
    send_test_verify_and_rotation,
    rate_limits_space_deliveries,
);

/// Another process's ingest wakes this process's dispatcher through `LISTEN/NOTIFY`. The
/// dispatcher's idle poll is an hour here, so nothing but a wake-up delivers: no timing in the
/// test. The first event is found by the dispatcher's first claim or by its notification; once
/// it has arrived the dispatcher is listening (it listens before it claims) and waiting again, so
/// the second event, stored by the other process, comes only through the notification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_notify_wakes_other_processes() {
    let Some((url, _dir)) = database(Backend::Postgres, "notify").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    let (listening, _) = engine_polling_hourly(&url).await;
    // The other process only stores events: it runs no dispatcher.
    let (other, admin) = engine_polling_hourly(&url).await;
    let program = admin.program.clone();
    let draft: herald::domain::settings::WebhookDraft =
        serde_json::from_value(hook("Shared", &rx.url, json!({}))).unwrap();
    other.create_webhook(&admin, &draft).await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let dispatcher = tokio::spawn(listening.clone().run(stopped));

    let post = || async {
        let event = herald::domain::event::NewEvent::parse(
            "points.awarded",
            json!({}),
            None,
            None,
            chrono::Utc::now(),
        )
        .unwrap();
        assert_eq!(other.ingest(&program, event).await.unwrap().deliveries, 1);
    };
    post().await;
    rx.wait_for(1, WAIT).await;
    post().await;
    let received = rx.wait_for(2, WAIT).await;
    assert_eq!(
        received.len(),
        2,
        "the notification did not wake the dispatcher (its idle poll is an hour)"
    );
    stop.send(true).unwrap();
    dispatcher.await.unwrap();
}
