//! Server functions behind the Settings screen.

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Instance {
    pub version: String,
    pub database: String,
    pub private_targets_allowed: bool,
}

#[server(prefix = "/sfn", endpoint = "instance_info")]
pub async fn instance_info() -> Result<Instance, AppError> {
    super::ssr::signed_in()?;
    let engine = super::ssr::engine()?;
    Ok(Instance {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        database: engine.store().backend().to_owned(),
        private_targets_allowed: engine.config().guard.allow_private,
    })
}
