//! Server functions for moving webhook configurations between programs: export (optionally with
//! secrets sealed by a passphrase), and import with a preview first.

use crate::error::AppError;
use herald::domain::transfer::ImportPlan;
use leptos::prelude::*;

/// The program's webhook configurations as a JSON document. A non-empty `passphrase` brings the
/// secrets along, sealed with it.
#[server(prefix = "/sfn", endpoint = "export_program", output = crate::api::JsonText)]
pub async fn export_program(program: String, passphrase: String) -> Result<String, AppError> {
    use super::ssr::{admin, caller, engine};
    let engine = engine()?;
    let who = admin(&program)?;
    let name = caller()
        .and_then(|c| c.programs.into_iter().find(|p| p.id == who.program))
        .map(|p| p.name)
        .unwrap_or_default();
    let passphrase = Some(passphrase.as_str()).filter(|p| !p.is_empty());
    let doc = engine.export_program(&who, &name, passphrase).await?;
    serde_json::to_string_pretty(&doc).map_err(|e| {
        tracing::error!(error = %e, "could not encode an export");
        AppError::Internal
    })
}

/// What importing `document` would do in the program; changes nothing.
#[server(prefix = "/sfn", endpoint = "preview_import", output = crate::api::JsonText)]
pub async fn preview_import(
    program: String,
    document: String,
    on_conflict: String,
    passphrase: String,
) -> Result<ImportPlan, AppError> {
    ssr::import(&program, &document, &on_conflict, &passphrase, false).await
}

/// Imports `document` into the program in one transaction (all of it or nothing).
#[server(prefix = "/sfn", endpoint = "apply_import", output = crate::api::JsonText)]
pub async fn apply_import(
    program: String,
    document: String,
    on_conflict: String,
    passphrase: String,
) -> Result<ImportPlan, AppError> {
    ssr::import(&program, &document, &on_conflict, &passphrase, true).await
}

#[cfg(feature = "ssr")]
mod ssr {
    use crate::error::AppError;
    use herald::domain::transfer::{ImportPlan, OnConflict, ProgramExport};

    /// Previews (`apply` false) or applies an import request as the program's admin.
    pub async fn import(
        program: &str,
        document: &str,
        on_conflict: &str,
        passphrase: &str,
        apply: bool,
    ) -> Result<ImportPlan, AppError> {
        let who = crate::api::ssr::admin(program)?;
        let on_conflict = OnConflict::parse(on_conflict).ok_or_else(|| AppError::Validation {
            field: "on_conflict".into(),
            message: "Choose skip or update for names already in use".into(),
        })?;
        let doc: ProgramExport =
            serde_json::from_str(document).map_err(|e| AppError::Validation {
                field: "document".into(),
                message: format!("This is not a Herald export document: {e}"),
            })?;
        let passphrase = Some(passphrase).filter(|p| !p.is_empty());
        let engine = crate::api::ssr::engine()?;
        Ok(if apply {
            engine
                .apply_import(&who, &doc, on_conflict, passphrase)
                .await?
        } else {
            engine
                .plan_import(&who, &doc, on_conflict, passphrase)
                .await?
        })
    }
}
