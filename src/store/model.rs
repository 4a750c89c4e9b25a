//! Records the store reads and writes. These are storage-shaped (sealed secrets, counters); the API
//! and the console have their own wire types built from them.

use crate::domain::delivery::{AttemptStatus, DeliveryStatus, Trigger};
use crate::domain::event::EventType;
use crate::domain::filter::Filter;
use crate::domain::ids::{ApiKeyId, AttemptId, DeliveryId, EventId, ProgramId, WebhookId};
use crate::domain::webhook::{AuthKind, RetryPolicy, TargetUrl, WebhookName, WebhookStatus};
use crate::domain::ValidationError;
use chrono::{DateTime, Utc};

/// A webhook's settings as saved (everything the wizard and the API edit).
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookRecord {
    pub id: WebhookId,
    pub program_id: ProgramId,
    pub name: WebhookName,
    pub url: TargetUrl,
    pub method: String,
    pub description: String,
    pub auth_kind: AuthKind,
    pub auth_param: Option<String>,
    /// Signing secrets or the Basic password, sealed by the caller (opaque here).
    pub sealed_secrets: String,
    pub event_types: Vec<String>,
    pub filter: Filter,
    /// Custom headers; a secret one's value is in `sealed_secrets`.
    pub headers: Vec<crate::domain::headers::StoredHeader>,
    /// Per-member ordering: the path whose value orders this webhook's deliveries.
    pub ordering_key: Option<String>,
    pub retry: RetryPolicy,
    pub rate_limit_per_second: Option<u32>,
    pub sandbox: bool,
    pub enabled: bool,
    /// Optimistic-concurrency token: bumped by every write; a write that names an older version
    /// is refused as stale instead of overwriting a change it never saw.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl WebhookRecord {
    /// The Basic Auth user name (`auth_param` of a `basic` webhook).
    pub fn basic_username(&self) -> Option<String> {
        self.auth_param
            .clone()
            .filter(|_| self.auth_kind == crate::domain::webhook::AuthKind::Basic)
    }

    /// The header an `hmac` webhook's signature travels in (`auth_param` of an `hmac` webhook).
    pub fn signature_header(&self) -> Option<String> {
        self.auth_param
            .clone()
            .filter(|_| self.auth_kind == crate::domain::webhook::AuthKind::Hmac)
    }
}

/// Live-attempt counters the engine keeps per webhook.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookStats {
    pub total_attempts: i64,
    pub successful_attempts: i64,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
    pub last_attempt_failed: bool,
    /// Why Herald switched the webhook off by itself (cleared when it is switched on again).
    pub disabled_reason: Option<String>,
    /// When the current run of failed live tries began (`None` once a try succeeds).
    pub failing_since: Option<DateTime<Utc>>,
    /// How many live tries in a row have failed.
    pub failures_in_a_row: i64,
    /// When the webhook was last switched on (its creation, if created on).
    pub enabled_at: Option<DateTime<Utc>>,
}

/// A webhook with its counters, as lists and the engine read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub record: WebhookRecord,
    pub stats: WebhookStats,
    /// `record.url` parsed once, as each request to it is sent (the client and the address
    /// guard take it as it is, instead of parsing the text again for every delivery).
    pub target: url::Url,
}

impl Webhook {
    pub fn status(&self) -> WebhookStatus {
        WebhookStatus::derive(self.record.enabled, self.stats.last_attempt_failed)
    }

    pub fn success_rate(&self) -> Option<f64> {
        crate::domain::webhook::success_rate(
            self.stats.successful_attempts,
            self.stats.total_attempts,
        )
    }
}

/// Filters of the Webhooks list: name substring (case-insensitive) and created-at range
/// (`created_before` exclusive).
#[derive(Debug, Clone, Default)]
pub struct WebhookQuery {
    pub name: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// Only the webhooks listed after this one (newest first): a page's last row.
    pub after: Option<WebhookCursor>,
    /// At most this many; `None` lists them all.
    pub limit: Option<u32>,
}

/// A row's place in a newest-first list (a page's last row, where the next page starts): its
/// creation time, then the id that breaks ties. Spelt `<micros>.<id>` in cursors: opaque to
/// callers, stable in URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position<I> {
    pub created_at: DateTime<Utc>,
    pub id: I,
}

/// A position in the Webhooks list.
pub type WebhookCursor = Position<WebhookId>;
/// A position in the deliveries list.
pub type DeliveryCursor = Position<DeliveryId>;

/// The ids a list can be paged by.
pub trait ListedId: Sized {
    fn parse_listed(raw: &str) -> Option<Self>;
    fn listed_str(&self) -> &str;
}

impl ListedId for WebhookId {
    fn parse_listed(raw: &str) -> Option<Self> {
        Self::parse(raw)
    }
    fn listed_str(&self) -> &str {
        self.as_str()
    }
}

impl ListedId for DeliveryId {
    fn parse_listed(raw: &str) -> Option<Self> {
        Self::parse(raw)
    }
    fn listed_str(&self) -> &str {
        self.as_str()
    }
}

impl ListedId for AttemptId {
    fn parse_listed(raw: &str) -> Option<Self> {
        Self::parse(raw)
    }
    fn listed_str(&self) -> &str {
        self.as_str()
    }
}

impl<I: ListedId> Position<I> {
    /// `<micros>.<id>`.
    pub fn encode(&self) -> String {
        format!(
            "{}.{}",
            self.created_at.timestamp_micros(),
            self.id.listed_str()
        )
    }

    pub fn decode(raw: &str) -> Option<Self> {
        let (micros, id) = raw.split_once('.')?;
        Some(Self {
            created_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: I::parse_listed(id)?,
        })
    }
}

impl WebhookQuery {
    /// The most a page of the Webhooks list may hold.
    pub const MAX_PAGE: u32 = 500;

    /// Builds a page of the Webhooks list from its filters as typed (empty means "any"), as the
    /// REST API and the console both receive them. `limit` defaults to `default_limit`.
    pub fn page_from_filters(
        name: &str,
        start: &str,
        end: &str,
        cursor: &str,
        limit: Option<u32>,
        default_limit: u32,
    ) -> Result<Self, ValidationError> {
        crate::domain::query::check_search("name", name)?;
        let (created_from, created_before) = crate::domain::query::parse_range(start, end)?;
        let after = match cursor.trim() {
            "" => None,
            raw => Some(WebhookCursor::decode(raw).ok_or_else(|| {
                ValidationError::new("cursor", "that page link is no longer valid")
            })?),
        };
        let limit = limit.unwrap_or(default_limit);
        if !(1..=Self::MAX_PAGE).contains(&limit) {
            return Err(ValidationError::new(
                "limit",
                format!("limit must be between 1 and {}", Self::MAX_PAGE),
            ));
        }
        Ok(Self {
            name: Some(name.to_owned()),
            created_from,
            created_before,
            after,
            limit: Some(limit),
        })
    }
}

/// An accepted event: `body` is the exact envelope JSON every delivery of it sends.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub program_id: ProgramId,
    pub id: EventId,
    pub event_type: EventType,
    pub event_timestamp: DateTime<Utc>,
    pub body: String,
    pub created_at: DateTime<Utc>,
    /// The member it is about (`Envelope::member`), for the audit log's search by member.
    pub member: Option<String>,
}

/// One webhook an event fans out to, with the event's ordering value for that webhook (when the
/// webhook orders its deliveries and the event has one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryTarget {
    pub webhook: WebhookId,
    pub ordering_key: Option<String>,
    /// Set when the ingesting process sends this delivery itself: the row is stored already
    /// claimed (first claim, `in_flight`, leased until then), so no claim is needed; if the
    /// process dies first, another claims it when the lease runs out.
    pub lease: Option<Lease>,
    /// The webhook is switched off: the delivery is stored held, so nobody is rung for it (the
    /// switch back on rings the dispatchers). Ingest's routing is fenced on the subscriber-list
    /// version, which every webhook change moves, so this cannot be stale when it commits.
    pub held: bool,
}

/// A delivery stored already claimed by the process that ingests it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub delivery: DeliveryId,
    pub until: DateTime<Utc>,
}

impl From<WebhookId> for DeliveryTarget {
    fn from(webhook: WebhookId) -> Self {
        Self {
            webhook,
            ordering_key: None,
            lease: None,
            held: false,
        }
    }
}

/// Which results of a write moved their delivery on, in the order they were given. The others'
/// claims had been superseded: their attempts are recorded, marked so, and move nothing (see
/// `Store::record_results`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Moved(Vec<bool>);

impl Moved {
    pub fn new(each: Vec<bool>) -> Self {
        Self(each)
    }

    /// Every one of `n` results moved its delivery.
    pub fn every(n: usize) -> Self {
        Self(vec![true; n])
    }

    /// Whether the `i`th result moved its delivery.
    pub fn of(&self, i: usize) -> bool {
        self.0.get(i).copied().unwrap_or(false)
    }

    /// How many results moved their delivery.
    pub fn count(&self) -> usize {
        self.0.iter().filter(|m| **m).count()
    }
}

/// An event on its way in, with the webhooks it fans out to and the subscriber-list version those
/// were chosen from (see `Store::ingest_batch`).
#[derive(Debug, Clone)]
pub struct IngestItem {
    pub event: StoredEvent,
    pub targets: Vec<DeliveryTarget>,
    pub routing_version: i64,
}

/// Deliveries by state, and the database pool's use (the writer's, where there are two).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueGauges {
    pub pending: i64,
    pub in_flight: i64,
    /// Dead letters kept for replay.
    pub failed: i64,
    pub pool_connections: u32,
    pub pool_idle: u32,
}

/// Fan-out candidates of one (program, event type), and the program's subscriber-list version
/// they were read at.
#[derive(Debug, Clone)]
pub struct Subscribers {
    pub version: i64,
    pub webhooks: Vec<Webhook>,
    /// Whether the program checks this type's `data` against its schema at ingest.
    pub validate: bool,
}

/// What `replay_delivery` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replayed {
    /// A finished delivery is pending again with a fresh try budget.
    Requeued,
    /// A delivery waiting for its next retry is due now (its budget is unchanged).
    DueNow,
    /// The delivery is being attempted right now; nothing changed.
    InFlight,
    /// The delivery waits for its switched-off webhook; nothing changed (it goes out, in its
    /// order, when the webhook is switched on).
    Held,
    NotFound,
}

/// An audit-log row to write.
#[derive(Debug, Clone)]
pub struct NewAttempt {
    pub id: AttemptId,
    pub program_id: ProgramId,
    pub webhook_id: WebhookId,
    pub webhook_name: String,
    pub delivery_id: Option<DeliveryId>,
    pub event_id: EventId,
    /// When the stored event this try sent was accepted (its `created_at`); `None` for test
    /// sends and verifications, whose events are not stored. The audit log's event index leads
    /// with it.
    pub event_accepted_at: Option<DateTime<Utc>>,
    pub event_type: EventType,
    pub attempt: i64,
    pub trigger: Trigger,
    pub status: AttemptStatus,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub latency_ms: Option<i64>,
    /// The event's acceptance to this try's end (queued tries only).
    pub lag_ms: Option<i64>,
    pub request_url: String,
    /// Header pairs as sent, secrets already redacted.
    pub request_headers: Vec<(String, String)>,
    /// `None` when the body sent was the event's own (every queued delivery): it is stored once,
    /// in `events.body`, not again per attempt. Test sends and verifications carry theirs.
    pub request_body: Option<String>,
    pub response_headers: Option<Vec<(String, String)>>,
    pub response_body: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// The request went out under a claim a newer claim had replaced (its lease had expired).
    pub superseded: bool,
}

#[cfg(test)]
impl NewAttempt {
    /// A successful live try of an event, to a webhook id of its own (one no store holds), for
    /// unit tests.
    pub(crate) fn sample_success(
        program: ProgramId,
        event_id: EventId,
        event_type: EventType,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: AttemptId::generate(),
            program_id: program,
            webhook_id: WebhookId::generate(),
            webhook_name: "sample".into(),
            delivery_id: None,
            event_id,
            event_accepted_at: Some(at),
            event_type,
            attempt: 1,
            trigger: Trigger::Event,
            status: AttemptStatus::Success,
            status_code: Some(200),
            error: None,
            latency_ms: Some(1),
            lag_ms: None,
            request_url: "http://127.0.0.1/".into(),
            request_headers: Vec::new(),
            request_body: None,
            response_headers: None,
            response_body: None,
            created_at: at,
            delivered_at: Some(at),
            superseded: false,
        }
    }
}

impl NewAttempt {
    /// Whether this attempt moves its webhook's counters.
    pub fn is_live(&self) -> bool {
        self.trigger.is_live() && self.status != AttemptStatus::Sandboxed && !self.superseded
    }
}

/// Audit-log filters; `created_before` is exclusive.
#[derive(Debug, Clone, Default)]
pub struct AttemptQuery {
    pub webhook_id: Option<WebhookId>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub status: Option<AttemptStatus>,
    /// An event id, a member id (an event's `member`), or part of a webhook name.
    pub search: Option<String>,
    pub cursor: Option<Cursor>,
    pub limit: u32,
}

impl AttemptQuery {
    /// Builds an audit-log query from its filters as typed (empty means "any"), as the REST API
    /// and the console's Audit Logs screen both receive them. `limit` defaults to 50, at most 200.
    pub fn from_filters(
        webhook_id: &str,
        start: &str,
        end: &str,
        status: &str,
        search: &str,
        cursor: &str,
        limit: Option<u32>,
    ) -> Result<Self, ValidationError> {
        crate::domain::query::check_search("q", search)?;
        let (created_from, created_before) = crate::domain::query::parse_range(start, end)?;
        let invalid = |field: &str, message: &str| ValidationError::new(field, message);
        let webhook_id = match webhook_id.trim() {
            "" => None,
            raw => Some(
                WebhookId::parse(raw)
                    .ok_or_else(|| invalid("webhook_id", "webhook_id is not a webhook id"))?,
            ),
        };
        let status = match status.trim() {
            "" => None,
            raw => Some(AttemptStatus::parse(raw).ok_or_else(|| {
                invalid("status", "status must be success, failure or sandboxed")
            })?),
        };
        let cursor = match cursor.trim() {
            "" => None,
            raw => Some(
                Cursor::decode(raw)
                    .ok_or_else(|| invalid("cursor", "that page link is no longer valid"))?,
            ),
        };
        let limit = limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(invalid("limit", "limit must be between 1 and 200"));
        }
        Ok(Self {
            webhook_id,
            created_from,
            created_before,
            status,
            search: Some(search.to_owned()),
            cursor,
            limit,
        })
    }
}

/// A keyset position in the audit log (newest first), and which way to page from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: AttemptId,
    /// `true`: rows older than the position (Next); `false`: newer (Previous).
    pub older: bool,
}

impl Cursor {
    /// `n.` (Next) or `p.` (Previous), then the position (see `Position`).
    pub fn encode(&self) -> String {
        let way = if self.older { 'n' } else { 'p' };
        let at = Position {
            created_at: self.created_at,
            id: self.id.clone(),
        };
        format!("{way}.{}", at.encode())
    }

    pub fn decode(raw: &str) -> Option<Self> {
        let (way, position) = raw.split_once('.')?;
        let older = match way {
            "n" => true,
            "p" => false,
            _ => return None,
        };
        let at = Position::<AttemptId>::decode(position)?;
        Some(Self {
            created_at: at.created_at,
            id: at.id,
            older,
        })
    }
}

/// One audit-log row as lists show it.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptSummary {
    pub id: AttemptId,
    pub webhook_id: WebhookId,
    pub webhook_name: String,
    pub delivery_id: Option<DeliveryId>,
    pub event_id: String,
    pub event_type: String,
    pub attempt: i64,
    pub trigger: Trigger,
    pub status: AttemptStatus,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub latency_ms: Option<i64>,
    pub lag_ms: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// Sent under a claim that a newer claim had replaced (see `NewAttempt::superseded`).
    pub superseded: bool,
    /// The member its event is about (`StoredEvent::member`); `None` for a try without a stored
    /// event (a test send, a verification) or an event about no one.
    pub member: Option<String>,
}

/// One audit-log row with the full request and response.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptDetail {
    pub summary: AttemptSummary,
    pub request_url: String,
    pub request_headers: Vec<(String, String)>,
    pub request_body: String,
    pub response_headers: Option<Vec<(String, String)>>,
    pub response_body: Option<String>,
}

/// What one step of the member backfill did (see `Store::backfill_members`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackfillStep {
    /// Events the step read.
    pub read: u64,
    /// Those it gave a member.
    pub filled: u64,
    /// Whether the walk reached the last event (the next step returns `None`).
    pub done: bool,
}

#[derive(Debug, Clone, Default)]
pub struct AttemptPage {
    pub items: Vec<AttemptSummary>,
    /// Cursor for older rows, when there are any.
    pub next: Option<Cursor>,
    /// Cursor for newer rows, when there are any.
    pub prev: Option<Cursor>,
}

#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub status: Option<DeliveryStatus>,
    pub webhook_id: Option<WebhookId>,
    pub event_type: Option<String>,
    /// Accepted at or after.
    pub created_from: Option<DateTime<Utc>>,
    /// Accepted before.
    pub created_before: Option<DateTime<Utc>>,
    /// Only deliveries older than this position (the `next_cursor` of the page before).
    pub after: Option<DeliveryCursor>,
    pub limit: u32,
}

impl DeliveryQuery {
    /// The most a page of the deliveries list may hold.
    pub const MAX_PAGE: u32 = 500;

    /// A deliveries query from the list filters as typed (the REST API and the Deliveries screen
    /// both receive them; the same parsing scopes a bulk replay). `status` is one of
    /// `DeliveryStatus`'s names, or empty or `all` for every status; `cursor` is the
    /// `next_cursor` of the page before, or empty for the first page.
    pub fn from_filters(
        status: &str,
        filter: &crate::domain::replay::ReplayFilter,
        cursor: &str,
        limit: u32,
    ) -> Result<Self, ValidationError> {
        let status = match status.trim() {
            "" | "all" => None,
            raw => Some(DeliveryStatus::parse(raw).ok_or_else(|| {
                ValidationError::new(
                    "status",
                    "status must be pending, in_flight, succeeded, failed or all",
                )
            })?),
        };
        let scope = super::ReplayScope::parse(filter)?;
        let after = match cursor.trim() {
            "" => None,
            raw => Some(DeliveryCursor::decode(raw).ok_or_else(|| {
                ValidationError::new("cursor", "that page link is no longer valid")
            })?),
        };
        if !(1..=Self::MAX_PAGE).contains(&limit) {
            return Err(ValidationError::new(
                "limit",
                format!("limit must be between 1 and {}", Self::MAX_PAGE),
            ));
        }
        Ok(Self {
            status,
            webhook_id: scope.webhook,
            event_type: scope.event_type,
            created_from: scope.created_from,
            created_before: scope.created_before,
            after,
            limit,
        })
    }
}

/// A page of the deliveries list, newest first; `next` continues it.
#[derive(Debug, Clone, Default)]
pub struct DeliveryPage {
    pub items: Vec<DeliverySummary>,
    pub next: Option<DeliveryCursor>,
}

impl DeliveryPage {
    /// The page from the rows a query read: one row more than `limit` means another page follows,
    /// which starts after the page's last delivery.
    pub fn from_rows(mut items: Vec<DeliverySummary>, limit: u32) -> Self {
        let limit = limit.clamp(1, DeliveryQuery::MAX_PAGE) as usize;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|d| DeliveryCursor {
                created_at: d.created_at,
                id: d.id.clone(),
            })
        } else {
            None
        };
        Self { items, next }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeliverySummary {
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
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

/// An API key as stored: only a hash of the secret part.
#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub program_id: ProgramId,
    pub name: String,
    /// The first characters of the key, shown in lists to tell keys apart.
    pub prefix: String,
    pub key_hash: String,
    pub created_at: DateTime<Utc>,
    pub scope: crate::domain::account::KeyScope,
}

/// A webhook whose live tries have all failed for a while (see `Store::sustained_failures`).
#[derive(Debug, Clone, PartialEq)]
pub struct FailingWebhook {
    pub id: WebhookId,
    pub program: ProgramId,
    pub name: String,
    /// When its run of failures began.
    pub since: DateTime<Utc>,
    /// How many tries the run holds.
    pub failures: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_what_they_did_not_write() {
        let at = DateTime::from_timestamp_micros(1_764_720_000_123_456).unwrap();
        let w = WebhookCursor {
            created_at: at,
            id: WebhookId::generate(),
        };
        assert_eq!(WebhookCursor::decode(&w.encode()), Some(w.clone()));
        for older in [true, false] {
            let c = Cursor {
                created_at: at,
                id: AttemptId::generate(),
                older,
            };
            assert_eq!(Cursor::decode(&c.encode()), Some(c));
        }
        let attempt = AttemptId::generate();
        for bad in [
            String::new(),
            format!("x.1.{attempt}"),
            format!("n.soon.{attempt}"),
            format!("n.1.{}", w.id),
            format!("1.{attempt}"),
        ] {
            assert_eq!(Cursor::decode(&bad), None, "{bad}");
        }
        assert_eq!(WebhookCursor::decode(&format!("1.{attempt}")), None);
        assert_eq!(WebhookCursor::decode(&format!("n.1.{}", w.id)), None);
    }
}
