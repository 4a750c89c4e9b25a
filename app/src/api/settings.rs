//! Server functions behind the Settings screen.

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Instance {
    pub version: String,
    pub database: String,
    pub private_targets_allowed: bool,
    /// Room on the database's disk ("78.1 GiB free of 252.0 GiB (31.0%)"), where Herald can
    /// see it (SQLite).
    pub disk: Option<String>,
}

#[server(prefix = "/sfn", endpoint = "instance_info", output = crate::api::JsonText)]
pub async fn instance_info() -> Result<Instance, AppError> {
    super::ssr::signed_in()?;
    let engine = super::ssr::engine()?;
    Ok(Instance {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        database: engine.store().backend().to_owned(),
        private_targets_allowed: engine.config().guard.allow_private,
        disk: engine.disk().map(|d| d.space.describe()),
    })
}

/// The event types whose `data` this program checks against the catalog schema at ingest.
#[server(prefix = "/sfn", endpoint = "list_validated_event_types", output = crate::api::JsonText)]
pub async fn list_validated_event_types(program: String) -> Result<Vec<String>, AppError> {
    let engine = super::ssr::engine()?;
    let who = super::ssr::viewer(&program)?;
    Ok(engine.store().validated_event_types(&who.program).await?)
}

/// Turns schema validation of one event type's `data` at ingest on or off.
#[server(prefix = "/sfn", endpoint = "set_event_type_validation", output = crate::api::JsonText)]
pub async fn set_event_type_validation(
    program: String,
    event_type: String,
    enabled: bool,
) -> Result<(), AppError> {
    let engine = super::ssr::engine()?;
    let who = super::ssr::admin(&program)?;
    Ok(engine
        .set_schema_validation(&who, &event_type, enabled)
        .await?)
}
