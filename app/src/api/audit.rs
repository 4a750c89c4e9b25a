//! Server functions behind the Audit Logs screen.

use crate::error::AppError;
use herald::domain::views::{
    AttemptDetailView, AttemptPageView, AttemptView, RequestView, ResponseView, WebhookChoiceList,
};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// One attempt with its request and response: the REST API's `AttemptDetailView` with the
/// attempt nested instead of flattened (reading a flattened struct takes serde's buffering
/// deserializer, which the console's wasm would carry for this alone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptWithExchange {
    pub attempt: AttemptView,
    pub request: RequestView,
    pub response: Option<ResponseView>,
}

impl From<AttemptDetailView> for AttemptWithExchange {
    fn from(v: AttemptDetailView) -> Self {
        Self {
            attempt: v.attempt,
            request: v.request,
            response: v.response,
        }
    }
}

/// One page of the audit log. Filters are the screen's query-string values, as typed.
#[server(prefix = "/sfn", endpoint = "list_attempts", output = crate::api::JsonText)]
pub async fn list_attempts(
    program: String,
    webhook_id: String,
    start: String,
    end: String,
    status: String,
    search: String,
    cursor: String,
) -> Result<AttemptPageView, AppError> {
    use super::ssr::{engine, viewer};
    let engine = engine()?;
    let who = viewer(&program)?;
    let program = who.program.clone();
    let query = herald::store::AttemptQuery::from_filters(
        &webhook_id,
        &start,
        &end,
        &status,
        &search,
        &cursor,
        Some(25),
    )?;
    let page = engine.store().list_attempts(&program, &query).await?;
    Ok((&page).into())
}

/// Webhooks for the Select Webhook filter (deleted ones are gone from it; their rows remain): the
/// newest `WebhookChoiceList::LIMIT`, and `chosen` (the filter's current value) even when older.
#[server(prefix = "/sfn", endpoint = "webhook_choices", output = crate::api::JsonText)]
pub async fn webhook_choices(
    program: String,
    chosen: Option<String>,
) -> Result<WebhookChoiceList, AppError> {
    use herald::domain::ids::WebhookId;
    use herald::domain::views::WebhookChoice;
    let engine = super::ssr::engine()?;
    let who = super::ssr::viewer(&program)?;
    let query = herald::store::WebhookQuery {
        limit: Some(WebhookChoiceList::LIMIT + 1),
        ..Default::default()
    };
    let mut hooks = engine.store().list_webhooks(&who.program, &query).await?;
    let more = hooks.len() > WebhookChoiceList::LIMIT as usize;
    hooks.truncate(WebhookChoiceList::LIMIT as usize);
    let missing = chosen
        .as_deref()
        .and_then(WebhookId::parse)
        .filter(|id| !hooks.iter().any(|h| &h.record.id == id));
    if let Some(id) = missing {
        hooks.extend(engine.store().get_webhook(&who.program, &id).await?);
    }
    let items = hooks
        .into_iter()
        .map(|h| WebhookChoice {
            id: h.record.id.to_string(),
            name: h.record.name.as_str().to_owned(),
        })
        .collect();
    Ok(WebhookChoiceList { items, more })
}

/// One attempt with its full request and response.
#[server(prefix = "/sfn", endpoint = "attempt_detail", output = crate::api::JsonText)]
pub async fn attempt_detail(program: String, id: String) -> Result<AttemptWithExchange, AppError> {
    use super::ssr::{engine, viewer};
    let engine = engine()?;
    let who = viewer(&program)?;
    let program = who.program.clone();
    let id = herald::domain::ids::AttemptId::parse(&id)
        .ok_or_else(|| AppError::NotFound("attempt".into()))?;
    let detail = engine
        .store()
        .get_attempt(&program, &id)
        .await?
        .ok_or_else(|| AppError::NotFound("attempt".into()))?;
    Ok(AttemptDetailView::from(&detail).into())
}

/// Replays a delivery: a finished one is queued again with a fresh retry budget, one waiting for
/// its next retry is tried now.
#[server(prefix = "/sfn", endpoint = "replay_delivery", output = crate::api::JsonText)]
pub async fn replay_delivery(program: String, delivery_id: String) -> Result<String, AppError> {
    use super::ssr::{admin, engine};
    let engine = engine()?;
    let who = admin(&program)?;
    let id = herald::domain::ids::DeliveryId::parse(&delivery_id)
        .ok_or_else(|| AppError::NotFound("delivery".into()))?;
    Ok(crate::components::returned::returned(match engine.replay(&who, &id).await? {
        herald::store::Replayed::DueNow => {
            "It was waiting for its next retry and is being retried now (same retry budget); the attempt will appear in the audit log."
        }
        _ => "Queued again with a fresh retry budget; the new attempts will appear in the audit log.",
    }
    .to_owned()))
}
