//! Whether the database takes Herald's writes, as the writes themselves find it. A write that
//! fails because of the database's state (unreachable, locked, its disk full) marks the writes
//! failing, with the reason, until a write succeeds again. `/healthz` and `/metrics` read it: a
//! full disk leaves the database readable, so a read alone answers "up" while every event is
//! refused. Once a write of events has failed, only a write of events clears it: on a nearly
//! full disk a small write of delivery results can still fit while every event is refused, and
//! clearing on it hid the refusals from the banner and `/healthz` (seen as a flaky test).

use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// How long a failure stands with no later write to confirm or clear it. Without traffic nothing
/// shows whether the database has recovered, and an old failure should not keep the health check
/// failing once the cause is gone (the next write tells again).
const STANDS_FOR: chrono::Duration = chrono::Duration::seconds(60);

/// Why the latest writes failed, and since when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WriteTrouble {
    /// The first failure of the current run of failures.
    pub since: DateTime<Utc>,
    /// The latest failure.
    pub last: DateTime<Utc>,
    /// In words an operator can act on, e.g. "the database's disk is full".
    pub reason: String,
    /// Whether a write carrying events failed in this run (then only one carrying events ends it).
    #[serde(skip)]
    pub events: bool,
}

#[derive(Debug, Default)]
pub(super) struct WriteHealth {
    /// Set while `trouble` holds one: a successful write (every commit) then costs one load.
    failing: AtomicBool,
    trouble: Mutex<Option<WriteTrouble>>,
    /// How many runs of failures a successful write has ended (a failure that merely aged out
    /// proves nothing).
    recoveries: AtomicU64,
}

impl WriteHealth {
    /// A write failed for the database's sake; `events`: it carried events.
    pub(super) fn failed(&self, reason: String, now: DateTime<Utc>, events: bool) {
        let mut trouble = self.trouble.lock().expect("write health");
        match trouble.as_mut() {
            Some(t) => {
                t.last = now;
                t.reason = reason;
                t.events |= events;
            }
            None => {
                *trouble = Some(WriteTrouble {
                    since: now,
                    last: now,
                    reason,
                    events,
                })
            }
        }
        self.failing.store(true, Ordering::Release);
    }

    /// A write succeeded; `events`: it carried events.
    pub(super) fn succeeded(&self, events: bool) {
        if self.failing.load(Ordering::Acquire) {
            let mut trouble = self.trouble.lock().expect("write health");
            if trouble.as_ref().is_some_and(|t| t.events && !events) {
                return;
            }
            *trouble = None;
            self.failing.store(false, Ordering::Release);
            self.recoveries.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// How many runs of failures a successful write has ended so far.
    pub(super) fn recoveries(&self) -> u64 {
        self.recoveries.load(Ordering::Acquire)
    }

    /// The current trouble, if a write failed within `STANDS_FOR` of `now` and none succeeded
    /// since.
    pub(super) fn trouble(&self, now: DateTime<Utc>) -> Option<WriteTrouble> {
        if !self.failing.load(Ordering::Acquire) {
            return None;
        }
        let trouble = self.trouble.lock().expect("write health");
        trouble.clone().filter(|t| now - t.last < STANDS_FOR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_stands_until_a_write_succeeds_or_a_minute_passes_without_another() {
        let start = Utc::now();
        let health = WriteHealth::default();
        assert_eq!(health.trouble(start), None);
        health.failed("the database's disk is full".into(), start, false);
        let later = start + chrono::Duration::seconds(30);
        health.failed("the database's disk is full".into(), later, false);
        let t = health.trouble(later).expect("failing");
        assert_eq!((t.since, t.last), (start, later));
        assert_eq!(t.reason, "the database's disk is full");
        // Nothing written for a minute after the last failure: no longer claimed.
        assert!(health
            .trouble(later + chrono::Duration::seconds(59))
            .is_some());
        assert_eq!(health.trouble(later + STANDS_FOR), None);
        // A write that succeeds clears it at once; the next failure starts a new run.
        health.succeeded(false);
        assert_eq!(health.trouble(later), None);
        let again = later + chrono::Duration::seconds(1);
        health.failed("the database cannot be reached".into(), again, false);
        assert_eq!(health.trouble(again).expect("failing").since, again);
        assert_eq!(health.recoveries(), 1);
    }

    #[test]
    fn refused_events_are_cleared_only_by_events_stored() {
        let start = Utc::now();
        let health = WriteHealth::default();
        health.failed("the database's disk is full".into(), start, false);
        health.failed("the database's disk is full".into(), start, true);
        // Results that still fit on the disk say nothing about the events refused.
        health.succeeded(false);
        assert!(health.trouble(start).is_some_and(|t| t.events));
        assert_eq!(health.recoveries(), 0);
        health.succeeded(true);
        assert_eq!(health.trouble(start), None);
        assert_eq!(health.recoveries(), 1);
    }
}
