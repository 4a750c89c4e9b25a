//! Delivery insights: figures over a window (24 h, 7 d, 30 d), hourly series for the charts, and the
//! four flags, all computed from hourly roll-ups (`Rollup`), never from a scan of attempts.
//!
//! The flag rules are plain statistics over two spans of a webhook's own history: the *recent* span
//! (the current hour and the `RECENT_HOURS - 1` before it) and the *baseline* (the 7 days before
//! that). Each rule needs enough data on both sides before it says anything, so a new or quiet
//! webhook is never flagged on noise. The README states the same rules in prose.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// Upper bounds (inclusive, in ms) of the latency and lag histogram buckets; one more bucket holds
/// everything above the last bound. A 1-2-5 series: percentiles read from it are within one step.
pub const BUCKET_BOUNDS_MS: [i64; 18] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 60_000, 300_000,
    3_600_000, 86_400_000,
];
/// Buckets per histogram (the bounds and the overflow).
pub const BUCKETS: usize = BUCKET_BOUNDS_MS.len() + 1;

/// Hours in the recent span the flags look at.
pub const RECENT_HOURS: i64 = 6;
/// Hours in the baseline span before it (7 days).
pub const BASELINE_HOURS: i64 = 168;
/// Fewest live attempts in the recent span before failure and latency rules judge it.
pub const MIN_RECENT_ATTEMPTS: i64 = 20;
/// Fewest live attempts (or events, for payloads) in the baseline before it counts as one.
pub const MIN_BASELINE: i64 = 50;
/// A switched-on webhook whose oldest waiting delivery has been due this long is falling behind.
pub const BEHIND_MINUTES: f64 = 15.0;

/// The histogram bucket a duration falls in.
pub fn bucket_of(ms: i64) -> usize {
    BUCKET_BOUNDS_MS.partition_point(|&bound| bound < ms)
}

/// Whole hours since the Unix epoch: the key of a roll-up row.
pub fn hour_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(3_600)
}

/// The start of an hour key.
pub fn hour_start(hour: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(hour * 3_600, 0)
        .single()
        .unwrap_or_default()
}

/// A window the console and the API report over.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Window {
    #[default]
    #[serde(rename = "24h")]
    Day,
    #[serde(rename = "7d")]
    Week,
    #[serde(rename = "30d")]
    Month,
}

impl Window {
    pub const ALL: [Window; 3] = [Window::Day, Window::Week, Window::Month];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "24h",
            Self::Week => "7d",
            Self::Month => "30d",
        }
    }

    /// Words for headings: "last 24 hours".
    pub fn label(self) -> &'static str {
        match self {
            Self::Day => "last 24 hours",
            Self::Week => "last 7 days",
            Self::Month => "last 30 days",
        }
    }

    /// `""` is the default (24 h); anything else unknown is refused by name.
    pub fn parse(raw: &str) -> Result<Self, super::ValidationError> {
        match raw.trim() {
            "" | "24h" => Ok(Self::Day),
            "7d" => Ok(Self::Week),
            "30d" => Ok(Self::Month),
            _ => Err(super::ValidationError::new(
                "window",
                "must be one of 24h, 7d, 30d",
            )),
        }
    }

    pub fn hours(self) -> i64 {
        match self {
            Self::Day => 24,
            Self::Week => 168,
            Self::Month => 720,
        }
    }

    /// Hours per chart bar: hourly over a day, 6-hourly over a week, daily over a month.
    pub fn step_hours(self) -> i64 {
        match self {
            Self::Day => 1,
            Self::Week => 6,
            Self::Month => 24,
        }
    }

    /// The hour keys `[from, to)` of the window ending with the hour of `now` (included), aligned
    /// so every chart bar spans whole steps.
    pub fn span(self, now: DateTime<Utc>) -> (i64, i64) {
        let step = self.step_hours();
        let end = hour_of(now) + 1;
        let to = (end + step - 1).div_euclid(step) * step;
        (to - self.hours(), to)
    }
}

/// Sums over some hours of one webhook (or a whole program): what the store's roll-ups hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollup {
    pub attempts: i64,
    pub successes: i64,
    pub failures: i64,
    pub dead_letters: i64,
    pub retries: i64,
    pub latency_sum_ms: i64,
    pub latency_count: i64,
    pub lag_sum_ms: i64,
    pub lag_count: i64,
    /// Counts per `BUCKET_BOUNDS_MS` bucket.
    pub latency: [i64; BUCKETS],
    pub lag: [i64; BUCKETS],
}

impl Default for Rollup {
    fn default() -> Self {
        Self {
            attempts: 0,
            successes: 0,
            failures: 0,
            dead_letters: 0,
            retries: 0,
            latency_sum_ms: 0,
            latency_count: 0,
            lag_sum_ms: 0,
            lag_count: 0,
            latency: [0; BUCKETS],
            lag: [0; BUCKETS],
        }
    }
}

impl Rollup {
    pub fn add(&mut self, other: &Rollup) {
        self.attempts += other.attempts;
        self.successes += other.successes;
        self.failures += other.failures;
        self.dead_letters += other.dead_letters;
        self.retries += other.retries;
        self.latency_sum_ms += other.latency_sum_ms;
        self.latency_count += other.latency_count;
        self.lag_sum_ms += other.lag_sum_ms;
        self.lag_count += other.lag_count;
        for (a, b) in self.latency.iter_mut().zip(other.latency) {
            *a += b;
        }
        for (a, b) in self.lag.iter_mut().zip(other.lag) {
            *a += b;
        }
    }

    /// Deliveries that started in these hours (first tries; retries are counted apart).
    pub fn first_tries(&self) -> i64 {
        self.attempts - self.retries
    }

    pub fn figures(&self, window: Window) -> Figures {
        Figures {
            window,
            attempts: self.attempts,
            succeeded: self.successes,
            failed: self.failures,
            dead_lettered: self.dead_letters,
            retries: self.retries,
            success_rate: super::webhook::success_rate(self.successes, self.attempts),
            avg_latency_ms: ratio(self.latency_sum_ms, self.latency_count),
            p50_latency_ms: percentile(&self.latency, 0.50),
            p95_latency_ms: percentile(&self.latency, 0.95),
            avg_lag_ms: ratio(self.lag_sum_ms, self.lag_count),
            p50_lag_ms: percentile(&self.lag, 0.50),
            p95_lag_ms: percentile(&self.lag, 0.95),
        }
    }
}

fn ratio(sum: i64, count: i64) -> Option<f64> {
    (count > 0).then(|| sum as f64 / count as f64)
}

/// The `q` quantile of a histogram, interpolated linearly inside its bucket (the overflow bucket
/// answers its lower bound); `None` when empty.
pub fn percentile(histogram: &[i64; BUCKETS], q: f64) -> Option<f64> {
    let total: i64 = histogram.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut seen = 0i64;
    for (i, &n) in histogram.iter().enumerate() {
        if n == 0 {
            continue;
        }
        if (seen + n) as f64 >= rank {
            let lower = if i == 0 { 0 } else { BUCKET_BOUNDS_MS[i - 1] } as f64;
            let Some(&upper) = BUCKET_BOUNDS_MS.get(i) else {
                return Some(lower);
            };
            let into = ((rank - seen as f64) / n as f64).clamp(0.0, 1.0);
            return Some(lower + (upper as f64 - lower) * into);
        }
        seen += n;
    }
    Some(*BUCKET_BOUNDS_MS.last().unwrap_or(&0) as f64)
}

/// A webhook's (or a program's) figures over one window.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub window: Window,
    /// Live attempts (retries and replays included; tests and sandboxed ones are not).
    pub attempts: i64,
    pub succeeded: i64,
    pub failed: i64,
    /// Deliveries that used up their retries in the window.
    pub dead_lettered: i64,
    /// Attempts after the first of their delivery.
    pub retries: i64,
    /// Succeeded ÷ attempts × 100; `null` without attempts.
    pub success_rate: Option<f64>,
    pub avg_latency_ms: Option<f64>,
    pub p50_latency_ms: Option<f64>,
    pub p95_latency_ms: Option<f64>,
    /// Event accepted → delivered, over successful tries.
    pub avg_lag_ms: Option<f64>,
    pub p50_lag_ms: Option<f64>,
    pub p95_lag_ms: Option<f64>,
}

/// One bar of a chart: `step_hours` starting at `start`.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    pub start: DateTime<Utc>,
    pub succeeded: i64,
    pub failed: i64,
    pub p50_latency_ms: Option<f64>,
    pub p95_latency_ms: Option<f64>,
}

/// Turns per-slot roll-ups (slot = index of a `step`-hour bar from `from`) into a full series,
/// empty bars included.
pub fn series(window: Window, from: i64, slots: &[(i64, Rollup)]) -> Vec<SeriesPoint> {
    let step = window.step_hours();
    (0..window.hours() / step)
        .map(|slot| {
            let r = slots
                .iter()
                .find(|(s, _)| *s == slot)
                .map(|(_, r)| r.clone())
                .unwrap_or_default();
            SeriesPoint {
                start: hour_start(from + slot * step),
                succeeded: r.successes,
                failed: r.failures,
                p50_latency_ms: percentile(&r.latency, 0.50),
                p95_latency_ms: percentile(&r.latency, 0.95),
            }
        })
        .collect()
}

/// Which rule a flag comes from.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagKind {
    FailureRate,
    SlowLatency,
    UnusualPayload,
    Silent,
    FallingBehind,
}

impl FlagKind {
    /// The badge's words.
    pub fn label(self) -> &'static str {
        match self {
            Self::FailureRate => "Failing more",
            Self::SlowLatency => "Slower",
            Self::UnusualPayload => "Unusual payload",
            Self::Silent => "Gone silent",
            Self::FallingBehind => "Falling behind",
        }
    }
}

/// Something about a webhook an admin should look at, as a badge and one plain sentence.
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    pub kind: FlagKind,
    pub sentence: String,
}

/// Sizes of accepted events of one type over some hours.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SizeStats {
    pub events: i64,
    pub bytes_sum: i64,
    pub bytes_sq_sum: f64,
    pub bytes_min: i64,
    pub bytes_max: i64,
}

impl SizeStats {
    pub fn mean(&self) -> f64 {
        if self.events == 0 {
            0.0
        } else {
            self.bytes_sum as f64 / self.events as f64
        }
    }

    pub fn std_dev(&self) -> f64 {
        if self.events == 0 {
            return 0.0;
        }
        let mean = self.mean();
        (self.bytes_sq_sum / self.events as f64 - mean * mean)
            .max(0.0)
            .sqrt()
    }
}

/// What the flag rules read about one webhook.
#[derive(Debug, Clone, Default)]
pub struct FlagInput {
    pub enabled: bool,
    /// The recent span (`RECENT_HOURS`) and the baseline (`BASELINE_HOURS` before it).
    pub recent: Rollup,
    pub baseline: Rollup,
    /// Hours since the webhook's last live attempt (`None`: never attempted).
    pub silent_hours: Option<f64>,
    /// Per subscribed event type: (type, recent sizes, baseline sizes).
    pub payloads: Vec<(String, SizeStats, SizeStats)>,
    /// Minutes since the webhook's oldest waiting delivery fell due (`None`: nothing due).
    pub overdue_minutes: Option<f64>,
}

/// Every flag the rules raise for one webhook, in a fixed order.
pub fn flags(input: &FlagInput) -> Vec<Flag> {
    [
        failure_flag(&input.recent, &input.baseline),
        latency_flag(&input.recent, &input.baseline),
        payload_flag(&input.payloads),
        silence_flag(input),
        behind_flag(input),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Failure rate well above the webhook's own baseline: at least `MIN_RECENT_ATTEMPTS` recent
/// attempts and `MIN_BASELINE` in the baseline; the recent rate is 10 points or more above the
/// baseline's (Laplace-smoothed, so a flawless week is not a 0% baseline) and 3 standard errors
/// above it (a binomial z-test).
pub fn failure_flag(recent: &Rollup, baseline: &Rollup) -> Option<Flag> {
    if recent.attempts < MIN_RECENT_ATTEMPTS || baseline.attempts < MIN_BASELINE {
        return None;
    }
    let rate = recent.failures as f64 / recent.attempts as f64;
    let usual = (baseline.failures as f64 + 1.0) / (baseline.attempts as f64 + 2.0);
    let z = (rate - usual) / (usual * (1.0 - usual) / recent.attempts as f64).sqrt();
    (rate - usual >= 0.10 && z >= 3.0).then(|| Flag {
        kind: FlagKind::FailureRate,
        sentence: format!(
            "Failing more than usual: {:.0}% of {} attempts failed in the last {} hours, against {:.1}% over the 7 days before.",
            rate * 100.0,
            recent.attempts,
            RECENT_HOURS,
            baseline.failures as f64 * 100.0 / baseline.attempts as f64
        ),
    })
}

/// Latency p95 drifting above its baseline: with as much data as `failure_flag` needs, the recent
/// p95 is at least twice the baseline's and at least 100 ms more.
pub fn latency_flag(recent: &Rollup, baseline: &Rollup) -> Option<Flag> {
    let recent_n: i64 = recent.latency.iter().sum();
    let baseline_n: i64 = baseline.latency.iter().sum();
    if recent_n < MIN_RECENT_ATTEMPTS || baseline_n < MIN_BASELINE {
        return None;
    }
    let now = percentile(&recent.latency, 0.95)?;
    let usual = percentile(&baseline.latency, 0.95)?;
    (now >= 2.0 * usual && now - usual >= 100.0).then(|| Flag {
        kind: FlagKind::SlowLatency,
        sentence: format!(
            "Slower than usual: 95% of requests took up to {} in the last {} hours, against {} over the 7 days before.",
            format_ms(now),
            RECENT_HOURS,
            format_ms(usual)
        ),
    })
}

/// Payload size unusual for its event type: for an event type with at least `MIN_BASELINE`
/// baseline events, a recent event larger or smaller than the baseline mean by more than
/// max(4 standard deviations, half the mean, 256 bytes).
pub fn payload_flag(payloads: &[(String, SizeStats, SizeStats)]) -> Option<Flag> {
    payloads.iter().find_map(|(event_type, recent, baseline)| {
        if recent.events == 0 || baseline.events < MIN_BASELINE {
            return None;
        }
        let mean = baseline.mean();
        let tolerance = (4.0 * baseline.std_dev()).max(0.5 * mean).max(256.0);
        let (odd, word) = if recent.bytes_max as f64 > mean + tolerance {
            (recent.bytes_max, "larger")
        } else if (recent.bytes_min as f64) < mean - tolerance {
            (recent.bytes_min, "smaller")
        } else {
            return None;
        };
        Some(Flag {
            kind: FlagKind::UnusualPayload,
            sentence: format!(
                "Unusual payloads: a {event_type} event of {} arrived in the last {} hours, far {word} than the usual {}.",
                format_bytes(odd as f64),
                RECENT_HOURS,
                format_bytes(mean)
            ),
        })
    })
}

/// Gone silent when its events usually flow: an enabled webhook with no live attempt for an hour
/// or more, where its baseline rate of deliveries would have brought at least 10 in that time (a
/// Poisson chance of silence below 0.005%).
pub fn silence_flag(input: &FlagInput) -> Option<Flag> {
    let silent = input.silent_hours?;
    let per_hour = input.baseline.first_tries() as f64 / BASELINE_HOURS as f64;
    (input.enabled && silent >= 1.0 && per_hour * silent >= 10.0).then(|| Flag {
        kind: FlagKind::Silent,
        sentence: format!(
            "Gone silent: no deliveries for {} hours, where about {} an hour are usual.",
            silent.floor(),
            format_count(per_hour)
        ),
    })
}

/// Deliveries waiting past their due time: a switched-on webhook's oldest waiting delivery fell
/// due `BEHIND_MINUTES` or more ago. Herald claims due deliveries within moments, so a wait that
/// long means they come faster than the webhook takes them (its rate limit, its concurrency with
/// a slow endpoint) or they wait in order behind one that keeps failing.
pub fn behind_flag(input: &FlagInput) -> Option<Flag> {
    let minutes = input.overdue_minutes?;
    (input.enabled && minutes >= BEHIND_MINUTES).then(|| Flag {
        kind: FlagKind::FallingBehind,
        sentence: format!(
            "Falling behind: its oldest waiting delivery fell due {} ago and has not gone out (more arrive than it takes at its rate limit and concurrency, or they wait in order behind a failing one).",
            format_minutes(minutes)
        ),
    })
}

/// "42 minutes", "3.5 hours".
fn format_minutes(minutes: f64) -> String {
    if minutes < 120.0 {
        format!("{minutes:.0} minutes")
    } else {
        format!("{:.1} hours", minutes / 60.0)
    }
}

/// "840 ms", "2.5 s"; under a millisecond (latencies are kept in whole ones), "< 1 ms" rather
/// than a "0 ms" that reads as no time at all.
pub fn format_ms(ms: f64) -> String {
    if ms < 1.0 {
        "< 1 ms".to_owned()
    } else if ms < 1_000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1_000.0)
    }
}

fn format_bytes(bytes: f64) -> String {
    if bytes < 1_024.0 {
        format!("{bytes:.0} bytes")
    } else {
        format!("{:.1} KiB", bytes / 1_024.0)
    }
}

fn format_count(n: f64) -> String {
    if n < 10.0 {
        format!("{n:.1}")
    } else {
        format!("{n:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(format_ms(0.0), "< 1 ms");
        assert_eq!(format_ms(0.4), "< 1 ms");
        assert_eq!(format_ms(1.0), "1 ms");
        assert_eq!(format_ms(840.0), "840 ms");
        assert_eq!(format_ms(2_500.0), "2.5 s");
    }

    /// A history of `attempts` tries with `failures` failed, every try taking `latency_ms`.
    fn history(attempts: i64, failures: i64, latency_ms: i64) -> Rollup {
        let mut r = Rollup {
            attempts,
            successes: attempts - failures,
            failures,
            latency_sum_ms: attempts * latency_ms,
            latency_count: attempts,
            ..Rollup::default()
        };
        r.latency[bucket_of(latency_ms)] = attempts;
        r
    }

    fn sizes(events: i64, mean: i64, spread: i64) -> SizeStats {
        // Half the events at mean - spread, half at mean + spread.
        let (lo, hi) = (mean - spread, mean + spread);
        SizeStats {
            events,
            bytes_sum: events * mean,
            bytes_sq_sum: (events / 2) as f64 * ((lo * lo + hi * hi) as f64),
            bytes_min: lo,
            bytes_max: hi,
        }
    }

    #[test]
    fn buckets_and_percentiles() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 0);
        assert_eq!(bucket_of(2), 1);
        assert_eq!(bucket_of(150), 7);
        assert_eq!(bucket_of(i64::MAX), BUCKETS - 1);
        let mut h = [0; BUCKETS];
        assert_eq!(percentile(&h, 0.5), None);
        h[bucket_of(150)] = 100; // all in (100, 200]
        let p50 = percentile(&h, 0.5).unwrap();
        assert!((p50 - 150.0).abs() < 1e-9, "{p50}");
        h[BUCKETS - 1] = 1_000;
        assert_eq!(percentile(&h, 0.95), Some(86_400_000.0));
    }

    #[test]
    fn windows_end_with_the_current_hour_on_whole_steps() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 13, 20, 0).unwrap();
        let h = hour_of(now);
        assert_eq!(Window::Day.span(now), (h - 23, h + 1));
        let (from, to) = Window::Week.span(now);
        assert_eq!(to - from, 168);
        assert!(to > h && to - h <= 6 && to % 6 == 0);
        let (from, to) = Window::Month.span(now);
        assert_eq!((to - from, to % 24), (720, 0));
        assert!(to > h);
        assert_eq!(Window::parse("7d").unwrap(), Window::Week);
        assert_eq!(Window::parse("").unwrap(), Window::Day);
        assert_eq!(Window::parse("1y").unwrap_err().field, "window");
    }

    #[test]
    fn failure_rate_flags_a_jump_over_the_webhooks_own_baseline() {
        let usual = history(1_000, 20, 80); // 2% over the week
        assert!(failure_flag(&history(100, 40, 80), &usual).is_some());
        let flag = failure_flag(&history(100, 40, 80), &usual).unwrap();
        assert!(
            flag.sentence.contains("40% of 100 attempts"),
            "{}",
            flag.sentence
        );
        // Within the usual wobble, too few attempts, or no baseline yet: nothing.
        assert!(failure_flag(&history(100, 5, 80), &usual).is_none());
        assert!(failure_flag(&history(10, 8, 80), &usual).is_none());
        assert!(failure_flag(&history(100, 90, 80), &history(20, 0, 80)).is_none());
        // A webhook that always fails half its tries is not "failing more" at 55%.
        assert!(failure_flag(&history(100, 55, 80), &history(1_000, 500, 80)).is_none());
    }

    #[test]
    fn latency_flags_a_p95_drift_not_a_fast_endpoint_doubling_a_few_ms() {
        let usual = history(1_000, 0, 80);
        let flag = latency_flag(&history(100, 0, 900), &usual).expect("80 ms → 900 ms");
        assert!(flag.sentence.contains("over the 7 days before"));
        assert!(latency_flag(&history(100, 0, 90), &usual).is_none());
        // 3 ms → 8 ms doubles but is not worth a flag.
        assert!(latency_flag(&history(100, 0, 8), &history(1_000, 0, 3)).is_none());
        assert!(latency_flag(&history(5, 0, 900), &usual).is_none());
    }

    #[test]
    fn payload_flags_sizes_far_outside_the_types_usual_range() {
        let usual = sizes(500, 1_200, 50);
        let big = SizeStats {
            events: 3,
            bytes_sum: 3 * 1_200 + 40_000,
            bytes_sq_sum: 0.0,
            bytes_min: 1_150,
            bytes_max: 41_000,
        };
        let flag = payload_flag(&[("points.awarded".into(), big, usual.clone())]).unwrap();
        assert!(
            flag.sentence.contains("points.awarded event of 40.0 KiB"),
            "{}",
            flag.sentence
        );
        let tiny = SizeStats {
            events: 1,
            bytes_sum: 90,
            bytes_sq_sum: 8_100.0,
            bytes_min: 90,
            bytes_max: 90,
        };
        assert!(
            payload_flag(&[("points.awarded".into(), tiny, usual.clone())])
                .unwrap()
                .sentence
                .contains("smaller")
        );
        // The usual spread, nothing recent, or too short a baseline: nothing.
        assert!(payload_flag(&[(
            "points.awarded".into(),
            sizes(100, 1_210, 60),
            usual.clone()
        )])
        .is_none());
        assert!(payload_flag(&[("points.awarded".into(), SizeStats::default(), usual)]).is_none());
        assert!(payload_flag(&[(
            "points.awarded".into(),
            sizes(2, 90_000, 0),
            sizes(10, 1_200, 50)
        )])
        .is_none());
    }

    #[test]
    fn behind_flags_a_wait_past_due_on_a_switched_on_webhook() {
        let late = FlagInput {
            enabled: true,
            overdue_minutes: Some(42.4),
            ..FlagInput::default()
        };
        let flag = behind_flag(&late).unwrap();
        assert_eq!(flag.kind, FlagKind::FallingBehind);
        assert!(
            flag.sentence.contains("fell due 42 minutes ago"),
            "{}",
            flag.sentence
        );
        let later = behind_flag(&FlagInput {
            overdue_minutes: Some(210.0),
            ..late.clone()
        })
        .unwrap();
        assert!(
            later.sentence.contains("fell due 3.5 hours ago"),
            "{}",
            later.sentence
        );
        // Due a moment ago, nothing due, or switched off (its deliveries are held, not late).
        for quiet in [
            FlagInput {
                overdue_minutes: Some(14.9),
                ..late.clone()
            },
            FlagInput {
                overdue_minutes: None,
                ..late.clone()
            },
            FlagInput {
                enabled: false,
                ..late.clone()
            },
        ] {
            assert!(behind_flag(&quiet).is_none(), "{quiet:?}");
        }
        assert_eq!(flags(&late).len(), 1);
    }

    #[test]
    fn silence_flags_a_busy_webhook_that_stopped_not_a_quiet_one() {
        let busy = FlagInput {
            enabled: true,
            baseline: history(168 * 40, 0, 80), // 40 deliveries an hour
            silent_hours: Some(3.5),
            ..FlagInput::default()
        };
        let flag = silence_flag(&busy).unwrap();
        assert!(
            flag.sentence
                .contains("no deliveries for 3 hours, where about 40 an hour"),
            "{}",
            flag.sentence
        );
        // Silent for less than an hour, a quiet webhook (2 a day), disabled, or never attempted.
        assert!(silence_flag(&FlagInput {
            silent_hours: Some(0.5),
            ..busy.clone()
        })
        .is_none());
        let quiet = FlagInput {
            baseline: history(14, 0, 80),
            silent_hours: Some(20.0),
            ..busy.clone()
        };
        assert!(silence_flag(&quiet).is_none());
        assert!(silence_flag(&FlagInput {
            enabled: false,
            ..busy.clone()
        })
        .is_none());
        assert!(silence_flag(&FlagInput {
            silent_hours: None,
            ..busy
        })
        .is_none());
    }
}
