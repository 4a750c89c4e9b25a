//! What happens to deliveries while a webhook is off, and when Herald switches one off itself:
//! events are held (never dropped) and go out when it is on again, unless the admin discards them
//! then; a webhook that fails every try for a day is switched off with the reason shown. Driven
//! by hand (manual clock, `drain`), real receivers on 127.0.0.1, both backends.

use crate::helpers::*;
use chrono::{Datelike, Duration};
use herald::delivery::clock::Clock;
use herald::domain::delivery::DeliveryStatus;
use herald::domain::ids::WebhookId;
use herald::domain::insights::Window;
use serde_json::json;

async fn webhook(s: &Setup, url: &str, attempts: u32, delay_seconds: u32) -> WebhookId {
    s.webhook(json!({
        "name": "Rewards", "url": url, "event_types": ["points.awarded"],
        "retry": {"attempts": attempts, "delay_seconds": delay_seconds, "backoff": "fixed", "timeout_seconds": 5},
    }))
    .await
}

async fn post(s: &Setup, points: i64) {
    s.post("points.awarded", json!({"points": points})).await;
}

async fn held(s: &Setup, id: &WebhookId) -> i64 {
    let hook = s.engine.get_webhook(&s.admin.program, id).await.unwrap();
    let views = s
        .engine
        .webhook_views(&s.admin.program, &[hook], Window::Day, false)
        .await
        .unwrap();
    views[0].held
}

/// Events accepted while a webhook is off are kept as held deliveries (counted in its view) and
/// all go out once it is switched on again.
async fn events_for_a_switched_off_webhook_are_held_until_it_is_on(backend: Backend) {
    let Some(s) = setup(backend, "holding_kept").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    let id = webhook(&s, &rx.url, 3, 60).await;
    s.switch(&id, false, None).await;
    s.engine.take_ring();
    for points in 1..=3 {
        post(&s, points).await;
        s.clock.advance(Duration::seconds(1));
    }
    // Held work cannot be claimed: ingest does not ring the dispatcher for it, and it does not
    // count as due later (switching on rings and makes it due).
    assert!(!s.engine.take_ring(), "ingest rang for held deliveries");
    assert_eq!(
        s.engine
            .store()
            .next_due_at(&[], s.clock.now())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.engine.drain().await.unwrap(),
        0,
        "nothing goes out while off"
    );
    assert!(rx.received().is_empty());
    assert_eq!(held(&s, &id).await, 3);
    // Held deliveries sit at the far end of the due order, so claims never walk past them.
    let waiting = s.deliveries(&id, Some(DeliveryStatus::Pending)).await;
    assert_eq!(waiting.len(), 3);
    assert!(
        waiting.iter().all(|d| d.next_attempt_at.year() == 9999),
        "{waiting:?}"
    );

    s.switch(&id, true, Some(false)).await;
    assert!(s.engine.take_ring(), "switching on rings the dispatcher");
    assert_eq!(held(&s, &id).await, 0);
    let due = s.deliveries(&id, Some(DeliveryStatus::Pending)).await;
    assert!(
        due.iter().all(|d| d.next_attempt_at == d.created_at),
        "each is due at its acceptance time: {due:?}"
    );
    assert_eq!(s.engine.drain().await.unwrap(), 3);
    let mut points: Vec<i64> = rx
        .received()
        .iter()
        .map(|r| r.json()["data"]["points"].as_i64().unwrap())
        .collect();
    points.sort();
    assert_eq!(points, [1, 2, 3], "every held event arrives once");
}

/// Switching a webhook on with `discard_held` dead-letters what it held (kept in the log, with
/// who discarded it, and replayable) and sends only what arrives afterwards.
async fn held_deliveries_can_be_discarded_when_switching_on(backend: Backend) {
    let Some(s) = setup(backend, "holding_discard").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    let id = webhook(&s, &rx.url, 3, 60).await;
    s.switch(&id, false, None).await;
    post(&s, 1).await;
    post(&s, 2).await;
    s.switch(&id, true, Some(true)).await;
    assert_eq!(s.engine.drain().await.unwrap(), 0);
    let dead = s.deliveries(&id, Some(DeliveryStatus::Failed)).await;
    assert_eq!(dead.len(), 2);
    for d in &dead {
        let why = d.last_error.as_deref().unwrap_or_default();
        assert!(why.starts_with("discarded by "), "{why}");
    }
    let activity = s
        .engine
        .store()
        .list_activity(&s.admin.program, None, 10)
        .await
        .unwrap();
    assert!(
        activity
            .iter()
            .any(|a| a.detail.contains("discarded 2 held deliveries")),
        "{activity:?}"
    );

    // Discarding applies only when switching on: a webhook already on loses nothing.
    post(&s, 3).await;
    s.switch(&id, true, Some(true)).await;
    assert_eq!(s.engine.drain().await.unwrap(), 1);
    assert_eq!(rx.received().len(), 1);
    assert_eq!(rx.received()[0].json()["data"]["points"], 3);
}

/// Every try failing for 24 hours, at least 10 in a row (the defaults): Herald switches the
/// webhook off, says since when, and holds its delivery. Fewer tries over the same time, or a
/// success in between, are not enough. Switched on again, the count starts afresh.
async fn a_webhook_failing_every_try_for_a_day_is_switched_off(backend: Backend) {
    let Some(s) = setup(backend, "holding_failing").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    // Ten failures to switch it off, one more after it is switched on, then successes.
    rx.script(std::iter::repeat_n(Reply::Status(500), 11));
    let started = s.clock.now();
    // Tries every 3 hours: the 9th failure comes at 24 h, the 10th at 27 h.
    let id = webhook(&s, &rx.url, 10, 3 * 3_600).await;
    post(&s, 1).await;
    assert_eq!(s.engine.drain().await.unwrap(), 1);
    for _ in 0..8 {
        s.clock.advance(Duration::hours(3));
        assert_eq!(s.engine.drain().await.unwrap(), 1);
    }
    let w = s.engine.get_webhook(&s.admin.program, &id).await.unwrap();
    assert!(w.record.enabled, "9 failures are fewer than 10");
    assert_eq!(w.stats.failures_in_a_row, 9);
    assert_eq!(w.stats.failing_since, Some(started));

    s.clock.advance(Duration::hours(3));
    assert_eq!(s.engine.drain().await.unwrap(), 1);
    let w = s.engine.get_webhook(&s.admin.program, &id).await.unwrap();
    assert!(!w.record.enabled);
    let reason = w.stats.disabled_reason.clone().unwrap();
    assert!(
        reason.starts_with(&format!(
            "failing since {}: all 10 tries failed",
            started.format("%Y-%m-%d %H:%M UTC")
        )),
        "{reason}"
    );
    let activity = s
        .engine
        .store()
        .list_activity(&s.admin.program, None, 10)
        .await
        .unwrap();
    assert!(
        activity
            .iter()
            .any(|a| a.actor == "Herald" && a.action == "disabled" && a.detail == reason),
        "{activity:?}"
    );
    s.clock.advance(Duration::hours(3));
    assert_eq!(s.engine.drain().await.unwrap(), 0, "its retry is held");
    assert_eq!(held(&s, &id).await, 1);

    // On again: the run starts afresh, so one more failure does not switch it off at once.
    s.switch(&id, true, None).await;
    assert_eq!(s.engine.drain().await.unwrap(), 1);
    let w = s.engine.get_webhook(&s.admin.program, &id).await.unwrap();
    assert!(w.record.enabled);
    assert_eq!(w.stats.failures_in_a_row, 1);

    // That was its last try (dead-lettered); a new event succeeds and ends the run.
    post(&s, 2).await;
    assert_eq!(s.engine.drain().await.unwrap(), 1);
    let w = s.engine.get_webhook(&s.admin.program, &id).await.unwrap();
    assert_eq!(
        (w.stats.failures_in_a_row, w.stats.failing_since),
        (0, None)
    );
}

/// Failing for longer than a day but with few tries (a slow retry schedule) does not trip the
/// rule: it needs both the time and the count.
async fn a_few_failures_over_a_long_time_do_not_switch_a_webhook_off(backend: Backend) {
    let Some(s) = setup(backend, "holding_slow").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    rx.script(std::iter::repeat_n(Reply::Status(503), 10));
    let id = webhook(&s, &rx.url, 5, 20 * 3_600).await;
    post(&s, 1).await;
    assert_eq!(s.engine.drain().await.unwrap(), 1);
    for _ in 0..3 {
        s.clock.advance(Duration::hours(20));
        assert_eq!(s.engine.drain().await.unwrap(), 1);
    }
    let w = s.engine.get_webhook(&s.admin.program, &id).await.unwrap();
    assert_eq!(w.stats.failures_in_a_row, 4);
    assert!(w.record.enabled, "4 tries over 60 hours are too few");
}

on_both_backends!(
    events_for_a_switched_off_webhook_are_held_until_it_is_on,
    held_deliveries_can_be_discarded_when_switching_on,
    a_webhook_failing_every_try_for_a_day_is_switched_off,
    a_few_failures_over_a_long_time_do_not_switch_a_webhook_off,
);
