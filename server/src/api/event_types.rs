//! `GET /api/v1/event-types`: the catalog.

use super::extract::Caller;
use super::{ApiState, Items};
use axum::routing::get;
use axum::{Json, Router};
use herald::domain::catalog::{self, EventType};

pub fn router() -> Router<ApiState> {
    Router::new().route("/event-types", get(list))
}

async fn list(_caller: Caller) -> Json<Items<EventType>> {
    Json(Items {
        items: catalog::catalog(),
    })
}
