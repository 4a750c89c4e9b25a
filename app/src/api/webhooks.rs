//! Server functions behind the Webhooks screens.

use crate::error::AppError;
use herald::domain::views::WebhookView;
use leptos::prelude::*;

/// The Webhooks list, filtered by name (substring, any case) and created date range.
#[server(prefix = "/sfn", endpoint = "list_webhooks")]
pub async fn list_webhooks(
    name: String,
    start: String,
    end: String,
) -> Result<Vec<WebhookView>, AppError> {
    use super::ssr::{engine, program};
    use herald::domain::query::parse_range;
    let engine = engine()?;
    let program = program(&engine).await?;
    let (created_from, created_before) = parse_range(&start, &end)?;
    let query = herald::store::WebhookQuery {
        name: Some(name),
        created_from,
        created_before,
    };
    let hooks = engine.store().list_webhooks(&program, &query).await?;
    Ok(hooks.iter().map(Into::into).collect())
}

/// Turns a webhook on or off at once.
#[server(prefix = "/sfn", endpoint = "set_webhook_enabled")]
pub async fn set_webhook_enabled(id: String, enabled: bool) -> Result<(), AppError> {
    use super::ssr::{engine, program};
    let engine = engine()?;
    let program = program(&engine).await?;
    let id = herald::domain::ids::WebhookId::parse(&id)
        .ok_or_else(|| AppError::NotFound("webhook".into()))?;
    let patch = herald::domain::settings::WebhookPatch {
        enabled: Some(enabled),
        ..Default::default()
    };
    engine.update_webhook(&program, &id, patch).await?;
    Ok(())
}

/// Deletes a webhook (its audit rows stay).
#[server(prefix = "/sfn", endpoint = "delete_webhook")]
pub async fn delete_webhook(id: String) -> Result<(), AppError> {
    use super::ssr::{engine, program};
    let engine = engine()?;
    let program = program(&engine).await?;
    let id = herald::domain::ids::WebhookId::parse(&id)
        .ok_or_else(|| AppError::NotFound("webhook".into()))?;
    engine.delete_webhook(&program, &id).await?;
    Ok(())
}
