//! Lists as CSV files, with the same filters as the lists: the audit log (`GET
//! /api/v1/attempts/export`, Download CSV on the Audit Logs page: `/p/{program}/audit-logs.csv`)
//! and the deliveries (`GET /api/v1/deliveries/export`, Download CSV on the Deliveries page:
//! `/p/{program}/deliveries.csv`). Newest first, read a page at a time and streamed, up to
//! `MAX_ROWS` rows (a last line says when more matched). Cells a spreadsheet would run as a
//! formula (`=`, `+`, `-`, `@`, tab or carriage return first: webhook names and receivers' errors
//! are other people's text) start with `'`.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::{DateTime, Utc};
use herald::delivery::Engine;
use herald::domain::delivery::{held_due, DeliveryStatus};
use herald::domain::ids::ProgramId;
use herald::domain::replay::ReplayFilter;
use herald::domain::ValidationError;
use herald::store::{AttemptQuery, AttemptSummary, DeliveryQuery, DeliverySummary, StoreError};
use serde::Deserialize;
use std::future::Future;

/// Most rows one export holds.
pub const MAX_ROWS: usize = 100_000;

/// Rows read from the store at a time.
const PAGE: u32 = 200;

/// The audit log's header line.
pub const ATTEMPT_COLUMNS: &str = "attempt_id,created_at,webhook_name,webhook_id,event_type,\
event_id,delivery_id,attempt,trigger,status,status_code,latency_ms,lag_ms,delivered_at,superseded,error,member";

/// The deliveries' header line (`next_attempt_at` only for one waiting to be tried again).
pub const DELIVERY_COLUMNS: &str = "delivery_id,accepted_at,webhook_name,webhook_id,event_type,\
event_id,trigger,status,held,tries,next_attempt_at,updated_at,last_error";

/// A list read a page at a time, newest first.
pub trait Pages: Send + 'static {
    /// Up to `limit` more rows as CSV lines: the text, how many, and whether more follow.
    fn next(
        &mut self,
        limit: u32,
    ) -> impl Future<Output = Result<(String, usize, bool), StoreError>> + Send;
}

/// The audit log's pages.
pub struct Attempts {
    engine: Engine,
    program: ProgramId,
    query: AttemptQuery,
}

impl Pages for Attempts {
    async fn next(&mut self, limit: u32) -> Result<(String, usize, bool), StoreError> {
        self.query.limit = limit;
        let page = self
            .engine
            .store()
            .list_attempts(&self.program, &self.query)
            .await?;
        let text: String = page.items.iter().map(attempt_line).collect();
        let more = !page.items.is_empty() && page.next.is_some();
        self.query.cursor = page.next;
        Ok((text, page.items.len(), more))
    }
}

/// The deliveries' pages.
pub struct Deliveries {
    engine: Engine,
    program: ProgramId,
    query: DeliveryQuery,
}

impl Pages for Deliveries {
    async fn next(&mut self, limit: u32) -> Result<(String, usize, bool), StoreError> {
        self.query.limit = limit;
        let page = self
            .engine
            .store()
            .list_deliveries(&self.program, &self.query)
            .await?;
        let text: String = page.items.iter().map(delivery_line).collect();
        let more = !page.items.is_empty() && page.next.is_some();
        self.query.after = page.next;
        Ok((text, page.items.len(), more))
    }
}

/// The audit-log filters an export takes (those of the list, without paging).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AttemptFilters {
    #[serde(default)]
    pub webhook_id: String,
    #[serde(default)]
    pub start: String,
    #[serde(default)]
    pub end: String,
    #[serde(default)]
    pub status: String,
    /// An event id, a member id, or part of a webhook name.
    #[serde(default)]
    pub q: String,
}

/// What an export reads: its filters, and how they become pages.
pub trait Export: serde::de::DeserializeOwned + Send + 'static {
    type Rows: Pages;
    /// The file name's middle: `herald-{WHAT}-{date}.csv`.
    const WHAT: &'static str;
    /// The header line.
    const COLUMNS: &'static str;
    fn pages(self, engine: &Engine, program: ProgramId) -> Result<Self::Rows, ValidationError>;
}

impl Export for AttemptFilters {
    type Rows = Attempts;
    const WHAT: &'static str = "audit-log";
    const COLUMNS: &'static str = ATTEMPT_COLUMNS;

    fn pages(self, engine: &Engine, program: ProgramId) -> Result<Attempts, ValidationError> {
        let query = AttemptQuery::from_filters(
            &self.webhook_id,
            &self.start,
            &self.end,
            &self.status,
            &self.q,
            "",
            Some(PAGE),
        )?;
        Ok(Attempts {
            engine: engine.clone(),
            program,
            query,
        })
    }
}

/// The deliveries filters an export takes (those of the list, without paging).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryFilters {
    /// pending, in_flight, succeeded or failed (the dead letters); empty or `all` for every status.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub webhook_id: String,
    #[serde(default)]
    pub event_type: String,
    /// Accepted at or after (RFC 3339 or `YYYY-MM-DD`).
    #[serde(default)]
    pub start: String,
    /// Accepted before (a date-only `end` includes that day).
    #[serde(default)]
    pub end: String,
}

impl Export for DeliveryFilters {
    type Rows = Deliveries;
    const WHAT: &'static str = "deliveries";
    const COLUMNS: &'static str = DELIVERY_COLUMNS;

    fn pages(self, engine: &Engine, program: ProgramId) -> Result<Deliveries, ValidationError> {
        let filter = ReplayFilter {
            webhook_id: self.webhook_id,
            event_type: self.event_type,
            start: self.start,
            end: self.end,
        };
        let query = DeliveryQuery::from_filters(&self.status, &filter, "", PAGE)?;
        Ok(Deliveries {
            engine: engine.clone(),
            program,
            query,
        })
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

/// Cells as one CSV line.
fn line(cells: &[String]) -> String {
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

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn number(n: Option<i64>) -> String {
    n.map(|n| n.to_string()).unwrap_or_default()
}

/// One attempt as a CSV line.
pub fn attempt_line(a: &AttemptSummary) -> String {
    line(&[
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
        a.member.clone().unwrap_or_default(),
    ])
}

/// One delivery as a CSV line.
pub fn delivery_line(d: &DeliverySummary) -> String {
    let waiting = d.status == DeliveryStatus::Pending;
    let held = waiting && d.next_attempt_at >= held_due();
    line(&[
        d.id.to_string(),
        time(d.created_at),
        d.webhook_name.clone(),
        d.webhook_id.to_string(),
        d.event_type.clone(),
        d.event_id.clone(),
        d.trigger.as_str().to_owned(),
        d.status.as_str().to_owned(),
        held.to_string(),
        d.tries.to_string(),
        if waiting && !held {
            time(d.next_attempt_at)
        } else {
            String::new()
        },
        time(d.updated_at),
        d.last_error.clone().unwrap_or_default(),
    ])
}

/// The export `filters` select in `program`, as a streamed response (or the validation error).
pub fn export<F: Export>(
    engine: &Engine,
    program: ProgramId,
    filters: F,
) -> Result<Response, ValidationError> {
    let pages = filters.pages(engine, program)?;
    Ok(response(engine, F::WHAT, F::COLUMNS, pages))
}

/// The export as a streamed response: the header line, then a page of rows at a time. A read
/// that fails after the first page ends the response with an error, so a client never takes a
/// cut file for a whole one.
fn response(engine: &Engine, what: &str, columns: &'static str, pages: impl Pages) -> Response {
    struct Progress<P> {
        pages: P,
        sent: usize,
        more: bool,
    }
    let start = Progress {
        pages,
        sent: 0,
        more: true,
    };
    let rows = futures::stream::unfold(start, |mut p| async move {
        if !p.more {
            return None;
        }
        if p.sent >= MAX_ROWS {
            p.more = false;
            let note = format!(
                "\"more rows matched: an export stops at {MAX_ROWS}; narrow the dates for the rest\"\r\n"
            );
            return Some((Ok(Bytes::from(note)), p));
        }
        let limit = PAGE.min((MAX_ROWS - p.sent) as u32);
        match p.pages.next(limit).await {
            Ok((text, rows, more)) => {
                p.sent += rows;
                p.more = more;
                Some((Ok(Bytes::from(text)), p))
            }
            Err(e) => {
                tracing::error!(error = %e, "CSV export: reading a page failed");
                p.more = false;
                Some((Err(std::io::Error::other(e.to_string())), p))
            }
        }
    });
    let head = futures::stream::once(async move {
        Ok::<_, std::io::Error>(Bytes::from(format!("{columns}\r\n")))
    });
    let name = format!("herald-{what}-{}.csv", engine.now().format("%Y-%m-%d"));
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Body::from_stream(futures::StreamExt::chain(head, rows)),
    )
        .into_response()
}

fn refuse(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

/// A Download CSV link of the console (`/p/{program}/audit-logs.csv`,
/// `/p/{program}/deliveries.csv`): the signed-in user's program, with the page's filters.
pub async fn console<F: Export>(
    State(engine): State<Engine>,
    caller: Option<Extension<herald::auth::Caller>>,
    Path(program): Path<String>,
    filters: Result<Query<F>, axum::extract::rejection::QueryRejection>,
) -> Response {
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
    export(&engine, actor.program, filters)
        .unwrap_or_else(|e| refuse(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))
}
