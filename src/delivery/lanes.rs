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
//! requests time out). Slow receivers that answer in time keep their full share. A fresh webhook
//! that hangs from its first request therefore never holds more than `SLOW_LANE` slots. A webhook
//! at its share is left out of claims (its deliveries keep their place in the queue) until one of
//! its requests finishes.
//!
//! Shares bound each webhook alone; slow webhooks together are bounded by the crowd mark. A
//! request *holds its slot long* once it has run `LONG`; a request of a webhook whose latest
//! request took that long, or that has not finished one yet, counts as holding its slot long
//! from its start (it may well). While such requests hold half of all slots or more (the crowd
//! mark), a webhook holding a slot long gets no new request, and one never tried gets one at
//! most, and only while a quarter of all slots is free: so webhooks known to answer quickly
//! always have a quarter of the slots, and a new webhook gets its first request unless untried
//! and slow ones hold three quarters (then it waits for one of them to end). Without it, half as
//! many hanging webhooks as there are slots (two slots each) took every slot, and a new
//! webhook's first delivery waited for their timeouts. A finish that lets more in again (under
//! the mark, or a quarter free) wakes the dispatcher, since the webhooks left out may have
//! nothing of their own in flight to do it.

use super::queue::Claim;
use crate::domain::ids::{DeliveryId, WebhookId};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Requests in flight at once for a webhook with no record of answering quickly.
pub const SLOW_LANE: usize = 2;

/// A request running this long holds its slot long (see the crowd mark above).
pub const LONG: Duration = Duration::from_secs(1);

/// Lanes kept for idle webhooks at most (their learned shares); beyond this, idle ones are
/// forgotten and start again from the slow lane.
const MAX_IDLE_LANES: usize = 10_000;

/// How a webhook's latest finished request went, for the crowd mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Record {
    /// None finished yet.
    New,
    /// Ended within `LONG`: only its requests that have run `LONG` hold their slots long.
    Quick,
    /// Ran `LONG` or more.
    Slow,
}

/// When requests in flight started, as a multiset in order of time: the oldest, which the checks
/// for hanging and long-held slots look at, is found without walking every request (a webhook
/// that earned a large share has hundreds in flight, and each slot taken or given back asked
/// twice: about 150 clock comparisons per delivery, 2% of the server's instructions batched).
#[derive(Debug, Default, Clone)]
struct Starts {
    at: BTreeMap<Instant, usize>,
    len: usize,
}

impl Starts {
    fn push(&mut self, t: Instant) {
        *self.at.entry(t).or_default() += 1;
        self.len += 1;
    }

    /// Takes out one request started at `t`; `false` when none did.
    fn remove(&mut self, t: Instant) -> bool {
        let Some(n) = self.at.get_mut(&t) else {
            return false;
        };
        *n -= 1;
        if *n == 0 {
            self.at.remove(&t);
        }
        self.len -= 1;
        true
    }

    fn oldest(&self) -> Option<Instant> {
        self.at.keys().next().copied()
    }

    /// Whether the oldest has run `d` or more by `now`.
    fn oldest_ran(&self, now: Instant, d: Duration) -> bool {
        self.oldest()
            .is_some_and(|t| now.saturating_duration_since(t) >= d)
    }

    /// How many started at `cut` or before.
    fn started_by(&self, cut: Instant) -> usize {
        self.at.range(..=cut).map(|(_, n)| n).sum()
    }

    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Each start, once per request.
    fn iter(&self) -> impl Iterator<Item = Instant> + '_ {
        self.at
            .iter()
            .flat_map(|(t, n)| std::iter::repeat_n(*t, *n))
    }
}

struct Lane {
    /// When each request in flight started.
    started: Starts,
    /// Requests in flight allowed while none of them runs long.
    share: usize,
    /// How long a request may run before it counts as slow.
    slow_after: Duration,
    record: Record,
}

impl Lane {
    fn new(timeout: Duration) -> Self {
        Self {
            started: Starts::default(),
            share: SLOW_LANE,
            slow_after: slow_after(timeout),
            record: Record::New,
        }
    }

    fn allowed(&self, now: Instant) -> usize {
        if self.started.oldest_ran(now, self.slow_after) {
            SLOW_LANE
        } else {
            self.share
        }
    }

    /// Whether its requests count as holding their slots long from their start.
    fn counts_from_start(&self) -> bool {
        self.record != Record::Quick
    }

    /// Whether this webhook holds a slot long now, or would with its next request.
    fn holds_long(&self, now: Instant) -> bool {
        self.record == Record::Slow || self.started.oldest_ran(now, LONG)
    }

    /// Requests that may start now, in `crowd`.
    fn room(&self, now: Instant, crowd: Crowd) -> usize {
        let allowed = match (crowd, self.record) {
            (Crowd::Clear, _) => self.allowed(now),
            _ if self.holds_long(now) => 0,
            (Crowd::Crowded { untried_open }, Record::New) => {
                self.allowed(now).min(usize::from(untried_open))
            }
            _ => self.allowed(now),
        };
        allowed.saturating_sub(self.started.len())
    }
}

/// Where the slots held long stand against the crowd mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crowd {
    /// At or over the mark.
    Crowded {
        /// A quarter of all slots is free: a webhook never tried may start one request.
        untried_open: bool,
    },
    /// Under the mark.
    Clear,
}

impl Crowd {
    /// How much it lets in: more after a finish means webhooks left out may start again.
    fn openness(self) -> u8 {
        match self {
            Crowd::Crowded {
                untried_open: false,
            } => 0,
            Crowd::Crowded { untried_open: true } => 1,
            Crowd::Clear => 2,
        }
    }
}

/// A slot taken for one request; give it back with `finish` or `give_back`.
#[derive(Debug, Clone, Copy)]
pub struct Slot(Instant);

/// What a finished request freed, for the dispatcher to wake for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freed {
    /// Its webhook had been at its share (so its waiting deliveries can be claimed again).
    pub own: bool,
    /// Slow or untried webhooks left out for the crowd mark may start requests again (the
    /// count went under the mark, or a quarter of the slots came free).
    pub crowd: bool,
}

pub struct Lanes {
    per_webhook: usize,
    slots: usize,
    /// Slots held long at which slow webhooks get no more (half of all slots).
    mark: usize,
    /// Slots kept free of untried webhooks' requests while crowded (a quarter of all slots).
    reserve: usize,
    book: Mutex<Book>,
}

#[derive(Default)]
struct Book {
    lanes: HashMap<WebhookId, Lane>,
    /// When each request in flight for a webhook on a quick record started (a multiset): those
    /// that started `LONG` ago or more hold their slots long.
    young: Starts,
    /// Requests in flight for webhooks on a slow record or none: held long from their start.
    slow: usize,
    /// Requests in flight, all webhooks together.
    in_flight: usize,
}

impl Book {
    /// Slots held long now.
    fn held_long(&self, now: Instant) -> usize {
        let aged = now
            .checked_sub(LONG)
            .map_or(0, |cut| self.young.started_by(cut));
        self.slow + aged
    }

    fn count_in(&mut self, slow: bool, at: Instant) {
        self.in_flight += 1;
        if slow {
            self.slow += 1;
        } else {
            self.young.push(at);
        }
    }

    fn count_out(&mut self, slow: bool, at: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if slow {
            self.slow = self.slow.saturating_sub(1);
        } else {
            self.young.remove(at);
        }
    }
}

/// A request running this long counts as hanging: four fifths of its timeout.
fn slow_after(timeout: Duration) -> Duration {
    timeout * 4 / 5
}

impl Lanes {
    /// Lanes for `slots` request slots in all, at most `per_webhook` of them for one webhook.
    pub fn new(per_webhook: usize, slots: usize) -> Self {
        Self {
            per_webhook: per_webhook.max(SLOW_LANE),
            slots,
            mark: (slots / 2).max(1),
            reserve: (slots / 4).max(1),
            book: Mutex::default(),
        }
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().expect("lanes")
    }

    fn crowd(&self, book: &Book, now: Instant) -> Crowd {
        if book.held_long(now) < self.mark {
            return Crowd::Clear;
        }
        Crowd::Crowded {
            untried_open: book.in_flight + self.reserve < self.slots,
        }
    }

    /// Webhooks that may start no request now (to leave out of the next claim).
    pub fn full(&self) -> Vec<WebhookId> {
        self.full_at(Instant::now())
    }

    fn full_at(&self, now: Instant) -> Vec<WebhookId> {
        let book = self.book();
        let crowd = self.crowd(&book, now);
        book.lanes
            .iter()
            .filter(|(_, lane)| lane.room(now, crowd) == 0)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Free request slots of `webhook` now.
    pub fn room(&self, webhook: &WebhookId) -> usize {
        self.room_at(webhook, Instant::now())
    }

    fn room_at(&self, webhook: &WebhookId, now: Instant) -> usize {
        let book = self.book();
        let crowd = self.crowd(&book, now);
        match book.lanes.get(webhook) {
            Some(lane) => lane.room(now, crowd),
            None => match crowd {
                Crowd::Clear => SLOW_LANE,
                Crowd::Crowded { untried_open } => usize::from(untried_open),
            },
        }
    }

    /// How long the longest-running request of `webhook` in flight has run (zero when none).
    pub fn running_longest(&self, webhook: &WebhookId) -> Duration {
        let now = Instant::now();
        self.book()
            .lanes
            .get(webhook)
            .and_then(|lane| lane.started.oldest())
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
    }

    /// Takes a slot for one request of `webhook` (whose requests time out after `timeout`);
    /// `None` (nothing taken) when it may start none now.
    pub fn try_take(&self, webhook: &WebhookId, timeout: Duration) -> Option<Slot> {
        self.try_take_at(webhook, timeout, Instant::now())
    }

    fn try_take_at(&self, webhook: &WebhookId, timeout: Duration, now: Instant) -> Option<Slot> {
        let mut book = self.book();
        let crowd = self.crowd(&book, now);
        let lane = book
            .lanes
            .entry(webhook.clone())
            .or_insert_with(|| Lane::new(timeout));
        lane.slow_after = slow_after(timeout);
        if lane.room(now, crowd) == 0 {
            return None;
        }
        lane.started.push(now);
        let slow = lane.counts_from_start();
        book.count_in(slow, now);
        Some(Slot(now))
    }

    /// Gives back a slot taken for a request that was not made.
    pub fn give_back(&self, webhook: &WebhookId, slot: Slot) {
        self.release(webhook, slot, None, Instant::now());
    }

    /// Gives back the slot of a request that took `took` and was `answered` (an HTTP response,
    /// whatever its status) or not, and adjusts the webhook's share (one more after a quick
    /// answer, back to the slow lane after a slow one or none) and its record for the crowd mark.
    pub fn finish(&self, webhook: &WebhookId, slot: Slot, took: Duration, answered: bool) -> Freed {
        self.release(webhook, slot, Some((took, answered)), Instant::now())
    }

    fn release(
        &self,
        webhook: &WebhookId,
        slot: Slot,
        took: Option<(Duration, bool)>,
        now: Instant,
    ) -> Freed {
        let mut book = self.book();
        let crowd = self.crowd(&book, now);
        let Some(lane) = book.lanes.get_mut(webhook) else {
            return Freed {
                own: false,
                crowd: false,
            };
        };
        let own = lane.room(now, crowd) == 0;
        let was_slow = lane.counts_from_start();
        if !lane.started.remove(slot.0) {
            return Freed { own, crowd: false };
        }
        if let Some((took, answered)) = took {
            if !answered || took >= lane.slow_after {
                lane.share = SLOW_LANE;
            } else {
                lane.share = (lane.share + 1).min(self.per_webhook);
            }
            lane.record = if took >= LONG {
                Record::Slow
            } else {
                Record::Quick
            };
        }
        let now_slow = lane.counts_from_start();
        // Only when the record flips: the webhook's other requests in flight move to the count
        // it now keeps (copied out of the lane, which the book holds).
        let moved = (was_slow != now_slow).then(|| lane.started.iter().collect::<Vec<_>>());
        book.count_out(was_slow, slot.0);
        if let Some(others) = moved {
            for t in others {
                book.count_out(was_slow, t);
                book.count_in(now_slow, t);
            }
        }
        if book.lanes.len() > MAX_IDLE_LANES {
            book.lanes.retain(|_, lane| !lane.started.is_empty());
        }
        Freed {
            own,
            crowd: self.crowd(&book, now).openness() > crowd.openness(),
        }
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

    fn take_all_at(lanes: &Lanes, id: &WebhookId, now: Instant) -> Vec<Slot> {
        std::iter::from_fn(|| lanes.try_take_at(id, TIMEOUT, now)).collect()
    }

    /// Lanes of 64 slots, at most 8 a webhook, and a webhook whose quick answers at `t0` earned
    /// it all 8.
    fn quick_webhook_at_its_full_share() -> (Lanes, WebhookId, Instant) {
        let lanes = Lanes::new(8, 64);
        let a = WebhookId::generate();
        let t0 = Instant::now();
        for _ in 0..10 {
            let s = lanes.try_take_at(&a, TIMEOUT, t0).unwrap();
            lanes.release(&a, s, Some((QUICK, true)), t0);
        }
        (lanes, a, t0)
    }

    #[test]
    fn a_new_webhook_starts_in_the_slow_lane_and_earns_its_share_with_quick_answers() {
        let lanes = Lanes::new(4, 64);
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
        let lanes = Lanes::new(8, 64);
        let a = WebhookId::generate();
        for _ in 0..10 {
            let s = lanes.try_take(&a, TIMEOUT).unwrap();
            lanes.finish(&a, s, QUICK, true);
        }
        let slots = take_all(&lanes, &a);
        assert_eq!(slots.len(), 8);
        let mut slots = slots.into_iter();
        assert!(
            lanes.finish(&a, slots.next().unwrap(), TIMEOUT, true).own,
            "it was at its share"
        );
        for s in slots {
            lanes.give_back(&a, s);
        }
        assert_eq!(take_all(&lanes, &a).len(), SLOW_LANE);
    }

    #[test]
    fn a_request_without_an_answer_drops_the_share_back_to_the_slow_lane_however_quick() {
        let lanes = Lanes::new(8, 64);
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
        let (lanes, a, t0) = quick_webhook_at_its_full_share();
        let _first = lanes.try_take_at(&a, TIMEOUT, t0).unwrap();
        let later = t0 + TIMEOUT;
        assert_eq!(
            take_all_at(&lanes, &a, later).len(),
            SLOW_LANE - 1,
            "only the slow lane while a request hangs"
        );
        assert!(lanes.full_at(later).contains(&a));
    }

    #[test]
    fn slow_webhooks_together_hold_at_most_half_the_slots() {
        // Eight slots: the crowd mark is four, and two stay for webhooks known to answer quickly.
        let lanes = Lanes::new(8, 8);
        let t0 = Instant::now();
        let hanging: Vec<WebhookId> = (0..5).map(|_| WebhookId::generate()).collect();
        let quick = WebhookId::generate();
        for _ in 0..2 {
            let s = lanes.try_take_at(&quick, TIMEOUT, t0).unwrap();
            lanes.release(&quick, s, Some((QUICK, true)), t0);
        }
        // Two new webhooks take two slots each: untried, their requests may hang, and they reach
        // the mark.
        let mut first_wave = Vec::new();
        for h in &hanging[..2] {
            for s in take_all_at(&lanes, h, t0) {
                first_wave.push((h.clone(), s));
            }
        }
        assert_eq!(first_wave.len(), 2 * SLOW_LANE);
        assert_eq!(
            lanes.room_at(&hanging[2], t0),
            1,
            "a webhook never tried still gets one request"
        );
        assert_eq!(
            lanes.room_at(&quick, t0),
            4,
            "a quick webhook keeps its share"
        );
        let full = lanes.full_at(t0);
        assert!(full.contains(&hanging[0]) && full.contains(&hanging[1]));
        assert!(!full.contains(&quick) && !full.contains(&hanging[2]));
        let third = lanes.try_take_at(&hanging[2], TIMEOUT, t0).unwrap();
        assert!(lanes.try_take_at(&hanging[2], TIMEOUT, t0).is_none());
        let _fourth = lanes.try_take_at(&hanging[3], TIMEOUT, t0).unwrap();
        assert_eq!(
            lanes.room_at(&hanging[4], t0),
            0,
            "the last quarter of the slots stays for webhooks known to answer quickly"
        );
        assert_eq!(lanes.room_at(&quick, t0), 4);

        // The first wave times out. Each finish that lets more in says so (the webhooks left
        // out may have nothing in flight to wake the dispatcher): the first frees a quarter of
        // the slots, the third brings the count under the mark.
        let t2 = t0 + TIMEOUT;
        let crowd: Vec<bool> = first_wave
            .into_iter()
            .map(|(h, s)| lanes.release(&h, s, Some((TIMEOUT, false)), t2).crowd)
            .collect();
        assert_eq!(crowd, vec![true, false, true, false]);

        // On a slow record now, their new requests count against the mark from the start:
        // with two untried requests still hanging, they get two slots between them.
        let mut again = 0;
        for h in &hanging[..2] {
            again += take_all_at(&lanes, h, t2).len();
        }
        assert_eq!(again, 2);
        assert_eq!(lanes.room_at(&hanging[1], t2), 0);
        assert_eq!(lanes.room_at(&hanging[4], t2), 1);
        assert_eq!(lanes.room_at(&quick, t2), 4);

        // The third webhook's request ends quickly after all: under the mark again.
        assert!(
            lanes
                .release(&hanging[2], third, Some((QUICK, true)), t2)
                .crowd
        );
        assert_eq!(lanes.room_at(&hanging[0], t2), 0, "at its own share");
        assert!(lanes.try_take_at(&hanging[1], TIMEOUT, t2).is_some());
        assert!(lanes.try_take_at(&hanging[1], TIMEOUT, t2).is_none());
    }

    #[test]
    fn a_quick_answer_takes_a_webhook_off_the_slow_record() {
        let lanes = Lanes::new(8, 4);
        let t0 = Instant::now();
        let a = WebhookId::generate();
        let s = lanes.try_take_at(&a, TIMEOUT, t0).unwrap();
        lanes.release(&a, s, Some((LONG, true)), t0);
        // On a slow record, its two requests reach the mark of two at once.
        let slots = take_all_at(&lanes, &a, t0);
        assert_eq!(slots.len(), SLOW_LANE);
        let b = WebhookId::generate();
        let s = lanes.try_take_at(&b, TIMEOUT, t0).unwrap();
        lanes.release(&b, s, Some((LONG * 2, true)), t0);
        assert_eq!(lanes.room_at(&b, t0), 0, "slow, and the mark is reached");
        // One of them answers quickly: its other request no longer counts as long.
        let mut slots = slots.into_iter();
        let freed = lanes.release(&a, slots.next().unwrap(), Some((QUICK, true)), t0);
        assert!(freed.crowd);
        assert!(lanes.try_take_at(&b, TIMEOUT, t0).is_some());
    }

    #[test]
    fn a_quick_webhook_whose_request_runs_long_counts_toward_the_mark() {
        // Four slots: the mark is two.
        let lanes = Lanes::new(8, 4);
        let t0 = Instant::now();
        let (q, other) = (WebhookId::generate(), WebhookId::generate());
        let s = lanes.try_take_at(&q, TIMEOUT, t0).unwrap();
        lanes.release(&q, s, Some((QUICK, true)), t0);
        let running = take_all_at(&lanes, &q, t0);
        assert_eq!(running.len(), 3);
        assert_eq!(
            lanes.room_at(&other, t0),
            SLOW_LANE,
            "not crowded while they are young"
        );
        let t1 = t0 + LONG;
        assert_eq!(lanes.room_at(&q, t1), 0, "it holds slots long");
        assert_eq!(lanes.full_at(t1), vec![q.clone()]);
        assert_eq!(
            lanes.room_at(&other, t1),
            0,
            "three of four slots in use: the rest stays for quick webhooks"
        );
    }

    /// Only the oldest request in flight decides whether a webhook hangs, and it is the oldest
    /// still in flight: two requests started at the same instant are two, and once the hanging
    /// one ends, the webhook's younger requests let it start more again.
    #[test]
    fn the_oldest_request_still_in_flight_decides_whether_a_webhook_hangs() {
        let (lanes, a, t0) = quick_webhook_at_its_full_share();
        let old = [
            lanes.try_take_at(&a, TIMEOUT, t0).unwrap(),
            lanes.try_take_at(&a, TIMEOUT, t0).unwrap(),
        ];
        let t1 = t0 + TIMEOUT / 2;
        let _young = lanes.try_take_at(&a, TIMEOUT, t1).unwrap();
        let t2 = t0 + TIMEOUT;
        assert_eq!(lanes.room_at(&a, t2), 0, "two hang: the slow lane is full");
        // Given back unsent (no answer to learn from), so the share stays at 8.
        lanes.release(&a, old[0], None, t2);
        assert_eq!(
            lanes.room_at(&a, t2),
            0,
            "the other request of the same instant still hangs"
        );
        lanes.release(&a, old[1], None, t2);
        // The one left started half a timeout ago, under four fifths: the webhook's share (8,
        // earned by the quick answers; requests given back unsent leave it as it was) applies.
        assert_eq!(lanes.room_at(&a, t2), 7);
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
