//! Ingest: an accepted event becomes durable together with one delivery per matching webhook, in
//! one transaction, before the caller hears `202`. Matching means subscribed to the type and every
//! filter condition holding for the envelope. A switched-off webhook still gets its deliveries:
//! they are held (claims skip it) and go out in order when it is switched on again, unless the
//! admin discards them then.
//!
//! Concurrent ingests are group-committed: a single batcher task takes whatever requests are
//! waiting and stores them in one transaction, so under load the database commits once per batch
//! instead of once per event, and an idle system still commits each event at once (no timer).
//! The recorder hands its batches of delivery results to the same task, and a batch of events
//! and a batch of results share one transaction (`Store::ingest_and_record`): half the commits
//! (on PostgreSQL a commit costs the server more than the rows it carries; README, Benchmarks,
//! thirty-fourth sitting), and on SQLite no turn-taking between two tasks on its one connection.

use super::observe;
use super::queue::Outcome;
use super::{Engine, Result};
use crate::domain::event::NewEvent;
use crate::domain::filter::Filter;
use crate::domain::ids::ProgramId;
use crate::domain::webhook::ordering_value;
use crate::store::{
    DeliveryTarget, IngestItem, Moved, Replayed, Store, StoreError, StoredEvent, Webhook,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// What ingest did with an event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IngestOutcome {
    pub event_id: crate::domain::ids::EventId,
    /// Deliveries fanned out (0 for a duplicate).
    pub deliveries: usize,
    /// The event id was already stored; nothing new was written.
    pub duplicate: bool,
}

/// Most events one group commit carries.
const MAX_BATCH: usize = 256;

/// Where a job's results go: each event's deliveries fanned out (`None`: already stored), or why
/// none of them was stored.
type Reply = oneshot::Sender<Result<Vec<Option<usize>>, StoreError>>;

/// One request's events waiting for the batcher, and where to send their results. They are
/// stored together or not at all: a batch answered `503` has stored none of its events, so a
/// client that resends it (even without event ids of its own) cannot store any twice.
pub(super) struct IngestJob {
    items: Vec<IngestItem>,
    /// The webhook of each of an item's `targets`, in the same order.
    webhooks: Vec<Vec<Arc<Webhook>>>,
    reply: Reply,
    /// When it was handed to the group-commit task.
    queued: Instant,
}

/// The group-commit task's answer to a batch of results (see `WriteJob::Results`).
pub(super) type ResultsWritten = Result<(Vec<Outcome>, Moved), Vec<Outcome>>;

/// What the group-commit task is given.
pub(super) enum WriteJob {
    Ingest(IngestJob),
    /// A batch of delivery results from the recorder, to share the next transaction. The answer
    /// gives them back: written, with which of them moved their delivery, or unwritten (the
    /// recorder then writes them itself, with its own fallbacks).
    Results(
        Vec<Outcome>,
        oneshot::Sender<ResultsWritten>,
        /// When they were handed over.
        Instant,
    ),
}

/// How long a batch of delivery results that arrives alone may wait for events to share their
/// commit (see `Linger`).
const RESULTS_LINGER: Duration = Duration::from_millis(2);

/// Whether a batch of delivery results that arrives with no events waiting should wait up to
/// `RESULTS_LINGER` for the next ones and share their commit. Nobody waits on a result's commit
/// (the receiver has its delivery; the delivery's lease covers a crash meanwhile), so it may
/// wait. Worth it only while events arrive a few at a time: at 1,000 events/s each event and
/// each result otherwise committed on its own (about 1,100 transactions a second of 0.9 events
/// and 0.9 results), and every commit writes the pages it dirtied in full. Flat out, with senders
/// that each wait for their event's commit, the events come six or more to a commit, and results
/// that waited there measured 3-18% slower: the writer sat idle while they waited, and the
/// events they waited for were the ones waiting for the writer. Results an ordered delivery
/// waits for never wait (the next delivery for the same key is claimed only after this one's
/// commit).
#[derive(Debug, Default)]
struct Linger {
    /// When the last batch with events was taken.
    events_seen: Option<Instant>,
    /// Events per batch that had any, averaged over the last few such batches.
    events_per_batch: f64,
}

impl Linger {
    /// At most this many events per batch, on average, counts as a few at a time.
    const FEW_AT_A_TIME: f64 = 3.0;
    /// Weight of the newest batch in `events_per_batch`.
    const WEIGHT: f64 = 0.25;

    /// Notes a batch about to be written.
    fn took(&mut self, received: &[WriteJob], now: Instant) {
        let events = received
            .iter()
            .map(|j| match j {
                WriteJob::Ingest(job) => job.items.len(),
                WriteJob::Results(..) => 0,
            })
            .sum();
        self.took_events(events, now);
    }

    fn took_events(&mut self, events: usize, now: Instant) {
        if events == 0 {
            return;
        }
        self.events_per_batch = if self.events_seen.is_none() {
            events as f64
        } else {
            self.events_per_batch + Self::WEIGHT * (events as f64 - self.events_per_batch)
        };
        self.events_seen = Some(now);
    }

    /// Whether `received` (just taken) should wait for events, as described above.
    fn wait(&self, received: &[WriteJob], now: Instant) -> bool {
        self.events_seen
            .is_some_and(|at| now.saturating_duration_since(at) < RESULTS_LINGER)
            && self.events_per_batch <= Self::FEW_AT_A_TIME
            && received.iter().all(|j| match j {
                WriteJob::Ingest(_) => false,
                WriteJob::Results(results, _, _) => results.iter().all(|r| !r.ordered),
            })
    }
}

/// Starts the group-commit task; it ends when every sender (the engine) is gone. It holds the
/// engine only while it works on a batch.
pub(super) fn start_batcher(engine: Weak<super::Inner>) -> mpsc::Sender<WriteJob> {
    let (tx, mut rx) = mpsc::channel::<WriteJob>(4 * MAX_BATCH);
    tokio::spawn(async move {
        let mut received = Vec::with_capacity(MAX_BATCH);
        let mut jobs = Vec::with_capacity(MAX_BATCH);
        let mut linger = Linger::default();
        while rx.recv_many(&mut received, MAX_BATCH).await > 0 {
            if linger.wait(&received, Instant::now()) {
                // Only events can arrive meanwhile (the recorder waits for this batch's answer).
                let _ =
                    tokio::time::timeout(RESULTS_LINGER, rx.recv_many(&mut received, MAX_BATCH))
                        .await;
            }
            linger.took(&received, Instant::now());
            let Some(inner) = engine.upgrade() else {
                return;
            };
            let mut results = None;
            for job in received.drain(..) {
                match job {
                    WriteJob::Ingest(j) => jobs.push(j),
                    WriteJob::Results(r, done, queued) if results.is_none() => {
                        results = Some((r, done, queued))
                    }
                    // One batch of results per transaction; the recorder sends one at a time.
                    WriteJob::Results(r, done, _) => {
                        let _ = done.send(Err(r));
                    }
                }
            }
            let engine = Engine { inner };
            let start = Instant::now();
            observe::waited_for_write(
                "events",
                jobs.iter()
                    .flat_map(|j| std::iter::repeat_n(start - j.queued, j.items.len())),
            );
            match results {
                Some((results, done, queued)) => {
                    observe::waited_for_write("results", std::iter::once(start - queued));
                    engine.commit_with(&mut jobs, results, done).await
                }
                None => engine.commit(&mut jobs).await,
            }
        }
    });
    tx
}

/// A batch of ingest jobs taken apart: what is stored, each event's webhooks, and each job's
/// reply with how many of the events (in order) are its.
struct Batch {
    items: Vec<IngestItem>,
    webhooks: Vec<Vec<Arc<Webhook>>>,
    replies: Vec<(usize, Reply)>,
}

impl Batch {
    fn of(jobs: &mut Vec<IngestJob>) -> Self {
        let mut b = Batch {
            items: Vec::with_capacity(jobs.len()),
            webhooks: Vec::with_capacity(jobs.len()),
            replies: Vec::with_capacity(jobs.len()),
        };
        for j in jobs.drain(..) {
            b.replies.push((j.items.len(), j.reply));
            b.items.extend(j.items);
            b.webhooks.extend(j.webhooks);
        }
        b
    }
}

impl Engine {
    /// Stores one batch of waiting events (emptying `jobs`) and answers each.
    async fn commit(&self, jobs: &mut Vec<IngestJob>) {
        let mut b = Batch::of(jobs);
        self.own(&mut b.items, &b.webhooks);
        let start = Instant::now();
        let outcome = self.store().ingest_batch(&b.items).await;
        let carried = if outcome.is_ok() { b.items.len() } else { 0 };
        observe::wrote("events", start.elapsed(), carried, 0);
        self.settle(b, outcome).await;
    }

    /// Stores waiting events (possibly none) and a batch of delivery results in one
    /// transaction. If that fails, the events are stored as `commit` stores them and the results
    /// go back to the recorder unwritten.
    async fn commit_with(
        &self,
        jobs: &mut Vec<IngestJob>,
        results: Vec<Outcome>,
        done: oneshot::Sender<ResultsWritten>,
    ) {
        let mut b = Batch::of(jobs);
        self.own(&mut b.items, &b.webhooks);
        let store = self.store();
        let start = Instant::now();
        let shared = store
            .ingest_and_record(&b.items, &results, self.now())
            .await;
        if shared.is_ok() {
            observe::wrote("shared", start.elapsed(), b.items.len(), results.len());
        }
        match shared {
            Ok((stored, moved)) => {
                self.inner.write_health.succeeded(!b.items.is_empty());
                let _ = done.send(Ok((results, moved)));
                self.settle(b, Ok(stored)).await;
            }
            // Unreachable, the events alone would wait out the pool's timeout again and fail the
            // same way: they are answered at once (`503`), the results go back to the recorder,
            // which waits the outage out.
            Err(e) if e.is_unreachable() => {
                let _ = done.send(Err(results));
                self.settle(b, Err(e)).await;
            }
            Err(e) => {
                tracing::debug!(error = %e, "a shared transaction of events and results failed; writing them apart");
                let _ = done.send(Err(results));
                if !b.items.is_empty() {
                    let outcome = store.ingest_batch(&b.items).await;
                    self.settle(b, outcome).await;
                }
            }
        }
    }

    /// Finishes a batch of events after its first try: tries again where that can help (a
    /// stale subscriber list, or one bad event among good ones), gives the deliveries it owns
    /// to the dispatcher, answers each event, and only then rings the dispatcher for the owned
    /// and the queued work (rung first, its planning ran ahead of most answers: flat out +6%,
    /// README, Benchmarks, thirty-eighth sitting).
    async fn settle(&self, b: Batch, mut outcome: Result<Vec<Option<usize>>, StoreError>) {
        let Batch {
            items: mut batch,
            mut webhooks,
            replies,
        } = b;
        if batch.is_empty() {
            for (_, reply) in replies {
                let _ = reply.send(Ok(Vec::new()));
            }
            return;
        }
        let store = self.store().as_ref();
        if matches!(outcome, Err(StoreError::StaleRouting)) {
            // A webhook changed since these events were routed. Routed again from fresh lists
            // they could lose again, and again, to a loop of changes (before, eight such rounds
            // in a row could all lose), so they are routed inside the transaction that stores
            // them, where no change can come between.
            self.inner.subscribers.clear();
            observe::rerouted(batch.len());
            outcome = reroute(store, &mut batch, &mut webhooks).await;
        }
        // Each job's results: its events are stored together or not at all.
        let results: Vec<Result<Vec<Option<usize>>, StoreError>> = match outcome {
            Ok(mut results) => replies
                .iter()
                .map(|(len, _)| Ok(results.drain(..*len).collect()))
                .collect(),
            // The database is simply unavailable: each job alone would fail the same way (not so
            // a conflict with another transaction: tried again below, it goes through).
            Err(e)
                if (e.is_unavailable() && !e.is_conflict())
                    || matches!(e, StoreError::StaleRouting) =>
            {
                tracing::warn!(error = %e, count = batch.len(), "ingest batch not stored");
                let reason = e.unavailable_reason();
                if e.is_unavailable() {
                    self.inner
                        .write_health
                        .failed(reason.clone(), self.now(), true);
                }
                replies
                    .iter()
                    .map(|_| Err(StoreError::Unavailable(reason.clone())))
                    .collect()
            }
            // One bad job must not fail its neighbours: each is stored alone (routed inside its
            // own transaction, so it cannot go stale meanwhile). A conflict's batch goes this way
            // too; a job that conflicts again is refused as unavailable (`503`).
            Err(_) => {
                let mut alone = Vec::with_capacity(replies.len());
                let mut start = 0;
                for (len, _) in &replies {
                    let job = start..start + len;
                    start += len;
                    alone.push(reroute(store, &mut batch[job.clone()], &mut webhooks[job]).await);
                }
                alone
            }
        };
        let mut stored = Vec::with_capacity(batch.len());
        for ((len, _), result) in replies.iter().zip(&results) {
            match result {
                Ok(r) => stored.extend(r.iter().map(Option::is_some)),
                Err(e) => {
                    observe::refused(e.is_unavailable(), *len);
                    stored.extend(std::iter::repeat_n(false, *len));
                }
            }
        }
        if results.iter().any(|r| r.is_ok()) {
            self.inner.write_health.succeeded(true);
        }
        let owned = self.hand_over(&batch, &webhooks, &stored).await;
        for ((_, reply), result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
        if owned {
            self.inner.express.ready.notify_one();
        }
        // Checked after the commits (see `demand`): work only for webhooks the dispatcher is
        // holding back waits for them to be let in again. Owned deliveries need no claim, and
        // held ones (a switched-off webhook's) cannot be claimed: ringing for those made the
        // dispatcher claim and look for the next due time, walking the whole held backlog, once
        // per ingest commit.
        let queued = batch.iter().flat_map(|i| {
            i.targets
                .iter()
                .filter(|t| t.lease.is_none() && !t.held)
                .map(|t| &t.webhook)
        });
        if self.inner.held_back.claimable(queued) {
            self.inner.wake.notify_one();
        }
    }
}

/// Stores `batch` routed from the subscriber lists current inside its transaction (see
/// `Store::ingest_routed`), each event's webhooks landing in `webhooks`. Its deliveries go
/// through the queue: none is owned (this is the rare path after a lost race).
async fn reroute(
    store: &dyn Store,
    batch: &mut [IngestItem],
    webhooks: &mut [Vec<Arc<Webhook>>],
) -> Result<Vec<Option<usize>>, StoreError> {
    let mut lists: HashMap<(ProgramId, String), Routing> = HashMap::new();
    store
        .ingest_routed(batch, &mut |place, event, subscribers| {
            let key = (event.program_id.clone(), event.event_type.to_string());
            let routes = lists
                .entry(key)
                .or_insert_with(|| Routing::of(subscribers.clone()))
                .targets(event)?;
            webhooks[place] = routes.webhooks;
            Ok(routes.targets)
        })
        .await
}

/// Fan-out candidates per (program, event type), with the subscriber-list version they were read
/// at. Entries live until ingest finds their version stale (inside its transaction), so a cached
/// list is never used to store an event after a webhook change committed.
#[derive(Default)]
pub(super) struct SubscriberCache {
    entries: Mutex<HashMap<(ProgramId, String), Routing>>,
}

/// One subscriber as routing needs it.
struct Routed {
    filter: Filter,
    /// Per-member ordering path, when the webhook orders its deliveries.
    ordering_key: Option<String>,
    /// The whole webhook, for deliveries ingest sends itself (see `express`).
    webhook: Arc<Webhook>,
}

/// Where one event goes: a delivery per target, the webhook of each, and the subscriber-list
/// version that answer holds for.
struct Routes {
    targets: Vec<DeliveryTarget>,
    webhooks: Vec<Arc<Webhook>>,
    version: i64,
}

/// The webhooks an event type fans out to, with their filters, at one subscriber-list version.
#[derive(Clone)]
struct Routing {
    version: i64,
    webhooks: Arc<Vec<Routed>>,
    /// The program checks this type's `data` against its schema.
    validate: bool,
}

impl SubscriberCache {
    pub(super) fn clear(&self) {
        self.entries.lock().expect("subscriber cache").clear();
    }

    async fn get(
        &self,
        store: &dyn Store,
        program: &ProgramId,
        event_type: &str,
    ) -> Result<Routing, StoreError> {
        let key = (program.clone(), event_type.to_owned());
        if let Some(r) = self.entries.lock().expect("subscriber cache").get(&key) {
            return Ok(r.clone());
        }
        let routing = Routing::of(store.subscribers(program, event_type).await?);
        self.entries
            .lock()
            .expect("subscriber cache")
            .insert(key, routing.clone());
        Ok(routing)
    }

    /// Whether `program` checks `event_type`'s data against its schema at ingest.
    async fn validates(
        &self,
        store: &dyn Store,
        program: &ProgramId,
        event_type: &str,
    ) -> Result<bool, StoreError> {
        Ok(self.get(store, program, event_type).await?.validate)
    }
}

impl Routing {
    fn of(subs: crate::store::Subscribers) -> Self {
        Routing {
            version: subs.version,
            validate: subs.validate,
            webhooks: Arc::new(
                subs.webhooks
                    .into_iter()
                    .map(|w| Routed {
                        filter: w.record.filter.clone(),
                        ordering_key: w.record.ordering_key.clone(),
                        webhook: Arc::new(w),
                    })
                    .collect(),
            ),
        }
    }

    /// The webhooks `event` fans out to (subscribed, every filter condition holding for its
    /// envelope; a switched-off webhook's deliveries wait, held, until it is on again) and the
    /// subscriber-list version that answer holds for.
    fn targets(&self, event: &StoredEvent) -> Result<Routes, StoreError> {
        // The envelope is parsed only when some subscriber filters or orders.
        let doc = self
            .webhooks
            .iter()
            .any(|w| !w.filter.is_empty() || w.ordering_key.is_some())
            .then(|| serde_json::from_str::<serde_json::Value>(&event.body))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("event body: {e}")))?;
        let (targets, webhooks) = self
            .webhooks
            .iter()
            .filter(|w| doc.as_ref().is_none_or(|d| w.filter.matches(d)))
            .map(|w| {
                let target = DeliveryTarget {
                    webhook: w.webhook.record.id.clone(),
                    ordering_key: w
                        .ordering_key
                        .as_deref()
                        .zip(doc.as_ref())
                        .and_then(|(path, d)| ordering_value(d, path)),
                    lease: None,
                    held: !w.webhook.record.enabled,
                };
                (target, w.webhook.clone())
            })
            .unzip();
        Ok(Routes {
            targets,
            webhooks,
            version: self.version,
        })
    }
}

/// Refuses `event` when `data` breaks its type's catalog schema (the error's field is the failing
/// path, e.g. `data.points`).
fn check_schema(event: &NewEvent) -> Result<()> {
    if let Some(t) = crate::domain::catalog::event_type(event.event_type.as_str()) {
        crate::domain::schema::check(&t.schema, &event.data)?;
    }
    Ok(())
}

impl Engine {
    #[tracing::instrument(skip_all, fields(event_type = %event.event_type))]
    /// Refuses `event` when its program validates its type and `data` breaks the type's schema
    /// (the error's field is the failing path, e.g. `data.points`).
    pub async fn check_data(&self, program: &ProgramId, event: &NewEvent) -> Result<()> {
        let validates = self
            .inner
            .subscribers
            .validates(self.store().as_ref(), program, event.event_type.as_str())
            .await?;
        if validates {
            check_schema(event)?;
        }
        Ok(())
    }

    /// Turns schema validation of `event_type`'s data at ingest on or off for the actor's program.
    pub async fn set_schema_validation(
        &self,
        actor: &crate::auth::Actor,
        event_type: &str,
        on: bool,
    ) -> Result<()> {
        if !actor.role.can_manage() {
            return Err(super::EngineError::Forbidden);
        }
        let event_type = crate::domain::event::EventType::parse(event_type)?;
        self.store()
            .set_event_type_validation(&actor.program, event_type.as_str(), on)
            .await?;
        self.inner.subscribers.clear();
        crate::auth::access::record_activity(
            self.store().as_ref(),
            actor,
            if on { "turned on" } else { "turned off" },
            &format!("schema validation of {}", event_type.as_str()),
            "",
        )
        .await;
        Ok(())
    }

    pub async fn ingest(&self, program: &ProgramId, event: NewEvent) -> Result<IngestOutcome> {
        let mut outcomes = self.store_events(program, vec![event], true).await?;
        Ok(outcomes.pop().expect("one outcome per event"))
    }

    /// Stores `events` together: all of them or, with an error, none (a batch request, whose
    /// caller has run `check_data` on every event first). Outcomes in the order given.
    pub async fn ingest_all_checked(
        &self,
        program: &ProgramId,
        events: Vec<NewEvent>,
    ) -> Result<Vec<IngestOutcome>> {
        self.store_events(program, events, false).await
    }

    /// Routes `events` and hands them to the group-commit task as one job. One routing lookup
    /// per event serves both the schema check (`check`) and the fan-out.
    async fn store_events(
        &self,
        program: &ProgramId,
        events: Vec<NewEvent>,
        check: bool,
    ) -> Result<Vec<IngestOutcome>> {
        let mut items = Vec::with_capacity(events.len());
        let mut webhooks = Vec::with_capacity(events.len());
        let mut ids = Vec::with_capacity(events.len());
        for event in events {
            let routing = self
                .inner
                .subscribers
                .get(self.store().as_ref(), program, event.event_type.as_str())
                .await?;
            if check && routing.validate {
                check_schema(&event)?;
            }
            let envelope = event.into_envelope();
            let body = serde_json::to_string(&envelope).expect("plain data");
            let stored = StoredEvent {
                program_id: program.clone(),
                member: envelope.member(),
                id: envelope.event_id,
                event_type: envelope.event_type,
                event_timestamp: envelope.event_timestamp,
                body,
                created_at: self.now(),
            };
            let routes = routing.targets(&stored)?;
            ids.push(stored.id.clone());
            items.push(IngestItem {
                event: stored,
                targets: routes.targets,
                routing_version: routes.version,
            });
            webhooks.push(routes.webhooks);
        }
        let (reply, answer) = oneshot::channel();
        let job = IngestJob {
            items,
            webhooks,
            reply,
            queued: Instant::now(),
        };
        let shutting_down =
            || super::EngineError::Unavailable("Herald is shutting down; try again shortly".into());
        self.inner
            .ingest_tx
            .send(WriteJob::Ingest(job))
            .await
            .map_err(|_| shutting_down())?;
        let stored = answer.await.map_err(|_| shutting_down())??;
        Ok(ids
            .into_iter()
            .zip(stored)
            .map(|(event_id, stored)| {
                super::observe::ingested(stored.is_none());
                IngestOutcome {
                    event_id,
                    deliveries: stored.unwrap_or(0),
                    duplicate: stored.is_none(),
                }
            })
            .collect())
    }

    /// Replays a delivery: a finished one (delivered or dead-lettered) goes back in the queue with
    /// a fresh retry budget; one waiting for its next retry is tried now. One being attempted at
    /// this moment is refused (its result is moments away).
    pub async fn replay(
        &self,
        actor: &crate::auth::Actor,
        id: &crate::domain::ids::DeliveryId,
    ) -> Result<Replayed> {
        if !actor.role.can_manage() {
            return Err(super::EngineError::Forbidden);
        }
        let outcome = self
            .store()
            .replay_delivery(&actor.program, id, self.now())
            .await?;
        match outcome {
            Replayed::Requeued | Replayed::DueNow => {
                self.wake();
                let detail = if outcome == Replayed::DueNow {
                    "retry now"
                } else {
                    ""
                };
                crate::auth::access::record_activity(
                    self.store().as_ref(),
                    actor,
                    "replayed",
                    &format!("delivery {id}"),
                    detail,
                )
                .await;
                Ok(outcome)
            }
            Replayed::InFlight => Err(super::EngineError::Refused(
                "this delivery is being attempted right now; its result will show in a moment"
                    .into(),
            )),
            Replayed::Held => Err(super::EngineError::Refused(
                "its webhook is switched off: the delivery is held and goes out in its order when the webhook is switched on"
                    .into(),
            )),
            Replayed::NotFound => Err(super::EngineError::NotFound("delivery")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::queue::NextStep;
    use crate::domain::ids::{DeliveryId, EventId};
    use crate::store::NewAttempt;

    fn results(ordered: bool) -> WriteJob {
        let attempt = NewAttempt::sample_success(
            ProgramId::from_trusted("prg_test".to_owned()),
            EventId::generate(),
            crate::domain::event::EventType::parse("member.created").unwrap(),
            chrono::Utc::now(),
        );
        let outcome = Outcome {
            delivery_id: DeliveryId::generate(),
            claim_count: 1,
            next: NextStep::Succeeded,
            attempt,
            ordered,
        };
        WriteJob::Results(vec![outcome], oneshot::channel().0, Instant::now())
    }

    #[test]
    fn results_wait_for_events_only_while_events_come_a_few_at_a_time() {
        let start = Instant::now();
        let mut linger = Linger::default();
        // No event yet: commit at once.
        assert!(!linger.wait(&[results(false)], start));
        linger.took_events(1, start);
        assert!(linger.wait(&[results(false)], start + RESULTS_LINGER / 2));
        // The last event longer ago than the wait: none is likely that soon.
        assert!(!linger.wait(&[results(false)], start + RESULTS_LINGER));
        // Events arriving several to a commit (flat out): the writer would idle meanwhile.
        for _ in 0..4 {
            linger.took_events(6, start);
        }
        assert!(!linger.wait(&[results(false)], start));
        // Back to one or two at a time, after a few batches.
        for _ in 0..12 {
            linger.took_events(1, start);
        }
        assert!(linger.wait(&[results(false)], start));
    }

    #[test]
    fn results_an_ordered_delivery_waits_for_are_never_held_back() {
        let start = Instant::now();
        let mut linger = Linger::default();
        linger.took_events(1, start);
        assert!(!linger.wait(&[results(true)], start));
        assert!(!linger.wait(&[results(false), results(true)], start));
    }

    #[test]
    fn batches_of_results_alone_do_not_count_as_events() {
        let start = Instant::now();
        let mut linger = Linger::default();
        linger.took(&[results(false)], start);
        assert_eq!(linger.events_seen, None);
        assert!(!linger.wait(&[results(false)], start));
    }
}
