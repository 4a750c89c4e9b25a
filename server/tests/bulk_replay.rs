//! Bulk replay of dead letters by filter, driven batch by batch (manual clock, real receivers on
//! 127.0.0.1, both backends), and through the REST API served on 127.0.0.1.

use crate::helpers::*;
use chrono::Duration;
use herald::domain::delivery::DeliveryStatus;
use herald::domain::ids::WebhookId;
use herald::domain::replay::{ReplayFilter, ReplayJobStatus};
use serde_json::{json, Value};

async fn webhook(s: &Setup, name: &str, url: &str) -> WebhookId {
    s.webhook(json!({
        "name": name, "url": url, "event_types": ["points.awarded", "reward.redeemed"],
        "retry": {"attempts": 0, "delay_seconds": 60, "backoff": "fixed", "timeout_seconds": 5},
    }))
    .await
}

async fn post(s: &Setup, event_type: &str, n: i64) {
    s.post(event_type, json!({"user_id": "u_1", "n": n})).await;
}

async fn dead(s: &Setup, id: &WebhookId) -> usize {
    s.deliveries(id, Some(DeliveryStatus::Failed)).await.len()
}

/// Six dead letters at two webhooks: a job over one webhook and type replays exactly its three,
/// a second start while it runs returns the same job, a replayed one that fails again is not
/// replayed twice, and the deliveries go out again.
async fn a_bulk_replay_requeues_exactly_the_filtered_dead_letters(backend: Backend) {
    let Some(s) = setup(backend, "bulk_replay").await else {
        return;
    };
    let crm = TestReceiver::start().await;
    let other = TestReceiver::start().await;
    crm.script(std::iter::repeat_n(Reply::Status(503), 6));
    other.script(std::iter::repeat_n(Reply::Status(503), 5));
    let crm_id = webhook(&s, "CRM", &crm.url).await;
    let other_id = webhook(&s, "Other", &other.url).await;
    for n in 0..3 {
        post(&s, "points.awarded", n).await;
        s.clock.advance(Duration::seconds(1));
    }
    post(&s, "reward.redeemed", 9).await;
    assert_eq!(s.engine.drain().await.unwrap(), 8);
    assert_eq!((dead(&s, &crm_id).await, dead(&s, &other_id).await), (4, 4));

    let filter = ReplayFilter {
        webhook_id: crm_id.to_string(),
        event_type: "points.awarded".into(),
        ..Default::default()
    };
    let (job, new) = s.engine.start_bulk_replay(&s.admin, &filter).await.unwrap();
    assert!(new);
    assert_eq!(
        (job.total, job.replayed, job.status),
        (3, 0, ReplayJobStatus::Running)
    );
    let (again, new) = s.engine.start_bulk_replay(&s.admin, &filter).await.unwrap();
    assert!(!new, "the same filter while it runs is the same job");
    assert_eq!(again.id, job.id);

    let worked = s.engine.work_bulk_replay().await.unwrap().unwrap();
    assert_eq!(
        (worked.id.as_str(), worked.replayed, worked.status),
        (job.id.as_str(), 3, ReplayJobStatus::Done)
    );
    assert!(
        s.engine.work_bulk_replay().await.unwrap().is_none(),
        "nothing left to do"
    );
    assert_eq!((dead(&s, &crm_id).await, dead(&s, &other_id).await), (1, 4));

    // Out they go again: two fail again (the receiver still has two 503s), one succeeds.
    assert_eq!(s.engine.drain().await.unwrap(), 3);
    assert_eq!(dead(&s, &crm_id).await, 3);
    assert_eq!(crm.received().len(), 7);

    // A new job over the same filter takes the two that failed again.
    let (second, new) = s.engine.start_bulk_replay(&s.admin, &filter).await.unwrap();
    assert!(new);
    assert_eq!(second.total, 2);
    s.engine.work_bulk_replay().await.unwrap().unwrap();
    assert_eq!(s.engine.drain().await.unwrap(), 2);
    assert_eq!(
        dead(&s, &crm_id).await,
        1,
        "only the reward.redeemed one is left"
    );
    let jobs = s.engine.bulk_replays(&s.admin, 10).await.unwrap();
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(|j| j.status == ReplayJobStatus::Done));

    // Bad filters are refused, naming the field.
    let bad = ReplayFilter {
        event_type: "nope.nothing".into(),
        ..Default::default()
    };
    let err = s
        .engine
        .start_bulk_replay(&s.admin, &bad)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nope.nothing"), "{err}");
}

/// The REST API: start (202), the same again (existing), progress, and the dead-letter list
/// filtered by type and date.
async fn bulk_replay_over_the_api(backend: Backend) {
    let Some(s) = setup(backend, "bulk_replay_api").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    rx.script(std::iter::repeat_n(Reply::Status(500), 2));
    webhook(&s, "CRM", &rx.url).await;
    post(&s, "points.awarded", 1).await;
    post(&s, "reward.redeemed", 2).await;
    s.engine.drain().await.unwrap();
    let (base, key) = s.serve_api().await;
    let http = reqwest::Client::new();
    let get = |path: String| {
        let req = http.get(format!("{base}/api/v1{path}")).bearer_auth(&key);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, list) = get("/deliveries?status=failed&event_type=reward.redeemed".into()).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (status, list) =
        get("/deliveries?status=failed&start=2001-01-01&end=2001-01-02".into()).await;
    assert_eq!((status, list["items"].as_array().unwrap().len()), (200, 0));
    let (status, err) = get("/deliveries?event_type=nope".into()).await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("event_type"))
    );

    let start = || {
        http.post(format!("{base}/api/v1/deliveries/replay"))
            .bearer_auth(&key)
            .json(&json!({"event_type": "points.awarded"}))
            .send()
    };
    let first = start().await.unwrap();
    assert_eq!(first.status().as_u16(), 202);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["existing"], false);
    assert_eq!(first["job"]["total"], 1);
    let second: Value = start().await.unwrap().json().await.unwrap();
    assert_eq!(second["existing"], true);
    assert_eq!(second["job"]["id"], first["job"]["id"]);

    s.engine.work_bulk_replay().await.unwrap();
    let id = first["job"]["id"].as_str().unwrap();
    let (status, job) = get(format!("/replay-jobs/{id}")).await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(
        (job["status"].as_str(), job["replayed"].as_i64()),
        (Some("done"), Some(1))
    );
    let (status, jobs) = get("/replay-jobs".into()).await;
    assert_eq!((status, jobs["items"].as_array().unwrap().len()), (200, 1));
    let (status, _) = get("/replay-jobs/rpl_nothing".into()).await;
    assert_eq!(status, 404);
}

on_both_backends!(
    a_bulk_replay_requeues_exactly_the_filtered_dead_letters,
    bulk_replay_over_the_api,
);
