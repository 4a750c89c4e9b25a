//! Each webhook's share of the request slots, so endpoints that hang cannot take the slots healthy
//! ones need, however many deliveries they have queued.
//!
//! A webhook's share starts at `SLOW_LANE` requests in flight and grows by one with every request
//! answered before it nears its timeout, up to `per_webhook` (additive increase); a request
//! that runs into the last fifth of its timeout drops it back to `SLOW_LANE`, and so does one that
//! ends without an answer (a connection refused, reset or timed out: a host that never accepts
//! connections takes the 10 s connect timeout, inside four fifths of the 15 s default, and used to
//! count as quick, growing its share to `per_webhook` hanging connects), and so does a request
//! still running past that mark (so a webhook that starts hanging stops getting more before its
//! requests time out). Slow receivers that answer in time keep their full share. A fresh webhook that hangs from its first request therefore never
//! holds more than `SLOW_LANE` slots. A webhook at its share is left out of claims (its deliveries
//! keep their place in the queue) until one of its requests finishes.

use super::queue::Claim;
use crate::domain::ids::{DeliveryId, WebhookId};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Requests in flight at once for a webhook with no record of answering quickly.
pub const SLOW_LANE: usize = 2;

/// Lanes kept for idle webhooks at most (their learned shares); beyond this, idle ones are
/// forgotten and start again from the slow lane.
const MAX_IDLE_LANES: usize = 10_000;

struct Lane {
    /// When each request in flight started.
    started: Vec<Instant>,
    /// Requests in flight allowed while none of them runs long.
    share: usize,
    /// How long a request may run before it counts as slow.
    slow_after: Duration,
}

impl Lane {
    fn allowed(&self, now: Instant) -> usize {
        let hanging = self
            .started
            .iter()
            .any(|t| now.saturating_duration_since(*t) >= self.slow_after);
        if hanging {
            SLOW_LANE
        } else {
            self.share
        }
    }

    /// Requests that may start now.
    fn room(&self, now: Instant) -> usize {
        self.allowed(now).saturating_sub(self.started.len())
    }

    fn full(&self, now: Instant) -> bool {
        self.room(now) == 0
    }
}

/// A slot taken for one request; give it back with `finish` or `give_back`.
#[derive(Debug, Clone, Copy)]
pub struct Slot(Instant);

pub struct Lanes {
    per_webhook: usize,
    lanes: Mutex<HashMap<WebhookId, Lane>>,
}

/// A request running this long counts as hanging: four fifths of its timeout.
fn slow_after(timeout: Duration) -> Duration {
    timeout * 4 / 5
}

impl Lanes {
    pub fn new(per_webhook: usize) -> Self {
        Self {
            per_webhook: per_webhook.max(SLOW_LANE),
            lanes: Mutex::default(),
        }
    }

    /// Webhooks holding their whole share now (to leave out of the next claim).
    pub fn full(&self) -> Vec<WebhookId> {
        let now = Instant::now();
        let lanes = self.lanes.lock().expect("lanes");
        lanes
            .iter()
            .filter(|(_, lane)| lane.full(now))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Free request slots of `webhook` now.
    pub fn room(&self, webhook: &WebhookId) -> usize {
        let lanes = self.lanes.lock().expect("lanes");
        lanes
            .get(webhook)
            .map_or(SLOW_LANE, |lane| lane.room(Instant::now()))
    }

    /// How long the longest-running request of `webhook` in flight has run (zero when none).
    pub fn running_longest(&self, webhook: &WebhookId) -> Duration {
        let now = Instant::now();
        let lanes = self.lanes.lock().expect("lanes");
        lanes
            .get(webhook)
            .and_then(|lane| lane.started.iter().min())
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(*t))
    }

    /// Takes a slot for one request of `webhook` (whose requests time out after `timeout`);
    /// `None` (nothing taken) when its share is used.
    pub fn try_take(&self, webhook: &WebhookId, timeout: Duration) -> Option<Slot> {
        let now = Instant::now();
        let mut lanes = self.lanes.lock().expect("lanes");
        let lane = lanes.entry(webhook.clone()).or_insert_with(|| Lane {
            started: Vec::new(),
            share: SLOW_LANE,
            slow_after: slow_after(timeout),
        });
        lane.slow_after = slow_after(timeout);
        if lane.full(now) {
            return None;
        }
        lane.started.push(now);
        Some(Slot(now))
    }

    /// Gives back a slot taken for a request that was not made.
    pub fn give_back(&self, webhook: &WebhookId, slot: Slot) {
        self.release(webhook, slot, None);
    }

    /// Gives back the slot of a request that took `took` and was `answered` (an HTTP response,
    /// whatever its status) or not, and adjusts the webhook's share (one more after a quick
    /// answer, back to the slow lane after a slow one or none). `true` when the webhook had been
    /// at its share (so its waiting deliveries can be claimed again).
    pub fn finish(&self, webhook: &WebhookId, slot: Slot, took: Duration, answered: bool) -> bool {
        self.release(webhook, slot, Some((took, answered)))
    }

    fn release(&self, webhook: &WebhookId, slot: Slot, took: Option<(Duration, bool)>) -> bool {
        let now = Instant::now();
        let mut lanes = self.lanes.lock().expect("lanes");
        let Some(lane) = lanes.get_mut(webhook) else {
            return false;
        };
        let was_full = lane.full(now);
        if let Some(i) = lane.started.iter().position(|t| *t == slot.0) {
            lane.started.swap_remove(i);
        }
        match took {
            Some((took, answered)) if !answered || took >= lane.slow_after => {
                lane.share = SLOW_LANE
            }
            Some(_) => lane.share = (lane.share + 1).min(self.per_webhook),
            None => {}
        }
        if lanes.len() > MAX_IDLE_LANES {
            lanes.retain(|_, lane| !lane.started.is_empty());
        }
        was_full
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);
    const QUICK: Duration = Duration::from_millis(3);

    fn take_all(lanes: &Lanes, id: &WebhookId) -> Vec<Slot> {
        std::iter::from_fn(|| lanes.try_take(id, TIMEOUT)).collect()
    }

    #[test]
    fn a_new_webhook_starts_in_the_slow_lane_and_earns_its_share_with_quick_answers() {
        let lanes = Lanes::new(4);
        let (a, b) = (WebhookId::generate(), WebhookId::generate());
        let slots = take_all(&lanes, &a);
        assert_eq!(slots.len(), SLOW_LANE);
        assert_eq!(lanes.full(), vec![a.clone()]);
        assert!(
            lanes.try_take(&b, TIMEOUT).is_some(),
            "another webhook is not held up"
        );
        for s in slots {
            lanes.finish(&a, s, QUICK, true);
        }
        // Two quick answers: share 4 (the most allowed), never more.
        let slots = take_all(&lanes, &a);
        assert_eq!(slots.len(), 4);
        for s in slots {
            lanes.finish(&a, s, QUICK, true);
        }
        assert_eq!(take_all(&lanes, &a).len(), 4);
    }

    #[test]
    fn a_slow_answer_drops_the_share_back_to_the_slow_lane() {
        let lanes = Lanes::new(8);
        let a = WebhookId::generate();
        for _ in 0..10 {
            let s = lanes.try_take(&a, TIMEOUT).unwrap();
            lanes.finish(&a, s, QUICK, true);
        }
        let slots = take_all(&lanes, &a);
        assert_eq!(slots.len(), 8);
        let mut slots = slots.into_iter();
        assert!(
            lanes.finish(&a, slots.next().unwrap(), TIMEOUT, true),
            "it was at its share"
        );
        for s in slots {
            lanes.give_back(&a, s);
        }
        assert_eq!(take_all(&lanes, &a).len(), SLOW_LANE);
    }

    #[test]
    fn a_request_without_an_answer_drops_the_share_back_to_the_slow_lane_however_quick() {
        let lanes = Lanes::new(8);
        let a = WebhookId::generate();
        for _ in 0..10 {
            let s = lanes.try_take(&a, TIMEOUT).unwrap();
            lanes.finish(&a, s, QUICK, true);
        }
        assert_eq!(lanes.room(&a), 8);
        // A connection that failed (refused at once, or timed out well inside the request's
        // timeout) is no sign the endpoint keeps up.
        let s = lanes.try_take(&a, TIMEOUT).unwrap();
        lanes.finish(&a, s, QUICK, false);
        assert_eq!(lanes.room(&a), SLOW_LANE);
        // Nor does a string of them grow it.
        for _ in 0..10 {
            let s = lanes.try_take(&a, TIMEOUT).unwrap();
            lanes.finish(&a, s, TIMEOUT / 2, false);
        }
        assert_eq!(take_all(&lanes, &a).len(), SLOW_LANE);
    }

    #[test]
    fn a_request_running_long_narrows_the_share_before_it_ends() {
        let lanes = Lanes::new(8);
        let a = WebhookId::generate();
        for _ in 0..10 {
            let s = lanes.try_take(&a, TIMEOUT).unwrap();
            lanes.finish(&a, s, QUICK, true);
        }
        let first = lanes.try_take(&a, TIMEOUT).unwrap();
        // Pretend the first request started long ago.
        {
            let mut map = lanes.lanes.lock().unwrap();
            let lane = map.get_mut(&a).unwrap();
            lane.started[0] = Instant::now() - TIMEOUT;
        }
        assert_eq!(
            take_all(&lanes, &a).len(),
            SLOW_LANE - 1,
            "only the slow lane while a request hangs"
        );
        assert!(lanes.full().contains(&a));
        assert!(lanes.running_longest(&a) >= TIMEOUT);
        assert_eq!(
            lanes.running_longest(&WebhookId::generate()),
            Duration::ZERO,
            "nothing in flight"
        );
        let _ = first;
    }
}

/// Deliveries a claim brought in beyond their webhook's free slots, waiting in memory (in claim
/// order) for a slot instead of going back to the queue: with a backlog, a claim of 256 for a
/// webhook with a few free slots used to release the rest at once and claim them again after
/// every finished request (two writes of hundreds of rows per delivery). They keep their claim
/// and lease; the dispatcher sends one only while its lease has room for the whole request, and
/// gives back the others. A webhook with deliveries waiting here is left out of claims.
#[derive(Default)]
pub struct Waiting {
    inner: Mutex<Room>,
}

#[derive(Default)]
struct Room {
    by_webhook: HashMap<WebhookId, Line>,
    /// Claims waiting, all webhooks together.
    total: usize,
    /// Emptied for a shutdown: deliveries handed over by ingest after that go back to the queue.
    closed: bool,
}

/// One webhook's waiting claims, oldest first, each with the time it was claimed.
type Line = VecDeque<(Claim, DateTime<Utc>)>;

impl Room {
    /// The line `claim`'s webhook waits in.
    fn line(&mut self, claim: &Claim) -> &mut Line {
        self.by_webhook
            .entry(claim.webhook.record.id.clone())
            .or_default()
    }
}

impl Waiting {
    fn room(&self) -> std::sync::MutexGuard<'_, Room> {
        self.inner.lock().expect("waiting")
    }

    /// Keeps `claim` (claimed at `at`) until its webhook has a slot.
    pub fn push(&self, claim: Claim, at: DateTime<Utc>) {
        let mut room = self.room();
        room.total += 1;
        room.line(&claim).push_back((claim, at));
    }

    /// `push`, unless the room was emptied for a shutdown (then the claim's delivery and fencing
    /// token come back, to be released).
    pub fn push_unless_closed(
        &self,
        claim: Claim,
        at: DateTime<Utc>,
    ) -> Result<(), (DeliveryId, i64)> {
        let mut room = self.room();
        if room.closed {
            return Err((claim.delivery_id, claim.claim_count));
        }
        room.total += 1;
        room.line(&claim).push_back((claim, at));
        Ok(())
    }

    /// Puts a claim back at the head of its webhook's line (its slot was not free after all).
    pub fn push_front(&self, claim: Claim, at: DateTime<Utc>) {
        let mut room = self.room();
        room.total += 1;
        room.line(&claim).push_front((claim, at));
    }

    /// The oldest waiting claim of `webhook`.
    pub fn pop(&self, webhook: &WebhookId) -> Option<(Claim, DateTime<Utc>)> {
        let mut room = self.room();
        let line = room.by_webhook.get_mut(webhook)?;
        let next = line.pop_front();
        if line.is_empty() {
            room.by_webhook.remove(webhook);
        }
        room.total -= usize::from(next.is_some());
        next
    }

    /// Every claim waiting for `webhook`, oldest first, emptying its line.
    pub fn take_line(&self, webhook: &WebhookId) -> Vec<Claim> {
        let mut room = self.room();
        let line = room.by_webhook.remove(webhook).unwrap_or_default();
        room.total -= line.len();
        line.into_iter().map(|(c, _)| c).collect()
    }

    /// Webhooks with claims waiting.
    pub fn webhooks(&self) -> Vec<WebhookId> {
        self.room().by_webhook.keys().cloned().collect()
    }

    /// How many claims of `webhook` are waiting.
    pub fn len(&self, webhook: &WebhookId) -> usize {
        self.room().by_webhook.get(webhook).map_or(0, Line::len)
    }

    /// `webhook`'s line: how many claims wait in it and since when the one at its head waits;
    /// with the number waiting for all webhooks together.
    pub fn line_of(&self, webhook: &WebhookId) -> (usize, Option<DateTime<Utc>>, usize) {
        let room = self.room();
        let line = room.by_webhook.get(webhook);
        (
            line.map_or(0, Line::len),
            line.and_then(|l| l.front()).map(|(_, at)| *at),
            room.total,
        )
    }

    /// Every waiting claim, emptying the room for good (to give them back on shutdown).
    pub fn take_all(&self) -> Vec<Claim> {
        let mut room = self.room();
        room.closed = true;
        room.total = 0;
        room.by_webhook
            .drain()
            .flat_map(|(_, line)| line.into_iter().map(|(c, _)| c))
            .collect()
    }
}
