//! `GET /api/v1/event-types`: the catalog, with whether the program validates each type's `data`;
//! `PUT /api/v1/event-types/{name}/validation`: turn that validation on or off.

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{ApiJson, Caller};
use super::{ApiState, Items};
use axum::extract::{Path, State};
use axum::Json;
use herald::domain::catalog::{self, EventType};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(set_validation))
}

/// A catalog entry and the program's choice for it.
#[derive(Serialize, ToSchema)]
pub struct EventTypeView {
    #[serde(flatten)]
    event_type: EventType,
    /// Whether events of this type are refused (422, naming the failing path) when their `data`
    /// breaks the schema. Off unless turned on.
    validate_data: bool,
}

/// The event catalog: every type with its feed, description, JSON schema of `data`, example, and
/// whether this program validates its `data` at ingest.
#[utoipa::path(get, path = "/event-types", operation_id = "list_event_types", tag = "events", security(("api_key" = [])),
    responses((status = 200, body = Items<EventTypeView>), (status = 401, body = ErrorBody)))]
async fn list(
    State(state): State<ApiState>,
    caller: Caller,
) -> ApiResult<Json<Items<EventTypeView>>> {
    let validated = state
        .engine
        .store()
        .validated_event_types(&caller.program)
        .await?;
    Ok(Json(Items {
        items: catalog::catalog()
            .into_iter()
            .map(|t| EventTypeView {
                validate_data: validated.iter().any(|v| v == t.name),
                event_type: t,
            })
            .collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidationBody {
    /// `true` to check `data` against the type's schema at ingest.
    enabled: bool,
}

/// Turn schema validation of one event type's `data` at ingest on or off for the program.
#[utoipa::path(put, path = "/event-types/{name}/validation", operation_id = "set_event_type_validation", tag = "events",
    params(("name" = String, Path, description = "A catalog event type, e.g. `points.awarded`")), request_body = ValidationBody,
    security(("api_key" = [])),
    responses((status = 200, body = EventTypeView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_validation(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<ValidationBody>,
) -> ApiResult<Json<EventTypeView>> {
    let event_type = catalog::event_type(&name).ok_or_else(|| ApiError::not_found("event type"))?;
    state
        .engine
        .set_schema_validation(&caller.actor, &name, body.enabled)
        .await?;
    Ok(Json(EventTypeView {
        event_type,
        validate_data: body.enabled,
    }))
}
