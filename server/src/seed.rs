//! `herald seed`: a program with a week of delivery history, for a demo, a screenshot or a test
//! of the insights. Nothing is written behind the engine's back: a real engine, driven by a
//! manual clock that starts a week ago, creates the webhooks, accepts the events and delivers
//! them over HTTP to a receiver of its own on 127.0.0.1, so the attempts, dead letters and hourly
//! roll-ups are exactly what a running Herald would have recorded.
//!
//! The story: six days in which every event type flows every two hours and every delivery
//! succeeds, a quiet day, then the last two hours, in which the "Points CRM" endpoint answers
//! 500 to nearly everything, tier changes have stopped arriving (their webhook goes silent) and
//! one reward comes with a payload far larger than usual. Three webhooks end up flagged (failure
//! rate, silence, payload size); "Loyalty ledger" stays healthy.

use crate::config::{DatabaseArgs, SecretArgs};
use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use chrono::{Duration, Utc};
use clap::Args;
use herald::auth::{Access, Actor, InstallAdmin};
use herald::delivery::clock::{Clock, ManualClock};
use herald::domain::event::NewEvent;
use herald::domain::settings::WebhookDraft;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    /// The program to fill (created when no program has this name or id). Its webhooks must not
    /// exist yet.
    #[arg(long, default_value = "Demo history")]
    pub program: String,
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(flatten)]
    pub secrets: SecretArgs,
    /// A scale fill instead of the week's story: this many webhooks ("Scale 00000"…), created
    /// through the engine like any other.
    #[arg(long)]
    pub webhooks: Option<u32>,
    /// With `--webhooks`: this many attempts over the last 30 days, oldest first, written through
    /// the store in batches (audit rows, hourly roll-ups and counters, as recorded deliveries
    /// write them).
    #[arg(long, default_value_t = 0, requires = "webhooks")]
    pub attempts: u64,
}

/// Baseline rounds, two hours apart (six days).
const BASELINE_ROUNDS: i32 = 72;
/// The quiet day between the baseline and the last hours.
const QUIET_HOURS: i64 = 28;
/// Points events in the last hours, five minutes apart, most of them refused by "Points CRM".
const RECENT_ROUNDS: i32 = 25;

pub async fn run(args: SeedArgs) -> anyhow::Result<()> {
    let store = crate::startup::open_store(&args.db.database_url).await?;
    let access = Access::new(store, Default::default(), Default::default());
    let program = match access.find_program(&args.program).await {
        Ok(p) => p,
        Err(_) => access
            .create_program(&InstallAdmin::command_line(), &args.program)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    if let Some(webhooks) = args.webhooks {
        return fill_for_scale(&args, &program, webhooks).await;
    }
    let span = Duration::hours(2 * i64::from(BASELINE_ROUNDS) + QUIET_HOURS)
        + Duration::minutes(5 * i64::from(RECENT_ROUNDS));
    let clock = Arc::new(ManualClock::starting_at(Utc::now() - span));
    let engine = crate::startup::command_engine_with_clock(
        &args.db.database_url,
        &args.secrets,
        clock.clone(),
    )
    .await?;
    let actor = Actor::command_line(program.id.clone());
    let failing = Arc::new(AtomicBool::new(false));
    let receiver = start_receiver(failing.clone()).await?;

    let webhooks = [
        ("Points CRM", "flaky", "points.awarded"),
        ("Loyalty ledger", "ok", "points.awarded"),
        ("Tier sync", "ok", "member.tier_changed"),
        ("Rewards fulfilment", "ok", "reward.redeemed"),
    ];
    for (name, path, event_type) in webhooks {
        let draft: WebhookDraft = serde_json::from_value(json!({
            "name": name, "url": format!("{receiver}/{path}"), "event_types": [event_type],
            "description": "Seeded by `herald seed`: its history is synthetic.",
            "retry": {"attempts": 0, "delay_seconds": 60, "backoff": "fixed", "timeout_seconds": 5},
        }))?;
        engine
            .create_webhook(&actor, &draft)
            .await
            .with_context(|| format!("creating the webhook '{name}'"))?;
    }

    let post = |event_type: &'static str, data: Value| {
        let (engine, actor, clock) = (&engine, &actor, &clock);
        async move {
            let event = NewEvent::parse(event_type, data, None, None, clock.now())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            engine.ingest(&actor.program, event).await?;
            engine.drain().await?;
            anyhow::Ok(())
        }
    };
    for round in 0..BASELINE_ROUNDS {
        let member = format!("m_{}", round % 12);
        post(
            "points.awarded",
            json!({"member_id": member, "points": 5 + round % 7}),
        )
        .await?;
        post(
            "member.tier_changed",
            json!({"member_id": member, "tier": "gold"}),
        )
        .await?;
        post(
            "reward.redeemed",
            json!({"member_id": member, "reward_id": "r-1"}),
        )
        .await?;
        clock.advance(Duration::hours(2));
    }
    clock.advance(Duration::hours(QUIET_HOURS));
    failing.store(true, Ordering::Relaxed);
    for round in 0..RECENT_ROUNDS {
        post(
            "points.awarded",
            json!({"member_id": format!("m_{round}"), "points": 5}),
        )
        .await?;
        clock.advance(Duration::minutes(5));
    }
    post(
        "reward.redeemed",
        json!({"member_id": "m_1", "reward_id": "r-1", "note": "x".repeat(40_000)}),
    )
    .await?;
    println!("{}", program.id);
    eprintln!(
        "seeded '{}' with {} webhooks and a week of history ({} events)",
        program.name,
        webhooks.len(),
        3 * BASELINE_ROUNDS + RECENT_ROUNDS + 1
    );
    Ok(())
}

/// Attempts per transaction in a scale fill.
const SCALE_BATCH: usize = 2_000;
/// Consecutive attempts that go to the same webhook in a scale fill (so a batch touches a few
/// webhooks' roll-ups, as a busy endpoint's traffic does).
const SCALE_RUN: u64 = 100;

/// `--webhooks N [--attempts M]`: N webhooks, then M attempts spread evenly over the last 30
/// days, one run of `SCALE_RUN` after another per webhook, one in twenty a failure.
async fn fill_for_scale(
    args: &SeedArgs,
    program: &herald::store::ProgramRecord,
    webhooks: u32,
) -> anyhow::Result<()> {
    use herald::domain::delivery::{AttemptStatus, Trigger};
    use herald::domain::event::EventType;
    use herald::domain::ids::{AttemptId, EventId};
    use herald::store::NewAttempt;

    let started = std::time::Instant::now();
    let clock = Arc::new(ManualClock::starting_at(Utc::now()));
    let engine =
        crate::startup::command_engine_with_clock(&args.db.database_url, &args.secrets, clock)
            .await?;
    let actor = Actor::command_line(program.id.clone());
    // Loyalty events only: operational ones (alerts about webhooks) would fan every flag raised
    // on the seeded history out to thousands of the seeded webhooks.
    let types: Vec<&str> = herald::domain::catalog::EVENT_NAMES
        .into_iter()
        .filter(|t| !herald::domain::catalog::is_operational(t))
        .collect();
    for i in 0..webhooks {
        let draft: WebhookDraft = serde_json::from_value(json!({
            "name": format!("Scale {i:05}"),
            "url": format!("http://127.0.0.1:9/scale/{i}"),
            "event_types": [types[i as usize % types.len()]],
            "description": "Seeded by `herald seed --webhooks`: its history is synthetic.",
        }))?;
        engine
            .create_webhook(&actor, &draft)
            .await
            .with_context(|| format!("creating webhook {i}"))?;
    }
    eprintln!("{webhooks} webhooks in {:.1?}", started.elapsed());
    let hooks = engine
        .store()
        .list_webhooks(&program.id, &Default::default())
        .await?;
    anyhow::ensure!(!hooks.is_empty(), "the program has no webhooks to fill");
    let span_ms = Duration::days(30).num_milliseconds();
    let oldest = Utc::now() - Duration::days(30);
    let total = args.attempts;
    let mut batch = Vec::with_capacity(SCALE_BATCH);
    let filling = std::time::Instant::now();
    for i in 0..total {
        let hook = &hooks[((i / SCALE_RUN) % hooks.len() as u64) as usize].record;
        let failed = i % 20 == 7;
        let at =
            oldest + Duration::milliseconds((i as i128 * span_ms as i128 / total as i128) as i64);
        let event_type = &hook.event_types[0];
        batch.push(NewAttempt {
            id: AttemptId::generate(),
            program_id: program.id.clone(),
            webhook_id: hook.id.clone(),
            webhook_name: hook.name.as_str().to_owned(),
            delivery_id: None,
            event_id: EventId::parse(&uuid::Uuid::now_v7().to_string()).expect("a uuid"),
            // The seeded attempts' events are not stored (as for test sends).
            event_accepted_at: None,
            event_type: EventType::parse(event_type).map_err(|e| anyhow::anyhow!("{e}"))?,
            attempt: 1,
            trigger: Trigger::Event,
            status: if failed {
                AttemptStatus::Failure
            } else {
                AttemptStatus::Success
            },
            status_code: Some(if failed { 500 } else { 200 }),
            error: None,
            latency_ms: Some(20 + (i % 180) as i64),
            lag_ms: Some(40 + (i % 300) as i64),
            request_url: hook.url.as_str().to_owned(),
            request_headers: vec![("content-type".into(), "application/json".into())],
            request_body: Some(format!(
                r#"{{"type":"{event_type}","data":{{"member_id":"m_{}"}}}}"#,
                i % 50_000
            )),
            response_headers: None,
            response_body: Some(if failed { "upstream error" } else { "ok" }.into()),
            created_at: at,
            delivered_at: Some(at),
            superseded: false,
        });
        if batch.len() == SCALE_BATCH || i + 1 == total {
            engine.store().insert_attempts(&batch).await?;
            batch.clear();
            if (i + 1) % 1_000_000 < SCALE_BATCH as u64 || i + 1 == total {
                let secs = filling.elapsed().as_secs_f64();
                eprintln!("{} attempts ({:.0}/s)", i + 1, (i + 1) as f64 / secs);
            }
        }
    }
    println!("{}", program.id);
    eprintln!(
        "seeded '{}' with {} webhooks and {total} attempts in {:.1?}",
        program.name,
        hooks.len(),
        started.elapsed()
    );
    Ok(())
}

/// `/ok` always answers 200; `/flaky` answers 500 while `failing` is set.
async fn start_receiver(failing: Arc<AtomicBool>) -> anyhow::Result<String> {
    async fn ok() -> StatusCode {
        StatusCode::OK
    }
    async fn flaky(State(failing): State<Arc<AtomicBool>>) -> StatusCode {
        if failing.load(Ordering::Relaxed) {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        }
    }
    let app = Router::new()
        .route("/ok", post(ok))
        .route("/flaky", post(flaky))
        .with_state(failing);
    crate::bench::serve_on_loopback(app).await
}
