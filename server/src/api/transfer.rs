//! `/api/v1/program/export` and `/api/v1/program/import[/preview]`: the program's webhook
//! configurations as a versioned document, and importing one (preview first, then in one
//! transaction), as the console's Settings and `herald program export|import` do.

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{ApiJson, Caller};
use super::ApiState;
use axum::extract::State;
use axum::Json;
use herald::domain::transfer::{ImportPlan, OnConflict, ProgramExport};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(export))
        .routes(routes!(preview))
        .routes(routes!(apply))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ExportBody {
    /// When given (12 characters or more), signing secrets and Basic passwords travel too,
    /// sealed with it; without it, no secret leaves.
    #[serde(default)]
    passphrase: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    /// A document from an export.
    document: ProgramExport,
    /// What to do with a webhook whose name is taken: `skip` (default) or `update`.
    #[serde(default)]
    on_conflict: OnConflict,
    /// The passphrase the document's secrets were sealed with.
    #[serde(default)]
    passphrase: Option<String>,
}

/// Export the program's webhook configurations (by name; no secret unless a passphrase seals them).
/// Send `{}` for an export without secrets.
#[utoipa::path(post, path = "/program/export", operation_id = "export_program", tag = "program", request_body = ExportBody,
    security(("api_key" = [])),
    responses((status = 200, body = ProgramExport), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn export(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<ExportBody>,
) -> ApiResult<Json<ProgramExport>> {
    let name = state
        .access
        .find_program(caller.program.as_str())
        .await
        .map(|p| p.name)
        .unwrap_or_default();
    let passphrase = body.passphrase.as_deref().filter(|p| !p.is_empty());
    Ok(Json(
        state
            .engine
            .export_program(&caller.actor, &name, passphrase)
            .await?,
    ))
}

/// What importing a document would do (create, update, unchanged, skip, invalid); writes nothing.
#[utoipa::path(post, path = "/program/import/preview", operation_id = "preview_import", tag = "program", request_body = ImportBody,
    security(("api_key" = [])),
    responses((status = 200, body = ImportPlan), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn preview(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<ImportBody>,
) -> ApiResult<Json<ImportPlan>> {
    let passphrase = body.passphrase.as_deref().filter(|p| !p.is_empty());
    Ok(Json(
        state
            .engine
            .plan_import(&caller.actor, &body.document, body.on_conflict, passphrase)
            .await?,
    ))
}

/// Import a document in one transaction, as the preview shows; refused with nothing written
/// while any of its webhooks is invalid.
#[utoipa::path(post, path = "/program/import", operation_id = "apply_import", tag = "program", request_body = ImportBody,
    security(("api_key" = [])),
    responses((status = 200, body = ImportPlan), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, description = "The document cannot be imported as it is", body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn apply(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<ImportBody>,
) -> ApiResult<Json<ImportPlan>> {
    let passphrase = body.passphrase.as_deref().filter(|p| !p.is_empty());
    let plan = state
        .engine
        .apply_import(&caller.actor, &body.document, body.on_conflict, passphrase)
        .await
        .map_err(ApiError::from)?;
    Ok(Json(plan))
}
