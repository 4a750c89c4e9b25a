//! Per-member ordering (opt-in per webhook, both backends): deliveries with the same ordering
//! value go out one at a time in acceptance order, the next waiting until the previous succeeded
//! or was dead-lettered; deliveries with another value, or none, are not held up. Stepped with a
//! manual clock, then under load through the whole application with a receiver that records
//! arrival order and fails some first tries.

use crate::helpers::*;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use herald::domain::delivery::DeliveryStatus;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn points(member: Option<&str>, n: i64) -> Value {
    match member {
        Some(m) => json!({"user_id": "u_1", "member_id": m, "points": n}),
        None => json!({"user_id": "u_1", "points": n}),
    }
}

/// The `points` of each request the receiver got, in arrival order.
fn arrivals(rx: &TestReceiver) -> Vec<i64> {
    rx.received()
        .iter()
        .map(|r| r.json()["data"]["points"].as_i64().unwrap())
        .collect()
}

async fn the_next_of_a_member_waits_for_the_one_before(backend: Backend) {
    let Some(s) = setup(backend, "ordering steps").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    let hook = s
        .webhook(json!({
            "name": "Ordered", "url": rx.url, "event_types": ["points.awarded"],
            "ordering_key": "data.member_id",
            "retry": {"attempts": 1, "delay_seconds": 60, "backoff": "fixed", "timeout_seconds": 5},
        }))
        .await;

    // m_1's first event fails once and waits 60 s for its retry.
    rx.script([Reply::Status(500)]);
    s.post("points.awarded", points(Some("m_1"), 1)).await;
    assert_eq!(s.engine.run_once().await.unwrap(), 1);

    // m_1's second waits behind it; m_2's and an event with no member go at once.
    s.post("points.awarded", points(Some("m_1"), 2)).await;
    s.post("points.awarded", points(Some("m_2"), 3)).await;
    s.post("points.awarded", points(None, 4)).await;
    assert_eq!(s.engine.run_once().await.unwrap(), 2);
    assert_eq!(
        s.engine.run_once().await.unwrap(),
        0,
        "m_1's second is held"
    );
    let mut got = arrivals(&rx);
    got[1..].sort();
    assert_eq!(got, [1, 3, 4]);

    // The retry is due: it goes first, and only then the second.
    s.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(s.engine.run_once().await.unwrap(), 1);
    assert_eq!(s.engine.run_once().await.unwrap(), 1);
    // (m_2's and the member-less one went out together, in either order.)
    let mut got = arrivals(&rx);
    got[1..3].sort();
    assert_eq!(got, [1, 3, 4, 1, 2]);

    // A dead letter releases the next too: m_3's first fails both tries, its second follows.
    rx.script([Reply::Status(500), Reply::Status(500)]);
    s.post("points.awarded", points(Some("m_3"), 5)).await;
    s.post("points.awarded", points(Some("m_3"), 6)).await;
    assert_eq!(s.engine.run_once().await.unwrap(), 1);
    s.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(s.engine.run_once().await.unwrap(), 1);
    assert_eq!(s.engine.run_once().await.unwrap(), 1);
    assert_eq!(arrivals(&rx)[5..], [5, 5, 6]);
    let failed = s.deliveries(&hook, Some(DeliveryStatus::Failed)).await;
    assert_eq!(failed.len(), 1);
    assert_eq!(
        s.deliveries(&hook, Some(DeliveryStatus::Succeeded))
            .await
            .len(),
        5
    );
}

/// What the ordering receiver saw: (member, seq, status answered), in arrival order.
#[derive(Default)]
struct Log {
    seen: Vec<(String, i64, u16)>,
    failed_once: HashSet<(String, i64)>,
}

/// Answers 500 to the first try of every third event of each member, 200 otherwise.
async fn record(State(log): State<Arc<Mutex<Log>>>, Json(body): Json<Value>) -> StatusCode {
    let member = body["data"]["member_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let seq = body["data"]["points"].as_i64().unwrap_or_default();
    let mut log = log.lock().unwrap();
    let status = if seq % 3 == 0 && log.failed_once.insert((member.clone(), seq)) {
        500
    } else {
        200
    };
    log.seen.push((member, seq, status));
    StatusCode::from_u16(status).unwrap()
}

async fn each_member_arrives_in_acceptance_order_under_load(backend: Backend) {
    let Some(app) = spawn_app(backend, "ordering load").await else {
        return;
    };
    let log = Arc::new(Mutex::new(Log::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let receiver = Router::new()
        .route("/hook", post(record))
        .with_state(log.clone());
    tokio::spawn(async move { axum::serve(listener, receiver).await });
    app.create_webhook(json!({
        "name": "Ordered", "url": url, "event_types": ["points.awarded"],
        "ordering_key": "data.member_id",
        "retry": {"attempts": 3, "delay_seconds": 1, "backoff": "schedule", "schedule": [0, 0, 0], "timeout_seconds": 5},
    }))
    .await;

    // Four members at once, each one's events one after another (so acceptance order is known).
    const MEMBERS: usize = 4;
    const EACH: i64 = 30;
    let senders: Vec<_> = (0..MEMBERS)
        .map(|m| {
            let (base, key) = (app.base.clone(), app.key.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for seq in 1..=EACH {
                    let r = client
                        .post(format!("{base}/api/v1/events"))
                        .bearer_auth(&key)
                        .json(&json!({"event_type": "points.awarded",
                            "data": {"user_id": format!("u_{m}"), "member_id": format!("m_{m}"), "points": seq}}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 202);
                }
            })
        })
        .collect();
    for s in senders {
        s.await.unwrap();
    }
    let total = MEMBERS * EACH as usize;
    let done = eventually(Duration::from_secs(60), || {
        let ok = log
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|e| e.2 == 200)
            .count();
        async move { (ok >= total).then_some(()) }
    })
    .await;
    let seen = log.lock().unwrap().seen.clone();
    assert!(
        done.is_some(),
        "{} of {total} delivered",
        seen.iter().filter(|e| e.2 == 200).count()
    );
    for m in 0..MEMBERS {
        let member = format!("m_{m}");
        let got: Vec<(i64, u16)> = seen
            .iter()
            .filter(|e| e.0 == member)
            .map(|e| (e.1, e.2))
            .collect();
        let expected: Vec<(i64, u16)> = (1..=EACH)
            .flat_map(|seq| {
                if seq % 3 == 0 {
                    vec![(seq, 500), (seq, 200)]
                } else {
                    vec![(seq, 200)]
                }
            })
            .collect();
        assert_eq!(got, expected, "{member} out of order");
    }
    app.stop().await;
}

on_both_backends!(
    the_next_of_a_member_waits_for_the_one_before,
    each_member_arrives_in_acceptance_order_under_load
);
