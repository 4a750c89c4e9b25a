//! Crash safety: a `herald serve` process killed with SIGKILL in the middle of a load loses no
//! accepted event. After a restart, expired leases are claimed again and every event whose `202`
//! was received reaches the receiver at least once.

use crate::helpers::*;
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;

async fn killed_mid_load_delivers_every_accepted_event(backend: Backend) {
    let Some((url, _dir)) = database(backend, "crash").await else {
        return;
    };
    let key = insert_key(&url).await;
    let rx = TestReceiver::start().await;
    // A slow receiver (1 s per request) keeps deliveries in flight when the process dies.
    rx.script((0..400).map(|_| Reply::Delay(Duration::from_secs(1), 200)));
    let client = reqwest::Client::new();
    let mut herald = HeraldProcess::start(&url, free_port()).await;
    let base = herald.base.clone();
    let created = client
        .post(format!("{base}/api/v1/webhooks"))
        .bearer_auth(&key)
        .json(&json!({"name": "Crash", "url": rx.url, "event_types": ["points.awarded"],
            "retry": {"attempts": 3, "delay_seconds": 1, "backoff": "fixed", "timeout_seconds": 2}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    let mut accepted = HashSet::new();
    for i in 0..=120 {
        let r = client
            .post(format!("{base}/api/v1/events"))
            .bearer_auth(&key)
            .json(&json!({"event_type": "points.awarded", "data": {"i": i}}))
            .send()
            .await;
        if let Ok(r) = r {
            if r.status() == 202 {
                let body: serde_json::Value = r.json().await.unwrap();
                accepted.insert(body["event_id"].as_str().unwrap().to_owned());
            }
        }
    }
    // Killed while the receiver holds a request (each takes it a second), so that one is cut off
    // mid-request whatever pace ingest kept.
    let in_flight = eventually(Duration::from_secs(20), || {
        let cut_off = rx.received().len() > rx.completed().len();
        async move { cut_off.then_some(()) }
    })
    .await;
    herald.kill();
    assert!(in_flight.is_some(), "no request reached the receiver");
    assert!(
        accepted.len() >= 100,
        "only {} events were accepted before the kill",
        accepted.len()
    );
    let before_restart = rx.completed().len();
    assert!(
        before_restart < accepted.len(),
        "the kill came after everything was delivered"
    );
    eprintln!(
        "{} events accepted, {} answered before the kill",
        accepted.len(),
        before_restart
    );

    // Every accepted event must be answered in full; those cut off by the kill come back once
    // their lease (timeout 2 s + margin) runs out.
    herald.restart().await;
    let completed = || rx.completed().into_iter().collect::<HashSet<String>>();
    let all = eventually(Duration::from_secs(60), || {
        let done = accepted.is_subset(&completed());
        async move { done.then_some(()) }
    })
    .await;
    herald.kill();
    assert!(
        all.is_some(),
        "{} of {} accepted events were never delivered",
        accepted.difference(&completed()).count(),
        accepted.len()
    );
    // The kill really cut deliveries off mid-request: some were sent twice.
    let sent: Vec<String> = rx
        .received()
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    let unique: HashSet<&String> = sent.iter().collect();
    assert!(
        sent.len() > unique.len(),
        "no delivery was interrupted by the kill"
    );
}

/// SIGTERM stops the process gracefully: a delivery in flight is finished (not abandoned), and the
/// process exits on its own, successfully, within the grace period.
async fn sigterm_finishes_in_flight_work_and_exits(backend: Backend) {
    let Some((url, _dir)) = database(backend, "sigterm").await else {
        return;
    };
    let key = insert_key(&url).await;
    let rx = TestReceiver::start().await;
    rx.script([Reply::Delay(Duration::from_secs(2), 200)]);
    let client = reqwest::Client::new();
    let mut herald = HeraldProcess::start(&url, free_port()).await;
    let base = herald.base.clone();
    let created = client
        .post(format!("{base}/api/v1/webhooks"))
        .bearer_auth(&key)
        .json(&json!({"name": "Graceful", "url": rx.url, "event_types": ["points.awarded"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let r = client
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(&key)
        .json(&json!({"event_type": "points.awarded", "data": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    rx.wait_for(1, Duration::from_secs(10)).await;
    let status = herald
        .terminate(Duration::from_secs(15))
        .await
        .expect("herald did not exit within 15 s of SIGTERM");
    assert!(status.success(), "herald exited with {status}");
    assert_eq!(
        rx.completed().len(),
        1,
        "the delivery in flight was finished"
    );
    // The result was recorded: nothing is left to deliver.
    let store = herald::store::connect(&url).await.unwrap();
    let program = store.default_program().await.unwrap();
    let q = herald::store::DeliveryQuery {
        status: Some(herald::domain::delivery::DeliveryStatus::Succeeded),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        store
            .list_deliveries(&program, &q)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

on_both_backends!(
    killed_mid_load_delivers_every_accepted_event,
    sigterm_finishes_in_flight_work_and_exits
);

/// `HERALD_LOG_FORMAT=json`: one JSON object per line on stderr; a failed attempt's line names
/// the webhook, event, delivery and attempt as fields. A format Herald does not know is refused
/// at start-up with a clear message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_name_the_webhook_event_and_attempt() {
    let (url, _dir) = database(Backend::Sqlite, "json_logs").await.unwrap();
    let key = insert_key(&url).await;
    let rx = TestReceiver::start().await;
    rx.script([Reply::Status(500)]);
    let (mut herald, lines_rx) = HeraldProcess::start_logging(
        &url,
        free_port(),
        &[("HERALD_LOG_FORMAT", "json"), ("RUST_LOG", "info")],
    )
    .await;
    let base = herald.base.clone();
    let client = reqwest::Client::new();
    let created: serde_json::Value = client
        .post(format!("{base}/api/v1/webhooks"))
        .bearer_auth(&key)
        .json(&json!({"name": "Logged", "url": rx.url, "event_types": ["points.awarded"],
            "retry": {"attempts": 2, "delay_seconds": 60, "backoff": "fixed", "timeout_seconds": 5}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let accepted: serde_json::Value = client
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(&key)
        .json(&json!({"event_type": "points.awarded", "data": {}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let wanted_event = accepted["event_id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    let line = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Ok(line) = lines_rx.recv_timeout(left) else {
            herald.kill();
            panic!(
                "no log line for the failed attempt; got:\n{}",
                seen.join("\n")
            );
        };
        let parsed: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("a log line that is not JSON: {line}"));
        if parsed["event_id"] == wanted_event.as_str() {
            break parsed;
        }
        seen.push(line);
    };
    herald.kill();
    assert_eq!(line["webhook_id"], created["id"]);
    assert!(line["delivery_id"].as_str().unwrap().starts_with("dlv_"));
    assert!(line["attempt_id"].as_str().unwrap().starts_with("att_"));
    assert_eq!(line["status_code"], 500);
    assert_eq!(line["level"], "INFO");

    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["migrate", "--database-url", &url])
        .env("HERALD_LOG_FORMAT", "xml")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("HERALD_LOG_FORMAT"), "{message}");
}
