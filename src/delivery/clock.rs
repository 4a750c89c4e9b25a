//! The engine's sense of "now". Everything that schedules (retry times, leases, due checks, audit
//! timestamps) asks the engine's `Clock`, so tests can hold time still and move it on by hand
//! (`ManualClock`) instead of sleeping until a retry comes due.
//!
//! Times are truncated to microseconds, the precision both backends store, so a time written and
//! read back compares equal.

use chrono::{DateTime, SubsecRound, Utc};
use std::sync::Mutex;

/// A source of wall-clock time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock: what a running Herald uses.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// A clock that stands still until told to move (tests).
#[derive(Debug)]
pub struct ManualClock {
    at: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// Starts at the current system time.
    pub fn new() -> Self {
        Self::starting_at(SystemClock.now())
    }

    pub fn starting_at(at: DateTime<Utc>) -> Self {
        Self {
            at: Mutex::new(at.trunc_subsecs(6)),
        }
    }

    /// Moves time on by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        let mut at = self.at.lock().expect("manual clock");
        *at = (*at + by).trunc_subsecs(6);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.at.lock().expect("manual clock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new();
        let t0 = c.now();
        assert_eq!(c.now(), t0);
        c.advance(chrono::Duration::seconds(90));
        assert_eq!(c.now() - t0, chrono::Duration::seconds(90));
    }
}
