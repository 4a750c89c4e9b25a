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
