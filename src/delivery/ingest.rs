//! Ingest: an accepted event becomes durable together with one delivery per matching webhook, in
//! one transaction, before the caller hears `202`. Matching means enabled, subscribed to the type,
//! and every filter condition holding for the envelope.

use super::{Engine, Result};
use crate::domain::event::NewEvent;
use crate::domain::ids::ProgramId;
use crate::store::{now, StoredEvent};

/// What ingest did with an event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IngestOutcome {
    pub event_id: uuid::Uuid,
    /// Deliveries fanned out (0 for a duplicate).
    pub deliveries: usize,
    /// The event id was already stored; nothing new was written.
    pub duplicate: bool,
}

impl Engine {
    #[tracing::instrument(skip_all, fields(event_type = %event.event_type))]
    pub async fn ingest(&self, program: &ProgramId, event: NewEvent) -> Result<IngestOutcome> {
        let envelope = event.envelope();
        let body = serde_json::to_string(&envelope).expect("plain data");
        let subscribers = self.store().subscribers(program, &event.event_type).await?;
        // The filter document is built only when some subscriber filters.
        let doc = subscribers
            .iter()
            .any(|w| !w.record.filter.is_empty())
            .then(|| serde_json::to_value(&envelope).expect("plain data"));
        let targets: Vec<_> = subscribers
            .into_iter()
            .filter(|w| doc.as_ref().is_none_or(|d| w.record.filter.matches(d)))
            .map(|w| w.record.id)
            .collect();
        let stored = StoredEvent {
            program_id: program.clone(),
            id: event.event_id,
            event_type: event.event_type,
            event_timestamp: event.event_timestamp,
            body,
            created_at: now(),
        };
        let outcome = match self.store().ingest(&stored, &targets).await? {
            Some(deliveries) => IngestOutcome {
                event_id: stored.id,
                deliveries,
                duplicate: false,
            },
            None => IngestOutcome {
                event_id: stored.id,
                deliveries: 0,
                duplicate: true,
            },
        };
        if outcome.deliveries > 0 {
            self.wake();
        }
        Ok(outcome)
    }

    /// Puts a finished delivery back in the queue with a fresh retry budget.
    pub async fn replay(
        &self,
        program: &ProgramId,
        id: &crate::domain::ids::DeliveryId,
    ) -> Result<()> {
        if self.store().replay_delivery(program, id, now()).await? {
            self.wake();
            Ok(())
        } else {
            Err(super::EngineError::NotFound("finished delivery"))
        }
    }
}
