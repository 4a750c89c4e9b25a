//! The delivery path's own vocabulary for the queue: what a claim hands a worker (`Claim`), what
//! came of one try (`Outcome`), and what happens to the delivery next (`NextStep`). The store
//! implements the queue in these terms; its row types stay behind it.

use crate::domain::delivery::Trigger;
use crate::domain::event::EventType;
use crate::domain::ids::{DeliveryId, EventId};
use crate::store::{NewAttempt, Webhook};
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// A delivery a worker now holds, with all it needs to make the request.
#[derive(Debug, Clone)]
pub struct Claim {
    pub delivery_id: DeliveryId,
    /// Fencing token: results are applied only while this still matches.
    pub claim_count: i64,
    /// Tries already recorded (the next one is number `tries + interruptions + 1`).
    pub tries: i64,
    /// Claims whose lease ran out before a result was recorded (a worker died or hung). Each
    /// counts against the retry budget like a failed try.
    pub interruptions: i64,
    /// Why the delivery exists (`event` or `replay`).
    pub trigger: Trigger,
    pub event_id: EventId,
    pub event_type: EventType,
    /// Shared by every delivery of the event that ingest hands over in memory (see `express`).
    pub body: Arc<str>,
    /// When the event was accepted (for event-to-delivery lag).
    pub accepted_at: DateTime<Utc>,
    /// Shared with the webhook's other claims and ingest's routing; a changed webhook is a new
    /// value, never an edit of this one (claims made before it are given back, see `changes`).
    pub webhook: Arc<Webhook>,
}

impl Claim {
    /// Tries used so far, interrupted ones included.
    pub fn tries_used(&self) -> i64 {
        self.tries + self.interruptions
    }
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NextStep {
    Succeeded,
    RetryAt(DateTime<Utc>),
    Failed,
}

/// What came of one try of a claimed delivery: the audit row and the step that follows.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub delivery_id: DeliveryId,
    pub claim_count: i64,
    pub next: NextStep,
    pub attempt: NewAttempt,
    /// Its webhook orders deliveries: the next one for the same key waits for this result's
    /// commit, so it is not held back to share a later one (see `ingest::Linger`).
    pub ordered: bool,
}
