//! The storage conformance suite: every test runs against SQLite and PostgreSQL with the same
//! assertions, so the two backends cannot drift apart.

mod support;

use chrono::{Duration, TimeZone, Utc};
use herald::delivery::queue::{Claim, NextStep, Outcome};
use herald::domain::account::Role;
use herald::domain::delivery::{AttemptStatus, DeliveryStatus, Trigger};
use herald::domain::event::{EventType, MEMBER_MAX_CHARS};
use herald::domain::filter::Filter;
use herald::domain::ids::{AttemptId, DeliveryId, EventId, ProgramId, WebhookId};
use herald::domain::webhook::{AuthKind, RetryPolicy, TargetUrl, WebhookName};
use herald::store::*;
use std::sync::Arc;

fn webhook(program: &ProgramId, name: &str, created: chrono::DateTime<Utc>) -> WebhookRecord {
    WebhookRecord {
        id: WebhookId::generate(),
        program_id: program.clone(),
        name: WebhookName::parse(name).unwrap(),
        url: TargetUrl::parse("https://example.com/hooks").unwrap(),
        method: "POST".into(),
        description: "test".into(),
        auth_kind: AuthKind::Signature,
        auth_param: None,
        sealed_secrets: "sealed".into(),
        event_types: vec!["points.awarded".into(), "reward.redeemed".into()],
        filter: Filter::default(),
        headers: vec![herald::domain::headers::StoredHeader {
            name: "X-Tenant".into(),
            value: Some("acme".into()),
            secret: false,
        }],
        ordering_key: None,
        retry: RetryPolicy::default(),
        rate_limit_per_second: None,
        sandbox: false,
        enabled: true,
        version: 1,
        created_at: created,
        updated_at: created,
    }
}

/// A new program named `name` (not the default), to insert.
fn program(name: &str) -> ProgramRecord {
    ProgramRecord {
        id: ProgramId::generate(),
        name: name.into(),
        is_default: false,
        archived_at: None,
        created_at: now(),
    }
}

fn event(program: &ProgramId, event_type: &str) -> StoredEvent {
    let now = now();
    StoredEvent {
        program_id: program.clone(),
        member: None,
        id: EventId::generate(),
        event_type: EventType::parse(event_type).unwrap(),
        event_timestamp: now,
        body: format!(r#"{{"event_type":"{event_type}"}}"#),
        created_at: now,
    }
}

/// The results of `claimed_twice`'s two workers: the stale one succeeded, the current one failed
/// and schedules a retry 30 s after `at` (returned last).
fn raced_results(
    stale: &Claim,
    current: &Claim,
    at: chrono::DateTime<Utc>,
) -> (Outcome, Outcome, chrono::DateTime<Utc>) {
    let retry_at = at + Duration::seconds(30);
    (
        outcome(stale, NextStep::Succeeded, AttemptStatus::Success, at),
        outcome(
            current,
            NextStep::RetryAt(retry_at),
            AttemptStatus::Failure,
            at,
        ),
        retry_at,
    )
}

/// The audit log's first page, newest first, without filters.
async fn latest_attempts(store: &Arc<dyn Store>, program: &ProgramId, limit: u32) -> AttemptPage {
    store
        .list_attempts(
            program,
            &AttemptQuery {
                limit,
                ..Default::default()
            },
        )
        .await
        .unwrap()
}

/// A worker's result for its claim: the try it made and what follows.
fn outcome(c: &Claim, next: NextStep, status: AttemptStatus, at: chrono::DateTime<Utc>) -> Outcome {
    Outcome {
        delivery_id: c.delivery_id.clone(),
        claim_count: c.claim_count,
        ordered: false,
        next,
        attempt: attempt_for(c, status, at),
    }
}

/// One delivery to a new webhook named `name`, claimed, then (its lease run out: request timeout
/// 15 s + 5 s margin) claimed again by another worker. Returns both claims and when the second
/// was taken.
async fn claimed_twice(
    store: &Arc<dyn Store>,
    name: &str,
) -> (
    ProgramId,
    WebhookRecord,
    Claim,
    Claim,
    chrono::DateTime<Utc>,
) {
    let p = store.default_program().await.unwrap();
    let w = webhook(&p, name, now());
    store.insert_webhook(&w).await.unwrap();
    store
        .ingest(&event(&p, "points.awarded"), std::slice::from_ref(&w.id))
        .await
        .unwrap();
    let t0 = now();
    let mut first = store
        .claim_due(t0, 10, Duration::seconds(5), &[])
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        store
            .claim_due(t0, 10, Duration::seconds(5), &[])
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );
    let later = t0 + Duration::seconds(21);
    let mut second = store
        .claim_due(later, 10, Duration::seconds(5), &[])
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    (p, w, first.remove(0), second.remove(0), later)
}

/// A try of a webhook `w` logged at `at`, one event of its own (not stored), taking `latency_ms`
/// as a tag the audit-log tests read rows back by; a failure when `latency_ms` is even.
fn logged(w: &WebhookRecord, at: chrono::DateTime<Utc>, latency_ms: i64) -> NewAttempt {
    NewAttempt {
        id: AttemptId::generate(),
        program_id: w.program_id.clone(),
        webhook_id: w.id.clone(),
        webhook_name: w.name.as_str().to_owned(),
        delivery_id: None,
        event_id: EventId::generate(),
        event_accepted_at: None,
        event_type: EventType::parse("points.awarded").unwrap(),
        attempt: 1,
        trigger: Trigger::Event,
        status: if latency_ms % 2 == 0 {
            AttemptStatus::Failure
        } else {
            AttemptStatus::Success
        },
        status_code: Some(200),
        error: None,
        latency_ms: Some(latency_ms),
        lag_ms: None,
        request_url: "https://example.com".into(),
        request_headers: vec![],
        request_body: Some("{}".into()),
        response_headers: None,
        response_body: None,
        created_at: at,
        delivered_at: None,
        superseded: false,
    }
}

/// An audit-log search for `text`, `limit` rows a page, with `f`'s other filters.
fn searching(text: &str, limit: u32, f: &dyn Fn(&mut AttemptQuery)) -> AttemptQuery {
    let mut q = AttemptQuery {
        search: Some(text.into()),
        limit,
        ..Default::default()
    };
    f(&mut q);
    q
}

fn attempt_for(c: &Claim, status: AttemptStatus, at: chrono::DateTime<Utc>) -> NewAttempt {
    NewAttempt {
        id: AttemptId::generate(),
        program_id: c.webhook.record.program_id.clone(),
        webhook_id: c.webhook.record.id.clone(),
        webhook_name: c.webhook.record.name.as_str().to_owned(),
        delivery_id: Some(c.delivery_id.clone()),
        event_id: c.event_id.clone(),
        event_accepted_at: Some(c.accepted_at),
        event_type: c.event_type.clone(),
        attempt: c.tries + 1,
        trigger: if c.tries == 0 {
            c.trigger
        } else {
            Trigger::Retry
        },
        status,
        status_code: Some(if status == AttemptStatus::Success {
            200
        } else {
            500
        }),
        error: (status == AttemptStatus::Failure).then(|| "HTTP 500".to_owned()),
        latency_ms: Some(12),
        lag_ms: Some(40),
        request_url: c.webhook.record.url.as_str().to_owned(),
        request_headers: vec![("content-type".into(), "application/json".into())],
        request_body: None,
        response_headers: Some(vec![]),
        response_body: Some("ok".into()),
        created_at: at,
        delivered_at: Some(at),
        superseded: false,
    }
}

async fn creates_and_reads_webhooks(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    assert_eq!(store.default_program().await.unwrap(), p);
    let w = webhook(&p, "Rewards CRM", now());
    store.insert_webhook(&w).await.unwrap();
    let got = store.get_webhook(&p, &w.id).await.unwrap().expect("stored");
    assert_eq!(got.record, w);
    assert_eq!(
        got.stats,
        WebhookStats {
            enabled_at: Some(w.created_at),
            ..WebhookStats::default()
        },
        "switched on at its creation"
    );
    assert_eq!(got.success_rate(), None);

    let mut changed = w.clone();
    changed.name = WebhookName::parse("Rewards CRM v2").unwrap();
    changed.event_types = vec!["user.created".into()];
    changed.enabled = false;
    changed.headers.push(herald::domain::headers::StoredHeader {
        name: "X-Token".into(),
        value: None,
        secret: true,
    });
    changed.updated_at = now();
    store.update_webhook(&changed).await.unwrap();
    let got = store.get_webhook(&p, &w.id).await.unwrap().unwrap();
    assert_eq!(
        got.record,
        WebhookRecord {
            version: 2,
            ..changed.clone()
        }
    );

    // A write from the version before is stale: refused, nothing changed.
    let mut late = changed.clone();
    late.description = "lost update".into();
    assert!(matches!(
        store.update_webhook(&late).await,
        Err(StoreError::Stale)
    ));
    let got = store.get_webhook(&p, &w.id).await.unwrap().unwrap();
    assert_eq!(
        (got.record.version, got.record.description.as_str()),
        (2, "test")
    );

    let other = ProgramId::generate();
    assert!(store.get_webhook(&other, &w.id).await.unwrap().is_none());
}

async fn lists_filter_by_date_and_name(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let day = |d| Utc.with_ymd_and_hms(2026, 11, d, 12, 0, 0).unwrap();
    for (name, d) in [
        ("Points Sync", 1),
        ("Tier Updates", 5),
        ("points audit", 10),
    ] {
        store
            .insert_webhook(&webhook(&p, name, day(d)))
            .await
            .unwrap();
    }
    let names = |ws: Vec<Webhook>| -> Vec<String> {
        ws.into_iter()
            .map(|w| w.record.name.as_str().to_owned())
            .collect()
    };
    let all = store
        .list_webhooks(&p, &WebhookQuery::default())
        .await
        .unwrap();
    assert_eq!(names(all), ["points audit", "Tier Updates", "Points Sync"]);

    let q = WebhookQuery {
        name: Some("POINTS".into()),
        ..Default::default()
    };
    assert_eq!(
        names(store.list_webhooks(&p, &q).await.unwrap()),
        ["points audit", "Points Sync"]
    );

    let q = WebhookQuery {
        created_from: Some(day(2)),
        created_before: Some(day(10)),
        ..Default::default()
    };
    assert_eq!(
        names(store.list_webhooks(&p, &q).await.unwrap()),
        ["Tier Updates"]
    );

    // A page at a time: after a page's last webhook, newest first.
    let page = |after: Option<WebhookCursor>| WebhookQuery {
        after,
        limit: Some(2),
        ..Default::default()
    };
    let first = store.list_webhooks(&p, &page(None)).await.unwrap();
    let last = &first[1].record;
    let cursor = WebhookCursor {
        created_at: last.created_at,
        id: last.id.clone(),
    };
    assert_eq!(
        WebhookCursor::decode(&cursor.encode()),
        Some(cursor.clone())
    );
    assert_eq!(names(first), ["points audit", "Tier Updates"]);
    let rest = store.list_webhooks(&p, &page(Some(cursor))).await.unwrap();
    assert_eq!(names(rest), ["Points Sync"]);

    // LIKE wildcards in the search are literal.
    let q = WebhookQuery {
        name: Some("%".into()),
        ..Default::default()
    };
    assert!(store.list_webhooks(&p, &q).await.unwrap().is_empty());
}

async fn names_are_unique_per_program_ignoring_case(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let first = webhook(&p, "Loyalty Hub", now());
    store.insert_webhook(&first).await.unwrap();
    let err = store
        .insert_webhook(&webhook(&p, "loyalty hub", now()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { field: "name" }),
        "{err:?}"
    );

    // Renaming another webhook onto the name collides too, and changes nothing.
    let second = webhook(&p, "Other", now());
    store.insert_webhook(&second).await.unwrap();
    let mut clash = second.clone();
    clash.name = WebhookName::parse("LOYALTY HUB").unwrap();
    assert!(matches!(
        store.update_webhook(&clash).await,
        Err(StoreError::Conflict { .. })
    ));
    let unchanged = store.get_webhook(&p, &second.id).await.unwrap().unwrap();
    assert_eq!(unchanged.record.name.as_str(), "Other");

    // Once deleted, the name is free again.
    assert!(store.delete_webhook(&p, &first.id).await.unwrap());
    store
        .insert_webhook(&webhook(&p, "Loyalty Hub", now()))
        .await
        .unwrap();
}

async fn deleting_a_webhook_keeps_its_audit_rows(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let w = webhook(&p, "Doomed", now());
    store.insert_webhook(&w).await.unwrap();
    let e = event(&p, "points.awarded");
    assert_eq!(
        store.ingest(&e, std::slice::from_ref(&w.id)).await.unwrap(),
        Some(1)
    );
    let claimed = store
        .claim_due(now(), 10, Duration::seconds(5), &[])
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let result = outcome(
        &claimed[0],
        NextStep::Succeeded,
        AttemptStatus::Success,
        now(),
    );
    assert_eq!(
        store.record_results(&[result], now()).await.unwrap(),
        Moved::every(1)
    );

    // A second event leaves a pending delivery that deletion must stop.
    store
        .ingest(&event(&p, "points.awarded"), std::slice::from_ref(&w.id))
        .await
        .unwrap();
    assert!(store.delete_webhook(&p, &w.id).await.unwrap());
    assert!(
        !store.delete_webhook(&p, &w.id).await.unwrap(),
        "second delete is a no-op"
    );
    assert!(store.get_webhook(&p, &w.id).await.unwrap().is_none());
    assert!(store
        .list_webhooks(&p, &WebhookQuery::default())
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .claim_due(now(), 10, Duration::seconds(5), &[])
        .await
        .unwrap()
        .is_empty());

    let page = latest_attempts(&store, &p, 50).await;
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].webhook_name, "Doomed");
    let detail = store
        .get_attempt(&p, &page.items[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.response_body.as_deref(), Some("ok"));
    assert_eq!(
        detail.request_body, e.body,
        "a queued try shows the body it sent, read from its event (stored once)"
    );
}

async fn ingest_is_idempotent_and_atomic(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let a = webhook(&p, "A", now());
    let b = webhook(&p, "B", now());
    store.insert_webhook(&a).await.unwrap();
    store.insert_webhook(&b).await.unwrap();
    let e = event(&p, "reward.redeemed");
    let targets = [a.id.clone(), b.id.clone()];
    assert_eq!(store.ingest(&e, &targets).await.unwrap(), Some(2));
    assert_eq!(store.ingest(&e, &targets).await.unwrap(), None);
    let claimed = store
        .claim_due(now(), 10, Duration::seconds(5), &[])
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(claimed
        .iter()
        .all(|c| *c.body == *e.body && c.event_id == e.id));

    // A delivery to a webhook that does not exist rolls the whole event back.
    let bad = event(&p, "reward.redeemed");
    assert!(store
        .ingest(&bad, &[a.id.clone(), WebhookId::generate()])
        .await
        .is_err());
    assert_eq!(
        store
            .ingest(&bad, std::slice::from_ref(&a.id))
            .await
            .unwrap(),
        Some(1)
    );
}

/// The program's subscriber-list version for `points.awarded`, as ingest routes at it.
async fn routing_version(store: &Arc<dyn Store>, p: &ProgramId) -> i64 {
    store
        .subscribers(p, "points.awarded")
        .await
        .unwrap()
        .version
}

/// An ingest item for `event` to `targets`, routed at `version`.
fn routed_at(version: i64) -> impl Fn(&StoredEvent, Vec<WebhookId>) -> IngestItem {
    move |event, targets| IngestItem {
        event: event.clone(),
        targets: targets.into_iter().map(DeliveryTarget::from).collect(),
        routing_version: version,
    }
}

/// Small writes and large ones take different paths on SQLite (a few events and results go to
/// the connection as scripts, more go statement by statement): both store the same.
async fn small_and_large_batches_store_alike(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let w = webhook(&p, "Sizes", now());
    store.insert_webhook(&w).await.unwrap();
    let item = routed_at(routing_version(&store, &p).await);
    let mut claimed = 0;
    for size in [1, 2, 9, 40] {
        let events: Vec<StoredEvent> = (0..size).map(|_| event(&p, "points.awarded")).collect();
        // Every event once, the first one twice, and one more without webhooks.
        let mut batch: Vec<IngestItem> =
            events.iter().map(|e| item(e, vec![w.id.clone()])).collect();
        batch.push(item(&events[0], vec![w.id.clone()]));
        batch.push(item(&event(&p, "points.awarded"), vec![]));
        let results = store.ingest_batch(&batch).await.unwrap();
        let mut expected = vec![Some(1); size];
        expected.extend([None, Some(0)]);
        assert_eq!(results, expected, "a batch of {} items", batch.len());

        let claims = store
            .claim_due(now(), 100, Duration::seconds(5), &[])
            .await
            .unwrap();
        assert_eq!(claims.len(), size, "one delivery per new event");
        claimed += size as i64;
        let results: Vec<_> = claims
            .iter()
            .map(|c| outcome(c, NextStep::Succeeded, AttemptStatus::Success, now()))
            .collect();
        assert_eq!(
            store.record_results(&results, now()).await.unwrap(),
            Moved::every(size)
        );
        let counted = store.get_webhook(&p, &w.id).await.unwrap().unwrap();
        assert_eq!(counted.stats.total_attempts, claimed);
        assert_eq!(counted.stats.successful_attempts, claimed);
    }
    let page = latest_attempts(&store, &p, 100).await;
    assert_eq!(
        page.items.len() as i64,
        claimed,
        "every result in the audit log"
    );
}

async fn batched_ingest_stores_each_event_once(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let w = webhook(&p, "Batch", now());
    store.insert_webhook(&w).await.unwrap();
    let (a, b) = (event(&p, "points.awarded"), event(&p, "points.awarded"));
    store.ingest(&a, std::slice::from_ref(&w.id)).await.unwrap();
    let item = routed_at(routing_version(&store, &p).await);
    let batch = vec![
        item(&a, vec![w.id.clone()]),
        item(&b, vec![w.id.clone()]),
        item(&b, vec![w.id.clone()]),
        item(&event(&p, "points.awarded"), vec![]),
    ];
    let results = store.ingest_batch(&batch).await.unwrap();
    assert_eq!(results, [None, Some(1), None, Some(0)]);
    let claimed = store
        .claim_due(now(), 10, Duration::seconds(5), &[])
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2, "one delivery for a, one for b");
    // The sizes roll-up counts each stored event once: a, b and the one without webhooks.
    let hour = herald::domain::insights::hour_of(now());
    let sizes = |p: ProgramId| {
        let store = store.clone();
        async move { store.event_sizes(&p, hour - 1, hour + 1).await.unwrap() }
    };
    let stored = sizes(p.clone()).await;
    assert_eq!(stored.len(), 1);
    let (event_type, s) = &stored[0];
    let len = a.body.len() as i64;
    assert_eq!(event_type, "points.awarded");
    assert_eq!(
        (s.events, s.bytes_sum, s.bytes_min, s.bytes_max),
        (3, 3 * len, len, len)
    );
    assert_eq!(s.bytes_sq_sum, 3.0 * (len * len) as f64);

    // One batch may carry several programs' events, each routed at its own program's version.
    let other = program("Other");
    store.insert_program(&other).await.unwrap();
    let theirs = webhook(&other.id, "Theirs", now());
    store.insert_webhook(&theirs).await.unwrap();
    let their_version = store
        .subscribers(&other.id, "points.awarded")
        .await
        .unwrap()
        .version;
    let version = store
        .subscribers(&p, "points.awarded")
        .await
        .unwrap()
        .version;
    let mine = event(&p, "points.awarded");
    let their_event = event(&other.id, "points.awarded");
    let mixed = vec![
        IngestItem {
            routing_version: version,
            ..item(&mine, vec![w.id.clone()])
        },
        IngestItem {
            routing_version: their_version,
            ..item(&their_event, vec![theirs.id.clone()])
        },
    ];
    assert_eq!(
        store.ingest_batch(&mixed).await.unwrap(),
        [Some(1), Some(1)]
    );
    assert_eq!(sizes(other.id.clone()).await[0].1.events, 1);
    assert_eq!(sizes(p.clone()).await[0].1.events, 4);
    let claimed = store
        .claim_due(now(), 10, Duration::seconds(5), &[])
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2, "one delivery in each program");

    // A delivery to a webhook that does not exist writes nothing of the batch.
    let lost = event(&p, "points.awarded");
    let kept = event(&p, "points.awarded");
    let bad = vec![
        IngestItem {
            routing_version: version,
            ..item(&kept, vec![w.id.clone()])
        },
        IngestItem {
            routing_version: version,
            ..item(&lost, vec![WebhookId::generate()])
        },
    ];
    assert!(store.ingest_batch(&bad).await.is_err());
    assert_eq!(sizes(p.clone()).await[0].1.events, 4);
    assert_eq!(
        store.ingest_batch(&bad[..1]).await.unwrap(),
        [Some(1)],
        "the good event was not stored by the failed batch"
    );
}

/// Fan-out candidates: every live webhook subscribed to the type, switched on or off.
async fn subscribers_are_webhooks_of_the_type_on_or_off(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let on = webhook(&p, "On", now());
    let mut off = webhook(&p, "Off", now());
    off.enabled = false;
    let mut other = webhook(&p, "Other", now());
    other.event_types = vec!["user.created".into()];
    for w in [&on, &off, &other] {
        store.insert_webhook(w).await.unwrap();
    }
    let subs = store
        .subscribers(&p, "points.awarded")
        .await
        .unwrap()
        .webhooks;
    // A switched-off webhook still subscribes: its deliveries are held until it is on again.
    let mut ids: Vec<_> = subs.iter().map(|w| w.record.id.clone()).collect();
    ids.sort();
    let mut want = vec![on.id.clone(), off.id.clone()];
    want.sort();
    assert_eq!(ids, want);
    let first = subs.iter().find(|w| w.record.id == on.id).unwrap();
    assert_eq!(
        first.record.event_types,
        ["points.awarded", "reward.redeemed"]
    );
}

async fn claims_lease_retry_and_fence(store: Arc<dyn Store>) {
    // After the lease (timeout 15 s + 5 s margin) runs out, another worker takes it over.
    let (p, w, first, second, later) = claimed_twice(&store, "Flaky").await;
    assert_eq!(second.claim_count, first.claim_count + 1);
    assert_eq!(
        (second.tries, second.interruptions, second.tries_used()),
        (0, 1, 1),
        "the expired lease is counted as an interruption, which uses a try"
    );

    // The stale worker's result moves nothing but stays in the audit log, marked superseded; the
    // current one's is applied.
    let (stale, current, retry_at) = raced_results(&first, &second, later);
    assert_eq!(
        store.record_results(&[stale], now()).await.unwrap(),
        Moved::new(vec![false])
    );
    assert_eq!(
        store.record_results(&[current], now()).await.unwrap(),
        Moved::new(vec![true])
    );
    assert_eq!(store.next_due_at(&[], now()).await.unwrap(), Some(retry_at));
    assert!(store
        .claim_due(later, 10, Duration::seconds(5), &[])
        .await
        .unwrap()
        .is_empty());
    let third = store
        .claim_due(retry_at, 10, Duration::seconds(5), &[])
        .await
        .unwrap();
    assert_eq!(third[0].tries, 1);

    // No tries left: dead letter, then a replay starts over.
    let dead = outcome(
        &third[0],
        NextStep::Failed,
        AttemptStatus::Failure,
        retry_at,
    );
    store.record_results(&[dead], now()).await.unwrap();
    let q = DeliveryQuery {
        status: Some(DeliveryStatus::Failed),
        limit: 10,
        ..Default::default()
    };
    let failed = store.list_deliveries(&p, &q).await.unwrap().items;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].tries, 2);
    assert_eq!(failed[0].last_error.as_deref(), Some("HTTP 500"));
    let audit = latest_attempts(&store, &p, 10).await;
    assert_eq!(
        audit.items.iter().filter(|a| a.superseded).count(),
        1,
        "the superseded request is in the audit log"
    );
    assert_eq!(
        store
            .replay_delivery(&p, &failed[0].id, now())
            .await
            .unwrap(),
        Replayed::Requeued
    );
    assert_eq!(
        store
            .replay_delivery(&p, &DeliveryId::generate(), now())
            .await
            .unwrap(),
        Replayed::NotFound
    );
    let replayed = store
        .claim_due(now(), 10, Duration::seconds(5), &[])
        .await
        .unwrap();
    assert_eq!(
        (replayed[0].tries, replayed[0].trigger),
        (0, Trigger::Replay)
    );

    let wh = store.get_webhook(&p, &w.id).await.unwrap().unwrap();
    assert_eq!(
        (wh.stats.total_attempts, wh.stats.successful_attempts),
        (2, 0)
    );
    assert!(wh.stats.last_attempt_failed);
    assert_eq!(wh.success_rate(), Some(0.0));
}

/// Two workers finishing the same delivery within one write batch (the first's lease ran out and
/// the second took it over): only the current claim's result moves it and counts.
async fn a_stale_and_a_current_result_in_one_batch(store: Arc<dyn Store>) {
    let (p, w, first, second, later) = claimed_twice(&store, "Raced").await;
    let (stale, current, retry_at) = raced_results(&first, &second, later);
    assert_eq!(
        store
            .record_results(&[stale, current], now())
            .await
            .unwrap(),
        Moved::new(vec![false, true]),
        "one delivery moved, by its current claim"
    );
    assert_eq!(store.next_due_at(&[], now()).await.unwrap(), Some(retry_at));
    let audit = latest_attempts(&store, &p, 10).await;
    let flags: Vec<(AttemptStatus, bool)> = audit
        .items
        .iter()
        .map(|a| (a.status, a.superseded))
        .collect();
    assert_eq!(audit.items.len(), 2, "both requests are in the audit log");
    assert!(flags.contains(&(AttemptStatus::Success, true)), "{flags:?}");
    assert!(
        flags.contains(&(AttemptStatus::Failure, false)),
        "{flags:?}"
    );
    let wh = store.get_webhook(&p, &w.id).await.unwrap().unwrap();
    assert_eq!(
        (wh.stats.total_attempts, wh.stats.successful_attempts),
        (1, 0),
        "the superseded success moves no figures"
    );
}

async fn disabled_webhooks_deliveries_wait(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let mut w = webhook(&p, "Paused", now());
    store.insert_webhook(&w).await.unwrap();
    store
        .ingest(&event(&p, "points.awarded"), std::slice::from_ref(&w.id))
        .await
        .unwrap();
    w.enabled = false;
    store.update_webhook(&w).await.unwrap();
    w.version += 1;
    assert!(store
        .claim_due(now(), 10, Duration::seconds(5), &[])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.next_due_at(&[], now()).await.unwrap(),
        None,
        "nothing is due while disabled"
    );
    w.enabled = true;
    store.update_webhook(&w).await.unwrap();
    assert_eq!(
        store
            .claim_due(now(), 10, Duration::seconds(5), &[])
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn release_returns_claims(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let w = webhook(&p, "Busy", now());
    store.insert_webhook(&w).await.unwrap();
    store
        .ingest(&event(&p, "points.awarded"), std::slice::from_ref(&w.id))
        .await
        .unwrap();
    let c = store
        .claim_due(now(), 10, Duration::seconds(5), &[])
        .await
        .unwrap();
    store
        .release(&[(c[0].delivery_id.clone(), c[0].claim_count)], now())
        .await
        .unwrap();
    let again = store
        .claim_due(now(), 10, Duration::seconds(5), &[])
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].tries, 0);
}

async fn counters_count_live_attempts_only(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let w = webhook(&p, "Counted", now());
    store.insert_webhook(&w).await.unwrap();
    let base = NewAttempt {
        id: AttemptId::generate(),
        program_id: p.clone(),
        webhook_id: w.id.clone(),
        webhook_name: "Counted".into(),
        delivery_id: None,
        event_id: EventId::generate(),
        event_accepted_at: None,
        event_type: EventType::parse("points.awarded").unwrap(),
        attempt: 1,
        trigger: Trigger::Test,
        status: AttemptStatus::Failure,
        status_code: Some(500),
        error: Some("HTTP 500".into()),
        latency_ms: Some(3),
        lag_ms: None,
        request_url: "https://example.com/hooks".into(),
        request_headers: vec![],
        request_body: Some("{}".into()),
        response_headers: None,
        response_body: None,
        created_at: now(),
        delivered_at: None,
        superseded: false,
    };
    store.insert_attempt(&base).await.unwrap();
    let shown = store.get_attempt(&p, &base.id).await.unwrap().unwrap();
    assert_eq!(
        shown.request_body, "{}",
        "a test send keeps the body it sent"
    );
    let t1 = now();
    let live_ok = NewAttempt {
        id: AttemptId::generate(),
        trigger: Trigger::Event,
        status: AttemptStatus::Success,
        created_at: t1,
        ..base.clone()
    };
    store.insert_attempt(&live_ok).await.unwrap();
    let sandboxed = NewAttempt {
        id: AttemptId::generate(),
        trigger: Trigger::Event,
        status: AttemptStatus::Sandboxed,
        ..base.clone()
    };
    store.insert_attempt(&sandboxed).await.unwrap();
    // An older failure recorded late does not make the webhook look failed.
    let late_fail = NewAttempt {
        id: AttemptId::generate(),
        trigger: Trigger::Retry,
        created_at: t1 - Duration::seconds(60),
        ..base.clone()
    };
    store.insert_attempt(&late_fail).await.unwrap();

    let wh = store.get_webhook(&p, &w.id).await.unwrap().unwrap();
    assert_eq!(
        (wh.stats.total_attempts, wh.stats.successful_attempts),
        (2, 1)
    );
    assert_eq!(wh.stats.last_success_at, Some(t1));
    assert_eq!(wh.stats.last_failure_at, Some(t1 - Duration::seconds(60)));
    assert!(!wh.stats.last_attempt_failed);
    assert_eq!(wh.success_rate(), Some(50.0));
}

async fn audit_log_filters_and_pages(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let a = webhook(&p, "Alpha Hooks", now());
    let b = webhook(&p, "Beta", now());
    store.insert_webhook(&a).await.unwrap();
    store.insert_webhook(&b).await.unwrap();
    let start = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    let mut event_ids = vec![];
    for i in 0..25 {
        let w = if i % 5 == 0 { &b } else { &a };
        let logged = logged(w, start + Duration::hours(i * 12), i);
        event_ids.push(logged.event_id.to_string());
        store
            .insert_attempt(&NewAttempt {
                status: if i % 2 == 0 {
                    AttemptStatus::Success
                } else {
                    AttemptStatus::Failure
                },
                lag_ms: Some(i * 1000),
                ..logged
            })
            .await
            .unwrap();
    }
    let q = |f: &dyn Fn(&mut AttemptQuery)| {
        let mut q = AttemptQuery {
            limit: 10,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    // Paging: 25 rows, newest first, in pages of 10 forward and back.
    let p1 = store.list_attempts(&p, &q(&|_| {})).await.unwrap();
    assert_eq!(p1.items.len(), 10);
    assert!(p1.prev.is_none());
    assert_eq!(p1.items[0].latency_ms, Some(24));
    assert_eq!(
        p1.items[0].lag_ms,
        Some(24_000),
        "lag is stored and read back"
    );
    let p2 = store
        .list_attempts(&p, &q(&|q| q.cursor = p1.next.clone()))
        .await
        .unwrap();
    assert_eq!(p2.items[0].latency_ms, Some(14));
    let p3 = store
        .list_attempts(&p, &q(&|q| q.cursor = p2.next.clone()))
        .await
        .unwrap();
    assert_eq!(p3.items.len(), 5);
    assert!(p3.next.is_none());
    let back = store
        .list_attempts(&p, &q(&|q| q.cursor = p3.prev.clone()))
        .await
        .unwrap();
    assert_eq!(back.items, p2.items);
    let first = store
        .list_attempts(&p, &q(&|q| q.cursor = back.prev.clone()))
        .await
        .unwrap();
    assert_eq!(first.items, p1.items);
    assert!(first.prev.is_none(), "nothing newer than the first page");
    let decoded = Cursor::decode(&p1.next.clone().unwrap().encode());
    assert_eq!(decoded, p1.next);

    // Filters: webhook, date range, status, event id, webhook name.
    let by_b = store
        .list_attempts(&p, &q(&|q| q.webhook_id = Some(b.id.clone())))
        .await
        .unwrap();
    assert_eq!(by_b.items.len(), 5);
    let day2 = store
        .list_attempts(
            &p,
            &q(&|q| {
                q.created_from = Some(start + Duration::days(2));
                q.created_before = Some(start + Duration::days(3));
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        day2.items
            .iter()
            .map(|a| a.latency_ms.unwrap())
            .collect::<Vec<_>>(),
        [5, 4]
    );
    let failures = store
        .list_attempts(
            &p,
            &q(&|q| {
                q.status = Some(AttemptStatus::Failure);
                q.limit = 100;
            }),
        )
        .await
        .unwrap();
    assert_eq!(failures.items.len(), 12);
    let one = store
        .list_attempts(&p, &q(&|q| q.search = Some(event_ids[7].clone())))
        .await
        .unwrap();
    assert_eq!(one.items.len(), 1);
    let alpha = store
        .list_attempts(
            &p,
            &q(&|q| {
                q.search = Some("alpha".into());
                q.limit = 100;
            }),
        )
        .await
        .unwrap();
    assert_eq!(alpha.items.len(), 20);
}

/// The search by webhook name reads the matching webhooks' attempts and merges them in order:
/// pages forward and back agree with the whole list, an attempt carries the name it was made
/// under (a renamed webhook's older attempts answer to the old name), an event id still finds
/// its attempt, the other filters still apply, and a search matching many webhooks (past the
/// merge) finds the same rows.
async fn audit_search_by_name_merges_matching_webhooks(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let start = Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap();
    let mut hooks = vec![];
    for name in ["Alpha Hooks", "Alphabet", "Beta"] {
        let w = webhook(&p, name, now());
        store.insert_webhook(&w).await.unwrap();
        hooks.push(w);
    }
    for i in 0..70 {
        let w = webhook(&p, &format!("Many {i:02}"), now());
        store.insert_webhook(&w).await.unwrap();
        hooks.push(w);
    }
    let attempt = |w: &WebhookRecord, name: &str, i: i64| NewAttempt {
        webhook_name: name.to_owned(),
        ..logged(w, start + Duration::minutes(i), i)
    };
    // Interleaved in time: 0 Alpha Hooks, 1 Alphabet, 2 Beta, 3 Alpha Hooks, ...
    let mut written = vec![];
    for i in 0..30 {
        let w = &hooks[(i % 3) as usize];
        let a = attempt(w, w.name.as_str(), i);
        store.insert_attempt(&a).await.unwrap();
        written.push(a);
    }
    for (i, w) in hooks[3..].iter().enumerate() {
        store
            .insert_attempt(&attempt(w, w.name.as_str(), 100 + i as i64))
            .await
            .unwrap();
    }
    // "Beta" becomes "Gamma"; its next attempts carry the new name.
    let mut renamed = hooks[2].clone();
    renamed.name = WebhookName::parse("Gamma").unwrap();
    store.update_webhook(&renamed).await.unwrap();
    for i in 200..204 {
        store
            .insert_attempt(&attempt(&renamed, "Gamma", i))
            .await
            .unwrap();
    }
    let search = |text: &str, f: &dyn Fn(&mut AttemptQuery)| searching(text, 4, f);
    let latencies = |items: &[AttemptSummary]| {
        items
            .iter()
            .map(|a| a.latency_ms.unwrap())
            .collect::<Vec<_>>()
    };

    // "alpha" matches two webhooks: 20 rows, newest first, in pages of 4 and back again.
    let mut pages = vec![store
        .list_attempts(&p, &search("ALPHA", &|_| {}))
        .await
        .unwrap()];
    while let Some(next) = pages.last().unwrap().next.clone() {
        let page = store
            .list_attempts(&p, &search("ALPHA", &|q| q.cursor = Some(next.clone())))
            .await
            .unwrap();
        pages.push(page);
    }
    let all: Vec<i64> = pages.iter().flat_map(|p| latencies(&p.items)).collect();
    let expected: Vec<i64> = (0..30).rev().filter(|i| i % 3 != 2).collect();
    assert_eq!(all, expected);
    assert_eq!(pages.len(), 5);
    let back = store
        .list_attempts(&p, &search("ALPHA", &|q| q.cursor = pages[4].prev.clone()))
        .await
        .unwrap();
    assert_eq!(back.items, pages[3].items, "paging back through the merge");

    // A renamed webhook: each attempt answers to the name it was made under.
    let beta = store
        .list_attempts(&p, &search("beta", &|q| q.limit = 100))
        .await
        .unwrap();
    assert_eq!(beta.items.len(), 10);
    assert!(beta.items.iter().all(|a| a.webhook_name == "Beta"));
    let gamma = store
        .list_attempts(&p, &search("gamma", &|q| q.limit = 100))
        .await
        .unwrap();
    assert_eq!(latencies(&gamma.items), [203, 202, 201, 200]);

    // An event id, and the other filters alongside a name.
    let one = store
        .list_attempts(&p, &search(written[4].event_id.as_str(), &|_| {}))
        .await
        .unwrap();
    assert_eq!(latencies(&one.items), [4]);
    let failed_alphabet = store
        .list_attempts(
            &p,
            &search("alpha", &|q| {
                q.status = Some(AttemptStatus::Failure);
                q.webhook_id = Some(hooks[1].id.clone());
                q.created_from = Some(start + Duration::minutes(10));
                q.limit = 100;
            }),
        )
        .await
        .unwrap();
    assert_eq!(latencies(&failed_alphabet.items), [28, 22, 16, 10]);

    // 70 webhooks named "Many …": more than are merged one by one; the same rows either way.
    let many = store
        .list_attempts(&p, &search("many", &|q| q.limit = 100))
        .await
        .unwrap();
    assert_eq!(latencies(&many.items), (100..170).rev().collect::<Vec<_>>());
    let many_07 = store
        .list_attempts(&p, &search("many 07", &|_| {}))
        .await
        .unwrap();
    assert_eq!(latencies(&many_07.items), [107]);
    let none = store
        .list_attempts(&p, &search("zeta", &|_| {}))
        .await
        .unwrap();
    assert!(none.items.is_empty() && none.next.is_none());
}

/// Events stored before migration 0027 name their member only in their body: the backfill's
/// walk gives them their member a page at a time (`member_id`, else `user_id`; none when the body
/// names none or one too long to index), leaves events that have one as they are, ends, and the
/// audit log's search then finds them.
async fn the_backfill_gives_earlier_events_their_member(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let w = webhook(&p, "Points sync", now());
    store.insert_webhook(&w).await.unwrap();
    let earlier = |body: &str| StoredEvent {
        body: body.to_owned(),
        ..event(&p, "points.awarded")
    };
    let too_long = "m".repeat(MEMBER_MAX_CHARS + 1);
    let events = [
        earlier(r#"{"member_id":"m_1","user_id":"u_9"}"#),
        earlier(r#"{"user_id":"u_2"}"#),
        earlier(r#"{"member_id":"m_1"}"#),
        earlier(r#"{"data":{}}"#),
        earlier(&format!(r#"{{"member_id":"{too_long}"}}"#)),
        StoredEvent {
            member: Some("m_3".into()),
            ..earlier(r#"{"member_id":"m_3"}"#)
        },
        earlier(r#"{"member_id":"m_4"}"#),
    ];
    for (i, e) in events.iter().enumerate() {
        assert_eq!(store.ingest(e, &[]).await.unwrap(), Some(0));
        let a = NewAttempt {
            event_id: e.id.clone(),
            event_accepted_at: Some(e.created_at),
            ..logged(&w, e.created_at, i as i64)
        };
        store.insert_attempt(&a).await.unwrap();
    }
    let found = |member: &str| {
        let (store, p) = (store.clone(), p.clone());
        let q = searching(member, 100, &|_| {});
        async move {
            let page = store.list_attempts(&p, &q).await.unwrap();
            let mut latencies: Vec<i64> = page.items.iter().filter_map(|a| a.latency_ms).collect();
            latencies.sort();
            latencies
        }
    };
    assert!(found("m_1").await.is_empty(), "not found before the walk");

    let mut steps = vec![];
    while let Some(step) = store.backfill_members(2).await.unwrap() {
        steps.push(step);
        assert!(steps.len() <= 10, "the walk ends: {steps:?}");
    }
    // Seven events in pages of two; the short last page ends the walk.
    let read: Vec<u64> = steps.iter().map(|s| s.read).collect();
    assert_eq!(read, [2, 2, 2, 1]);
    let filled: u64 = steps.iter().map(|s| s.filled).sum();
    assert_eq!(filled, 4, "m_1 twice, u_2 and m_4: {steps:?}");
    assert!(steps.last().unwrap().done && steps[..3].iter().all(|s| !s.done));
    assert_eq!(
        store.backfill_members(2).await.unwrap(),
        None,
        "done stays done"
    );

    assert_eq!(found("m_1").await, [0, 2]);
    assert_eq!(found("u_2").await, [1]);
    assert_eq!(found("m_3").await, [5]);
    assert_eq!(found("m_4").await, [6]);
    assert!(found("u_9").await.is_empty(), "member_id comes first");
    assert!(found(&too_long).await.is_empty());
}

/// A member id in the audit log's search finds the attempts of the events about that member,
/// exactly as given, through both ways a search is answered: pieces merged one by one, and, once
/// more webhooks' names hold the text than are merged that way, a walk of the program's attempts.
async fn audit_search_finds_a_members_events(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let w = webhook(&p, "Points sync", now());
    store.insert_webhook(&w).await.unwrap();
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
    let about = |member: Option<&str>| StoredEvent {
        member: member.map(str::to_owned),
        ..event(&p, "points.awarded")
    };
    let events = [
        about(Some("m_1")),
        about(Some("m_2")),
        about(Some("m_1")),
        about(None),
    ];
    let attempt = |w: &WebhookRecord, e: Option<&StoredEvent>, minute: i64| {
        let a = logged(w, start + Duration::minutes(minute), minute);
        match e {
            Some(e) => NewAttempt {
                event_id: e.id.clone(),
                event_accepted_at: Some(e.created_at),
                request_body: Some(String::new()),
                ..a
            },
            None => a,
        }
    };
    // Event i's two tries at minutes 10i and 10i + 1.
    for (i, e) in events.iter().enumerate() {
        assert_eq!(store.ingest(e, &[]).await.unwrap(), Some(0));
        for k in 0..2 {
            let a = attempt(&w, Some(e), 10 * i as i64 + k);
            store.insert_attempt(&a).await.unwrap();
        }
    }
    let search = |text: &str, f: &dyn Fn(&mut AttemptQuery)| searching(text, 100, f);
    let found = |q: AttemptQuery| {
        let store = store.clone();
        let p = p.clone();
        async move {
            let page = store.list_attempts(&p, &q).await.unwrap();
            let minutes: Vec<i64> = page.items.iter().map(|a| a.latency_ms.unwrap()).collect();
            (minutes, page.next)
        }
    };
    assert_eq!(found(search("m_1", &|_| {})).await.0, [21, 20, 1, 0]);
    // Each row names its event's member, in the list and in the attempt's detail.
    let page = store.list_attempts(&p, &search("", &|_| {})).await.unwrap();
    let members: Vec<Option<&str>> = page.items.iter().map(|a| a.member.as_deref()).collect();
    assert_eq!(
        members,
        [
            None,
            None,
            Some("m_1"),
            Some("m_1"),
            Some("m_2"),
            Some("m_2"),
            Some("m_1"),
            Some("m_1")
        ]
    );
    let detail = store
        .get_attempt(&p, &page.items[2].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.summary.member.as_deref(), Some("m_1"));
    let detail = store
        .get_attempt(&p, &page.items[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.summary.member, None);
    assert_eq!(found(search(" m_2 ", &|_| {})).await.0, [11, 10]);
    assert!(found(search("M_1", &|_| {})).await.0.is_empty(), "exact");
    assert!(found(search("m_", &|_| {})).await.0.is_empty(), "whole");
    assert_eq!(
        found(search("m_1", &|q| q.status = Some(AttemptStatus::Success)))
            .await
            .0,
        [21, 1]
    );
    // A page at a time.
    let mut seen = vec![];
    let mut cursor = None;
    loop {
        let (minutes, next) = found(search("m_1", &|q| {
            q.limit = 1;
            q.cursor = cursor.clone();
        }))
        .await;
        seen.extend(minutes);
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, [21, 20, 1, 0]);

    // Webhooks whose names hold the member id too: a few are merged piece by piece, many make
    // the search walk the program's attempts; either way the member's and the names' rows come.
    // `sql::NAME_MATCHES_MERGED`: the most webhooks a search merges one by one.
    const MERGED: i64 = 64;
    let mut named = vec![];
    for i in 0..=MERGED {
        let team = webhook(&p, &format!("Team m_1 {i:02}"), now());
        store.insert_webhook(&team).await.unwrap();
        store
            .insert_attempt(&attempt(&team, None, 100 + i))
            .await
            .unwrap();
        named.push(100 + i);
        if i == 1 || i == MERGED {
            let mut expected: Vec<i64> = named.iter().rev().copied().collect();
            expected.extend([21, 20, 1, 0]);
            assert_eq!(found(search("m_1", &|_| {})).await.0, expected, "{i}");
        }
    }
}

async fn api_keys_match_by_prefix_and_revoke(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let key = ApiKeyRecord {
        id: herald::domain::ids::ApiKeyId::generate(),
        program_id: p.clone(),
        name: "ci".into(),
        prefix: "hk_abcd".into(),
        key_hash: "deadbeef".into(),
        created_at: now(),
        scope: herald::domain::account::KeyScope::Ingest,
    };
    store.insert_api_key(&key).await.unwrap();
    let found = store.api_key_candidates("hk_abcd").await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].scope, herald::domain::account::KeyScope::Ingest);
    assert_eq!(
        store.list_api_keys(&p).await.unwrap()[0].scope,
        herald::domain::account::KeyScope::Ingest
    );
    assert_eq!(
        (&found[0].id, &found[0].key_hash),
        (&key.id, &"deadbeef".to_owned())
    );
    assert!(store
        .api_key_candidates("hk_zzzz")
        .await
        .unwrap()
        .is_empty());
    store.touch_api_key(&key.id, now()).await.unwrap();
    let listed = store.list_api_keys(&p).await.unwrap();
    assert!(listed[0].last_used_at.is_some() && listed[0].revoked_at.is_none());
    assert!(store.revoke_api_key(&p, &key.id, now()).await.unwrap());
    assert!(
        !store.revoke_api_key(&p, &key.id, now()).await.unwrap(),
        "already revoked"
    );
    assert!(store
        .api_key_candidates("hk_abcd")
        .await
        .unwrap()
        .is_empty());
    assert!(store.list_api_keys(&p).await.unwrap()[0]
        .revoked_at
        .is_some());
}

/// Text PostgreSQL cannot hold (NUL, in a text column or in JSON) is `Unstorable`, not a
/// database failure, so the API refuses it (422) instead of answering 500 should a check ever
/// miss one; nothing is written. SQLite stores it.
async fn text_with_nul_is_unstorable_on_postgres_only(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let key = ApiKeyRecord {
        id: herald::domain::ids::ApiKeyId::generate(),
        program_id: p.clone(),
        name: "nul\u{0}name".into(),
        prefix: "hk_nul0".into(),
        key_hash: "feedface".into(),
        created_at: now(),
        scope: herald::domain::account::KeyScope::Admin,
    };
    let mut hook = webhook(&p, "Nul filter", now());
    hook.filter = Filter::parse(&serde_json::json!([
        {"path": "data.tier", "op": "exists", "value": null}
    ]))
    .unwrap();
    let mut filter_json = hook.filter.to_json();
    filter_json[0]["value"] = serde_json::json!("a\u{0}b");
    hook.filter = serde_json::from_value(filter_json).unwrap();
    let stored_key = store.insert_api_key(&key).await;
    let stored_hook = store.insert_webhook(&hook).await;
    if store.backend() == "PostgreSQL" {
        assert!(
            matches!(stored_key, Err(StoreError::Unstorable)),
            "{stored_key:?}"
        );
        assert!(
            matches!(stored_hook, Err(StoreError::Unstorable)),
            "{stored_hook:?}"
        );
        assert!(store.list_api_keys(&p).await.unwrap().is_empty());
        assert!(store.get_webhook(&p, &hook.id).await.unwrap().is_none());
    } else {
        stored_key.unwrap();
        stored_hook.unwrap();
        assert_eq!(store.list_api_keys(&p).await.unwrap()[0].name, key.name);
    }
}

fn user(p: &herald::domain::ids::ProgramId, email: &str) -> UserRecord {
    UserRecord {
        id: herald::domain::ids::UserId::generate(),
        program_id: p.clone(),
        email: email.into(),
        password_hash: "$argon2id$stub-not-checked-here".into(),
        install_admin: false,
        created_at: now(),
    }
}

async fn first_user_needs_a_setup_token_once(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    assert_eq!(store.count_users().await.unwrap(), 0);
    store.add_setup_token("tok-a", now()).await.unwrap();
    store.add_setup_token("tok-b", now()).await.unwrap();
    assert!(!store
        .create_first_user("wrong", &user(&p, "a@x.io"))
        .await
        .unwrap());
    assert_eq!(
        store.count_users().await.unwrap(),
        0,
        "nothing half-written"
    );
    assert!(store.setup_token_exists("tok-b").await.unwrap());
    assert!(store
        .create_first_user("tok-b", &user(&p, "a@x.io"))
        .await
        .unwrap());
    assert!(
        !store.setup_token_exists("tok-a").await.unwrap(),
        "all tokens consumed"
    );
    assert!(!store
        .create_first_user("tok-a", &user(&p, "b@x.io"))
        .await
        .unwrap());
    assert_eq!(store.count_users().await.unwrap(), 1);
}

async fn users_and_sessions(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let ana = user(&p, "ana@x.io");
    let vic = user(&p, "vic@x.io");
    store.insert_user(&ana, Role::Admin).await.unwrap();
    store.insert_user(&vic, Role::Viewer).await.unwrap();
    let dup = user(&p, "ANA@x.io");
    assert!(matches!(
        store.insert_user(&dup, Role::Viewer).await,
        Err(herald::store::StoreError::Conflict { field: "email" })
    ));
    assert_eq!(
        store.user_by_email("Ana@X.io").await.unwrap(),
        Some(ana.clone())
    );
    assert_eq!(
        store.list_members(&p).await.unwrap(),
        vec![
            MemberRecord {
                user: ana.clone(),
                role: Role::Admin
            },
            MemberRecord {
                user: vic.clone(),
                role: Role::Viewer
            }
        ],
        "each user joins their home program with the role given, nothing half-written for the duplicate"
    );
    let t0 = now();
    let session = SessionRecord {
        id_hash: "h1".into(),
        user_id: vic.id.clone(),
        created_at: t0,
        last_seen_at: t0,
        expires_at: t0 + chrono::Duration::hours(1),
    };
    store.insert_session(&session).await.unwrap();
    let (s, u) = store.session("h1").await.unwrap().unwrap();
    assert_eq!((s, u), (session.clone(), vic.clone()));
    let later = t0 + chrono::Duration::minutes(5);
    store.touch_session("h1", later).await.unwrap();
    assert_eq!(
        store.session("h1").await.unwrap().unwrap().0.last_seen_at,
        later
    );
    // Idle since before `later + 1s`: swept.
    assert_eq!(
        store
            .delete_stale_sessions(t0, later + chrono::Duration::seconds(1))
            .await
            .unwrap(),
        1
    );
    assert!(store.session("h1").await.unwrap().is_none());
    store
        .insert_session(&SessionRecord {
            id_hash: "h2".into(),
            ..session
        })
        .await
        .unwrap();
    assert!(store.remove_membership(&p, &vic.id).await.unwrap());
    assert!(!store.remove_membership(&p, &vic.id).await.unwrap());
    assert_eq!(store.list_members(&p).await.unwrap().len(), 1);
    assert!(
        store.session("h2").await.unwrap().is_some(),
        "the account stays; what it may open is decided per request"
    );
}

async fn programs_and_memberships(store: Arc<dyn Store>) {
    let default = store.default_program().await.unwrap();
    let gold = program("Gold Club");
    store.insert_program(&gold).await.unwrap();
    let clash = ProgramRecord {
        id: ProgramId::generate(),
        name: "gold club".into(),
        ..gold.clone()
    };
    assert!(matches!(
        store.insert_program(&clash).await,
        Err(herald::store::StoreError::Conflict { field: "name" })
    ));
    let all = store.list_programs().await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all[0].is_default && all[0].id == default, "default first");
    assert_eq!(all[1], gold);

    assert!(store
        .rename_program(&gold.id, "Gold Rewards")
        .await
        .unwrap());
    assert!(!store
        .rename_program(&ProgramId::generate(), "Nobody")
        .await
        .unwrap());
    assert!(matches!(
        store.rename_program(&gold.id, "DEFAULT PROGRAM").await,
        Err(herald::store::StoreError::Conflict { field: "name" })
    ));
    let at = now();
    assert!(store
        .set_program_archived(&gold.id, Some(at))
        .await
        .unwrap());
    let archived = store.list_programs().await.unwrap().remove(1);
    assert_eq!(
        (archived.name.as_str(), archived.archived_at),
        ("Gold Rewards", Some(at))
    );

    // One user: admin of the default program, viewer of Gold.
    let ana = user(&default, "ana@x.io");
    store.insert_user(&ana, Role::Admin).await.unwrap();
    store
        .set_membership(&gold.id, &ana.id, Role::Viewer, now())
        .await
        .unwrap();
    let roles =
        |m: Vec<(ProgramRecord, Role)>| m.into_iter().map(|(p, r)| (p.id, r)).collect::<Vec<_>>();
    assert_eq!(
        roles(store.memberships(&ana.id).await.unwrap()),
        vec![
            (default.clone(), Role::Admin),
            (gold.id.clone(), Role::Viewer)
        ]
    );
    // Setting again changes the role (no second row).
    store
        .set_membership(&gold.id, &ana.id, Role::Admin, now())
        .await
        .unwrap();
    assert_eq!(
        roles(store.memberships(&ana.id).await.unwrap())[1],
        (gold.id.clone(), Role::Admin)
    );
    assert_eq!(store.list_members(&gold.id).await.unwrap().len(), 1);
    store.set_install_admin(&ana.id, true).await.unwrap();
    assert!(
        store
            .user_by_email("ana@x.io")
            .await
            .unwrap()
            .unwrap()
            .install_admin
    );

    // Archived programs' keys are no candidates; restored, they are again.
    let (key, record) = herald::auth::api_key::new_record(
        gold.id.clone(),
        "gold key",
        herald::domain::account::KeyScope::Ingest,
    );
    store.insert_api_key(&record).await.unwrap();
    let prefix = herald::auth::api_key::display_prefix(&key.plain).to_owned();
    assert!(store.api_key_candidates(&prefix).await.unwrap().is_empty());
    assert!(store.set_program_archived(&gold.id, None).await.unwrap());
    assert_eq!(store.api_key_candidates(&prefix).await.unwrap().len(), 1);
}

async fn activity_pages_newest_first(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    for i in 0..5 {
        store
            .insert_activity(&ActivityRecord {
                id: herald::domain::ids::ActivityId::generate(),
                program_id: p.clone(),
                actor: "ana@x.io".into(),
                action: "created webhook".into(),
                target: format!("webhook n{i}"),
                detail: String::new(),
                created_at: now(),
            })
            .await
            .unwrap();
    }
    let first = store.list_activity(&p, None, 3).await.unwrap();
    assert_eq!(
        first.iter().map(|a| a.target.as_str()).collect::<Vec<_>>(),
        ["webhook n4", "webhook n3", "webhook n2"]
    );
    let rest = store
        .list_activity(&p, Some(&first[2].id), 3)
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|a| a.target.as_str()).collect::<Vec<_>>(),
        ["webhook n1", "webhook n0"]
    );
}

async fn odd_response_text_is_stored_and_never_blocks_a_batch(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let w = webhook(&p, "Odd", now());
    store.insert_webhook(&w).await.unwrap();
    for _ in 0..2 {
        store
            .ingest(&event(&p, "points.awarded"), std::slice::from_ref(&w.id))
            .await
            .unwrap();
    }
    let claimed = store
        .claim_due(now(), 10, Duration::seconds(5), &[])
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    // A NUL byte in the body and in a header value, beside an ordinary result in one batch.
    let mut odd = attempt_for(&claimed[0], AttemptStatus::Success, now());
    odd.response_body = Some("ok\0then\u{fffd}more".into());
    odd.response_headers = Some(vec![("x-odd".into(), "a\0b".into())]);
    odd.error = Some("odd\0error".into());
    let plain = attempt_for(&claimed[1], AttemptStatus::Success, now());
    let results: Vec<Outcome> = [(&claimed[0], odd), (&claimed[1], plain)]
        .into_iter()
        .map(|(c, attempt)| Outcome {
            delivery_id: c.delivery_id.clone(),
            claim_count: c.claim_count,
            ordered: false,
            next: NextStep::Succeeded,
            attempt,
        })
        .collect();
    assert_eq!(
        store.record_results(&results, now()).await.unwrap().count(),
        2
    );
    let stored = store
        .get_attempt(&p, &results[0].attempt.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.response_body.as_deref(),
        Some("ok\u{2400}then\u{fffd}more"),
        "NUL is kept visibly, other text as it was"
    );
    assert_eq!(
        stored.response_headers.unwrap(),
        [("x-odd".to_owned(), "a\u{2400}b".to_owned())]
    );
    assert_eq!(stored.summary.error.as_deref(), Some("odd\u{2400}error"));
}

async fn ingest_routed_from_a_stale_subscriber_list_writes_nothing(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let w = webhook(&p, "Going", now());
    store.insert_webhook(&w).await.unwrap();
    let before = store.subscribers(&p, "points.awarded").await.unwrap();
    assert_eq!(before.webhooks.len(), 1);
    // The webhook is deleted after the event was routed to it, before the event is stored.
    assert!(store.delete_webhook(&p, &w.id).await.unwrap());
    let e = event(&p, "points.awarded");
    let routed = IngestItem {
        event: e.clone(),
        targets: vec![w.id.clone().into()],
        routing_version: before.version,
    };
    assert!(matches!(
        store.ingest_batch(std::slice::from_ref(&routed)).await,
        Err(StoreError::StaleRouting)
    ));
    // Routed again from the current list: stored, with no delivery to the deleted webhook.
    let after = store.subscribers(&p, "points.awarded").await.unwrap();
    assert!(after.version > before.version && after.webhooks.is_empty());
    let again = IngestItem {
        targets: vec![],
        routing_version: after.version,
        ..routed
    };
    assert_eq!(store.ingest_batch(&[again]).await.unwrap(), [Some(0)]);
    assert!(store
        .claim_due(now(), 10, Duration::seconds(5), &[])
        .await
        .unwrap()
        .is_empty());
    // Creating a webhook moves the version too, so a list read before it is stale as well.
    let created = webhook(&p, "Arriving", now());
    let v = store
        .subscribers(&p, "points.awarded")
        .await
        .unwrap()
        .version;
    store.insert_webhook(&created).await.unwrap();
    let late = IngestItem {
        event: event(&p, "points.awarded"),
        targets: vec![],
        routing_version: v,
    };
    assert!(matches!(
        store.ingest_batch(&[late]).await,
        Err(StoreError::StaleRouting)
    ));
}

/// Events and results written together (the group commit's shared transaction) are stored
/// together or not at all: with a stale subscriber list neither the events nor the results are
/// written, and both can then be written apart.
async fn events_and_results_are_written_together_or_not_at_all(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let w = webhook(&p, "Together", now());
    store.insert_webhook(&w).await.unwrap();
    let version = routing_version(&store, &p).await;
    let item = routed_at(version);
    let first = event(&p, "points.awarded");
    store
        .ingest_batch(&[item(&first, vec![w.id.clone()])])
        .await
        .unwrap();
    let claims = store
        .claim_due(now(), 10, Duration::seconds(5), &[])
        .await
        .unwrap();
    assert_eq!(claims.len(), 1);
    let done = outcome(
        &claims[0],
        NextStep::Succeeded,
        AttemptStatus::Success,
        now(),
    );

    // Together: the new event and its delivery, and the result moving the first one on.
    let second = event(&p, "points.awarded");
    let (stored, moved) = store
        .ingest_and_record(&[item(&second, vec![w.id.clone()])], &[done], now())
        .await
        .unwrap();
    assert_eq!((stored, moved), (vec![Some(1)], Moved::every(1)));
    let counted = store.get_webhook(&p, &w.id).await.unwrap().unwrap();
    assert_eq!(counted.stats.successful_attempts, 1);
    let claims = store
        .claim_due(now(), 10, Duration::seconds(5), &[])
        .await
        .unwrap();
    assert_eq!(claims.len(), 1, "the second event's delivery");
    assert_eq!(claims[0].event_id, second.id);

    // A webhook created since the third event was routed: nothing of the write is stored.
    store
        .insert_webhook(&webhook(&p, "Newer", now()))
        .await
        .unwrap();
    let third = event(&p, "points.awarded");
    let failed = outcome(&claims[0], NextStep::Failed, AttemptStatus::Failure, now());
    assert!(store
        .ingest_and_record(
            &[item(&third, vec![w.id.clone()])],
            std::slice::from_ref(&failed),
            now(),
        )
        .await
        .is_err());
    let counted = store.get_webhook(&p, &w.id).await.unwrap().unwrap();
    assert_eq!(
        (
            counted.stats.total_attempts,
            counted.stats.successful_attempts
        ),
        (1, 1),
        "the result was not recorded"
    );
    assert_eq!(latest_attempts(&store, &p, 10).await.items.len(), 1);
    // Apart, both are written: the event was not stored before (not a duplicate), and the
    // result still moves its delivery.
    let current = routed_at(routing_version(&store, &p).await);
    assert_eq!(
        store
            .ingest_batch(&[current(&third, vec![w.id.clone()])])
            .await
            .unwrap(),
        [Some(1)]
    );
    assert_eq!(
        store.record_results(&[failed], now()).await.unwrap(),
        Moved::every(1)
    );
    let counted = store.get_webhook(&p, &w.id).await.unwrap().unwrap();
    assert_eq!(counted.stats.total_attempts, 2);
}

/// The last resort after `StaleRouting`: a batch routed inside its own transaction. Whatever list
/// the batch was first routed from, it is routed from the lists current inside the transaction;
/// a webhook change that comes while it is routed waits for its commit, so the batch cannot be
/// stale and cannot lose to any number of changes.
async fn a_batch_routed_inside_its_transaction_cannot_be_stale(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let going = webhook(&p, "Going", now());
    store.insert_webhook(&going).await.unwrap();
    let before = store.subscribers(&p, "points.awarded").await.unwrap();
    // After the batch was first routed, Going is deleted and Arriving created.
    assert!(store.delete_webhook(&p, &going.id).await.unwrap());
    let arriving = webhook(&p, "Arriving", now());
    store.insert_webhook(&arriving).await.unwrap();
    let first_routed = |event_type: &str| IngestItem {
        event: event(&p, event_type),
        targets: vec![going.id.clone().into()],
        routing_version: before.version,
    };
    let mut batch = vec![
        first_routed("points.awarded"),
        first_routed("member.created"),
        first_routed("reward.redeemed"),
    ];
    let mut deleting = None;
    let mut seen = Vec::new();
    let stored = store
        .ingest_routed(&mut batch, &mut |i, event, subscribers| {
            let names = subscribers
                .webhooks
                .iter()
                .map(|w| w.record.name.as_str().to_owned());
            seen.push((i, event.event_type.to_string(), names.collect::<Vec<_>>()));
            // Another writer deletes Arriving now; the deletion waits for this batch.
            if deleting.is_none() {
                let (store, p, id) = (store.clone(), p.clone(), arriving.id.clone());
                deleting = Some(tokio::spawn(
                    async move { store.delete_webhook(&p, &id).await },
                ));
            }
            Ok(subscribers
                .webhooks
                .iter()
                .map(|w| w.record.id.clone().into())
                .collect())
        })
        .await
        .expect("routed inside its transaction, the batch is never stale");
    assert_eq!(stored, [Some(1), Some(0), Some(1)]);
    let s = |t: &str| t.to_owned();
    assert_eq!(
        seen,
        [
            (0, s("points.awarded"), vec![s("Arriving")]),
            (1, s("member.created"), vec![]),
            (2, s("reward.redeemed"), vec![s("Arriving")]),
        ]
    );
    let routed_at = batch[0].routing_version;
    assert!(routed_at > before.version);
    assert!(batch.iter().all(|i| i.routing_version == routed_at));
    assert_eq!(batch[0].targets.len(), 1);
    assert_eq!(batch[0].targets[0].webhook, arriving.id);
    // The deletion came after the batch, and the batch's deliveries were there to follow it.
    assert!(deleting.unwrap().await.unwrap().unwrap());
    let after = store.subscribers(&p, "points.awarded").await.unwrap();
    assert!(after.version > routed_at && after.webhooks.is_empty());
    let q = DeliveryQuery {
        limit: 10,
        ..Default::default()
    };
    let deliveries = store.list_deliveries(&p, &q).await.unwrap().items;
    assert_eq!(deliveries.len(), 2);
    assert!(deliveries.iter().all(|d| d.webhook_id == arriving.id));
}

async fn claims_go_oldest_first_and_skip_held_back_webhooks(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let limited = webhook(&p, "Limited", now());
    let free = webhook(&p, "Free", now());
    store.insert_webhook(&limited).await.unwrap();
    store.insert_webhook(&free).await.unwrap();
    let mut events = vec![];
    for _ in 0..5 {
        let e = event(&p, "points.awarded");
        store
            .ingest(&e, &[limited.id.clone(), free.id.clone()])
            .await
            .unwrap();
        events.push(e.id.to_string());
    }
    let t = now();
    assert_eq!(
        store
            .next_due_at(std::slice::from_ref(&limited.id), t)
            .await
            .unwrap(),
        Some(t),
        "another webhook has deliveries due: due now"
    );
    let only_free = store
        .claim_due(
            now(),
            10,
            Duration::seconds(5),
            std::slice::from_ref(&limited.id),
        )
        .await
        .unwrap();
    assert_eq!(only_free.len(), 5);
    assert!(only_free.iter().all(|c| c.webhook.record.id == free.id));
    let t = now();
    let lease = store
        .next_due_at(std::slice::from_ref(&limited.id), t)
        .await
        .unwrap();
    assert!(
        lease.is_some_and(|at| at > t),
        "the other webhook's lease counts, the held-back backlog does not: {lease:?}"
    );
    assert_eq!(
        store
            .next_due_at(&[limited.id.clone(), free.id.clone()], t)
            .await
            .unwrap(),
        None,
        "every webhook held back: nothing is due"
    );
    let first_two = store
        .claim_due(now(), 2, Duration::seconds(5), &[])
        .await
        .unwrap();
    let order: Vec<&str> = first_two.iter().map(|c| c.event_id.as_str()).collect();
    assert_eq!(
        order,
        events[..2].iter().map(String::as_str).collect::<Vec<_>>()
    );
    // Given back untried, they keep their place in line.
    let back: Vec<_> = first_two
        .iter()
        .map(|c| (c.delivery_id.clone(), c.claim_count))
        .collect();
    store.release(&back, now()).await.unwrap();
    let all = store
        .claim_due(now(), 10, Duration::seconds(5), &[])
        .await
        .unwrap();
    let order: Vec<&str> = all.iter().map(|c| c.event_id.as_str()).collect();
    assert_eq!(order, events.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        all.iter().all(|c| c.interruptions == 0),
        "a release is no interruption"
    );
}

/// Claims given back together (more than one statement's worth): each current one is pending
/// again in its place in line, untried; one taken over meanwhile (its claim count moved on) is
/// left in flight; and one of a webhook switched off meanwhile is held with the rest of its
/// webhook's deliveries.
async fn claims_given_back_together_keep_their_places(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let w = webhook(&p, "Given back", now());
    let off = webhook(&p, "Switched off", now());
    store.insert_webhook(&w).await.unwrap();
    store.insert_webhook(&off).await.unwrap();
    let item = routed_at(routing_version(&store, &p).await);
    let events: Vec<StoredEvent> = (0..1_100).map(|_| event(&p, "points.awarded")).collect();
    let mut batch: Vec<IngestItem> = events.iter().map(|e| item(e, vec![w.id.clone()])).collect();
    batch.push(item(&event(&p, "points.awarded"), vec![off.id.clone()]));
    store.ingest_batch(&batch).await.unwrap();
    let claimed = store
        .claim_due(now(), 2_000, Duration::seconds(60), &[])
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1_101);
    let mut switched = off.clone();
    switched.enabled = false;
    switched.updated_at = now();
    store.update_webhook(&switched).await.unwrap();

    let mut back: Vec<_> = claimed
        .iter()
        .map(|c| (c.delivery_id.clone(), c.claim_count))
        .collect();
    // Not the delivery's current claim: a later one took it over.
    back[0].1 += 1;
    store.release(&back, now()).await.unwrap();

    let again = store
        .claim_due(now(), 2_000, Duration::seconds(60), &[])
        .await
        .unwrap();
    let expected: Vec<&str> = claimed[1..]
        .iter()
        .filter(|c| c.webhook.record.id == w.id)
        .map(|c| c.event_id.as_str())
        .collect();
    let order: Vec<&str> = again.iter().map(|c| c.event_id.as_str()).collect();
    assert_eq!(
        order.len(),
        1_099,
        "every current claim of the switched-on webhook is back"
    );
    assert_eq!(order, expected, "in their places in line");
    assert!(again.iter().all(|c| c.tries == 0 && c.interruptions == 0));
    let held = store
        .held_counts(&p, std::slice::from_ref(&off.id), 10)
        .await
        .unwrap();
    assert_eq!(
        held,
        vec![(off.id.clone(), 1)],
        "the switched-off webhook's is held"
    );
    assert!(
        store.release(&back[..1], now()).await.is_ok(),
        "the stale claim releases nothing"
    );
    let first = store
        .claim_due(now(), 10, Duration::seconds(60), &[])
        .await
        .unwrap();
    assert!(
        first.is_empty(),
        "the taken-over delivery stays in flight: {first:?}"
    );
}

async fn replay_means_retry_now_while_waiting_and_refuses_in_flight(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let w = webhook(&p, "Waiting", now());
    store.insert_webhook(&w).await.unwrap();
    store
        .ingest(&event(&p, "points.awarded"), std::slice::from_ref(&w.id))
        .await
        .unwrap();
    let c = store
        .claim_due(now(), 10, Duration::seconds(5), &[])
        .await
        .unwrap();
    assert_eq!(
        store
            .replay_delivery(&p, &c[0].delivery_id, now())
            .await
            .unwrap(),
        Replayed::InFlight
    );
    let later = now() + Duration::hours(1);
    let failed = outcome(
        &c[0],
        NextStep::RetryAt(later),
        AttemptStatus::Failure,
        now(),
    );
    store.record_results(&[failed], now()).await.unwrap();
    assert!(store
        .claim_due(now(), 10, Duration::seconds(5), &[])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .replay_delivery(&p, &c[0].delivery_id, now())
            .await
            .unwrap(),
        Replayed::DueNow
    );
    let again = store
        .claim_due(now(), 10, Duration::seconds(5), &[])
        .await
        .unwrap();
    assert_eq!(
        (again.len(), again[0].tries),
        (1, 1),
        "due now, budget unchanged"
    );
}

/// A dead letter replayed while its webhook is switched off joins the hold (one by one or in
/// bulk), like every delivery the webhook gets meanwhile: nothing is due for it, nothing for the
/// sweep to fix. "Retry now" on a held delivery changes nothing and says why.
async fn replays_into_a_switched_off_webhook_are_held(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let mut w = webhook(&p, "Paused", now());
    store.insert_webhook(&w).await.unwrap();
    for _ in 0..3 {
        store
            .ingest(&event(&p, "points.awarded"), std::slice::from_ref(&w.id))
            .await
            .unwrap();
    }
    let c = store
        .claim_due(now(), 10, Duration::seconds(30), &[])
        .await
        .unwrap();
    assert_eq!(c.len(), 3);
    let later = now() + Duration::hours(1);
    let results = [
        outcome(&c[0], NextStep::Failed, AttemptStatus::Failure, now()),
        outcome(&c[1], NextStep::Failed, AttemptStatus::Failure, now()),
        outcome(
            &c[2],
            NextStep::RetryAt(later),
            AttemptStatus::Failure,
            now(),
        ),
    ];
    store.record_results(&results, now()).await.unwrap();

    w.enabled = false;
    store.update_webhook(&w).await.unwrap();
    w.version += 1;
    store.settle_held(&w.id, 100).await.unwrap();
    assert!(store.unsettled_webhooks().await.unwrap().is_empty());

    assert_eq!(
        store
            .replay_delivery(&p, &c[2].delivery_id, now())
            .await
            .unwrap(),
        Replayed::Held,
        "retry now on a held delivery"
    );
    assert_eq!(
        store
            .replay_delivery(&p, &c[0].delivery_id, now())
            .await
            .unwrap(),
        Replayed::Requeued
    );
    let scope = ReplayScope {
        webhook: Some(w.id.clone()),
        ..Default::default()
    };
    let (job, _) = store
        .start_replay_job(&p, &scope, "test", now())
        .await
        .unwrap();
    let (after, requeued) = store.replay_job_batch(&job.id, now(), 10).await.unwrap();
    assert_eq!((after.replayed, requeued), (1, 1));
    assert!(
        store.unsettled_webhooks().await.unwrap().is_empty(),
        "the replays went straight into the hold"
    );
    assert_eq!(store.next_due_at(&[], now()).await.unwrap(), None);
    assert!(store
        .claim_due(now(), 10, Duration::seconds(30), &[])
        .await
        .unwrap()
        .is_empty());

    // Switched on, all three go out: the replays with a fresh budget.
    w.enabled = true;
    store.update_webhook(&w).await.unwrap();
    store.settle_held(&w.id, 100).await.unwrap();
    let due = store
        .claim_due(now() + Duration::hours(2), 10, Duration::seconds(30), &[])
        .await
        .unwrap();
    assert_eq!(due.len(), 3);
    let replays = due.iter().filter(|d| d.trigger == Trigger::Replay).count();
    assert_eq!(replays, 2);
}

/// The oldest waiting delivery of each switched-on webhook, from its pending index: a retry
/// keeps its later due time, a webhook with nothing waiting and a switched-off one are absent.
/// It waits from its webhook's last switch-on at the earliest; other edits do not count.
async fn oldest_due_is_each_webhooks_first_waiting_delivery(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let start = now() - Duration::minutes(30);
    let created = start - Duration::minutes(1);
    let waiting = webhook(&p, "Waiting", created);
    let idle = webhook(&p, "Idle", created);
    let mut off = webhook(&p, "Off", created);
    for w in [&waiting, &idle, &off] {
        store.insert_webhook(w).await.unwrap();
    }
    for i in 0..3 {
        let mut e = event(&p, "points.awarded");
        e.created_at = start + Duration::minutes(i);
        store
            .ingest(&e, &[waiting.id.clone(), off.id.clone()])
            .await
            .unwrap();
    }
    off.enabled = false;
    store.update_webhook(&off).await.unwrap();
    store.settle_held(&off.id, 100).await.unwrap();
    let ids = [waiting.id.clone(), idle.id.clone(), off.id.clone()];
    let due = store.oldest_due(&p, &ids).await.unwrap();
    assert_eq!(due, [(waiting.id.clone(), start)]);

    // The oldest fails and waits for a retry an hour on: the next one is the oldest due now.
    let claims = store
        .claim_due(now(), 1, Duration::seconds(30), &[])
        .await
        .unwrap();
    assert_eq!(claims[0].webhook.record.id, waiting.id);
    let later = now() + Duration::hours(1);
    let retry = outcome(
        &claims[0],
        NextStep::RetryAt(later),
        AttemptStatus::Failure,
        now(),
    );
    store.record_results(&[retry], now()).await.unwrap();
    assert_eq!(
        store.oldest_due(&p, &ids).await.unwrap(),
        [(waiting.id.clone(), start + Duration::minutes(1))]
    );

    // Renamed: still waiting since it fell due.
    let mut edited = waiting.clone();
    edited.name = WebhookName::parse("Waiting renamed").unwrap();
    edited.updated_at = now() - Duration::minutes(10);
    store.update_webhook(&edited).await.unwrap();
    assert_eq!(
        store.oldest_due(&p, &ids).await.unwrap(),
        [(waiting.id.clone(), start + Duration::minutes(1))]
    );
    // Switched off, then on again five minutes ago: waiting since the switch.
    let switched = now() - Duration::minutes(5);
    for (on, at) in [(false, switched - Duration::minutes(1)), (true, switched)] {
        edited.version += 1;
        edited.enabled = on;
        edited.updated_at = at;
        store.update_webhook(&edited).await.unwrap();
    }
    assert_eq!(
        store.oldest_due(&p, &ids).await.unwrap(),
        [(waiting.id.clone(), switched)]
    );
    assert!(store
        .oldest_due(&ProgramId::generate(), &ids)
        .await
        .unwrap()
        .is_empty());
}

/// A bulk replay job walks its dead letters a batch at a time from its cursor: through
/// deliveries accepted at the same instant (the cursor's tie-break on id), past another
/// webhook's dead letters interleaved with them, each requeued once, and done when a batch
/// comes up short.
async fn bulk_replay_batches_walk_ties_and_skip_other_webhooks(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let chosen = webhook(&p, "Chosen", now());
    let other = webhook(&p, "Other", now());
    store.insert_webhook(&chosen).await.unwrap();
    store.insert_webhook(&other).await.unwrap();
    let start = now() - Duration::minutes(10);
    // Seven events, each to both webhooks: four accepted at one instant, three at the next.
    for i in 0..7 {
        let mut e = event(&p, "points.awarded");
        e.created_at = start + Duration::seconds(if i < 4 { 0 } else { 1 });
        store
            .ingest(&e, &[chosen.id.clone(), other.id.clone()])
            .await
            .unwrap();
    }
    let claims = store
        .claim_due(now(), 100, Duration::seconds(30), &[])
        .await
        .unwrap();
    assert_eq!(claims.len(), 14);
    let failed: Vec<Outcome> = claims
        .iter()
        .map(|c| outcome(c, NextStep::Failed, AttemptStatus::Failure, now()))
        .collect();
    store.record_results(&failed, now()).await.unwrap();
    let dead = |w: &WebhookRecord| {
        let store = store.clone();
        let (p, id) = (p.clone(), w.id.clone());
        async move {
            let q = DeliveryQuery {
                status: Some(DeliveryStatus::Failed),
                webhook_id: Some(id),
                limit: 100,
                ..Default::default()
            };
            store.list_deliveries(&p, &q).await.unwrap().items.len()
        }
    };
    assert_eq!((dead(&chosen).await, dead(&other).await), (7, 7));

    let scope = ReplayScope {
        webhook: Some(chosen.id.clone()),
        ..Default::default()
    };
    let (job, new) = store
        .start_replay_job(&p, &scope, "test", now())
        .await
        .unwrap();
    assert!(new);
    assert_eq!(job.total, 7);
    let mut batches = Vec::new();
    loop {
        let (after, requeued) = store.replay_job_batch(&job.id, now(), 2).await.unwrap();
        batches.push(requeued);
        if after.status == herald::domain::replay::ReplayJobStatus::Done {
            assert_eq!(after.replayed, 7);
            break;
        }
        assert!(batches.len() < 10, "the job never finishes: {batches:?}");
    }
    assert_eq!(batches, [2, 2, 2, 1]);
    assert_eq!((dead(&chosen).await, dead(&other).await), (0, 7));
    let due = store
        .claim_due(now(), 100, Duration::seconds(30), &[])
        .await
        .unwrap();
    assert_eq!(due.len(), 7, "each requeued dead letter is due once");
    assert!(due
        .iter()
        .all(|c| c.webhook.record.id == chosen.id && c.tries == 0 && c.trigger == Trigger::Replay));
}

/// A switch change (or a deletion) moves none of the webhook's pending deliveries itself:
/// `settle_held` then holds them (off), releases them (on) or ends them (deleted) a step at a
/// time, and the sweep lists the webhook until it is settled. Claims skip a switched-off webhook's deliveries whether they are held yet or not.
async fn switching_settles_pending_deliveries_in_steps(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let mut w = webhook(&p, "Stepped", now());
    store.insert_webhook(&w).await.unwrap();
    for _ in 0..5 {
        store
            .ingest(&event(&p, "points.awarded"), std::slice::from_ref(&w.id))
            .await
            .unwrap();
    }
    assert!(store.unsettled_webhooks().await.unwrap().is_empty());
    let settle = |limit: i64| {
        let (store, id) = (store.clone(), w.id.clone());
        async move {
            let mut steps = Vec::new();
            loop {
                let n = store.settle_held(&id, limit).await.unwrap();
                steps.push(n);
                if n < limit as u64 {
                    return steps;
                }
                assert!(steps.len() < 10, "never settles: {steps:?}");
            }
        }
    };
    assert_eq!(settle(2).await, [0], "on, nothing held: nothing to do");

    w.enabled = false;
    store.update_webhook(&w).await.unwrap();
    w.version += 1;
    assert_eq!(store.unsettled_webhooks().await.unwrap(), [w.id.clone()]);
    assert!(store
        .claim_due(now(), 10, Duration::seconds(5), &[])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(settle(2).await, [2, 2, 1]);
    assert!(store.unsettled_webhooks().await.unwrap().is_empty());
    assert_eq!(store.next_due_at(&[], now()).await.unwrap(), None);
    // The lists count a hold up to one past their limit; a webhook that is on holds nothing.
    let on = webhook(&p, "Still on", now());
    store.insert_webhook(&on).await.unwrap();
    let ids = [w.id.clone(), on.id.clone()];
    assert_eq!(
        store.held_counts(&p, &ids, 10).await.unwrap(),
        [(w.id.clone(), 5)]
    );
    assert_eq!(
        store.held_counts(&p, &ids, 3).await.unwrap(),
        [(w.id.clone(), 4)],
        "counting stops one past the limit"
    );
    assert!(store
        .held_counts(&ProgramId::generate(), &ids, 10)
        .await
        .unwrap()
        .is_empty());

    w.enabled = true;
    store.update_webhook(&w).await.unwrap();
    w.version += 1;
    assert_eq!(store.unsettled_webhooks().await.unwrap(), [w.id.clone()]);
    assert!(
        store
            .claim_due(now(), 10, Duration::seconds(5), &[])
            .await
            .unwrap()
            .is_empty(),
        "held until released"
    );
    assert_eq!(settle(2).await, [2, 2, 1]);
    assert!(store.unsettled_webhooks().await.unwrap().is_empty());
    let claims = store
        .claim_due(now(), 10, Duration::seconds(5), &[])
        .await
        .unwrap();
    assert_eq!(claims.len(), 5, "each due again at its acceptance time");
    assert!(claims
        .windows(2)
        .all(|c| c[0].accepted_at <= c[1].accepted_at));

    // Deleted: the claimed five end with the deletion, the three pending ones in steps.
    for _ in 0..3 {
        store
            .ingest(&event(&p, "points.awarded"), std::slice::from_ref(&w.id))
            .await
            .unwrap();
    }
    assert!(store.delete_webhook(&p, &w.id).await.unwrap());
    assert_eq!(store.unsettled_webhooks().await.unwrap(), [w.id.clone()]);
    assert_eq!(settle(2).await, [2, 1]);
    assert!(store.unsettled_webhooks().await.unwrap().is_empty());
    let q = DeliveryQuery {
        webhook_id: Some(w.id.clone()),
        limit: 100,
        ..Default::default()
    };
    let all = store.list_deliveries(&p, &q).await.unwrap().items;
    assert_eq!(all.len(), 8);
    assert!(all.iter().all(|d| d.status == DeliveryStatus::Failed
        && d.last_error.as_deref() == Some("webhook deleted")));
}

/// The queue gauges count pending, in-flight and dead-lettered deliveries over every program,
/// each from its own index.
async fn queue_gauges_count_every_program(store: Arc<dyn Store>) {
    let default = store.default_program().await.unwrap();
    let gold = program("Gold Club");
    store.insert_program(&gold).await.unwrap();
    for p in [&default, &gold.id] {
        let w = webhook(p, "Counted", now());
        store.insert_webhook(&w).await.unwrap();
        for _ in 0..4 {
            store
                .ingest(&event(p, "points.awarded"), std::slice::from_ref(&w.id))
                .await
                .unwrap();
        }
    }
    // Of the eight, three are claimed and two of those dead-lettered.
    let claims = store
        .claim_due(now(), 3, Duration::seconds(30), &[])
        .await
        .unwrap();
    assert_eq!(claims.len(), 3);
    let failed: Vec<Outcome> = claims[..2]
        .iter()
        .map(|c| outcome(c, NextStep::Failed, AttemptStatus::Failure, now()))
        .collect();
    store.record_results(&failed, now()).await.unwrap();
    let g = store.queue_gauges().await.unwrap();
    assert_eq!((g.pending, g.in_flight, g.failed), (5, 1, 2));
}

/// Deliveries listed without a status come newest first across every status, a page at most.
async fn deliveries_of_every_status_list_newest_first(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let w = webhook(&p, "Listed", now());
    store.insert_webhook(&w).await.unwrap();
    let start = now() - Duration::minutes(10);
    for i in 0..4 {
        let mut e = event(&p, "points.awarded");
        e.created_at = start + Duration::seconds(i);
        store.ingest(&e, std::slice::from_ref(&w.id)).await.unwrap();
    }
    // The oldest two are claimed; the oldest of all is dead-lettered.
    let claims = store
        .claim_due(now(), 2, Duration::seconds(30), &[])
        .await
        .unwrap();
    let failed = outcome(&claims[0], NextStep::Failed, AttemptStatus::Failure, now());
    store.record_results(&[failed], now()).await.unwrap();
    let list = |limit: u32| {
        let (store, p) = (store.clone(), p.clone());
        async move {
            let q = DeliveryQuery {
                limit,
                ..Default::default()
            };
            store
                .list_deliveries(&p, &q)
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|d| (d.created_at, d.status))
                .collect::<Vec<_>>()
        }
    };
    let at = |i: i64| start + Duration::seconds(i);
    assert_eq!(
        list(10).await,
        [
            (at(3), DeliveryStatus::Pending),
            (at(2), DeliveryStatus::Pending),
            (at(1), DeliveryStatus::InFlight),
            (at(0), DeliveryStatus::Failed),
        ]
    );
    assert_eq!(list(3).await.len(), 3);
    assert_eq!(list(3).await[2], (at(1), DeliveryStatus::InFlight));
}

/// Pages of the deliveries list, followed by their cursors, hold every delivery once in the
/// order of the whole list, across ties on the acceptance time and across statuses.
async fn deliveries_page_from_their_cursor(store: Arc<dyn Store>) {
    let p = store.default_program().await.unwrap();
    let w = webhook(&p, "Paged", now());
    store.insert_webhook(&w).await.unwrap();
    let start = now() - Duration::minutes(10);
    for i in 0..7 {
        let mut e = event(&p, "points.awarded");
        // Pairs accepted in the same microsecond: the id breaks the tie.
        e.created_at = start + Duration::seconds(i / 2);
        store.ingest(&e, std::slice::from_ref(&w.id)).await.unwrap();
    }
    let claims = store
        .claim_due(now(), 3, Duration::seconds(30), &[])
        .await
        .unwrap();
    let failed = outcome(&claims[1], NextStep::Failed, AttemptStatus::Failure, now());
    store.record_results(&[failed], now()).await.unwrap();
    for status in [None, Some(DeliveryStatus::Pending)] {
        let whole = store
            .list_deliveries(
                &p,
                &DeliveryQuery {
                    status,
                    limit: 100,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(whole.next.is_none());
        let mut paged = Vec::new();
        let mut after = None;
        let mut pages = 0;
        loop {
            let q = DeliveryQuery {
                status,
                after: after.take(),
                limit: 2,
                ..Default::default()
            };
            let page = store.list_deliveries(&p, &q).await.unwrap();
            pages += 1;
            assert!(page.items.len() <= 2);
            paged.extend(page.items.iter().map(|d| d.id.clone()));
            match page.next {
                Some(next) => {
                    assert_eq!(page.items.len(), 2, "a full page precedes another");
                    // What the API hands out is what it takes back.
                    after = Some(DeliveryCursor::decode(&next.encode()).unwrap());
                }
                None => break,
            }
        }
        let expected: Vec<_> = whole.items.iter().map(|d| d.id.clone()).collect();
        assert_eq!(expected.len(), if status.is_none() { 7 } else { 4 });
        assert_eq!(paged, expected, "{status:?}");
        assert_eq!(pages, expected.len().div_ceil(2), "{status:?}");
    }
}

/// The indexes on `attempts`, each one written by every attempt recorded: together with the
/// other hot tables' they are the largest part of the write path's cost (README, Benchmarks,
/// twenty-seventh sitting). Each has its reader: the audit log by event (queued tries, and test
/// sends and verifications), by program and by webhook, newest first. An index joins this list
/// only with a query that reads it (`attempts_delivery`, which none read, went in migration 0025).
const ATTEMPT_INDEXES: [&str; 4] = [
    "attempts_event",
    "attempts_event_accepted",
    "attempts_program_created",
    "attempts_webhook_created",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_carry_only_the_indexes_their_readers_use() {
    let (_store, dir) = support::sqlite_store().await;
    let url = format!("sqlite://{}", dir.path().join("herald.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let sqlite: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'attempts' \
         AND name NOT LIKE 'sqlite_autoindex_%' ORDER BY name",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(sqlite, ATTEMPT_INDEXES, "SQLite");
    let Some(url) =
        support::postgres_url("attempts_carry_only_the_indexes_their_readers_use").await
    else {
        return;
    };
    let _store = herald::store::connect(&url).await.unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let postgres: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE tablename = 'attempts' \
         AND indexname <> 'attempts_pkey' ORDER BY indexname",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(postgres, ATTEMPT_INDEXES, "PostgreSQL");
}

on_both_backends!(
    text_with_nul_is_unstorable_on_postgres_only,
    claims_given_back_together_keep_their_places,
    creates_and_reads_webhooks,
    lists_filter_by_date_and_name,
    names_are_unique_per_program_ignoring_case,
    deleting_a_webhook_keeps_its_audit_rows,
    ingest_is_idempotent_and_atomic,
    subscribers_are_webhooks_of_the_type_on_or_off,
    batched_ingest_stores_each_event_once,
    small_and_large_batches_store_alike,
    claims_lease_retry_and_fence,
    a_stale_and_a_current_result_in_one_batch,
    release_returns_claims,
    disabled_webhooks_deliveries_wait,
    counters_count_live_attempts_only,
    audit_log_filters_and_pages,
    audit_search_by_name_merges_matching_webhooks,
    audit_search_finds_a_members_events,
    the_backfill_gives_earlier_events_their_member,
    api_keys_match_by_prefix_and_revoke,
    first_user_needs_a_setup_token_once,
    users_and_sessions,
    programs_and_memberships,
    activity_pages_newest_first,
    odd_response_text_is_stored_and_never_blocks_a_batch,
    ingest_routed_from_a_stale_subscriber_list_writes_nothing,
    a_batch_routed_inside_its_transaction_cannot_be_stale,
    events_and_results_are_written_together_or_not_at_all,
    claims_go_oldest_first_and_skip_held_back_webhooks,
    replay_means_retry_now_while_waiting_and_refuses_in_flight,
    bulk_replay_batches_walk_ties_and_skip_other_webhooks,
    replays_into_a_switched_off_webhook_are_held,
    oldest_due_is_each_webhooks_first_waiting_delivery,
    switching_settles_pending_deliveries_in_steps,
    queue_gauges_count_every_program,
    deliveries_of_every_status_list_newest_first,
    deliveries_page_from_their_cursor,
);
