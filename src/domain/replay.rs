//! Bulk replay of dead letters: which ones (a filter as the audit log's: webhook, event type, the
//! date range of acceptance) and how far a job has got.

use super::ValidationError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which dead letters to replay, as the console and the API send it; empty fields match all.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayFilter {
    /// Only this webhook's (`wh_…`).
    #[serde(default)]
    pub webhook_id: String,
    /// Only this event type's.
    #[serde(default)]
    pub event_type: String,
    /// Accepted at or after (RFC 3339 or `YYYY-MM-DD`).
    #[serde(default)]
    pub start: String,
    /// Accepted before (a date-only `end` includes that day).
    #[serde(default)]
    pub end: String,
}

/// Where a job stands.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayJobStatus {
    Running,
    Done,
}

impl ReplayJobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Done => "done",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "running" => Some(Self::Running),
            "done" => Some(Self::Done),
            _ => None,
        }
    }
}

/// A bulk replay job and its progress.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayJobView {
    pub id: String,
    pub status: ReplayJobStatus,
    /// Dead letters that matched when the job started.
    pub total: i64,
    /// How many of them are back in the queue so far.
    pub replayed: i64,
    pub webhook_id: Option<String>,
    pub event_type: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub started_by: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl ReplayJobView {
    /// Progress in percent (100 for a job with nothing to do).
    pub fn percent(&self) -> i64 {
        if self.total == 0 {
            100
        } else {
            self.replayed * 100 / self.total
        }
    }
}

impl ReplayFilter {
    /// The event type, checked against the catalog (empty: all).
    pub fn checked_event_type(&self) -> Result<Option<String>, ValidationError> {
        match self.event_type.trim() {
            "" => Ok(None),
            t => Ok(Some(super::event::EventType::parse(t)?.as_str().to_owned())),
        }
    }
}
