//! Insights end to end: roll-ups written with the results a real engine records (manual clock,
//! real receivers on 127.0.0.1, both backends), read back as figures, series, charts and flags
//! through the engine and through the REST API served over real HTTP.

use crate::helpers::*;
use chrono::Duration;
use herald::delivery::clock::Clock;
use herald::domain::event::NewEvent;
use herald::domain::ids::WebhookId;
use herald::domain::insights::{FlagKind, Window};
use herald::domain::settings::WebhookDraft;
use serde_json::{json, Value};

async fn webhook(s: &Setup, name: &str, url: &str, event_type: &str, retries: u32) -> WebhookId {
    let draft: WebhookDraft = serde_json::from_value(json!({
        "name": name, "url": url, "event_types": [event_type],
        "retry": {"attempts": retries, "delay_seconds": 60, "backoff": "fixed", "timeout_seconds": 5},
    }))
    .unwrap();
    s.engine
        .create_webhook(&s.admin, &draft)
        .await
        .unwrap()
        .webhook
        .record
        .id
}

async fn post(s: &Setup, event_type: &str, data: Value) {
    let event = NewEvent::parse(event_type, data, None, None, s.clock.now()).unwrap();
    s.engine.ingest(&s.admin.program, event).await.unwrap();
}

async fn get(base: &str, key: &str, path: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{base}/api/v1{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// Figures come from the roll-ups the engine writes with each batch of results: attempts by
/// outcome, retries, dead letters, latency and lag, per window; tests (Send Test) move nothing;
/// the hourly series adds up to the figures; the windows slide with the clock.
async fn figures_follow_the_results_the_engine_records(backend: Backend) {
    let Some(s) = setup(backend, "insights_figures").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    let retried = webhook(&s, "Retried", &rx.url, "points.awarded", 1).await;
    let dead = webhook(
        &s,
        "Dead",
        &format!("{}/dead", rx.url),
        "reward.redeemed",
        0,
    )
    .await;
    // Retried: 500 then 200 for the first event, 200 for the other two. Dead: one 500, no retry.
    rx.script([Reply::Status(500)]);
    post(&s, "points.awarded", json!({"points": 5})).await;
    assert_eq!(s.engine.drain().await.unwrap(), 1);
    rx.script([
        Reply::Status(200),
        Reply::Status(200),
        Reply::Status(200),
        Reply::Status(500),
    ]);
    s.clock.advance(Duration::seconds(60));
    assert_eq!(s.engine.drain().await.unwrap(), 1, "the retry");
    post(&s, "points.awarded", json!({"points": 6})).await;
    post(&s, "points.awarded", json!({"points": 7})).await;
    s.engine.drain().await.unwrap();
    post(&s, "reward.redeemed", json!({"reward_id": "r1"})).await;
    s.engine.drain().await.unwrap();
    s.engine
        .send_test(&s.admin, &retried, Some("points.awarded"))
        .await
        .unwrap();

    let (view, insights) = s
        .engine
        .webhook_insights(&s.admin.program, &retried, Window::Day)
        .await
        .unwrap();
    let f = &insights.figures;
    assert_eq!(
        (
            f.attempts,
            f.succeeded,
            f.failed,
            f.retries,
            f.dead_lettered
        ),
        (4, 3, 1, 1, 0),
        "{f:?}"
    );
    assert_eq!(f.success_rate, Some(75.0));
    assert!(f.p50_latency_ms.is_some() && f.p95_latency_ms.is_some());
    assert!(f.p95_lag_ms.is_some(), "successful tries carry their lag");
    assert_eq!(
        view.figures.as_ref(),
        Some(f),
        "the list row agrees with the page"
    );
    assert!(view.flags.is_empty(), "{:?}", view.flags);
    // The series is 24 hourly bars adding up to the figures; the charts name themselves.
    assert_eq!(insights.series.len(), 24);
    let (ok, failed) = insights
        .series
        .iter()
        .fold((0, 0), |(a, b), p| (a + p.succeeded, b + p.failed));
    assert_eq!((ok, failed), (3, 1));
    assert!(insights.deliveries_svg.contains("3 succeeded and 1 failed"));
    assert!(insights.latency_svg.starts_with("<svg"));

    let (_, dead_insights) = s
        .engine
        .webhook_insights(&s.admin.program, &dead, Window::Day)
        .await
        .unwrap();
    let d = &dead_insights.figures;
    assert_eq!((d.attempts, d.failed, d.dead_lettered), (1, 1, 1), "{d:?}");
    assert_eq!(d.p95_lag_ms, None, "no successful try, no lag");

    // The program's overview sums both; busiest first.
    let overview = s
        .engine
        .program_insights(&s.admin.program, Window::Day)
        .await
        .unwrap();
    let o = &overview.insights.figures;
    assert_eq!((o.attempts, o.succeeded, o.dead_lettered), (5, 3, 1));
    let names: Vec<_> = overview.webhooks.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["Retried", "Dead"]);

    // Two days on: out of the 24-hour window, still in the 7-day one.
    s.clock.advance(Duration::days(2));
    let (_, day) = s
        .engine
        .webhook_insights(&s.admin.program, &retried, Window::Day)
        .await
        .unwrap();
    assert_eq!(day.figures.attempts, 0);
    assert_eq!(day.figures.success_rate, None);
    let (_, week) = s
        .engine
        .webhook_insights(&s.admin.program, &retried, Window::Week)
        .await
        .unwrap();
    assert_eq!(
        (week.figures.attempts, week.series.len(), week.step_hours),
        (4, 28, 6)
    );
}

/// A week of ordinary history, then a last day in which one endpoint starts failing, one event
/// type's traffic stops and one payload is far larger than its type's usual: each flag is raised
/// on the webhook it concerns and on no other, in the engine's views and in the REST API.
async fn flags_rise_on_the_webhooks_they_concern(backend: Backend) {
    let Some(s) = setup(backend, "insights_flags").await else {
        return;
    };
    let ok = TestReceiver::start().await;
    let flaky = TestReceiver::start().await;
    let failing = webhook(&s, "Failing", &flaky.url, "points.awarded", 0).await;
    let healthy = webhook(&s, "Healthy", &ok.url, "points.awarded", 0).await;
    let silent = webhook(&s, "Silent", &ok.url, "member.tier_changed", 0).await;
    let bulky = webhook(&s, "Bulky", &ok.url, "reward.redeemed", 0).await;

    // The baseline: six days of one event of each type every two hours, all delivered.
    for _ in 0..72 {
        post(&s, "points.awarded", json!({"points": 5})).await;
        post(&s, "member.tier_changed", json!({"tier": "gold"})).await;
        post(&s, "reward.redeemed", json!({"reward_id": "r-1"})).await;
        assert_eq!(s.engine.drain().await.unwrap(), 4);
        s.clock.advance(Duration::hours(2));
    }
    // A day without any events, then the recent hours: points keep flowing but the flaky
    // endpoint answers 500 to most of them; one reward arrives with a huge payload; tier changes
    // have stopped.
    s.clock.advance(Duration::hours(28));
    flaky.script(std::iter::repeat_n(Reply::Status(500), 20));
    for _ in 0..25 {
        post(&s, "points.awarded", json!({"points": 5})).await;
        s.engine.drain().await.unwrap();
        s.clock.advance(Duration::minutes(5));
    }
    post(
        &s,
        "reward.redeemed",
        json!({"reward_id": "r-1", "note": "x".repeat(40_000)}),
    )
    .await;
    s.engine.drain().await.unwrap();

    let hooks = s
        .engine
        .store()
        .list_webhooks(&s.admin.program, &Default::default())
        .await
        .unwrap();
    let views = s
        .engine
        .webhook_views(&s.admin.program, &hooks, Window::Week, false)
        .await
        .unwrap();
    let kinds = |id: &WebhookId| -> Vec<FlagKind> {
        views
            .iter()
            .find(|v| v.id == id.as_str())
            .unwrap()
            .flags
            .iter()
            .map(|f| f.kind)
            .collect()
    };
    assert_eq!(kinds(&failing), [FlagKind::FailureRate]);
    assert_eq!(kinds(&healthy), []);
    assert_eq!(kinds(&silent), [FlagKind::Silent]);
    assert_eq!(kinds(&bulky), [FlagKind::UnusualPayload]);
    // Pages of the list read only their own webhooks' roll-ups, with the same figures and flags.
    let mut paged = vec![];
    let mut cursor = String::new();
    loop {
        let query =
            herald::store::WebhookQuery::page_from_filters("", "", "", &cursor, Some(3), 50)
                .unwrap();
        let page = s
            .engine
            .webhook_page(&s.admin.program, query, Window::Week)
            .await
            .unwrap();
        paged.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = next,
            None => break,
        }
    }
    assert_eq!(paged, views);

    // Flags raise alerts: one per flagged webhook, with the sentence, then not again for a day.
    assert_eq!(s.engine.check_flags().await.unwrap(), 3);
    let alerts = s.engine.recent_alerts(&s.admin, 50).await.unwrap();
    let flagged: Vec<&str> = alerts
        .iter()
        .filter(|a| a.kind == herald::domain::alerts::AlertKind::Flagged)
        .map(|a| a.webhook_id.as_str())
        .collect();
    assert_eq!(flagged.len(), 3);
    for id in [&failing, &silent, &bulky] {
        assert!(flagged.contains(&id.as_str()), "{flagged:?}");
    }
    let on_failing = alerts
        .iter()
        .find(|a| a.webhook_id == failing.as_str())
        .unwrap();
    assert_eq!(
        on_failing.detail,
        views
            .iter()
            .find(|v| v.id == failing.as_str())
            .unwrap()
            .flags[0]
            .sentence
    );
    assert_eq!(
        s.engine.check_flags().await.unwrap(),
        0,
        "once a day at most"
    );

    // Over the REST API: the list carries figures and flags, the webhook's insights its
    // sentences and charts, the program overview every flag by webhook name.
    let (base, key) = s.serve_api().await;
    let (status, list) = get(&base, &key, "/webhooks?window=7d").await;
    assert_eq!(status, 200, "{list}");
    let row = |name: &str| -> Value {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(row("Failing")["flags"][0]["kind"], "failure_rate");
    assert_eq!(row("Failing")["figures"]["window"], "7d");
    assert_eq!(row("Failing")["figures"]["dead_lettered"], 20);
    assert_eq!(row("Healthy")["flags"], json!([]));
    assert_eq!(row("Healthy")["figures"]["success_rate"], 100.0);
    let sentence = row("Silent")["flags"][0]["sentence"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        sentence.starts_with("Gone silent: no deliveries for"),
        "{sentence}"
    );
    let (status, one) = get(
        &base,
        &key,
        &format!("/webhooks/{bulky}/insights?window=30d"),
    )
    .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["window"], "30d");
    assert_eq!(one["series"].as_array().unwrap().len(), 30);
    assert!(one["flags"][0]["sentence"]
        .as_str()
        .unwrap()
        .contains("reward.redeemed event of"));
    assert!(one["deliveries_svg"].as_str().unwrap().contains("<title"));
    let (status, overview) = get(&base, &key, "/insights?window=7d").await;
    assert_eq!(status, 200, "{overview}");
    let sentences: Vec<&str> = overview["insights"]["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["sentence"].as_str().unwrap())
        .collect();
    assert_eq!(sentences.len(), 3, "{sentences:?}");
    assert!(sentences
        .iter()
        .any(|s| s.starts_with("Failing: Failing more than usual")));
    // A window the API does not know is refused by name.
    let (status, err) = get(&base, &key, "/insights?window=1y").await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["field"], "window", "{err}");
}

/// A switched-on webhook whose deliveries wait past their due time is flagged "Falling behind"
/// (and alerted) until they go out; a switched-off webhook's held deliveries and a retry due
/// later are not late.
async fn falling_behind_is_flagged_until_the_deliveries_go_out(backend: Backend) {
    let Some(s) = setup(backend, "insights_behind").await else {
        return;
    };
    let rx = TestReceiver::start().await;
    let flaky = TestReceiver::start().await;
    let late = webhook(&s, "Late", &rx.url, "points.awarded", 0).await;
    webhook(&s, "Retrying", &flaky.url, "reward.redeemed", 3).await;
    let paused = webhook(&s, "Paused", &rx.url, "member.tier_changed", 0).await;
    s.switch(&paused, false, None).await;
    // Held from the start, a minute before the rest arrive.
    post(&s, "member.tier_changed", json!({"tier": "gold"})).await;
    s.clock.advance(Duration::minutes(1));
    // The retrying webhook's first try fails: its next is due in a minute.
    flaky.script([Reply::Status(500)]);
    post(&s, "reward.redeemed", json!({"reward_id": "r-1"})).await;
    assert_eq!(s.engine.drain().await.unwrap(), 1);
    // Nobody takes the rest for a while (in production: a rate limit, a slow endpoint, an
    // ordering line behind a failure).
    post(&s, "points.awarded", json!({"points": 5})).await;
    let flagged = |s: &Setup| {
        let (engine, program) = (s.engine.clone(), s.admin.program.clone());
        async move {
            let hooks = engine
                .store()
                .list_webhooks(&program, &Default::default())
                .await
                .unwrap();
            let views = engine
                .webhook_views(&program, &hooks, Window::Day, false)
                .await
                .unwrap();
            views
                .into_iter()
                .filter(|v| v.flags.iter().any(|f| f.kind == FlagKind::FallingBehind))
                .map(|v| v.name)
                .collect::<Vec<_>>()
        }
    };
    s.clock.advance(Duration::minutes(14));
    assert!(flagged(&s).await.is_empty(), "14 minutes is not late yet");
    // The queue's own figure (herald_queue_oldest_due_seconds): the Late delivery, due 14
    // minutes ago; the held one does not count.
    assert_eq!(s.engine.oldest_due_seconds().await.unwrap(), 840.0);
    // 15 min 10 s: the retry, due a minute after the first try, has waited about 14 minutes.
    s.clock.advance(Duration::seconds(70));
    assert_eq!(flagged(&s).await, ["Late"]);
    assert_eq!(s.engine.check_flags().await.unwrap(), 1, "alerted once");
    // Switched on, the paused webhook releases what it held 16 minutes ago: not late, it was
    // waiting by an admin's choice. Released, it is due from its acceptance and opens the due
    // index, yet the queue's figure still reads the Late delivery's wait (910 s), not 970 s.
    s.switch(&paused, true, None).await;
    assert_eq!(flagged(&s).await, ["Late"]);
    assert_eq!(s.engine.oldest_due_seconds().await.unwrap(), 910.0);
    // An admin's edit of the late webhook (a rename) is not a switch: it stays late, and the
    // queue's figure keeps counting (both restarted at any change before the switched-on time
    // was stored apart).
    s.clock.advance(Duration::seconds(10));
    let rename = herald::domain::settings::WebhookPatch {
        name: Some("Late renamed".into()),
        ..Default::default()
    };
    s.engine
        .update_webhook(&s.admin, &late, rename)
        .await
        .unwrap();
    assert_eq!(flagged(&s).await, ["Late renamed"]);
    assert_eq!(s.engine.oldest_due_seconds().await.unwrap(), 920.0);

    // All go out: nothing is late any more.
    assert_eq!(s.engine.drain().await.unwrap(), 3);
    assert!(flagged(&s).await.is_empty());
    assert_eq!(s.engine.oldest_due_seconds().await.unwrap(), 0.0);
}

on_both_backends!(
    figures_follow_the_results_the_engine_records,
    flags_rise_on_the_webhooks_they_concern,
    falling_behind_is_flagged_until_the_deliveries_go_out,
);
