//! The audit log as CSV, with the same filters as the list: `GET /api/v1/attempts/export` (API
//! key) and `/p/{program}/audit-logs.csv` (the console's Download CSV, signed in). Newest first,
//! read a page at a time and streamed, up to `MAX_ROWS` rows (a last line says when more matched).
//! Cells a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab or carriage return first:
//! webhook names and receivers' errors are other people's text) start with `'`.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use herald::delivery::Engine;
use herald::domain::ids::ProgramId;
use herald::store::{AttemptQuery, AttemptSummary};
use serde::Deserialize;

/// Most rows one export holds.
pub const MAX_ROWS: usize = 100_000;

/// Rows read from the store at a time.
const PAGE: u32 = 200;

/// The header line.
pub const COLUMNS: &str = "attempt_id,created_at,webhook_name,webhook_id,event_type,event_id,\
delivery_id,attempt,trigger,status,status_code,latency_ms,lag_ms,delivered_at,superseded,error";

/// The audit-log filters an export takes (those of the list, without paging).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    #[serde(default)]
    pub webhook_id: String,
    #[serde(default)]
    pub start: String,
    #[serde(default)]
    pub end: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub q: String,
}

impl Filters {
    pub fn query(&self) -> Result<AttemptQuery, herald::domain::ValidationError> {
        AttemptQuery::from_filters(
            &self.webhook_id,
            &self.start,
            &self.end,
            &self.status,
            &self.q,
            "",
            Some(PAGE),
        )
    }
}

/// One cell, quoted when it holds a comma, a quote or a line break, and defused when a
/// spreadsheet would take it for a formula.
fn cell(out: &mut String, text: &str) {
    let defuse = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = defuse || text.contains([',', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    if defuse {
        out.push('\'');
    }
    for c in text.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
}

/// One attempt as a CSV line.
pub fn line(a: &AttemptSummary) -> String {
    let time =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let number = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_default();
    let cells = [
        a.id.to_string(),
        time(a.created_at),
        a.webhook_name.clone(),
        a.webhook_id.to_string(),
        a.event_type.clone(),
        a.event_id.clone(),
        a.delivery_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        a.attempt.to_string(),
        a.trigger.as_str().to_owned(),
        a.status.as_str().to_owned(),
        number(a.status_code.map(i64::from)),
        number(a.latency_ms),
        number(a.lag_ms),
        a.delivered_at.map(time).unwrap_or_default(),
        a.superseded.to_string(),
        a.error.clone().unwrap_or_default(),
    ];
    let mut out = String::with_capacity(256);
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        cell(&mut out, c);
    }
    out.push_str("\r\n");
    out
}

/// The export as a streamed response: the header line, then a page of rows at a time. A read
/// that fails after the first page ends the response with an error, so a client never takes a
/// cut file for a whole one.
pub fn response(engine: Engine, program: ProgramId, query: AttemptQuery, name: &str) -> Response {
    struct State {
        engine: Engine,
        program: ProgramId,
        query: Option<AttemptQuery>,
        sent: usize,
    }
    let start = State {
        engine,
        program,
        query: Some(query),
        sent: 0,
    };
    let rows = futures::stream::unfold(start, |mut s| async move {
        let mut query = s.query.take()?;
        if s.sent >= MAX_ROWS {
            let note = format!(
                "\"more attempts matched: an export stops at {MAX_ROWS} rows; narrow the dates for the rest\"\r\n"
            );
            return Some((Ok(Bytes::from(note)), s));
        }
        query.limit = PAGE.min((MAX_ROWS - s.sent) as u32);
        let page = match s.engine.store().list_attempts(&s.program, &query).await {
            Ok(page) => page,
            Err(e) => {
                tracing::error!(error = %e, "audit-log export: reading a page failed");
                return Some((Err(std::io::Error::other(e.to_string())), s));
            }
        };
        let text: String = page.items.iter().map(line).collect();
        s.sent += page.items.len();
        // Another round while older rows remain (past `MAX_ROWS`, that round writes the note).
        if let Some(next) = page.next.filter(|_| !page.items.is_empty()) {
            query.cursor = Some(next);
            s.query = Some(query);
        }
        Some((Ok(Bytes::from(text)), s))
    });
    let head = futures::stream::once(async {
        Ok::<_, std::io::Error>(Bytes::from(format!("{COLUMNS}\r\n")))
    });
    let body = Body::from_stream(futures::StreamExt::chain(head, rows));
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response()
}

/// The file name: `herald-audit-log-2026-12-05.csv`.
pub fn file_name(engine: &Engine) -> String {
    format!("herald-audit-log-{}.csv", engine.now().format("%Y-%m-%d"))
}

/// The console's Download CSV (`/p/{program}/audit-logs.csv`): the signed-in user's program,
/// with the filters of the Audit Logs page.
pub async fn console_export(
    State(engine): State<Engine>,
    caller: Option<Extension<herald::auth::Caller>>,
    Path(program): Path<String>,
    filters: Result<Query<Filters>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let refuse = |status: StatusCode, message: String| {
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            message,
        )
            .into_response()
    };
    let Some(Extension(caller)) = caller else {
        return refuse(StatusCode::UNAUTHORIZED, "sign in first".into());
    };
    let Some(actor) = ProgramId::parse(&program).and_then(|p| caller.actor(&p).ok()) else {
        return refuse(StatusCode::FORBIDDEN, "you cannot open this program".into());
    };
    let Query(filters) = match filters {
        Ok(f) => f,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e.body_text()),
    };
    match filters.query() {
        Ok(query) => {
            let name = file_name(&engine);
            response(engine, actor.program, query, &name)
        }
        Err(e) => refuse(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    }
}
