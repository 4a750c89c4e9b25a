//! When a failed delivery is tried again. Retry `n` (0-based) waits the webhook's delay (fixed),
//! `delay × 2^n` with ±10% jitter, capped at 24 h (exponential), or the schedule's `n`th delay; a
//! receiver's `Retry-After` (on 429/503) is a floor. When the retry budget is spent the delivery is
//! dead-lettered.

use super::queue::NextStep;
#[cfg(test)]
use crate::domain::webhook::Schedule;
use crate::domain::webhook::{Backoff, RetryPolicy};
use chrono::{DateTime, Duration, Utc};

pub const MAX_DELAY: Duration = Duration::hours(24);

/// The next step after a failed try. `tries_before` counts the tries recorded before this one;
/// `jitter` is drawn from −0.1..=0.1 by the caller (tests pass 0).
pub fn after_failure(
    policy: &RetryPolicy,
    tries_before: i64,
    now: DateTime<Utc>,
    retry_after: Option<Duration>,
    jitter: f64,
) -> NextStep {
    if tries_before >= i64::from(policy.attempts) {
        return NextStep::Failed;
    }
    let base = Duration::seconds(policy.delay_seconds.into());
    let delay = match policy.backoff {
        Backoff::Fixed => base,
        Backoff::Exponential => {
            let factor =
                2f64.powi(tries_before.clamp(0, 30) as i32) * (1.0 + jitter.clamp(-0.1, 0.1));
            let ms =
                (base.num_milliseconds() as f64 * factor).min(MAX_DELAY.num_milliseconds() as f64);
            Duration::milliseconds(ms as i64)
        }
        Backoff::Schedule(s) => {
            let n = usize::try_from(tries_before).unwrap_or_default();
            Duration::seconds(s.delays().get(n).copied().unwrap_or_default().into())
        }
    };
    let delay = retry_after.map_or(delay, |ra| delay.max(ra.min(MAX_DELAY)));
    NextStep::RetryAt(now + delay)
}

/// A jitter factor in −0.1..=0.1.
pub fn jitter() -> f64 {
    rand::Rng::gen_range(&mut rand::thread_rng(), -0.1..=0.1)
}

/// Parses `Retry-After` as delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u32>() {
        return Some(Duration::seconds(secs.into()));
    }
    let when = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((when - now).max(Duration::zero()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_is_followed_as_written_and_sets_the_budget() {
        let now = Utc::now();
        let delays = Schedule::parse_list("0, 5m, 30m, 2h, 24h").unwrap();
        assert_eq!(delays, [0, 300, 1_800, 7_200, 86_400]);
        assert_eq!(Schedule::format_list(&delays), "0s, 5m, 30m, 2h, 1d");
        let p =
            RetryPolicy::new(2, 10, Backoff::Schedule(Schedule::new(&delays).unwrap()), 5).unwrap();
        assert_eq!(
            p.attempts, 5,
            "the schedule's length, not the attempts given"
        );
        let waits: Vec<_> = (0..5)
            .map(|n| match after_failure(&p, n, now, None, 0.1) {
                NextStep::RetryAt(at) => (at - now).num_seconds(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            waits,
            [0, 300, 1_800, 7_200, 86_400],
            "no jitter on a written schedule"
        );
        assert_eq!(after_failure(&p, 5, now, None, 0.0), NextStep::Failed);
        // Retry-After is still a floor.
        let floor = after_failure(&p, 0, now, Some(Duration::seconds(90)), 0.0);
        assert_eq!(floor, NextStep::RetryAt(now + Duration::seconds(90)));
        // Stored and read back.
        let b = Backoff::from_stored(&p.backoff.to_stored()).unwrap();
        assert_eq!(b, p.backoff);
        assert_eq!(p.backoff.to_stored(), "schedule:0,300,1800,7200,86400");
        for bad in ["", "5m, x", "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11", "25h"] {
            let parsed = Schedule::parse_list(bad).and_then(|d| Schedule::new(&d));
            assert_eq!(parsed.unwrap_err().field, "retry.schedule", "{bad}");
        }
    }

    fn policy(attempts: u32, backoff: Backoff) -> RetryPolicy {
        RetryPolicy::new(attempts.into(), 10, backoff, 5).unwrap()
    }

    #[test]
    fn exponential_doubles_and_budget_ends_in_failure() {
        let now = Utc::now();
        let p = policy(3, Backoff::Exponential);
        let waits: Vec<_> = (0..3)
            .map(|n| match after_failure(&p, n, now, None, 0.0) {
                NextStep::RetryAt(t) => (t - now).num_seconds(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(waits, [10, 20, 40]);
        assert_eq!(after_failure(&p, 3, now, None, 0.0), NextStep::Failed);
    }

    #[test]
    fn fixed_jitter_cap_and_retry_after() {
        let now = Utc::now();
        let p = policy(10, Backoff::Fixed);
        assert_eq!(
            after_failure(&p, 5, now, None, 0.1),
            NextStep::RetryAt(now + Duration::seconds(10))
        );
        let e = RetryPolicy::new(10, 86_400, Backoff::Exponential, 5).unwrap();
        assert_eq!(
            after_failure(&e, 9, now, None, 0.1),
            NextStep::RetryAt(now + MAX_DELAY)
        );
        let jittered = after_failure(&policy(3, Backoff::Exponential), 1, now, None, -0.1);
        assert_eq!(jittered, NextStep::RetryAt(now + Duration::seconds(18)));
        let ra = after_failure(&p, 0, now, Some(Duration::seconds(120)), 0.0);
        assert_eq!(ra, NextStep::RetryAt(now + Duration::seconds(120)));
        assert_eq!(policy(0, Backoff::Fixed).attempts, 0);
        assert_eq!(
            after_failure(&policy(0, Backoff::Fixed), 0, now, None, 0.0),
            NextStep::Failed
        );
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_retry_after("30", now), Some(Duration::seconds(30)));
        assert_eq!(
            parse_retry_after("Sun, 22 Nov 2026 10:01:00 GMT", now),
            Some(Duration::seconds(60))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
