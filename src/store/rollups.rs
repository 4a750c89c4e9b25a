//! The hourly roll-ups behind insights (`webhook_hours`, `webhook_hour_buckets`, `event_hours`):
//! what a batch of results or events adds to them, and the statements that add it. Rows are
//! upserted in key order, so two processes recording into the same hours on PostgreSQL take their
//! row locks in the same order and never deadlock.

use super::model::{IngestItem, NewAttempt};
use crate::domain::delivery::AttemptStatus;
use crate::domain::insights::{bucket_of, hour_of, Rollup, SizeStats};
use sqlx::{Database, Encode, Type};
use std::collections::{BTreeMap, HashSet};

/// A batch's additions per (webhook, hour), with the program of each.
pub type HourAdds = BTreeMap<(String, i64), (String, Rollup)>;
/// One entry of `HourAdds`, borrowed.
pub type HourRow<'r> = (&'r (String, i64), &'r (String, Rollup));
/// A histogram addition: (webhook, hour, metric, bucket, program, count).
pub type BucketRow = (String, i64, i64, i64, String, i64);
/// Event sizes of one (program, type, hour), borrowed.
pub type EventRow<'r> = (&'r (String, String, i64), &'r SizeStats);

/// Sums live attempts per webhook and hour. `dead` holds the attempts that dead-lettered their
/// delivery.
pub fn hour_adds(attempts: &[&NewAttempt], dead: &HashSet<String>) -> HourAdds {
    let mut adds = HourAdds::new();
    for a in attempts.iter().filter(|a| a.is_live()) {
        let key = (a.webhook_id.to_string(), hour_of(a.created_at));
        let (_, r) = adds
            .entry(key)
            .or_insert_with(|| (a.program_id.to_string(), Rollup::default()));
        r.attempts += 1;
        if a.status == AttemptStatus::Success {
            r.successes += 1;
            if let Some(lag) = a.lag_ms {
                r.lag_sum_ms += lag;
                r.lag_count += 1;
                r.lag[bucket_of(lag)] += 1;
            }
        } else {
            r.failures += 1;
        }
        if dead.contains(a.id.as_str()) {
            r.dead_letters += 1;
        }
        if a.attempt > 1 {
            r.retries += 1;
        }
        if let Some(ms) = a.latency_ms {
            r.latency_sum_ms += ms;
            r.latency_count += 1;
            r.latency[bucket_of(ms)] += 1;
        }
    }
    adds
}

/// The summed counters of `webhook_hours`, in `CounterRow` order after the key.
const COUNTERS: [&str; 9] = [
    "attempts",
    "successes",
    "failures",
    "dead_letters",
    "retries",
    "latency_sum_ms",
    "latency_count",
    "lag_sum_ms",
    "lag_count",
];

/// Rows per multi-row upsert (12 values each at most).
pub const ROWS_PER_UPSERT: usize = 500;

/// The assignments that add an upserted row's counters to its `webhook_hours` row.
pub(crate) fn hour_sums() -> String {
    COUNTERS
        .map(|c| format!("{c} = webhook_hours.{c} + excluded.{c}"))
        .join(", ")
}

/// Adds to `webhook_hours`.
pub fn push_upsert_hours<'a, DB>(qb: &mut super::sql::Sql<'a, DB>, rows: &[HourRow<'_>])
where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    qb.push(
        "INSERT INTO webhook_hours (webhook_id, hour, program_id, attempts, successes, failures, \
         dead_letters, retries, latency_sum_ms, latency_count, lag_sum_ms, lag_count) ",
    );
    qb.push_values(rows, |mut row, ((webhook, hour), (program, r))| {
        row.push_bind(webhook.clone())
            .push_bind(*hour)
            .push_bind(program.clone())
            .push_bind(r.attempts)
            .push_bind(r.successes)
            .push_bind(r.failures)
            .push_bind(r.dead_letters)
            .push_bind(r.retries)
            .push_bind(r.latency_sum_ms)
            .push_bind(r.latency_count)
            .push_bind(r.lag_sum_ms)
            .push_bind(r.lag_count);
    });
    qb.push(" ON CONFLICT (webhook_id, hour) DO UPDATE SET ");
    qb.push(&HOUR_SUMS);
}

/// `hour_sums`, written once.
static HOUR_SUMS: std::sync::LazyLock<String> = std::sync::LazyLock::new(hour_sums);

/// The histogram rows of a batch: (webhook, hour, metric, bucket) → (program, count), in key order.
pub fn bucket_adds(adds: &HourAdds) -> Vec<BucketRow> {
    let mut rows = Vec::new();
    for ((webhook, hour), (program, r)) in adds {
        for (metric, histogram) in [(0, &r.latency), (1, &r.lag)] {
            for (bucket, &n) in histogram.iter().enumerate() {
                if n > 0 {
                    rows.push((
                        webhook.clone(),
                        *hour,
                        metric,
                        bucket as i64,
                        program.clone(),
                        n,
                    ));
                }
            }
        }
    }
    rows
}

/// Adds to `webhook_hour_buckets`.
pub fn push_upsert_buckets<'a, DB>(qb: &mut super::sql::Sql<'a, DB>, rows: &[BucketRow])
where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    qb.push("INSERT INTO webhook_hour_buckets (webhook_id, hour, metric, bucket, program_id, n) ");
    qb.push_values(
        rows,
        |mut row, (webhook, hour, metric, bucket, program, n)| {
            row.push_bind(webhook.clone())
                .push_bind(*hour)
                .push_bind(*metric)
                .push_bind(*bucket)
                .push_bind(program.clone())
                .push_bind(*n);
        },
    );
    qb.push(
        " ON CONFLICT (webhook_id, hour, metric, bucket) DO UPDATE SET \
         n = webhook_hour_buckets.n + excluded.n",
    );
}

/// Sizes of the events a batch stored, per (program, type, hour).
pub fn event_adds<'b>(
    stored: impl Iterator<Item = &'b IngestItem>,
) -> BTreeMap<(String, String, i64), SizeStats> {
    let mut adds: BTreeMap<(String, String, i64), SizeStats> = BTreeMap::new();
    for item in stored {
        let e = &item.event;
        let key = (
            e.program_id.to_string(),
            e.event_type.to_string(),
            hour_of(e.created_at),
        );
        let bytes = e.body.len() as i64;
        let s = adds.entry(key).or_insert(SizeStats {
            bytes_min: bytes,
            bytes_max: bytes,
            ..SizeStats::default()
        });
        s.events += 1;
        s.bytes_sum += bytes;
        s.bytes_sq_sum += (bytes as f64) * (bytes as f64);
        s.bytes_min = s.bytes_min.min(bytes);
        s.bytes_max = s.bytes_max.max(bytes);
    }
    adds
}

/// Adds to `event_hours`.
pub fn push_upsert_events<'a, DB>(qb: &mut super::sql::Sql<'a, DB>, rows: &[EventRow<'_>])
where
    DB: Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Type<DB>,
{
    qb.push(
        "INSERT INTO event_hours (program_id, event_type, hour, events, bytes_sum, bytes_sq_sum, \
         bytes_min, bytes_max) ",
    );
    qb.push_values(rows, |mut row, ((program, event_type, hour), s)| {
        row.push_bind(program.clone())
            .push_bind(event_type.clone())
            .push_bind(*hour)
            .push_bind(s.events)
            .push_bind(s.bytes_sum)
            .push_bind(s.bytes_sq_sum)
            .push_bind(s.bytes_min)
            .push_bind(s.bytes_max);
    });
    qb.push(EVENT_SIZES_ON_CONFLICT);
}

/// How an upserted row of event sizes joins the `event_hours` row already there.
pub const EVENT_SIZES_ON_CONFLICT: &str =
    " ON CONFLICT (program_id, event_type, hour) DO UPDATE SET \
    events = event_hours.events + excluded.events, \
    bytes_sum = event_hours.bytes_sum + excluded.bytes_sum, \
    bytes_sq_sum = event_hours.bytes_sq_sum + excluded.bytes_sq_sum, \
    bytes_min = CASE WHEN excluded.bytes_min < event_hours.bytes_min \
        THEN excluded.bytes_min ELSE event_hours.bytes_min END, \
    bytes_max = CASE WHEN excluded.bytes_max > event_hours.bytes_max \
        THEN excluded.bytes_max ELSE event_hours.bytes_max END";

/// How read queries group roll-up rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// One group per webhook (key: webhook id).
    Webhook,
    /// One group per `step`-hour slot from the span's start (key: slot index).
    Slot(i64),
}

/// What the roll-up reads select: (program, optional webhook, `[from, to)` hours, grouping).
#[derive(Debug, Clone)]
pub struct RollupQuery {
    /// Only these webhooks' rows (bound as `$4`, `$5`, …); empty: the whole program's.
    pub webhooks: Vec<String>,
    pub from_hour: i64,
    pub to_hour: i64,
    pub grouping: Grouping,
}

impl RollupQuery {
    fn key(&self) -> String {
        match self.grouping {
            Grouping::Webhook => "webhook_id".to_owned(),
            Grouping::Slot(step) => format!(
                "CAST((hour - {}) / {} AS TEXT)",
                self.from_hour,
                step.max(1)
            ),
        }
    }

    fn filter(&self) -> String {
        let webhook = if self.webhooks.is_empty() {
            String::new()
        } else {
            let params: Vec<String> = (0..self.webhooks.len())
                .map(|i| format!("${}", i + 4))
                .collect();
            format!(" AND webhook_id IN ({})", params.join(", "))
        };
        // Narrowed to webhooks, the program is compared through an expression (`|| ''`) so that
        // no index on it is usable: the planner then reads each webhook's own key range, where
        // it took the program's (program, hour) index and read every webhook's hours (25 ms for
        // one webhook among 10,000).
        let program = if self.webhooks.is_empty() {
            "program_id"
        } else {
            "program_id || ''"
        };
        format!("{program} = $1 AND hour >= $2 AND hour < $3{webhook}")
    }

    /// Counter sums per group: key, then the nine counters of `webhook_hours`.
    pub fn counters_sql(&self) -> String {
        let sums = COUNTERS
            .map(|c| format!("CAST(SUM({c}) AS BIGINT)"))
            .join(", ");
        format!(
            "SELECT {key} AS k, {sums} FROM webhook_hours WHERE {filter} GROUP BY {key}",
            key = self.key(),
            filter = self.filter()
        )
    }

    /// Histogram sums per group: key, metric, bucket, count.
    pub fn buckets_sql(&self) -> String {
        format!(
            "SELECT {key} AS k, metric, bucket, CAST(SUM(n) AS BIGINT) FROM webhook_hour_buckets \
             WHERE {filter} GROUP BY {key}, metric, bucket",
            key = self.key(),
            filter = self.filter()
        )
    }
}

/// A counters row of `counters_sql`.
pub type CounterRow = (String, i64, i64, i64, i64, i64, i64, i64, i64, i64);

/// Folds the two reads of a `RollupQuery` into one roll-up per key.
pub fn fold(
    counters: Vec<CounterRow>,
    buckets: Vec<(String, i64, i64, i64)>,
) -> Vec<(String, Rollup)> {
    let mut by_key: BTreeMap<String, Rollup> = BTreeMap::new();
    for (k, attempts, successes, failures, dead_letters, retries, lsum, lcount, gsum, gcount) in
        counters
    {
        by_key.insert(
            k,
            Rollup {
                attempts,
                successes,
                failures,
                dead_letters,
                retries,
                latency_sum_ms: lsum,
                latency_count: lcount,
                lag_sum_ms: gsum,
                lag_count: gcount,
                ..Rollup::default()
            },
        );
    }
    for (k, metric, bucket, n) in buckets {
        let r = by_key.entry(k).or_default();
        let histogram = if metric == 0 {
            &mut r.latency
        } else {
            &mut r.lag
        };
        if let Some(slot) = usize::try_from(bucket)
            .ok()
            .and_then(|b| histogram.get_mut(b))
        {
            *slot += n;
        }
    }
    by_key.into_iter().collect()
}

/// Event sizes per type over `[from, to)` hours of a program.
pub const EVENT_SIZES: &str = "SELECT event_type, CAST(SUM(events) AS BIGINT), \
    CAST(SUM(bytes_sum) AS BIGINT), CAST(SUM(bytes_sq_sum) AS DOUBLE PRECISION), \
    MIN(bytes_min), MAX(bytes_max) FROM event_hours \
    WHERE program_id = $1 AND hour >= $2 AND hour < $3 GROUP BY event_type";
