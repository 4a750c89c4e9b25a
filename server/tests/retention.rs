//! Retention through a real engine (manual clock, real receivers on 127.0.0.1, both backends):
//! after 30 days, attempts, finished deliveries, their events and sent alerts go; unfinished
//! deliveries, events a delivery still needs, and everything younger stay; roll-ups outlive the
//! window so 30-day figures stay whole.

use crate::helpers::*;
use chrono::Duration;
use herald::delivery::clock::Clock;
use herald::delivery::retention::Pruned;
use herald::domain::delivery::DeliveryStatus;
use herald::domain::ids::WebhookId;
use herald::domain::settings::WebhookPatch;
use herald::store::AttemptQuery;
use serde_json::json;

async fn webhook(s: &Setup, name: &str, url: &str, event_type: &str) -> WebhookId {
    s.webhook(json!({
        "name": name, "url": url, "event_types": [event_type],
        "retry": {"attempts": 0, "delay_seconds": 60, "backoff": "fixed", "timeout_seconds": 5},
    }))
    .await
}

async fn post(s: &Setup, event_type: &str, n: i64) {
    s.post(event_type, json!({"user_id": "u_1", "n": n})).await;
}

async fn deliveries(s: &Setup, id: &WebhookId) -> Vec<herald::store::DeliverySummary> {
    s.deliveries(id, None).await
}

async fn prune_retention_keeps_what_deliveries_still_need(backend: Backend) {
    let Some(s) = setup(backend, "retention").await else {
        return;
    };
    let ok = TestReceiver::start().await;
    let flaky = TestReceiver::start().await;
    flaky.script([Reply::Status(500), Reply::Status(500)]);
    let crm = webhook(&s, "CRM", &ok.url, "points.awarded").await;
    let dead = webhook(&s, "Flaky", &flaky.url, "points.awarded").await;
    let paused = webhook(&s, "Paused", &ok.url, "member.created").await;
    let off = WebhookPatch {
        enabled: Some(false),
        ..Default::default()
    };
    s.engine
        .update_webhook(&s.admin, &paused, off)
        .await
        .unwrap();

    // Day 0: two events delivered to the CRM and dead-lettered at Flaky; one held for Paused.
    post(&s, "points.awarded", 1).await;
    post(&s, "points.awarded", 2).await;
    post(&s, "member.created", 3).await;
    assert_eq!(s.engine.drain().await.unwrap(), 4);
    assert_eq!(s.engine.flush_alerts().await.unwrap(), 1);

    // Day 29: one dead letter is replayed (and succeeds): its event is needed again.
    s.clock.advance(Duration::days(29));
    let replayed = deliveries(&s, &dead)
        .await
        .into_iter()
        .find(|d| d.status == DeliveryStatus::Failed)
        .unwrap();
    s.engine.replay(&s.admin, &replayed.id).await.unwrap();
    assert_eq!(s.engine.drain().await.unwrap(), 1);

    // Day 31: a new event; then the pass.
    s.clock.advance(Duration::days(2));
    post(&s, "points.awarded", 4).await;
    assert_eq!(s.engine.drain().await.unwrap(), 2);
    let pruned = s.engine.prune(std::time::Duration::ZERO).await.unwrap();
    assert_eq!(
        pruned,
        Pruned {
            attempts: 4,
            deliveries: 3,
            // Event 2, and the day-0 alert's own operational event (no webhook took it).
            events: 2,
            alerts: 1,
            rollup_rows: 0,
        }
    );
    assert_eq!(
        s.engine.prune(std::time::Duration::ZERO).await.unwrap(),
        Pruned::default(),
        "a second pass finds nothing"
    );

    // What is left: the young attempts, the replayed and the held deliveries, and the events
    // they need (the held one still goes out, body intact, once its webhook is on).
    let attempts = s
        .engine
        .store()
        .list_attempts(
            &s.admin.program,
            &AttemptQuery {
                limit: 50,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items;
    assert_eq!(attempts.len(), 3);
    assert!(attempts
        .iter()
        .all(|a| a.created_at >= s.clock.now() - Duration::days(2)));
    assert!(deliveries(&s, &crm).await.len() == 1);
    let flaky_left = deliveries(&s, &dead).await;
    assert_eq!(flaky_left.len(), 2, "the replayed one and the new one");
    assert!(flaky_left.iter().any(|d| d.id == replayed.id));
    let on = WebhookPatch {
        enabled: Some(true),
        ..Default::default()
    };
    s.engine
        .update_webhook(&s.admin, &paused, on)
        .await
        .unwrap();
    let before = ok.received().len();
    assert_eq!(s.engine.drain().await.unwrap(), 1);
    let held = &ok.received()[before];
    assert_eq!(held.json()["data"]["n"], 3);
    assert_eq!(held.json()["event_type"], "member.created");
    // The replayed delivery's event is still there to replay again.
    s.engine.replay(&s.admin, &replayed.id).await.unwrap();
    assert_eq!(s.engine.drain().await.unwrap(), 1);

    // Roll-ups outlive the window: day 0's go once they are 38 days old.
    s.clock.advance(Duration::days(8));
    let later = s.engine.prune(std::time::Duration::ZERO).await.unwrap();
    assert!(later.rollup_rows > 0, "{later:?}");
}

on_both_backends!(prune_retention_keeps_what_deliveries_still_need);
