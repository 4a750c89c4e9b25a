//! Login throttling: a sliding count of failed sign-ins per account and per client address. Past
//! the limit, further tries are refused until the oldest failure leaves the window, whether or not
//! the password would have been right. Held in memory per process (each process of a cluster
//! throttles on its own, so the effective limit is per process).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_account: usize,
    pub per_address: usize,
    pub window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_account: 5,
            per_address: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

pub struct Throttle {
    limits: Limits,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Throttle {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(wait)` when either key is over its limit now.
    pub fn blocked(&self, account: &str, address: &str) -> Option<Duration> {
        let now = Instant::now();
        let mut failures = self.failures.lock().expect("throttle lock");
        [
            (Self::account_key(account), self.limits.per_account),
            (Self::address_key(address), self.limits.per_address),
        ]
        .into_iter()
        .filter_map(|(key, limit)| {
            let times = failures.get_mut(&key)?;
            self.prune(times, now);
            (times.len() >= limit).then(|| {
                let oldest = *times.front().expect("over a positive limit");
                self.limits.window.saturating_sub(now - oldest)
            })
        })
        .max()
    }

    pub fn record_failure(&self, account: &str, address: &str) {
        let now = Instant::now();
        let mut failures = self.failures.lock().expect("throttle lock");
        if failures.len() > 100_000 {
            failures.retain(|_, times| times.back().is_some_and(|t| now - *t < self.limits.window));
        }
        for key in [Self::account_key(account), Self::address_key(address)] {
            let times = failures.entry(key).or_default();
            self.prune(times, now);
            times.push_back(now);
        }
    }

    /// A successful sign-in clears the account's failures (not the address's).
    pub fn record_success(&self, account: &str) {
        self.failures
            .lock()
            .expect("throttle lock")
            .remove(&Self::account_key(account));
    }

    fn prune(&self, times: &mut VecDeque<Instant>, now: Instant) {
        while times
            .front()
            .is_some_and(|t| now - *t >= self.limits.window)
        {
            times.pop_front();
        }
    }

    fn account_key(account: &str) -> String {
        format!("a:{}", account.trim().to_lowercase())
    }

    fn address_key(address: &str) -> String {
        format!("ip:{address}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_an_account_after_its_limit_and_an_address_after_its_own() {
        let t = Throttle::new(Limits {
            per_account: 2,
            per_address: 3,
            window: Duration::from_secs(60),
        });
        t.record_failure("a@x.io", "1.1.1.1");
        assert!(t.blocked("a@x.io", "1.1.1.1").is_none());
        t.record_failure("A@X.io", "1.1.1.1");
        assert!(t.blocked("a@x.io", "2.2.2.2").is_some(), "account limit");
        assert!(t.blocked("b@x.io", "1.1.1.1").is_none());
        t.record_failure("b@x.io", "1.1.1.1");
        assert!(t.blocked("c@x.io", "1.1.1.1").is_some(), "address limit");
        assert!(t.blocked("c@x.io", "3.3.3.3").is_none());
    }

    #[test]
    fn failures_leave_the_window() {
        let t = Throttle::new(Limits {
            per_account: 1,
            per_address: 10,
            window: Duration::from_millis(30),
        });
        t.record_failure("a@x.io", "1.1.1.1");
        assert!(t.blocked("a@x.io", "1.1.1.1").is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(t.blocked("a@x.io", "1.1.1.1").is_none());
    }
}
