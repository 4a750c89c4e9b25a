//! The engine driven step by step: a manual clock and `run_once`/`drain` instead of a running
//! dispatcher, real receivers on 127.0.0.1, both backends. Nothing here waits for time to pass.

use crate::helpers::*;
use chrono::{Datelike, Duration};
use herald::delivery::clock::Clock;
use herald::delivery::Engine;
use herald::domain::delivery::{AttemptStatus, DeliveryStatus};
use herald::domain::event::NewEvent;
use herald::domain::settings::WebhookDraft;
use herald::store::{AttemptQuery, DeliveryQuery, Store};
use serde_json::{json, Value};

fn draft(name: &str, url: &str, retry: Value) -> WebhookDraft {
    serde_json::from_value(json!({
        "name": name, "url": url, "event_types": ["points.awarded"], "retry": retry,
    }))
    .unwrap()
}

async fn post(s: &Setup) -> herald::domain::ids::EventId {
    let event = NewEvent::parse(
        "points.awarded",
        json!({"points": 5}),
        None,
        None,
        s.clock.now(),
    )
    .unwrap();
    s.engine
        .ingest(&s.admin.program, event)
        .await
        .unwrap()
        .event_id
}

async fn attempts(store: &dyn Store, s: &Setup) -> Vec<herald::store::AttemptSummary> {
    let mut items = store
        .list_attempts(
            &s.admin.program,
            &AttemptQuery {
                limit: 200,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items;
    items.reverse();
    items
}

/// Retries come due on the engine's clock: nothing is sent before the delay has passed, and each
/// step of the schedule is taken by moving time, not by waiting.
async fn retry_schedule_follows_the_clock(backend: Backend) {
    let Some(s) = setup(backend, "engine_retry_clock").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    rx.script([Reply::Status(500), Reply::Status(503)]);
    s.engine
        .create_webhook(&s.admin, &draft("Clocked", &rx.url, json!({"attempts": 3, "delay_seconds": 60, "backoff": "fixed", "timeout_seconds": 5})))
        .await
        .unwrap();
    let event_id = post(&s).await;
    assert_eq!(s.engine.drain().await.unwrap(), 1);
    assert_eq!(rx.received().len(), 1);
    s.clock.advance(Duration::seconds(59));
    assert_eq!(
        s.engine.drain().await.unwrap(),
        0,
        "not due before the delay"
    );
    s.clock.advance(Duration::seconds(1));
    assert_eq!(s.engine.drain().await.unwrap(), 1);
    s.clock.advance(Duration::seconds(60));
    assert_eq!(s.engine.drain().await.unwrap(), 1);
    assert_eq!(rx.received().len(), 3);
    let a = attempts(s.engine.store().as_ref(), &s).await;
    let seen: Vec<_> = a
        .iter()
        .map(|a| (a.attempt, a.status, a.status_code))
        .collect();
    assert_eq!(
        seen,
        [
            (1, AttemptStatus::Failure, Some(500)),
            (2, AttemptStatus::Failure, Some(503)),
            (3, AttemptStatus::Success, Some(200)),
        ]
    );
    assert_eq!(a[1].created_at - a[0].created_at, Duration::seconds(60));
    // The audit log's search by event id finds every try (indexed under the event's acceptance
    // time, read from the event), newest first, and nothing for an event id it never saw.
    let search = |id: String| AttemptQuery {
        search: Some(id),
        limit: 50,
        ..Default::default()
    };
    let store = s.engine.store();
    let found = store
        .list_attempts(&s.admin.program, &search(event_id.to_string()))
        .await
        .unwrap()
        .items;
    assert_eq!(
        found.iter().map(|a| a.attempt).collect::<Vec<_>>(),
        [3, 2, 1]
    );
    let other = uuid::Uuid::new_v4().to_string();
    let none = store
        .list_attempts(&s.admin.program, &search(other))
        .await
        .unwrap();
    assert!(none.items.is_empty());
}

/// Support's question, "what did we send about this member?": the audit log's search takes the
/// member id an event's `data` gave (`member_id`, or `user_id` when it has none) and finds every
/// try of every event about that member, exactly as given, and nothing about anyone else.
async fn a_members_events_are_found_in_the_audit_log(backend: Backend) {
    let Some(s) = setup(backend, "engine_member_search").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    rx.script([Reply::Status(500)]);
    s.engine
        .create_webhook(&s.admin, &draft("Member sync", &rx.url, json!({"attempts": 2, "delay_seconds": 60, "backoff": "fixed", "timeout_seconds": 5})))
        .await
        .unwrap();
    let post = |data: Value| {
        let event = NewEvent::parse("points.awarded", data, None, None, s.clock.now()).unwrap();
        let engine = s.engine.clone();
        let program = s.admin.program.clone();
        async move { engine.ingest(&program, event).await.unwrap().event_id }
    };
    // `first` fails at 0 s and is retried at 60 s; the others go out at 10 s.
    let first = post(json!({"user_id": "u_1001", "points": 5})).await;
    assert_eq!(s.engine.drain().await.unwrap(), 1);
    s.clock.advance(Duration::seconds(10));
    let other = post(json!({"member_id": "m_7", "user_id": "u_1001", "points": 1})).await;
    let nobody = post(json!({"points": 2})).await;
    let again = post(json!({"user_id": "u_1001", "points": 3})).await;
    assert_eq!(s.engine.drain().await.unwrap(), 3);
    s.clock.advance(Duration::seconds(50));
    assert_eq!(s.engine.drain().await.unwrap(), 1);
    assert_eq!(rx.received().len(), 5);
    let found = |text: &str| {
        let q = AttemptQuery {
            search: Some(text.to_owned()),
            limit: 50,
            ..Default::default()
        };
        let store = s.engine.store();
        let program = s.admin.program.clone();
        async move {
            let page = store.list_attempts(&program, &q).await.unwrap();
            page.items
                .iter()
                .map(|a| (a.event_id.clone(), a.attempt))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        found("u_1001").await,
        [
            (first.to_string(), 2),
            (again.to_string(), 1),
            (first.to_string(), 1)
        ],
        "newest first; `member_id` wins over `user_id`"
    );
    assert_eq!(found("m_7").await, [(other.to_string(), 1)]);
    assert!(found("u_100").await.is_empty(), "a whole id, not a part");
    assert!(found("U_1001").await.is_empty(), "as given");
    assert!(
        !found(nobody.as_str()).await.is_empty(),
        "the event id still finds it"
    );
}

/// A delivery whose processing keeps killing the worker (its lease runs out again and again) is
/// not claimed forever: each expiry counts as a try, and past the budget it is dead-lettered with
/// an error that says why, without another request.
async fn a_crash_loop_is_dead_lettered(backend: Backend) {
    let Some(s) = setup(backend, "engine_crash_loop").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    s.engine
        .create_webhook(&s.admin, &draft("Killer", &rx.url, json!({"attempts": 1, "delay_seconds": 1, "backoff": "fixed", "timeout_seconds": 1})))
        .await
        .unwrap();
    post(&s).await;
    let store = s.engine.store().clone();
    let margin = Duration::seconds(10);
    // Two workers claim it and die without a result (the lease is timeout 1 s + margin 10 s).
    for _ in 0..2 {
        let claimed = store
            .claim_due(s.clock.now(), 10, margin, &[])
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        s.clock.advance(Duration::seconds(12));
    }
    assert_eq!(s.engine.drain().await.unwrap(), 1);
    assert!(
        rx.received().is_empty(),
        "no request once the budget is spent"
    );
    let dead = store
        .list_deliveries(
            &s.admin.program,
            &DeliveryQuery {
                status: Some(DeliveryStatus::Failed),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items;
    assert_eq!(dead.len(), 1);
    let error = dead[0].last_error.clone().unwrap();
    assert!(
        error.contains("2 earlier tries ended without a result"),
        "{error}"
    );
    let a = attempts(store.as_ref(), &s).await;
    assert_eq!(a.len(), 1, "the audit log says what happened");
    assert_eq!(a[0].error.as_deref(), Some(error.as_str()));
    // A replay starts a fresh budget and delivers.
    s.engine.replay(&s.admin, &dead[0].id).await.unwrap();
    assert_eq!(s.engine.drain().await.unwrap(), 1);
    assert_eq!(rx.received().len(), 1);
}

/// A receiver answering with NUL bytes or invalid UTF-8 is recorded faithfully and safely, and
/// does not stop any other webhook's results from being recorded (on PostgreSQL it used to jam
/// the whole writer).
async fn hostile_response_bodies_are_recorded_and_block_nothing(backend: Backend) {
    let Some(s) = setup(backend, "engine_nul").await else {
        return;
    };
    let (bad, good) = (TestReceiver::start().await, TestReceiver::start().await);
    bad.script([
        Reply::Body(200, b"ok\0nul".to_vec()),
        Reply::Body(200, vec![b'o', b'k', 0xff, 0xfe, 0]),
        Reply::Body(200, b"\0".to_vec()),
    ]);
    let retry =
        json!({"attempts": 0, "delay_seconds": 1, "backoff": "fixed", "timeout_seconds": 5});
    let b = s
        .engine
        .create_webhook(&s.admin, &draft("Bad", &bad.url, retry.clone()))
        .await
        .unwrap();
    let g = s
        .engine
        .create_webhook(&s.admin, &draft("Good", &good.url, retry))
        .await
        .unwrap();
    for _ in 0..2 {
        post(&s).await;
    }
    assert_eq!(s.engine.drain().await.unwrap(), 4);
    let store = s.engine.store().clone();
    let a = attempts(store.as_ref(), &s).await;
    let of = |id: &herald::domain::ids::WebhookId| a.iter().filter(|x| x.webhook_id == *id).count();
    assert_eq!((of(&b.webhook.record.id), of(&g.webhook.record.id)), (2, 2));
    assert!(a.iter().all(|x| x.status == AttemptStatus::Success));
    let bodies: Vec<String> = futures::future::join_all(
        a.iter()
            .filter(|x| x.webhook_id == b.webhook.record.id)
            .map(|x| store.get_attempt(&s.admin.program, &x.id)),
    )
    .await
    .into_iter()
    .map(|d| d.unwrap().unwrap().response_body.unwrap())
    .collect();
    let mut bodies = bodies;
    bodies.sort();
    assert_eq!(bodies, ["ok\u{2400}nul", "ok\u{fffd}\u{fffd}\u{2400}"]);
    // Send Test to the same receiver answers normally too.
    let tested = s
        .engine
        .send_test(&s.admin, &b.webhook.record.id, None)
        .await
        .unwrap();
    assert!(tested.success);
    assert_eq!(tested.response_body.as_deref(), Some("\u{2400}"));
    // Nothing is left in flight to be sent again.
    s.clock.advance(Duration::hours(1));
    assert_eq!(s.engine.drain().await.unwrap(), 0);
    assert_eq!(bad.received().len(), 3);
}

/// Fan-out reads a subscriber list that another process's webhook changes invalidate at once: a
/// deleted webhook gets no delivery, a new one gets the very next event (no cache window).
async fn fan_out_sees_other_processes_webhook_changes_at_once(backend: Backend) {
    let Some(s) = setup(backend, "engine_fanout_fence").await else {
        return;
    };
    let (other, _) = manual_engine(&s.url).await;
    let rx = TestReceiver::start().await;
    let retry =
        json!({"attempts": 0, "delay_seconds": 1, "backoff": "fixed", "timeout_seconds": 5});
    let first = s
        .engine
        .create_webhook(&s.admin, &draft("First", &rx.url, retry.clone()))
        .await
        .unwrap();
    let ingest = |engine: &Engine| {
        let engine = engine.clone();
        let program = s.admin.program.clone();
        async move {
            let e = NewEvent::parse("points.awarded", json!({}), None, None, chrono::Utc::now())
                .unwrap();
            engine.ingest(&program, e).await.unwrap().deliveries
        }
    };
    // The other process routes (and caches) with First subscribed.
    assert_eq!(ingest(&other).await, 1);
    s.engine
        .delete_webhook(&s.admin, &first.webhook.record.id)
        .await
        .unwrap();
    assert_eq!(ingest(&other).await, 0, "a deleted webhook gets nothing");
    s.engine
        .create_webhook(&s.admin, &draft("Second", &rx.url, retry))
        .await
        .unwrap();
    assert_eq!(ingest(&other).await, 1, "a new webhook gets the next event");
}

/// A storm of webhook changes cannot starve ingest: while an admin's loop creates and deletes
/// webhooks as fast as it can (every change moves the program's subscriber-list version), every
/// batch of events is stored, each with its delivery to the webhook subscribed throughout. A
/// batch that loses the race with a change is routed again inside its own transaction, where no
/// change can come between; before that, eight optimistic re-routes in a row could all lose and
/// the batch was refused with 503.
async fn ingest_is_not_starved_by_a_storm_of_webhook_changes(backend: Backend) {
    let Some(s) = setup(backend, "engine_change_storm").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    let retry =
        json!({"attempts": 0, "delay_seconds": 1, "backoff": "fixed", "timeout_seconds": 5});
    s.engine
        .create_webhook(&s.admin, &draft("Steady", &rx.url, retry.clone()))
        .await
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Four editors, so a change is nearly always waiting for the writer.
    let storm: Vec<_> = (0..4)
        .map(|editor| {
            let (stop, admin, url) = (stop.clone(), s.admin.clone(), rx.url.clone());
            let (engine, retry) = (s.engine.clone(), retry.clone());
            tokio::spawn(async move {
                let mut changes = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && changes < 20_000 {
                    let mut passing =
                        draft(&format!("Passing {editor}.{changes}"), &url, retry.clone());
                    passing.event_types = vec!["badge.awarded".into()];
                    let passing = engine.create_webhook(&admin, &passing).await.unwrap();
                    engine
                        .delete_webhook(&admin, &passing.webhook.record.id)
                        .await
                        .unwrap();
                    changes += 2;
                }
                changes
            })
        })
        .collect();
    let mut stored = 0;
    for _ in 0..40 {
        let batch = (0..10).map(|_| {
            let e = NewEvent::parse("member.created", json!({}), None, None, chrono::Utc::now())
                .unwrap();
            s.engine.ingest(&s.admin.program, e)
        });
        for outcome in futures::future::join_all(batch).await {
            let outcome = outcome.expect("every event is stored whatever the webhooks do");
            assert_eq!(outcome.deliveries, 0);
            stored += 1;
        }
        let e =
            NewEvent::parse("points.awarded", json!({}), None, None, chrono::Utc::now()).unwrap();
        assert_eq!(
            s.engine
                .ingest(&s.admin.program, e)
                .await
                .unwrap()
                .deliveries,
            1,
            "Steady is subscribed throughout; the passing webhooks never are"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut changes = 0;
    for editor in storm {
        changes += editor.await.unwrap();
    }
    assert_eq!(stored, 400);
    assert!(changes > 0, "the storm ran alongside");
}

/// A written schedule of retry delays is followed as written: 0 retries at once, the next waits
/// its own delay, and the schedule's length is the budget. Over the API it reads back as sent.
async fn a_written_retry_schedule_is_followed(backend: Backend) {
    let Some(s) = setup(backend, "engine_retry_schedule").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    rx.script([Reply::Status(500), Reply::Status(502), Reply::Status(503)]);
    let saved = s
        .engine
        .create_webhook(
            &s.admin,
            &draft("Scheduled", &rx.url, json!({"attempts": 9, "delay_seconds": 60, "backoff": "schedule", "schedule": [0, 300], "timeout_seconds": 5})),
        )
        .await
        .unwrap();
    let view = herald::domain::views::WebhookView::from(&saved.webhook);
    assert_eq!(
        (view.retry.attempts, view.retry.backoff.as_str()),
        (2, "schedule")
    );
    assert_eq!(view.retry.schedule, [0, 300]);
    post(&s).await;
    assert_eq!(
        s.engine.drain().await.unwrap(),
        2,
        "the first try and its 0 s retry, without moving the clock"
    );
    assert_eq!(rx.received().len(), 2);
    s.clock.advance(Duration::seconds(299));
    assert_eq!(s.engine.drain().await.unwrap(), 0, "not before its 300 s");
    s.clock.advance(Duration::seconds(1));
    assert_eq!(s.engine.drain().await.unwrap(), 1);
    s.clock.advance(Duration::days(2));
    assert_eq!(
        s.engine.drain().await.unwrap(),
        0,
        "two retries, then dead-lettered"
    );
    let a = attempts(s.engine.store().as_ref(), &s).await;
    assert_eq!(a.len(), 3);
    assert_eq!(a[1].created_at, a[0].created_at);
    assert_eq!(a[2].created_at - a[1].created_at, Duration::seconds(300));
    // A schedule that does not read is refused by name.
    let bad = s
        .engine
        .create_webhook(
            &s.admin,
            &draft("Unscheduled", &rx.url, json!({"attempts": 1, "delay_seconds": 60, "backoff": "schedule", "schedule": [], "timeout_seconds": 5})),
        )
        .await;
    match bad {
        Err(herald::delivery::EngineError::Validation(v)) => assert_eq!(v.field, "retry.schedule"),
        other => panic!("{:?}", other.map(|_| ())),
    }
    // Beside a schedule, `attempts` is not used but is still held to its range (0 to 10), as
    // the API document states, rather than silently dropped.
    let bad = s
        .engine
        .create_webhook(
            &s.admin,
            &draft("Overbudget", &rx.url, json!({"attempts": 11, "delay_seconds": 60, "backoff": "schedule", "schedule": [0, 300], "timeout_seconds": 5})),
        )
        .await;
    match bad {
        Err(herald::delivery::EngineError::Validation(v)) => assert_eq!(v.field, "retry.attempts"),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

/// `410 Gone` switches the webhook off at once, says why (on the webhook and in the activity
/// log) and holds its delivery instead of retrying it against a gone endpoint; a Send Test that
/// gets 410 changes nothing. Switched on again by an admin, the reason clears and the held
/// delivery goes out.
async fn a_gone_endpoint_is_disabled_and_its_delivery_held(backend: Backend) {
    let Some(s) = setup(backend, "engine_gone").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    let saved = s
        .engine
        .create_webhook(
            &s.admin,
            &draft("Gone", &rx.url, json!({"attempts": 3, "delay_seconds": 60, "backoff": "fixed", "timeout_seconds": 5})),
        )
        .await
        .unwrap();
    let id = saved.webhook.record.id.clone();
    rx.script([Reply::Status(410)]);
    s.engine.send_test(&s.admin, &id, None).await.unwrap();
    assert!(
        s.engine
            .get_webhook(&s.admin.program, &id)
            .await
            .unwrap()
            .record
            .enabled,
        "a test changes nothing"
    );

    rx.script([Reply::Status(410)]);
    post(&s).await;
    assert_eq!(s.engine.drain().await.unwrap(), 1);
    let w = s.engine.get_webhook(&s.admin.program, &id).await.unwrap();
    assert!(!w.record.enabled);
    let reason = w.stats.disabled_reason.clone().unwrap();
    assert!(
        reason.starts_with("endpoint answered 410 Gone at "),
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
            .any(|a| a.actor == "Herald" && a.action == "disabled" && a.target == "webhook Gone"),
        "{activity:?}"
    );
    // Held: its retry comes due, but nothing is sent while it is off.
    s.clock.advance(Duration::minutes(5));
    assert_eq!(s.engine.drain().await.unwrap(), 0);
    assert_eq!(rx.received().len(), 2);

    let on = herald::domain::settings::WebhookPatch {
        enabled: Some(true),
        ..Default::default()
    };
    let back = s.engine.update_webhook(&s.admin, &id, on).await.unwrap();
    assert_eq!(
        back.webhook.stats.disabled_reason, None,
        "switching it on clears the reason"
    );
    assert_eq!(
        s.engine.drain().await.unwrap(),
        1,
        "the held delivery goes out"
    );
    assert_eq!(rx.received().len(), 3);
    let w = s.engine.get_webhook(&s.admin.program, &id).await.unwrap();
    assert!(w.record.enabled && w.stats.disabled_reason.is_none());
}

/// A backlog for one webhook larger than its share of request slots: what a claim brings in
/// beyond the free slots waits in memory with its claim (no release, no second claim), and goes
/// out as slots free up, each delivery exactly once. One that waited longer than half the lease
/// margin is given back to the queue instead, and claimed again (with a fresh lease).
async fn a_backlog_waits_in_memory_for_its_slots_and_is_claimed_once(backend: Backend) {
    let Some(s) = setup(backend, "engine_backlog").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    let retry =
        json!({"attempts": 3, "delay_seconds": 60, "backoff": "fixed", "timeout_seconds": 5});
    s.engine
        .create_webhook(&s.admin, &draft("Busy", &rx.url, retry.clone()))
        .await
        .unwrap();
    for _ in 0..40 {
        post(&s).await;
    }
    // A new webhook starts with two slots: two go, 38 wait in memory, still claimed.
    assert_eq!(s.engine.run_once().await.unwrap(), 2);
    assert_eq!(rx.received().len(), 2);
    assert_eq!(s.engine.drain().await.unwrap(), 38);
    assert_eq!(arrivals(&rx), (40, 40), "each event once");
    let claims: Vec<i64> = claim_counts(&s.url).await;
    assert_eq!(claims.len(), 40);
    assert!(
        claims.iter().all(|c| *c == 1),
        "every delivery was claimed once: {claims:?}"
    );

    // Waiting longer than half the lease margin: given back, claimed again, sent once.
    let slow: WebhookDraft = serde_json::from_value(json!({
        "name": "Fresh", "url": rx.url, "event_types": ["member.tier_changed"], "retry": retry,
    }))
    .unwrap();
    s.engine.create_webhook(&s.admin, &slow).await.unwrap();
    for _ in 0..6 {
        let event = NewEvent::parse(
            "member.tier_changed",
            json!({"tier": "gold"}),
            None,
            None,
            s.clock.now(),
        )
        .unwrap();
        s.engine.ingest(&s.admin.program, event).await.unwrap();
    }
    assert_eq!(s.engine.run_once().await.unwrap(), 2);
    s.clock.advance(Duration::seconds(6));
    assert_eq!(
        s.engine.run_once().await.unwrap(),
        4,
        "the four that waited too long go back to the queue, and the same step claims them again \
         with fresh leases"
    );
    assert_eq!(s.engine.drain().await.unwrap(), 0);
    assert_eq!(arrivals(&rx), (46, 46), "each event once");
    let mut claims = claim_counts(&s.url).await;
    claims.sort_unstable();
    assert_eq!(claims.iter().filter(|c| **c == 2).count(), 4, "{claims:?}");
}

/// Once a claim has come back short (the queue is drained), a new event's delivery skips the
/// queue: it is stored already claimed (its first claim, leased for the timeout plus the margin)
/// and the next dispatcher step sends it from memory. What would overtake queued work or wait for
/// a request slot takes the queue: deliveries beyond the webhook's free slots, and every delivery
/// of an ordered or switched-off webhook. If the process holding one dies, its lease runs out and another process
/// takes the delivery over; the dead process's copy is never sent.
async fn new_deliveries_skip_a_drained_queue(backend: Backend) {
    let Some(s) = setup_with(backend, "engine_express", true).await else {
        return;
    };
    let rx = TestReceiver::start().await;
    let retry =
        json!({"attempts": 3, "delay_seconds": 60, "backoff": "fixed", "timeout_seconds": 5});
    let quick = s
        .webhook(json!({"name": "Quick", "url": rx.url,
        "event_types": ["points.awarded"], "retry": retry}))
        .await;
    let ordered = s
        .webhook(json!({"name": "Ordered", "url": rx.url,
        "event_types": ["member.tier_changed"], "ordering_key": "data.member_id"}))
        .await;
    let off = s
        .webhook(json!({"name": "Off", "url": rx.url,
        "event_types": ["reward.redeemed"], "enabled": false}))
        .await;
    let rows = |w: &herald::domain::ids::WebhookId| delivery_rows(&s.url, w.to_string());

    // No claim yet: the first event is queued.
    post(&s).await;
    assert_eq!(rows(&quick).await, [("pending".to_owned(), 0, None)]);
    assert_eq!(s.engine.run_once().await.unwrap(), 1);

    // That claim came back short: the next delivery is owned from the insert.
    post(&s).await;
    let lease = s.clock.now() + Duration::seconds(5 + 10);
    let owned = rows(&quick).await;
    assert!(
        owned.contains(&("in_flight".to_owned(), 1, Some(lease))),
        "{owned:?}"
    );
    // More events than the webhook's free request slots take: they are owned too, waiting in
    // memory while the webhook's line keeps up (the delivery at its head has waited less than a
    // quarter of the lease margin).
    for _ in 0..4 {
        post(&s).await;
    }
    let count = |rows: &[(String, i64, Option<chrono::DateTime<chrono::Utc>>)]| {
        let owned = rows
            .iter()
            .filter(|r| r.0 == "in_flight" && r.1 == 1)
            .count();
        let queued = rows.iter().filter(|r| r.0 == "pending" && r.1 == 0).count();
        (owned, queued)
    };
    let now = rows(&quick).await;
    assert_eq!(count(&now), (5, 0), "a burst waits in memory: {now:?}");
    // Nothing was sent for three seconds: the line no longer keeps up, and a new event takes the
    // queue behind the owned ones.
    s.clock.advance(Duration::seconds(3));
    post(&s).await;
    let now = rows(&quick).await;
    assert_eq!(count(&now), (5, 1), "{now:?}");
    for (event_type, data) in [
        (
            "member.tier_changed",
            json!({"member_id": "m1", "tier": "gold"}),
        ),
        ("reward.redeemed", json!({"reward": "mug"})),
    ] {
        s.post(event_type, data).await;
    }
    assert_eq!(rows(&ordered).await, [("pending".to_owned(), 0, None)]);
    assert_eq!(rows(&off).await, [("pending".to_owned(), 0, None)]);
    // The owned deliveries go from memory (within half the margin), the queued one by a claim.
    assert_eq!(s.engine.drain().await.unwrap(), 7);
    assert_eq!(arrivals(&rx), (8, 8));
    let sent = rows(&quick).await;
    assert!(
        sent.iter().all(|r| r.0 == "succeeded" && r.1 == 1),
        "{sent:?}"
    );

    // Owned again; then this process "dies" holding it. After its lease another takes it over.
    post(&s).await;
    let other = engine_on(&s.url, s.clock.clone(), false).await;
    assert_eq!(other.run_once().await.unwrap(), 0, "leased, not claimable");
    s.clock.advance(Duration::seconds(16));
    assert_eq!(other.run_once().await.unwrap(), 1);
    assert_eq!(arrivals(&rx), (9, 9));
    let taken_over = rows(&quick).await;
    assert!(
        taken_over.contains(&("succeeded".to_owned(), 2, None)),
        "{taken_over:?}"
    );
    // The first process's copy waited past half the margin: given back (a no-op), not sent.
    assert_eq!(s.engine.run_once().await.unwrap(), 0);
    assert_eq!(arrivals(&rx), (9, 9));
}

/// A line in memory that falls behind (its head waited past half the lease margin, so its lease
/// may not cover a request any more) goes back to the queue whole: the queue then sends it in its
/// order, oldest first, instead of the younger deliveries going from memory while the older ones
/// are claimed again behind them. Each event still arrives once.
async fn a_line_that_falls_behind_goes_back_whole(backend: Backend) {
    let Some(s) = setup_with(backend, "engine_line_back", true).await else {
        return;
    };
    let rx = TestReceiver::start().await;
    let quick = s
        .webhook(json!({"name": "Quick", "url": rx.url, "event_types": ["points.awarded"]}))
        .await;
    // A first claim comes back short: new deliveries may skip the queue.
    assert_eq!(s.engine.run_once().await.unwrap(), 0);
    post(&s).await;
    s.clock.advance(Duration::seconds(2));
    post(&s).await;
    let rows = delivery_rows(&s.url, quick.to_string()).await;
    assert!(
        rows.iter().all(|r| r.0 == "in_flight" && r.1 == 1) && rows.len() == 2,
        "both owned, waiting in memory: {rows:?}"
    );
    // The older has now waited 5.5 s, past half the 10 s margin; the younger 3.5 s.
    s.clock.advance(Duration::milliseconds(3500));
    assert_eq!(s.engine.drain().await.unwrap(), 2);
    assert_eq!(arrivals(&rx), (2, 2), "each event once");
    assert_eq!(
        claim_counts(&s.url).await,
        [2, 2],
        "both claimed again, neither sent from memory"
    );
}

/// A change an admin makes reaches the deliveries already claimed and waiting in memory for a
/// request slot: switched off, the webhook sends nothing more (those go back to the queue and are
/// held there); given a new URL, the rest go to the new one. Each event still arrives once.
async fn a_change_reaches_deliveries_waiting_in_memory(backend: Backend) {
    let Some(s) = setup(backend, "engine_change_waiting").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    let id = webhook_with_six_events(&s, "Busy", &rx.url).await;
    // A new webhook starts with two slots: two go, four wait in memory, claimed.
    assert_eq!(s.engine.run_once().await.unwrap(), 2);
    assert_eq!(rx.received().len(), 2);
    let patch = |enabled: Option<bool>, url: Option<&str>| herald::domain::settings::WebhookPatch {
        enabled,
        url: url.map(str::to_owned),
        ..Default::default()
    };
    s.engine
        .update_webhook(&s.admin, &id, patch(Some(false), None))
        .await
        .unwrap();
    assert_eq!(s.engine.drain().await.unwrap(), 0, "nothing more goes out");
    assert_eq!(rx.received().len(), 2);
    let rows = delivery_rows(&s.url, id.to_string()).await;
    let pending = rows.iter().filter(|r| r.0 == "pending").count();
    assert_eq!(pending, 4, "the four waiting are held: {rows:?}");
    assert_eq!(
        held(&s).await,
        4,
        "due only when switched on, like every held delivery"
    );

    // Switched on at a new URL: the held four go there.
    let second = TestReceiver::start().await;
    s.engine
        .update_webhook(&s.admin, &id, patch(Some(true), Some(&second.url)))
        .await
        .unwrap();
    assert_eq!(s.engine.drain().await.unwrap(), 4);
    assert_eq!(second.received().len(), 4);

    // Deliveries waiting in memory when the URL changes go to the new URL.
    for _ in 0..30 {
        post(&s).await;
    }
    let sent = s.engine.run_once().await.unwrap();
    assert!(sent < 30, "some wait in memory: {sent} went at once");
    assert_eq!(second.received().len(), 4 + sent);
    let third = TestReceiver::start().await;
    s.engine
        .update_webhook(&s.admin, &id, patch(None, Some(&third.url)))
        .await
        .unwrap();
    s.engine.drain().await.unwrap();
    assert_eq!(
        second.received().len(),
        4 + sent,
        "nothing more to the old URL"
    );
    assert_eq!(third.received().len(), 30 - sent);
    let events: std::collections::HashSet<String> = [&rx, &second, &third]
        .iter()
        .flat_map(|r| r.received())
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    assert_eq!(events.len(), 36, "each event once");
}

/// Herald switching a webhook off (410 Gone) stops what it has waiting in memory too: the gone
/// endpoint gets no more requests, and those deliveries are held with the rest.
async fn a_gone_endpoint_gets_nothing_more_from_memory(backend: Backend) {
    let Some(s) = setup(backend, "engine_gone_waiting").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    let id = webhook_with_six_events(&s, "Gone", &rx.url).await;
    rx.script([Reply::Status(410), Reply::Status(410)]);
    assert_eq!(s.engine.run_once().await.unwrap(), 2);
    let w = s.engine.get_webhook(&s.admin.program, &id).await.unwrap();
    assert!(!w.record.enabled, "switched off by the 410");
    assert_eq!(s.engine.drain().await.unwrap(), 0);
    assert_eq!(rx.received().len(), 2, "nothing more to a gone endpoint");
    let rows = delivery_rows(&s.url, id.to_string()).await;
    assert_eq!(
        rows.iter().filter(|r| r.0 == "pending").count(),
        6,
        "all six held (two to retry, four never sent): {rows:?}"
    );
    assert_eq!(held(&s).await, 6);
}

/// A delivery waiting for its rate-limit send slot is checked again when the slot comes: a
/// webhook switched off meanwhile gets nothing more, and the delivery is held.
async fn a_switch_off_reaches_a_delivery_waiting_for_its_send_slot(backend: Backend) {
    let Some(s) = setup(backend, "engine_off_at_slot").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    let mut d = draft(
        "Limited",
        &rx.url,
        json!({"attempts": 3, "delay_seconds": 60, "backoff": "fixed", "timeout_seconds": 5}),
    );
    d.rate_limit_per_second = Some(1);
    let id = s
        .engine
        .create_webhook(&s.admin, &d)
        .await
        .unwrap()
        .webhook
        .record
        .id;
    post(&s).await;
    post(&s).await;
    // One step claims both: the first goes at once, the second waits a second for its slot.
    let step = tokio::spawn({
        let engine = s.engine.clone();
        async move { engine.run_once().await.unwrap() }
    });
    rx.wait_for(1, std::time::Duration::from_secs(30)).await;
    let off = herald::domain::settings::WebhookPatch {
        enabled: Some(false),
        ..Default::default()
    };
    s.engine.update_webhook(&s.admin, &id, off).await.unwrap();
    assert_eq!(step.await.unwrap(), 2, "both were claimed");
    assert_eq!(rx.received().len(), 1, "nothing sent after the switch-off");
    assert_eq!(held(&s).await, 1, "the second is held");
    assert_eq!(s.engine.drain().await.unwrap(), 0);
    assert_eq!(rx.received().len(), 1);
}

/// A change made through another process reaches the deliveries this one holds in memory: that
/// process announces it (PostgreSQL `NOTIFY`), and this one sends nothing more with the old
/// settings. (One process owns a SQLite file, so this is PostgreSQL's alone.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_change_reaches_deliveries_waiting_in_memory() {
    let Some(s) = setup(Backend::Postgres, "engine_change_elsewhere").await else {
        return;
    };
    s.engine.listen_to_other_processes().await.unwrap();
    let (other, _) = manual_engine(&s.url).await;
    let rx = TestReceiver::start().await;
    let id = webhook_with_six_events(&s, "Busy", &rx.url).await;
    assert_eq!(s.engine.run_once().await.unwrap(), 2);
    let off = herald::domain::settings::WebhookPatch {
        enabled: Some(false),
        ..Default::default()
    };
    let off = other.update_webhook(&s.admin, &id, off).await.unwrap();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        s.engine.learn_change(&id, off.webhook.record.version),
    )
    .await
    .expect("the other process's change is announced");
    assert_eq!(s.engine.drain().await.unwrap(), 0, "nothing more goes out");
    assert_eq!(rx.received().len(), 2);
    assert_eq!(held(&s).await, 4);
}

/// A change whose announcement was missed (made while this process's LISTEN connection was
/// down) still reaches the deliveries it holds in memory: once the listener is connected again
/// it reads every webhook's version. The missed announcement is simulated by a switch-off that
/// announces nothing, then the listener's connection is cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_missed_while_disconnected_is_caught_up() {
    let Some(s) = setup(Backend::Postgres, "engine_change_missed").await else {
        return;
    };
    s.engine.listen_to_other_processes().await.unwrap();
    let rx = TestReceiver::start().await;
    let id = webhook_with_six_events(&s, "Busy", &rx.url).await;
    assert_eq!(s.engine.run_once().await.unwrap(), 2);
    let pool = sqlx::PgPool::connect(&s.url).await.unwrap();
    let version: i64 = sqlx::query_scalar(
        "UPDATE webhooks SET enabled = FALSE, version = version + 1 WHERE id = $1 RETURNING version",
    )
    .bind(id.to_string())
    .fetch_one(&pool)
    .await
    .unwrap();
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(cut, [true], "one listener connection was cut");
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        s.engine.learn_change(&id, version),
    )
    .await
    .expect("the listener catches up after reconnecting");
    assert_eq!(s.engine.drain().await.unwrap(), 0, "nothing more goes out");
    assert_eq!(rx.received().len(), 2);
    assert_eq!(held(&s).await, 4);
}

/// A webhook (three tries, a minute apart) with six events accepted for it, none sent yet.
async fn webhook_with_six_events(
    s: &Setup,
    name: &str,
    url: &str,
) -> herald::domain::ids::WebhookId {
    let retry =
        json!({"attempts": 3, "delay_seconds": 60, "backoff": "fixed", "timeout_seconds": 5});
    let saved = s
        .engine
        .create_webhook(&s.admin, &draft(name, url, retry))
        .await
        .unwrap();
    for _ in 0..6 {
        post(s).await;
    }
    saved.webhook.record.id
}

/// Pending deliveries of the program due only when their webhook is switched on.
async fn held(s: &Setup) -> usize {
    let pending = s
        .engine
        .store()
        .list_deliveries(
            &s.admin.program,
            &DeliveryQuery {
                status: Some(DeliveryStatus::Pending),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items;
    pending
        .iter()
        .filter(|d| d.next_attempt_at.year() == 9999)
        .count()
}

/// (status, claim count, lease expiry while in flight) of each delivery of a webhook.
async fn delivery_rows(
    url: &str,
    webhook: String,
) -> Vec<(String, i64, Option<chrono::DateTime<chrono::Utc>>)> {
    let sql = "SELECT status, claim_count, CASE WHEN status = 'in_flight' \
               THEN lease_expires_at END FROM deliveries WHERE webhook_id = $1 ORDER BY status";
    if url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        sqlx::query_as(sql)
            .bind(webhook)
            .fetch_all(&pool)
            .await
            .unwrap()
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::query_as(sql)
            .bind(webhook)
            .fetch_all(&pool)
            .await
            .unwrap()
    }
}

/// Requests the receiver got, and how many distinct events they carried.
fn arrivals(rx: &TestReceiver) -> (usize, usize) {
    let got = rx.received();
    let ids: std::collections::HashSet<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    (got.len(), ids.len())
}

async fn claim_counts(url: &str) -> Vec<i64> {
    let sql = "SELECT claim_count FROM deliveries";
    if url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap()
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap()
    }
}

on_both_backends!(
    new_deliveries_skip_a_drained_queue,
    a_line_that_falls_behind_goes_back_whole,
    a_change_reaches_deliveries_waiting_in_memory,
    a_gone_endpoint_gets_nothing_more_from_memory,
    a_switch_off_reaches_a_delivery_waiting_for_its_send_slot,
    a_backlog_waits_in_memory_for_its_slots_and_is_claimed_once,
    a_gone_endpoint_is_disabled_and_its_delivery_held,
    a_written_retry_schedule_is_followed,
    retry_schedule_follows_the_clock,
    a_crash_loop_is_dead_lettered,
    a_members_events_are_found_in_the_audit_log,
    hostile_response_bodies_are_recorded_and_block_nothing,
    fan_out_sees_other_processes_webhook_changes_at_once,
    ingest_is_not_starved_by_a_storm_of_webhook_changes,
);
