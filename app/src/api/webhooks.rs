//! Server functions behind the Webhooks screens.

use crate::error::AppError;
use herald::domain::settings::WebhookDraft;
use herald::domain::views::{
    TestOutcome, VerifyOutcome, WebhookDetails, WebhookPageView, WebhookView,
};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// A webhook just saved, with its signing secret the one time it is shown: the REST API's
/// `SavedWebhook` with the webhook nested instead of flattened (reading a flattened struct takes
/// serde's buffering deserializer, which the console's wasm would carry for this alone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedWebhook {
    pub webhook: WebhookView,
    pub secret: Option<String>,
}

/// A page of the Webhooks list, filtered by name (substring, any case) and created date range,
/// with each webhook's figures over `window` and its flags; `cursor` continues from a page.
#[server(prefix = "/sfn", endpoint = "list_webhooks", output = crate::api::JsonText)]
pub async fn list_webhooks(
    program: String,
    name: String,
    start: String,
    end: String,
    window: String,
    /// `next_cursor` of the page before; none for the first page.
    cursor: Option<String>,
) -> Result<WebhookPageView, AppError> {
    use super::ssr::{engine, viewer};
    let engine = engine()?;
    let who = viewer(&program)?;
    let query = herald::store::WebhookQuery::page_from_filters(
        &name,
        &start,
        &end,
        cursor.as_deref().unwrap_or_default(),
        None,
        WEBHOOKS_PER_PAGE,
    )?;
    let window = herald::domain::insights::Window::parse(&window)?;
    Ok(engine.webhook_page(&who.program, query, window).await?)
}

/// Rows on a page of the console's Webhooks list.
pub const WEBHOOKS_PER_PAGE: u32 = 50;

/// Turns a webhook on or off at once (switching on sends what it held, unless `discard_held`).
#[server(prefix = "/sfn", endpoint = "set_webhook_enabled", output = crate::api::JsonText)]
pub async fn set_webhook_enabled(
    program: String,
    id: String,
    enabled: bool,
    /// `true`: dead-letter the deliveries held while it was off instead of sending them.
    discard_held: Option<bool>,
) -> Result<(), AppError> {
    use super::ssr::{admin, engine, webhook_id};
    let engine = engine()?;
    let who = admin(&program)?;
    let id = webhook_id(&id)?;
    let patch = herald::domain::settings::WebhookPatch {
        enabled: Some(enabled),
        discard_held,
        ..Default::default()
    };
    engine.update_webhook(&who, &id, patch).await?;
    Ok(())
}

/// Deletes a webhook (its audit rows stay).
#[server(prefix = "/sfn", endpoint = "delete_webhook", output = crate::api::JsonText)]
pub async fn delete_webhook(program: String, id: String) -> Result<(), AppError> {
    use super::ssr::{admin, engine, webhook_id};
    let engine = engine()?;
    let who = admin(&program)?;
    let id = webhook_id(&id)?;
    engine.delete_webhook(&who, &id).await?;
    Ok(())
}

/// A fresh signing secret for a new wizard draft: it signs the draft's Verify ping, and Save keeps
/// it, so what the receiver verified is what it will get.
#[server(prefix = "/sfn", endpoint = "new_draft_secret", output = crate::api::JsonText)]
pub async fn new_draft_secret(program: String) -> Result<String, AppError> {
    super::ssr::admin(&program)?;
    Ok(herald::delivery::Engine::draft_secret().expose().to_owned())
}

/// Whether `name` is free in the program (`except` is the webhook being edited).
#[server(prefix = "/sfn", endpoint = "check_webhook_name", output = crate::api::JsonText)]
pub async fn check_webhook_name(
    program: String,
    name: String,
    except: String,
) -> Result<(), AppError> {
    use super::ssr::{admin, engine};
    let engine = engine()?;
    let who = admin(&program)?;
    let program = who.program.clone();
    let wanted = herald::domain::webhook::WebhookName::parse(&name)?;
    let query = herald::store::WebhookQuery {
        name: Some(wanted.as_str().to_owned()),
        ..Default::default()
    };
    let taken = engine
        .store()
        .list_webhooks(&program, &query)
        .await?
        .iter()
        .any(|w| {
            w.record.id.as_str() != except
                && w.record.name.as_str().eq_ignore_ascii_case(wanted.as_str())
        });
    if taken {
        return Err(AppError::Conflict {
            field: Some("name".into()),
            message: "A webhook with this name already exists".into(),
        });
    }
    Ok(())
}

/// Sends the verification ping for the wizard's draft. `editing` is the saved webhook's id when
/// editing (its stored secret signs, and the ping is audited), empty for a new draft.
#[server(prefix = "/sfn", endpoint = "verify_draft", input = server_fn::codec::Json, output = crate::api::JsonText)]
pub async fn verify_draft(
    program: String,
    draft: WebhookDraft,
    editing: String,
) -> Result<VerifyOutcome, AppError> {
    use super::ssr::{admin, engine, webhook_id};
    let engine = engine()?;
    let who = admin(&program)?;
    let saved = match editing.as_str() {
        "" => None,
        raw => Some(webhook_id(raw)?),
    };
    Ok(engine.verify_draft(&who, &draft, saved.as_ref()).await?)
}

/// Saves a new webhook from the wizard.
#[server(prefix = "/sfn", endpoint = "create_webhook", input = server_fn::codec::Json, output = crate::api::JsonText)]
pub async fn create_webhook(
    program: String,
    draft: WebhookDraft,
) -> Result<SavedWebhook, AppError> {
    use super::ssr::{admin, engine};
    let engine = engine()?;
    let who = admin(&program)?;
    let saved = engine.create_webhook(&who, &draft).await?;
    Ok(SavedWebhook {
        webhook: (&saved.webhook).into(),
        secret: saved.secret,
    })
}

/// Saves the edit wizard: every setting as shown (an empty password keeps the stored one), fenced
/// on the `version` the wizard loaded, so a change someone else saved meanwhile is never
/// overwritten unseen. The Enabled switch is not the wizard's to save: a toggle made while the
/// wizard was open stays as it is.
#[server(prefix = "/sfn", endpoint = "update_webhook", input = server_fn::codec::Json, output = crate::api::JsonText)]
pub async fn update_webhook(
    program: String,
    id: String,
    draft: WebhookDraft,
    version: i64,
) -> Result<SavedWebhook, AppError> {
    use super::ssr::{admin, engine, webhook_id};
    use herald::domain::settings::WebhookPatch;
    let engine = engine()?;
    let who = admin(&program)?;
    let patch = WebhookPatch::replacing(draft, version);
    let saved = engine
        .update_webhook(&who, &webhook_id(&id)?, patch)
        .await?;
    Ok(SavedWebhook {
        webhook: (&saved.webhook).into(),
        secret: saved.secret,
    })
}

/// The edit wizard's starting point: the webhook and a draft of its settings (no secrets).
#[server(prefix = "/sfn", endpoint = "load_webhook_draft", output = crate::api::JsonText)]
pub async fn load_webhook_draft(
    program: String,
    id: String,
) -> Result<(WebhookView, WebhookDraft), AppError> {
    use super::ssr::{admin, engine, webhook_id};
    let engine = engine()?;
    let who = admin(&program)?;
    let program = who.program.clone();
    let w = engine.get_webhook(&program, &webhook_id(&id)?).await?;
    Ok(((&w).into(), herald::delivery::webhooks::draft_of(&w)))
}

/// A new signing secret; the old one keeps signing for 24 hours.
#[server(prefix = "/sfn", endpoint = "rotate_webhook_secret", output = crate::api::JsonText)]
pub async fn rotate_webhook_secret(program: String, id: String) -> Result<String, AppError> {
    use super::ssr::{admin, engine, webhook_id};
    let engine = engine()?;
    let who = admin(&program)?;
    Ok(engine.rotate_secret(&who, &webhook_id(&id)?).await?)
}

/// Send Test: the catalog example of `event_type`, now, through the normal dispatch code.
#[server(prefix = "/sfn", endpoint = "send_test", output = crate::api::JsonText)]
pub async fn send_test(
    program: String,
    id: String,
    event_type: String,
) -> Result<TestOutcome, AppError> {
    use super::ssr::{admin, engine, webhook_id};
    let engine = engine()?;
    let who = admin(&program)?;
    // The form sends an empty choice when there is none to make: the first subscribed type.
    let event_type = Some(event_type.as_str()).filter(|t| !t.is_empty());
    Ok(engine
        .send_test(&who, &webhook_id(&id)?, event_type)
        .await?)
}

/// A webhook's page: settings, figures, flags and charts over `window`, and its latest attempts.
#[server(prefix = "/sfn", endpoint = "load_webhook_details", output = crate::api::JsonText)]
pub async fn load_webhook_details(
    program: String,
    id: String,
    window: String,
) -> Result<WebhookDetails, AppError> {
    use super::ssr::{engine, viewer, webhook_id};
    let engine = engine()?;
    let who = viewer(&program)?;
    let program = who.program.clone();
    let id = webhook_id(&id)?;
    let window = herald::domain::insights::Window::parse(&window)?;
    let (webhook, insights) = engine.webhook_insights(&program, &id, window).await?;
    let query = herald::store::AttemptQuery {
        webhook_id: Some(id),
        limit: 20,
        ..Default::default()
    };
    let page = engine.store().list_attempts(&program, &query).await?;
    Ok(WebhookDetails {
        webhook,
        latest: page.items.iter().map(Into::into).collect(),
        insights,
    })
}

/// The program's overview over `window`: totals, charts, and each webhook's figures and flags.
#[server(prefix = "/sfn", endpoint = "load_program_insights", output = crate::api::JsonText)]
pub async fn load_program_insights(
    program: String,
    window: String,
) -> Result<herald::domain::views::ProgramInsightsView, AppError> {
    use super::ssr::{engine, viewer};
    let engine = engine()?;
    let who = viewer(&program)?;
    let window = herald::domain::insights::Window::parse(&window)?;
    Ok(engine.program_insights(&who.program, window).await?)
}
