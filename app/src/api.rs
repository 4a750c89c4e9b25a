//! Server functions, by area. All live under `/sfn` (apart from the REST API's `/api/v1`), take
//! their engine from the request context, and return `AppError`.

pub mod audit;
pub mod settings;
pub mod webhooks;

#[cfg(feature = "ssr")]
pub(crate) mod ssr {
    use crate::error::AppError;
    use herald::delivery::Engine;
    use herald::domain::ids::ProgramId;

    /// The engine the server put in the request context.
    pub fn engine() -> Result<Engine, AppError> {
        leptos::prelude::use_context::<Engine>().ok_or_else(|| {
            tracing::error!("no engine in the server-function context");
            AppError::Internal
        })
    }

    /// Parses a webhook id from a form or URL; a malformed one is simply not found.
    pub fn webhook_id(raw: &str) -> Result<herald::domain::ids::WebhookId, AppError> {
        herald::domain::ids::WebhookId::parse(raw)
            .ok_or_else(|| AppError::NotFound("webhook".into()))
    }

    /// The program the console works in.
    pub async fn program(engine: &Engine) -> Result<ProgramId, AppError> {
        Ok(engine.store().default_program().await?)
    }
}
