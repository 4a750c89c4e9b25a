//! `GET /api/v1/insights`: the program's overview (totals, charts, every webhook's figures and
//! flags) over a window.

use super::error::{ApiResult, ErrorBody};
use super::extract::{ApiQuery, Caller};
use super::ApiState;
use axum::extract::State;
use axum::Json;
use herald::domain::insights::Window;
use herald::domain::views::ProgramInsightsView;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(overview))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct OverviewQuery {
    /// `24h` (default), `7d` or `30d`.
    #[serde(default)]
    window: String,
}

/// The program's delivery overview: attempts by outcome, success rate, retries, latency and lag
/// percentiles across its webhooks, the series and charts, and each webhook's figures and flags
/// (busiest first).
#[utoipa::path(get, path = "/insights", operation_id = "get_insights", tag = "insights", params(OverviewQuery), security(("api_key" = [])),
    responses((status = 200, body = ProgramInsightsView), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn overview(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<OverviewQuery>,
) -> ApiResult<Json<ProgramInsightsView>> {
    let window = Window::parse(&q.window)?;
    Ok(Json(
        state
            .engine
            .program_insights(&caller.program, window)
            .await?,
    ))
}
