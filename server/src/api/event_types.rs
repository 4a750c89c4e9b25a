//! `GET /api/v1/event-types`: the catalog.

use super::extract::Caller;
use super::{ApiState, Items};
use axum::Json;
use herald::domain::catalog::{self, EventType};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// The event catalog: every type with its feed, description, JSON schema of `data` and example.
#[utoipa::path(get, path = "/event-types", operation_id = "list_event_types", tag = "events", security(("api_key" = [])),
    responses((status = 200, body = Items<EventType>), (status = 401, body = super::error::ErrorBody)))]
async fn list(_caller: Caller) -> Json<Items<EventType>> {
    Json(Items {
        items: catalog::catalog(),
    })
}
