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

    /// The program the console works in.
    pub async fn program(engine: &Engine) -> Result<ProgramId, AppError> {
        Ok(engine.store().default_program().await?)
    }
}
