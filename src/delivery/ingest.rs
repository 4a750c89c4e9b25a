//! Ingest: an accepted event becomes durable together with one delivery per matching webhook, in
//! one transaction, before the caller hears `202`. Matching means enabled, subscribed to the type,
//! and every filter condition holding for the envelope.
//!
//! Concurrent ingests are group-committed: a single batcher task takes whatever requests are
//! waiting and stores them in one transaction, so under load the database commits once per batch
//! instead of once per event, and an idle system still commits each event at once (no timer).

use super::{Engine, Result};
use crate::domain::event::NewEvent;
use crate::domain::filter::Filter;
use crate::domain::ids::{ProgramId, WebhookId};
use crate::store::{now, Store, StoreError, StoredEvent};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Notify};

/// What ingest did with an event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IngestOutcome {
    pub event_id: uuid::Uuid,
    /// Deliveries fanned out (0 for a duplicate).
    pub deliveries: usize,
    /// The event id was already stored; nothing new was written.
    pub duplicate: bool,
}

/// Most events one group commit carries.
const MAX_BATCH: usize = 256;

/// One event waiting for the batcher, and where to send its result.
pub(super) struct IngestJob {
    event: StoredEvent,
    targets: Vec<WebhookId>,
    reply: oneshot::Sender<Result<Option<usize>, StoreError>>,
}

/// Starts the group-commit task; it ends when every sender (the engine) is gone.
pub(super) fn start_batcher(store: Arc<dyn Store>, wake: Arc<Notify>) -> mpsc::Sender<IngestJob> {
    let (tx, mut rx) = mpsc::channel::<IngestJob>(4 * MAX_BATCH);
    tokio::spawn(async move {
        let mut jobs = Vec::with_capacity(MAX_BATCH);
        while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
            let (batch, replies): (Vec<_>, Vec<_>) = jobs
                .drain(..)
                .map(|j| ((j.event, j.targets), j.reply))
                .unzip();
            match store.ingest_batch(&batch).await {
                Ok(results) => {
                    for (reply, result) in replies.into_iter().zip(results) {
                        let _ = reply.send(Ok(result));
                    }
                }
                // One bad event must not fail its neighbours: retry them one by one.
                Err(_) => {
                    for ((event, targets), reply) in batch.iter().zip(replies) {
                        let _ = reply.send(store.ingest(event, targets).await);
                    }
                }
            }
            wake.notify_one();
        }
    });
    tx
}

/// Fan-out candidates per (program, event type), kept briefly. This process's own webhook changes
/// clear it at once; another process's changes are seen within `SUBSCRIBER_TTL`.
#[derive(Default)]
pub(super) struct SubscriberCache {
    entries: Mutex<HashMap<(ProgramId, String), (Instant, Subscribers)>>,
}

/// The webhooks an event type fans out to, with their filters.
type Subscribers = Arc<Vec<(WebhookId, Filter)>>;

const SUBSCRIBER_TTL: Duration = Duration::from_secs(1);

impl SubscriberCache {
    pub(super) fn clear(&self) {
        self.entries.lock().expect("subscriber cache").clear();
    }

    async fn get(
        &self,
        store: &dyn Store,
        program: &ProgramId,
        event_type: &str,
    ) -> Result<Subscribers> {
        let key = (program.clone(), event_type.to_owned());
        if let Some((at, subs)) = self.entries.lock().expect("subscriber cache").get(&key) {
            if at.elapsed() < SUBSCRIBER_TTL {
                return Ok(subs.clone());
            }
        }
        let subs: Subscribers = Arc::new(
            store
                .subscribers(program, event_type)
                .await?
                .into_iter()
                .map(|w| (w.record.id, w.record.filter))
                .collect(),
        );
        self.entries
            .lock()
            .expect("subscriber cache")
            .insert(key, (Instant::now(), subs.clone()));
        Ok(subs)
    }
}

impl Engine {
    #[tracing::instrument(skip_all, fields(event_type = %event.event_type))]
    pub async fn ingest(&self, program: &ProgramId, event: NewEvent) -> Result<IngestOutcome> {
        let envelope = event.envelope();
        let body = serde_json::to_string(&envelope).expect("plain data");
        let subscribers = self
            .inner
            .subscribers
            .get(self.store().as_ref(), program, &event.event_type)
            .await?;
        // The filter document is built only when some subscriber filters.
        let doc = subscribers
            .iter()
            .any(|(_, f)| !f.is_empty())
            .then(|| serde_json::to_value(&envelope).expect("plain data"));
        let targets: Vec<WebhookId> = subscribers
            .iter()
            .filter(|(_, f)| doc.as_ref().is_none_or(|d| f.matches(d)))
            .map(|(id, _)| id.clone())
            .collect();
        let stored = StoredEvent {
            program_id: program.clone(),
            id: event.event_id,
            event_type: event.event_type,
            event_timestamp: event.event_timestamp,
            body,
            created_at: now(),
        };
        let event_id = stored.id;
        let (reply, answer) = oneshot::channel();
        let job = IngestJob {
            event: stored,
            targets,
            reply,
        };
        self.inner
            .ingest_tx
            .send(job)
            .await
            .map_err(|_| super::EngineError::Refused("the engine is shutting down".into()))?;
        let stored = answer
            .await
            .map_err(|_| super::EngineError::Refused("the engine is shutting down".into()))??;
        Ok(match stored {
            Some(deliveries) => IngestOutcome {
                event_id,
                deliveries,
                duplicate: false,
            },
            None => IngestOutcome {
                event_id,
                deliveries: 0,
                duplicate: true,
            },
        })
    }

    /// Puts a finished delivery back in the queue with a fresh retry budget.
    pub async fn replay(
        &self,
        actor: &crate::auth::Actor,
        id: &crate::domain::ids::DeliveryId,
    ) -> Result<()> {
        if !actor.role.can_manage() {
            return Err(super::EngineError::Forbidden);
        }
        if self
            .store()
            .replay_delivery(&actor.program, id, now())
            .await?
        {
            self.wake();
            crate::auth::access::record_activity(
                self.store().as_ref(),
                actor,
                "replayed",
                &format!("delivery {id}"),
                "",
            )
            .await;
            Ok(())
        } else {
            Err(super::EngineError::NotFound("finished delivery"))
        }
    }
}
