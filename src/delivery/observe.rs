//! What the engine tells operators about each event and attempt: Prometheus metrics (through the
//! `metrics` facade; `herald serve` installs the exporter when `/metrics` is configured, and
//! without one these calls cost next to nothing) and one log line per failed attempt, with the
//! webhook, event, delivery and attempt ids as fields.
//!
//! Metric names (see the README): `herald_events_ingested_total{duplicate}`,
//! `herald_attempts_total{webhook_id,outcome}`, `herald_deliveries_finished_total{webhook_id,
//! outcome}`, `herald_retries_scheduled_total{webhook_id}`, `herald_attempt_duration_seconds`,
//! `herald_delivery_lag_seconds`, `herald_auto_disables_total{reason}`,
//! `herald_alerts_sent_total{kind}`, `herald_retention_deleted_total{what}`,
//! `herald_bulk_replayed_total`, `herald_deliveries_routed_total{path}` (`express`: sent by the
//! process that accepted the event without a claim; `queue`: claimed from the queue),
//! `herald_write_wait_seconds{kind}`, `herald_write_seconds{kind}`, `herald_write_rows_total{kind}`
//! (the database write path, see `waited_for_write` and `wrote`); the queue and pool gauges are
//! read at scrape time.

use super::queue::{NextStep, Outcome};
use metrics::{counter, histogram};
use std::time::Duration;

/// Events stored by one ingest (`duplicate`: the id was already there).
pub fn ingested(duplicate: bool) {
    counter!("herald_events_ingested_total", "duplicate" => if duplicate { "true" } else { "false" })
        .increment(1);
}

/// New deliveries stored by one ingest commit: `express` sent without a claim, `queued` claimed.
pub fn routed(express: usize, queued: usize) {
    if express > 0 {
        counter!("herald_deliveries_routed_total", "path" => "express").increment(express as u64);
    }
    if queued > 0 {
        counter!("herald_deliveries_routed_total", "path" => "queue").increment(queued as u64);
    }
}

/// Events accepted for storing and then not stored (their request was answered with an error):
/// `unavailable` when the database could not take the write (unreachable, locked, its disk full;
/// the client is told to retry), `error` otherwise.
pub fn refused(unavailable: bool, events: usize) {
    let reason = if unavailable { "unavailable" } else { "error" };
    counter!("herald_events_refused_total", "reason" => reason).increment(events as u64);
}

/// Events whose first write found a webhook changed since they were routed: routed again inside
/// the transaction that stores them. A steady climb means the webhooks change about as often as
/// events commit.
pub fn rerouted(events: usize) {
    counter!("herald_ingest_rerouted_events_total").increment(events as u64);
}

/// How long write jobs of one kind (`events`: an ingested event; `results`: a batch of delivery
/// results) waited for the transaction that writes them: from being handed to the group-commit
/// task (a full queue's backpressure included) to that transaction's start.
pub fn waited_for_write(kind: &'static str, waits: impl Iterator<Item = Duration>) {
    let h = histogram!("herald_write_wait_seconds", "kind" => kind);
    for w in waits {
        h.record(w.as_secs_f64());
    }
}

/// One write transaction of the hot path and what it carried: `kind` is `events` (ingest alone),
/// `shared` (events and results in one transaction, SQLite) or `results` (the recorder alone).
/// Its duration against the run's length says how busy the write path is; rows per
/// transaction, how well group commit batches.
pub fn wrote(kind: &'static str, took: Duration, events: usize, results: usize) {
    histogram!("herald_write_seconds", "kind" => kind).record(took.as_secs_f64());
    if events > 0 {
        counter!("herald_write_rows_total", "kind" => "events").increment(events as u64);
    }
    if results > 0 {
        counter!("herald_write_rows_total", "kind" => "results").increment(results as u64);
    }
}

/// Herald switched a webhook off (`reason`: `gone` for 410, `failing` for sustained failure).
pub fn auto_disabled(reason: &'static str) {
    counter!("herald_auto_disables_total", "reason" => reason).increment(1);
}

/// An alert went out (as an operational event, and by e-mail when that is on).
pub fn alert_sent(kind: crate::domain::alerts::AlertKind) {
    counter!("herald_alerts_sent_total", "kind" => kind.as_str()).increment(1);
}

/// Rows a retention pass deleted (`what`: attempts, deliveries, events, alerts, rollups).
pub fn retention_deleted(what: &'static str, rows: u64) {
    if rows > 0 {
        counter!("herald_retention_deleted_total", "what" => what).increment(rows);
    }
}

/// Dead letters a bulk replay batch put back in the queue.
pub fn bulk_replayed(count: i64) {
    if count > 0 {
        counter!("herald_bulk_replayed_total").increment(count as u64);
    }
}

/// Logs a failed try at `$level` with the ids that find it again, then `$($rest)*`.
macro_rules! log_failed_try {
    ($level:ident, $a:expr, $($rest:tt)*) => {
        tracing::$level!(
            webhook_id = %$a.webhook_id,
            event_id = %$a.event_id,
            delivery_id = $a.delivery_id.as_ref().map_or("", |d| d.as_str()),
            attempt_id = %$a.id,
            attempt = $a.attempt,
            status_code = $a.status_code,
            error = $a.error.as_deref().unwrap_or_default(),
            $($rest)*
        )
    };
}

/// One try of a queued delivery has an outcome: a request went out (its attempt row names the
/// webhook, event, delivery and lag). What it does to its delivery is counted once it is
/// written (`recorded`).
pub fn attempted(outcome: &Outcome, took: Duration) {
    let a = &outcome.attempt;
    counter!("herald_attempts_total", "webhook_id" => a.webhook_id.to_string(), "outcome" => a.status.as_str())
        .increment(1);
    histogram!("herald_attempt_duration_seconds").record(took.as_secs_f64());
}

/// A try's result is written: `moved` when it moved its delivery on (finished it, or scheduled
/// its next try); otherwise its claim had been superseded and it changed nothing.
pub fn recorded(outcome: &Outcome, moved: bool) {
    let a = &outcome.attempt;
    if !moved {
        log_failed_try!(
            debug,
            a,
            "a superseded claim's result was recorded; it moved nothing"
        );
        return;
    }
    let webhook = a.webhook_id.to_string();
    match outcome.next {
        NextStep::Succeeded => {
            counter!("herald_deliveries_finished_total", "webhook_id" => webhook, "outcome" => "succeeded")
                .increment(1);
            if let Some(lag) = a.lag_ms {
                histogram!("herald_delivery_lag_seconds").record(lag as f64 / 1000.0);
            }
        }
        NextStep::RetryAt(at) => {
            counter!("herald_retries_scheduled_total", "webhook_id" => webhook).increment(1);
            log_failed_try!(info, a, retry_at = %at, "delivery attempt failed; retrying");
        }
        NextStep::Failed => {
            counter!("herald_deliveries_finished_total", "webhook_id" => webhook, "outcome" => "dead_lettered")
                .increment(1);
            log_failed_try!(warn, a, "delivery dead-lettered: its retry budget is spent");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::EventType;
    use crate::domain::ids::{DeliveryId, EventId, ProgramId};
    use crate::store::NewAttempt;

    /// A try that finished its delivery counts as finished only once its result is written and
    /// found to have moved the delivery: a superseded claim's result (the delivery went on
    /// under a newer claim) counts its request and nothing else.
    #[test]
    fn only_a_result_that_moved_its_delivery_counts_it_finished() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let outcome = Outcome {
            delivery_id: DeliveryId::generate(),
            claim_count: 1,
            ordered: false,
            next: NextStep::Succeeded,
            attempt: NewAttempt::sample_success(
                ProgramId::generate(),
                EventId::generate(),
                EventType::parse("points.awarded").unwrap(),
                crate::store::now(),
            ),
        };
        let finished = |text: &str| {
            text.lines()
                .filter(|l| l.starts_with("herald_deliveries_finished_total{"))
                .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
                .sum::<f64>()
        };
        metrics::with_local_recorder(&recorder, || {
            attempted(&outcome, Duration::from_millis(3));
            recorded(&outcome, false);
        });
        let text = handle.render();
        assert!(text.contains("herald_attempts_total{"), "{text}");
        assert_eq!(finished(&text), 0.0, "{text}");
        metrics::with_local_recorder(&recorder, || recorded(&outcome, true));
        assert_eq!(finished(&handle.render()), 1.0);
    }
}
