//! The dispatcher: claims due deliveries in batches, runs their requests concurrently (bounded by
//! a semaphore, so one slow endpoint holds one permit, never the queue), and hands results to the
//! recorder, which writes them in batches (group commit).
//!
//! It sleeps until the earliest due time, a wake-up (ingest, replay, a retry being scheduled, or
//! a PostgreSQL notification from another process) or the idle poll, whichever is first: no busy
//! polling. On shutdown it stops claiming, lets requests in flight finish within a grace period,
//! and gives back the claims of any that did not.
//!
//! `run_once` is the same step without the loop: tests drive the queue with it (and a
//! `ManualClock`) instead of waiting for the dispatcher.

use super::dispatch::{Message, Target};
use super::queue::{Claim, NextStep, Outcome};
use super::secrets::WebhookSecrets;
use super::{retry, Engine};
use crate::domain::delivery::{AttemptStatus, Trigger};
use crate::domain::ids::{DeliveryId, WebhookId};
use crate::store::NewAttempt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Claims this process holds, so a shutdown can give back those still in flight.
type InFlight = Arc<Mutex<HashMap<DeliveryId, i64>>>;

/// How far ahead a rate-limited delivery may wait in memory for its send slot. Deliveries whose
/// slot is further away go back to the queue untouched (same due time, same place in line), and
/// their webhook is left out of claims until its next slot comes within reach.
const MAX_IN_MEMORY_WAIT: Duration = Duration::from_secs(1);

/// Results waiting for the recorder at most; a full channel slows the workers down instead of
/// growing memory when the database is slow.
const RESULT_BACKLOG: usize = 4096;

/// A claimed delivery with its webhook's request slot (`lane`) and the rate-limit send slot it
/// was given (if its webhook is limited).
struct Planned {
    claim: Claim,
    lane: super::lanes::Slot,
    slot: Option<Instant>,
}

/// What `plan` made of a claim.
enum Plan {
    Go(Planned),
    /// Its webhook has no free request slot now.
    NoSlot(Claim),
    /// Its rate-limit slot is too far ahead: back to the queue.
    Back(DeliveryId, i64),
    /// Claimed before a change to its webhook this process knows of (see `webhooks::Changes`):
    /// back to the queue, to be claimed again under the new settings (or held while switched off).
    Outdated(DeliveryId, i64),
}

impl Engine {
    /// Runs the dispatcher until `shutdown` turns true, then drains as described above.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let cfg = self.config().clone();
        if let Err(e) = self.listen_to_other_processes().await {
            tracing::warn!(error = %e, "cannot listen for other processes' work; polling instead");
        }
        let permits = Arc::new(Semaphore::new(cfg.concurrency));
        let in_flight: InFlight = Arc::default();
        let (results_tx, results_rx) = mpsc::channel(RESULT_BACKLOG);
        let writer = tokio::spawn(self.clone().write_results(results_rx));
        let mut tasks = JoinSet::new();
        // Whether the queue may hold work to claim: false after a claim came back short, until
        // the dispatcher is rung or its timer runs out (see `demand`). While false, only the
        // deliveries waiting in memory are planned, and the wait computed then still holds.
        let mut look = true;
        let mut until: Option<Instant> = None;
        loop {
            if *shutdown.borrow() {
                break;
            }
            while let Some(done) = tasks.try_join_next() {
                if let Err(e) = done {
                    self.delivery_panicked(e);
                }
            }
            let free = permits.available_permits().min(cfg.claim_batch as usize);
            if free == 0 {
                tokio::select! {
                    done = tasks.join_next() => {
                        if let Some(Err(e)) = done {
                            self.delivery_panicked(e);
                        }
                    }
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let (planned, full) = match self.claim_and_plan(free as u32, look).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "claiming deliveries failed; retrying shortly");
                    self.idle(&mut shutdown, Duration::from_secs(1)).await;
                    look = true;
                    continue;
                }
            };
            if look {
                look = full;
                until = None;
            }
            if planned.is_empty() {
                let at = match until {
                    Some(at) => at,
                    None => *until
                        .insert(Instant::now() + self.until_next_due().await.min(cfg.idle_poll)),
                };
                // Handed-over deliveries only need planning: the queue is not asked again.
                look = self
                    .idle(&mut shutdown, at.saturating_duration_since(Instant::now()))
                    .await;
                continue;
            }
            for p in planned {
                let permit = permits
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("semaphore open");
                in_flight
                    .lock()
                    .expect("in-flight map")
                    .insert(p.claim.delivery_id.clone(), p.claim.claim_count);
                let (engine, tx, held) = (self.clone(), results_tx.clone(), in_flight.clone());
                tasks.spawn(async move {
                    let mut next = Some(p);
                    while let Some(p) = next.take() {
                        let id = p.claim.delivery_id.clone();
                        let webhook = p.claim.webhook.record.id.clone();
                        if let Some(result) = engine.deliver_in_lane(p).await {
                            let _ = tx.send(result).await;
                        }
                        held.lock().expect("in-flight map").remove(&id);
                        // The slot just freed goes to the next delivery waiting for this
                        // webhook, without a trip through the claim loop.
                        next = engine.next_waiting(&webhook).await;
                        if let Some(n) = &next {
                            held.lock()
                                .expect("in-flight map")
                                .insert(n.claim.delivery_id.clone(), n.claim.claim_count);
                        }
                    }
                    drop(permit);
                });
            }
        }
        self.inner.express.close();
        self.release_waiting().await;
        self.drain_in_flight(tasks, in_flight, cfg.shutdown_grace)
            .await;
        drop(results_tx);
        let _ = writer.await;
    }

    /// One dispatcher step, in the caller's task: claims what is due now (by the engine's
    /// clock), makes every request, records every result. Returns how many deliveries were
    /// claimed (0: nothing was due).
    pub async fn run_once(&self) -> super::Result<usize> {
        let (planned, _) = self.claim_and_plan(self.config().claim_batch, true).await?;
        let count = planned.len();
        let results =
            futures::future::join_all(planned.into_iter().map(|p| self.deliver_in_lane(p))).await;
        self.record_batch(results.into_iter().flatten().collect())
            .await;
        Ok(count)
    }

    /// Runs `run_once` until nothing is due (at the engine's current time). Returns how many
    /// deliveries were worked on in all.
    pub async fn drain(&self) -> super::Result<usize> {
        let mut total = 0;
        loop {
            match self.run_once().await? {
                0 => return Ok(total),
                n => total += n,
            }
        }
    }

    /// How long the oldest delivery that could go out now (pending, due, its webhook switched
    /// on) has been due, in seconds; 0 when none is. A hold released by switching its webhook on
    /// counts from the switch, not from its acceptance (`Store::waiting_since`), so a release
    /// does not read as late. Herald claims due work within moments, so
    /// a figure that keeps growing means deliveries arrive faster than they go out (rate limits,
    /// slow endpoints, an ordering line behind a failure) or the dispatcher is stuck.
    pub async fn oldest_due_seconds(&self) -> super::Result<f64> {
        let now = self.now();
        let due = self.store().waiting_since().await?;
        Ok(due
            .filter(|at| *at < now)
            .map_or(0.0, |at| (now - at).num_milliseconds() as f64 / 1_000.0))
    }

    /// Plans up to `limit` deliveries: first those already claimed and waiting in memory for
    /// their webhook's slot (while their lease has room), then newly claimed due work (leaving
    /// out webhooks whose rate limit has no slot in reach, whose slots are all taken, or with
    /// deliveries waiting). Gives each rate-limited delivery its send slot in claim order (which
    /// is acceptance order) and puts back those whose slot is too far ahead. A claimed delivery
    /// whose webhook has no free slot waits in memory, up to a claim batch per webhook.
    ///
    /// Claims from the queue only if `query`; the flag returned says whether the claim filled
    /// all the room it had (so more may be due).
    async fn claim_and_plan(&self, limit: u32, query: bool) -> super::Result<(Vec<Planned>, bool)> {
        let now = self.now();
        let mut planned = Vec::new();
        let mut back = Vec::new();
        let mut due_again = false;
        for webhook in self.inner.waiting.webhooks() {
            while planned.len() < limit as usize {
                match self.take_waiting(&webhook, now, &mut back, &mut due_again) {
                    Some(p) => planned.push(p),
                    None => break,
                }
            }
        }
        // Given back before claiming, so this very claim can take them again (those claimed
        // before a change to their webhook, under its new settings).
        if !back.is_empty() {
            self.store().release(&back, self.now()).await?;
            back.clear();
        }
        let room = limit.saturating_sub(planned.len() as u32);
        // No room left for a claim: more may be due than was looked at.
        let mut full = room == 0;
        if query && room > 0 {
            let mut held: Vec<WebhookId> = self
                .inner
                .rate
                .held_back(MAX_IN_MEMORY_WAIT)
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            held.extend(self.inner.lanes.full());
            held.extend(self.inner.waiting.webhooks());
            self.inner.held_back.claiming_without(&held);
            self.inner.express.claiming();
            let claimed = match self
                .store()
                .claim_due(now, room, self.lease_margin(), &held)
                .await
            {
                Ok(claimed) => claimed,
                Err(e) => {
                    self.inner.express.close();
                    return Err(e.into());
                }
            };
            full = claimed.len() == room as usize;
            // A short claim took everything due for the webhooks it did not leave out: until
            // more is queued for one of them, ingest may send its new deliveries itself.
            self.inner.express.claimed(!full);
            let cap = self.config().claim_batch as usize;
            for claim in claimed {
                match self.plan(claim) {
                    Plan::Go(p) => planned.push(p),
                    Plan::NoSlot(claim)
                        if self.inner.waiting.len(&claim.webhook.record.id) < cap =>
                    {
                        self.inner.waiting.push(claim, now);
                    }
                    Plan::NoSlot(claim) => back.push((claim.delivery_id, claim.claim_count)),
                    // Read just before a change here committed: back, but without ringing
                    // (the change rang itself), so a claim can never spin on its own release.
                    Plan::Back(id, count) | Plan::Outdated(id, count) => back.push((id, count)),
                }
            }
        }
        if !back.is_empty() {
            self.store().release(&back, self.now()).await?;
        }
        if due_again {
            // Due again now: the next claim takes them (under the new version of a changed
            // webhook, in their order if their line fell behind).
            self.inner.wake.notify_one();
        }
        Ok((planned, full))
    }

    fn lease_margin(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.config().lease_margin).expect("small duration")
    }

    /// The oldest claim waiting for `webhook` that can go now (a free slot, its lease with room
    /// for the request). Those whose rate-limit slot is out of reach are added to `back` on the
    /// way. If the oldest waited too long, the whole line is added to `back` (`due_again` is set,
    /// so the dispatcher claims them again).
    fn take_waiting(
        &self,
        webhook: &WebhookId,
        now: chrono::DateTime<chrono::Utc>,
        back: &mut Vec<(DeliveryId, i64)>,
        due_again: &mut bool,
    ) -> Option<Planned> {
        while let Some((claim, claimed_at)) = self.inner.waiting.pop(webhook) {
            // The lease runs for the timeout plus the margin from the claim: a request started
            // within half the margin ends before it runs out. A line whose head waited longer
            // fell behind: all of it goes back, so that the queue sends it in its order, rather
            // than the younger ones first while the older are claimed again.
            if now - claimed_at > self.lease_margin() / 2 {
                back.push((claim.delivery_id, claim.claim_count));
                back.extend(
                    self.inner
                        .waiting
                        .take_line(webhook)
                        .into_iter()
                        .map(|c| (c.delivery_id, c.claim_count)),
                );
                *due_again = true;
                return None;
            }
            match self.plan(claim) {
                Plan::Go(p) => return Some(p),
                Plan::NoSlot(claim) => {
                    self.inner.waiting.push_front(claim, claimed_at);
                    return None;
                }
                Plan::Back(id, count) => back.push((id, count)),
                Plan::Outdated(id, count) => {
                    back.push((id, count));
                    *due_again = true;
                }
            }
        }
        None
    }

    /// A request slot of the claim's webhook and, if it is rate-limited, a send slot in reach.
    fn plan(&self, claim: Claim) -> Plan {
        if self.inner.changes.outdated(&claim.webhook.record) {
            return Plan::Outdated(claim.delivery_id, claim.claim_count);
        }
        let id = &claim.webhook.record.id;
        let timeout = Duration::from_secs(claim.webhook.record.retry.timeout_seconds.into());
        let Some(lane) = self.inner.lanes.try_take(id, timeout) else {
            return Plan::NoSlot(claim);
        };
        match claim.webhook.record.rate_limit_per_second {
            None => Plan::Go(Planned {
                claim,
                lane,
                slot: None,
            }),
            Some(limit) => match self.inner.rate.try_reserve(id, limit, MAX_IN_MEMORY_WAIT) {
                Some(slot) => Plan::Go(Planned {
                    claim,
                    lane,
                    slot: Some(slot),
                }),
                None => {
                    self.inner.lanes.give_back(id, lane);
                    Plan::Back(claim.delivery_id, claim.claim_count)
                }
            },
        }
    }

    /// `take_waiting` for a task whose request just finished, giving back what it passed over.
    async fn next_waiting(&self, webhook: &WebhookId) -> Option<Planned> {
        let (mut back, mut due_again) = (Vec::new(), false);
        let next = self.take_waiting(webhook, self.now(), &mut back, &mut due_again);
        self.give_back(&back).await;
        if due_again {
            self.inner.wake.notify_one();
        }
        next
    }

    /// Gives back the claims waiting in memory (on shutdown).
    async fn release_waiting(&self) {
        let waiting: Vec<_> = self
            .inner
            .waiting
            .take_all()
            .into_iter()
            .map(|c| (c.delivery_id, c.claim_count))
            .collect();
        self.give_back(&waiting).await;
    }

    /// Releases claims this process will not work on; if that fails, their leases expire.
    pub(super) async fn give_back(&self, claims: &[(DeliveryId, i64)]) {
        if claims.is_empty() {
            return;
        }
        if let Err(e) = self.store().release(claims, self.now()).await {
            tracing::error!(error = %e, "could not release claims; their leases will expire instead");
        }
    }

    /// Sleeps for `wait` at most; `false` when it was woken only because ingest handed over
    /// deliveries it owns (nothing new to claim), else `true`.
    async fn idle(&self, shutdown: &mut watch::Receiver<bool>, wait: Duration) -> bool {
        tokio::select! {
            _ = self.inner.wake.notified() => true,
            _ = self.inner.express.ready.notified() => false,
            _ = tokio::time::sleep(wait) => true,
            _ = shutdown.changed() => true,
        }
    }

    /// How long until something may be due: the earliest due time or lease expiry among webhooks
    /// not held back, or the moment a held-back webhook's next slot comes within reach.
    async fn until_next_due(&self) -> Duration {
        let held = self.inner.rate.held_back(MAX_IN_MEMORY_WAIT);
        let mut ids: Vec<WebhookId> = held.iter().map(|(id, _)| id.clone()).collect();
        // A webhook at its share of the slots wakes the dispatcher when a request finishes.
        ids.extend(self.inner.lanes.full());
        let reach = held
            .iter()
            .map(|(_, at)| at.saturating_duration_since(Instant::now()))
            .min()
            .unwrap_or(Duration::MAX);
        let now = self.now();
        let due = match self.store().next_due_at(&ids, now).await {
            Ok(Some(at)) => (at - now).to_std().unwrap_or(Duration::ZERO),
            Ok(None) => Duration::MAX,
            Err(_) => Duration::from_secs(1),
        };
        due.min(reach)
    }

    async fn drain_in_flight(&self, mut tasks: JoinSet<()>, in_flight: InFlight, grace: Duration) {
        let finished =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if finished.is_err() {
            tasks.abort_all();
            let held: Vec<_> = in_flight.lock().expect("in-flight map").drain().collect();
            tracing::warn!(
                count = held.len(),
                "shutdown grace ran out; releasing unfinished deliveries"
            );
            self.give_back(&held).await;
        }
    }

    /// Waits for the delivery's send slot (rate-limited webhooks), `deliver`s it, then gives the
    /// webhook's request slot back (its share grows after a quick answer and shrinks after a slow
    /// one or none), waking the dispatcher if the webhook had used its share or the slow webhooks
    /// drop under the crowd mark (see `lanes`). `None` when the webhook
    /// changed while the delivery waited for its send slot: nothing was sent, and the delivery
    /// went back to the queue to be claimed as the webhook is now (held if it was switched off).
    async fn deliver_in_lane(&self, p: Planned) -> Option<Outcome> {
        let (webhook, lane) = (p.claim.webhook.record.id.clone(), p.lane);
        if let Some(slot) = p.slot {
            tokio::time::sleep_until(slot).await;
            if self.inner.changes.outdated(&p.claim.webhook.record) {
                self.inner.lanes.give_back(&webhook, lane);
                self.give_back(&[(p.claim.delivery_id, p.claim.claim_count)])
                    .await;
                self.inner.wake.notify_one();
                return None;
            }
        }
        let began = Instant::now();
        // Should the request end without a result (a panic, a shutdown's abort), the slot still
        // goes back, or the webhook would keep one fewer for as long as the process runs.
        let mut unfinished = SlotGuard {
            lanes: &self.inner.lanes,
            webhook: &webhook,
            lane: Some(lane),
        };
        let result = self.deliver(p).await;
        unfinished.lane = None;
        let took = began.elapsed();
        super::observe::attempted(&result, took);
        // A webhook that had used its share, or that the latest claim left out, lets the claim
        // loop in again once no deliveries wait for it in memory (until then the finishing task
        // takes the next of those itself). Left out without being at its share: it had
        // deliveries waiting, such as ones ingest handed over (see `express`); ingest does not
        // ring for a left-out webhook, so without this its queued work would wait for the idle
        // poll.
        // Slow webhooks left out while they held half the slots may have nothing in flight to
        // let them in again: the request that brings them under the mark does.
        let answered = result.attempt.status_code.is_some();
        let freed = self.inner.lanes.finish(&webhook, lane, took, answered);
        if freed.crowd
            || ((freed.own || self.inner.held_back.holds(&webhook))
                && self.inner.waiting.len(&webhook) == 0)
        {
            self.inner.wake.notify_one();
        }
        Some(result)
    }

    /// Makes one try of a claimed delivery and decides what follows. A delivery whose tries,
    /// interrupted ones included, already spent its budget is dead-lettered without a request.
    async fn deliver(&self, p: Planned) -> Outcome {
        let c = p.claim;
        let w = &c.webhook.record;
        if c.tries_used() > i64::from(w.retry.attempts) {
            return self.abandon(c);
        }
        // Never send unsigned: a webhook whose secrets cannot be opened fails its attempt instead.
        let (secrets, blocked) = match WebhookSecrets::open(&w.sealed_secrets, &self.inner.sealer) {
            Ok(s) => (s, None),
            Err(e) => {
                tracing::error!(webhook = %w.id, error = %e, "cannot open webhook secrets");
                (WebhookSecrets::default(), Some(e.to_string()))
            }
        };
        let target = Target {
            guard: self.config().guard,
            blocked,
            program_id: &w.program_id,
            webhook_id: &w.id,
            webhook_name: w.name.as_str(),
            url: &c.webhook.target,
            auth_kind: w.auth_kind,
            auth_param: w.auth_param.as_deref(),
            secrets: &secrets,
            timeout: Duration::from_secs(w.retry.timeout_seconds.into()),
            sandbox: w.sandbox,
            custom: super::dispatch::custom_headers(&w.headers, &secrets),
        };
        let msg = Message {
            id: &c.event_id,
            event_type: &c.event_type,
            body: &c.body,
            delivery_id: Some(&c.delivery_id),
            attempt: c.tries_used() + 1,
            trigger: if c.tries_used() == 0 {
                c.trigger
            } else {
                Trigger::Retry
            },
        };
        let mut attempted = self.send(&target, &msg).await;
        attempted.row.event_accepted_at = Some(c.accepted_at);
        if attempted.row.status != AttemptStatus::Sandboxed {
            attempted.row.lag_ms = Some((self.now() - c.accepted_at).num_milliseconds().max(0));
        }
        let next = if attempted.succeeded() {
            NextStep::Succeeded
        } else {
            let at = self.now();
            let retry_after = attempted
                .retry_after
                .as_deref()
                .and_then(|v| retry::parse_retry_after(v, at));
            retry::after_failure(&w.retry, c.tries_used(), at, retry_after, retry::jitter())
        };
        Outcome {
            ordered: w.ordering_key.is_some(),
            delivery_id: c.delivery_id,
            claim_count: c.claim_count,
            next,
            attempt: attempted.row,
        }
    }

    /// Dead-letters a delivery whose processing kept being interrupted (each lease that ran out
    /// counted as a try) until its budget was spent, with an audit row that says so.
    fn abandon(&self, c: Claim) -> Outcome {
        let w = &c.webhook.record;
        let now = self.now();
        tracing::warn!(delivery = %c.delivery_id, webhook = %w.id, interruptions = c.interruptions,
            "dead-lettering a delivery whose attempts kept being interrupted");
        let error = format!(
            "dead-lettered without sending: {} earlier tr{} ended without a result (the process \
             handling {} stopped or hung until its lease expired) and the retry budget is spent",
            c.interruptions,
            if c.interruptions == 1 { "y" } else { "ies" },
            if c.interruptions == 1 { "it" } else { "them" },
        );
        Outcome {
            attempt: NewAttempt {
                id: crate::domain::ids::AttemptId::generate(),
                program_id: w.program_id.clone(),
                webhook_id: w.id.clone(),
                webhook_name: w.name.as_str().to_owned(),
                delivery_id: Some(c.delivery_id.clone()),
                event_id: c.event_id.clone(),
                event_accepted_at: Some(c.accepted_at),
                event_type: c.event_type.clone(),
                attempt: c.tries_used() + 1,
                trigger: Trigger::Retry,
                status: AttemptStatus::Failure,
                status_code: None,
                error: Some(error),
                latency_ms: None,
                lag_ms: None,
                request_url: w.url.as_str().to_owned(),
                request_headers: Vec::new(),
                request_body: None,
                response_headers: None,
                response_body: None,
                created_at: now,
                delivered_at: None,
                superseded: false,
            },
            ordered: w.ordering_key.is_some(),
            delivery_id: c.delivery_id,
            claim_count: c.claim_count,
            next: NextStep::Failed,
        }
    }
}

/// Gives a request's slot back if the request ends without a result (see `deliver_in_lane`).
struct SlotGuard<'a> {
    lanes: &'a super::lanes::Lanes,
    webhook: &'a WebhookId,
    lane: Option<super::lanes::Slot>,
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        if let Some(lane) = self.lane.take() {
            self.lanes.give_back(self.webhook, lane);
        }
    }
}
