//! Server functions behind the Deliveries screen: dead letters by filter, and bulk replay jobs.

use crate::error::AppError;
use herald::domain::replay::ReplayJobView;
use herald::domain::views::DeliveryPageView;
use leptos::prelude::*;

/// The deliveries matching the screen's filters (as typed), newest first, 100 a page from
/// `cursor` (empty for the first page). `status` empty means the dead letters, `all` every
/// status.
#[server(prefix = "/sfn", endpoint = "list_deliveries", output = crate::api::JsonText)]
pub async fn list_deliveries(
    program: String,
    status: String,
    webhook_id: String,
    event_type: String,
    start: String,
    end: String,
    cursor: String,
) -> Result<DeliveryPageView, AppError> {
    let engine = super::ssr::engine()?;
    let who = super::ssr::viewer(&program)?;
    // The screen is about dead letters until another status is chosen.
    let status = if status.is_empty() { "failed" } else { &status };
    let filter = herald::domain::replay::ReplayFilter {
        webhook_id,
        event_type,
        start,
        end,
    };
    let query = herald::store::DeliveryQuery::from_filters(status, &filter, &cursor, 100)?;
    let page = engine.store().list_deliveries(&who.program, &query).await?;
    Ok((&page).into())
}

/// Starts replaying every dead letter matching the filters (or returns the job already doing so).
#[server(prefix = "/sfn", endpoint = "start_bulk_replay", output = crate::api::JsonText)]
pub async fn start_bulk_replay(
    program: String,
    webhook_id: String,
    event_type: String,
    start: String,
    end: String,
) -> Result<ReplayJobView, AppError> {
    let engine = super::ssr::engine()?;
    let who = super::ssr::admin(&program)?;
    let filter = herald::domain::replay::ReplayFilter {
        webhook_id,
        event_type,
        start,
        end,
    };
    Ok(crate::components::returned::returned(
        engine.start_bulk_replay(&who, &filter).await?.0,
    ))
}

/// One bulk replay job's progress.
#[server(prefix = "/sfn", endpoint = "load_replay_job", output = crate::api::JsonText)]
pub async fn load_replay_job(program: String, id: String) -> Result<ReplayJobView, AppError> {
    let engine = super::ssr::engine()?;
    let who = super::ssr::viewer(&program)?;
    Ok(engine.bulk_replay(&who, &id).await?)
}

/// The program's latest bulk replay jobs.
#[server(prefix = "/sfn", endpoint = "list_replay_jobs", output = crate::api::JsonText)]
pub async fn list_replay_jobs(program: String) -> Result<Vec<ReplayJobView>, AppError> {
    let engine = super::ssr::engine()?;
    let who = super::ssr::viewer(&program)?;
    Ok(engine.bulk_replays(&who, 10).await?)
}
