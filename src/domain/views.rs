//! Wire shapes of stored records, as the REST API returns them and the console's server functions
//! hand them to the browser. Built from storage records on the server (`store::views`); plain
//! serde data here so the browser can hold them too. No secret ever appears in one.

use super::delivery::{AttemptStatus, DeliveryStatus, Trigger};
use super::insights::{Figures, Flag, SeriesPoint, Window};
use super::webhook::WebhookStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthView {
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub username: Option<String>,
    /// The header an `hmac` webhook's signature travels in.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub header: Option<String>,
}

#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryView {
    pub attempts: u32,
    pub delay_seconds: u32,
    pub backoff: String,
    pub timeout_seconds: u32,
    /// The delay before each retry in seconds, when `backoff` is `schedule`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedule: Vec<i64>,
}

#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookView {
    pub id: String,
    pub name: String,
    pub url: String,
    pub method: String,
    pub description: String,
    pub auth: AuthView,
    pub event_types: Vec<String>,
    #[cfg_attr(feature = "server", schema(value_type = Vec<Object>))]
    pub filter: serde_json::Value,
    pub retry: RetryView,
    pub rate_limit_per_second: Option<u32>,
    pub sandbox: bool,
    pub enabled: bool,
    /// Custom headers sent with every request; a secret one's value is masked.
    #[serde(default)]
    pub headers: Vec<HeaderView>,
    /// Per-member ordering path (e.g. `data.member_id`), or `null` when deliveries are not ordered.
    #[serde(default)]
    pub ordering_key: Option<String>,
    pub status: WebhookStatus,
    /// Live successes ÷ live attempts × 100; `null` before the first live attempt.
    pub success_rate: Option<f64>,
    pub total_attempts: i64,
    pub successful_attempts: i64,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
    /// Why Herald switched the webhook off by itself (e.g. "endpoint answered 410 Gone at …");
    /// cleared when it is switched on again. Its deliveries wait meanwhile.
    #[serde(default)]
    pub disabled_reason: Option<String>,
    /// Deliveries waiting while the webhook is off: they go out in order when it is switched on
    /// (or are dead-lettered then, if the admin chooses `discard_held`). Counted up to 10,000.
    #[serde(default)]
    pub held: i64,
    /// More than `held` (10,000) are waiting: counting stops there.
    #[serde(default)]
    pub held_more: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the webhook was last switched on (its creation, if it was created on); a hold
    /// released then counts as waiting from this moment, not from its events' acceptance.
    #[serde(default)]
    pub enabled_at: Option<DateTime<Utc>>,
    /// Changes with every write; send it back as `version` in a PATCH to have the change refused
    /// (409) if someone else changed the webhook since you read it.
    pub version: i64,
    /// Figures over a window (lists and reads ask for them; `null` elsewhere).
    #[serde(default)]
    pub figures: Option<Figures>,
    /// What the insight rules found worth a look (see the README's "Insights").
    #[serde(default)]
    pub flags: Vec<Flag>,
}

impl WebhookView {
    /// The held deliveries as the console shows them: `None` when nothing is held, "12", or
    /// "10000+" past the counting limit.
    pub fn held_label(&self) -> Option<String> {
        match (self.held, self.held_more) {
            (0, _) => None,
            (n, true) => Some(format!("{n}+")),
            (n, false) => Some(n.to_string()),
        }
    }
}

/// What a Select Webhook filter offers: at most `WebhookChoiceList::LIMIT` webhooks, newest first
/// (the one already chosen among them even when older), and whether the program has more.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookChoiceList {
    pub items: Vec<WebhookChoice>,
    /// More webhooks exist than are offered: search by name finds the others.
    pub more: bool,
}

impl WebhookChoiceList {
    /// A program with thousands of webhooks would make a select too long to use and a page too
    /// heavy to send.
    pub const LIMIT: u32 = 200;
}

/// One webhook in a Select Webhook filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookChoice {
    pub id: String,
    pub name: String,
}

/// A custom header as shown: a secret one's value is `••••••••`.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderView {
    pub name: String,
    pub value: String,
    pub secret: bool,
}

#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptView {
    pub id: String,
    pub webhook_id: String,
    pub webhook_name: String,
    pub delivery_id: Option<String>,
    pub event_id: String,
    pub event_type: String,
    pub attempt: i64,
    pub trigger: Trigger,
    pub status: AttemptStatus,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub latency_ms: Option<i64>,
    /// From the event's acceptance to this try's end (queued tries only).
    #[serde(default)]
    pub lag_ms: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// Sent under a claim whose lease had run out and that a newer claim replaced: kept for the
    /// record, it moved neither the delivery nor the webhook's figures.
    #[serde(default)]
    pub superseded: bool,
    /// The member the event is about (its `member_id`, or `user_id` when it has none); `null`
    /// for a test send, a verification, or an event about no one.
    #[serde(default)]
    pub member: Option<String>,
}

#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestView {
    pub url: String,
    #[cfg_attr(feature = "server", schema(value_type = Vec<Vec<String>>))]
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseView {
    #[cfg_attr(feature = "server", schema(value_type = Vec<Vec<String>>))]
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptDetailView {
    #[serde(flatten)]
    pub attempt: AttemptView,
    pub request: RequestView,
    pub response: Option<ResponseView>,
}

#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryView {
    pub id: String,
    pub webhook_id: String,
    pub webhook_name: String,
    pub event_id: String,
    pub event_type: String,
    pub trigger: Trigger,
    pub status: DeliveryStatus,
    pub tries: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A page of the Webhooks list, newest first; `next_cursor` continues it.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookPageView {
    pub items: Vec<WebhookView>,
    pub next_cursor: Option<String>,
}

impl DeliveryView {
    /// Waiting for its switched-off webhook: it goes out when the webhook is switched on.
    pub fn is_held(&self) -> bool {
        self.status == DeliveryStatus::Pending
            && self.next_attempt_at >= super::delivery::held_due()
    }
}

/// A page of the deliveries list, newest first; `next_cursor` continues it (`null` on the last).
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryPageView {
    pub items: Vec<DeliveryView>,
    pub next_cursor: Option<String>,
}

/// A page of the audit log with opaque keyset cursors.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptPageView {
    pub items: Vec<AttemptView>,
    pub next_cursor: Option<String>,
    pub prev_cursor: Option<String>,
}

/// What Send Test reports inline.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestOutcome {
    pub success: bool,
    pub status_code: Option<i32>,
    pub latency_ms: Option<i64>,
    pub error: Option<String>,
    pub response_body: Option<String>,
    /// The audit-log row of this request.
    pub attempt_id: String,
    /// The webhook is in sandbox mode: the request was recorded, not sent.
    pub sandboxed: bool,
}

/// What Verify reports.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyOutcome {
    pub verified: bool,
    pub status_code: Option<i32>,
    pub error: Option<String>,
}

/// A webhook just saved, with its signing secret on the one response that reveals it.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedWebhook {
    #[serde(flatten)]
    pub webhook: WebhookView,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// A webhook's page: its settings, figures and flags, its charts, and its latest attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookDetails {
    pub webhook: WebhookView,
    /// Newest first.
    pub latest: Vec<AttemptView>,
    pub insights: InsightsView,
}

/// Insights of one webhook or a whole program over a window: figures, flags, the chart series and
/// the charts themselves as SVG (drawn on the server, so they read before the wasm loads).
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InsightsView {
    pub window: Window,
    pub figures: Figures,
    pub flags: Vec<Flag>,
    /// Hours per series point (1, 6 or 24).
    pub step_hours: i64,
    pub series: Vec<SeriesPoint>,
    /// Deliveries per step by outcome (stacked bars).
    pub deliveries_svg: String,
    /// Latency p50 and p95 per step (lines).
    pub latency_svg: String,
}

/// A program's overview: its totals and charts, and each webhook's figures and flags.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramInsightsView {
    pub insights: InsightsView,
    /// Busiest first.
    pub webhooks: Vec<WebhookView>,
}
