//! Retention: deleting what is older than the cutoff, one program and one small batch at a time,
//! so no statement holds the (SQLite) write lock long enough to delay ingest. Both backends
//! through `impl_retention_store!`.
//!
//! Invariant: nothing a delivery still needs is deleted. Unfinished deliveries are never deleted;
//! an event goes only when none of its deliveries is left unfinished or recently changed (a
//! replay in the window keeps its event); attempts are audit rows and go by age alone.

use super::Result;
use crate::domain::ids::ProgramId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// What one pruning statement deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prunable {
    /// Audit rows created before the cutoff.
    Attempts,
    /// Succeeded or dead-lettered deliveries created and last changed before the cutoff.
    Deliveries,
    /// Events accepted before the cutoff that no remaining delivery needs.
    Events,
    /// Sent alerts last seen before the cutoff.
    Alerts,
}

#[async_trait]
pub trait RetentionStore: Send + Sync + 'static {
    /// Deletes at most `limit` rows of `what` in `program` older than `cutoff`; returns how many.
    async fn prune(
        &self,
        program: &ProgramId,
        what: Prunable,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<u64>;
    /// Deletes the program's hourly roll-ups of hours before `hour` (hours since the epoch).
    async fn prune_rollups(&self, program: &ProgramId, hour: i64) -> Result<u64>;
}

pub(crate) mod sql {
    use super::Prunable;

    /// How a backend keeps rows whose id is among a subquery's (`$set` in the statements
    /// below). SQLite: `IN (subquery)`, which it runs once and then looks each id up by key.
    pub const IN_SET_SQLITE: (&str, &str) = ("IN (", ")");
    /// PostgreSQL: `= ANY(ARRAY(subquery))`, which runs the subquery once and looks each id up by
    /// key whatever the plan. With `IN (subquery)`, the plan made for any `LIMIT` (PostgreSQL
    /// guesses a tenth of the rows) hashed the ids and read the whole table to find them: over
    /// 10,000,000 attempts each batch of 500 took 4-11 s (README, Benchmarks).
    pub const IN_SET_POSTGRES: (&str, &str) = ("= ANY(ARRAY(", "))");

    const ATTEMPTS: &str = "DELETE FROM attempts WHERE id $set SELECT id FROM attempts \
        WHERE program_id = $1 AND created_at < $2 ORDER BY created_at LIMIT $3 $end";
    const DELIVERIES: &str = "DELETE FROM deliveries WHERE id $set SELECT id FROM deliveries \
        WHERE program_id = $1 AND status IN ('succeeded', 'failed') AND status <> 'in_flight' \
        AND created_at < $2 \
        AND updated_at < $2 ORDER BY created_at LIMIT $3 $end";
    /// Deliveries of an event are created with it, so those of an event older than the cutoff are
    /// older too; after `DELIVERIES`, the old ones left are the unfinished or recently changed,
    /// which keep their events. (Every other status is listed so the lookup is an index range
    /// on `(program_id, status, created_at)`; the deliveries in flight, which that index leaves
    /// out, are few and read among the leases.) An event an attempt still shows is kept too:
    /// queued tries store no copy of the body they sent, the audit log reads it from the event.
    const EVENTS: &str = "DELETE FROM events WHERE program_id = $1 AND id $set \
        SELECT e.id FROM events e WHERE e.program_id = $1 AND e.created_at < $2 \
        AND e.id NOT IN (SELECT d.event_id FROM deliveries d WHERE d.program_id = $1 \
            AND d.status IN ('pending', 'succeeded', 'failed') AND d.status <> 'in_flight' \
            AND d.created_at < $2) \
        AND e.id NOT IN (SELECT d.event_id FROM deliveries d WHERE d.status = 'in_flight' \
            AND d.program_id = $1) \
        AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.program_id = $1 \
            AND a.event_accepted_at = e.created_at AND a.event_id = e.id) \
        AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.program_id = $1 \
            AND a.event_accepted_at IS NULL AND a.event_id = e.id) \
        ORDER BY e.created_at LIMIT $3 $end";
    const ALERTS: &str = "DELETE FROM alerts WHERE id $set SELECT id FROM alerts \
        WHERE program_id = $1 AND sent_at IS NOT NULL AND last_at < $2 LIMIT $3 $end";

    /// The statement pruning `what`, for a backend's way of matching a set (`IN_SET_*`).
    pub fn prune(what: Prunable, (set, end): (&str, &str)) -> String {
        let statement = match what {
            Prunable::Attempts => ATTEMPTS,
            Prunable::Deliveries => DELIVERIES,
            Prunable::Events => EVENTS,
            Prunable::Alerts => ALERTS,
        };
        statement.replace("$set", set).replace("$end", end)
    }

    pub const ROLLUPS: [&str; 3] = [
        "DELETE FROM webhook_hours WHERE program_id = $1 AND hour < $2",
        "DELETE FROM webhook_hour_buckets WHERE program_id = $1 AND hour < $2",
        "DELETE FROM event_hours WHERE program_id = $1 AND hour < $2",
    ];
}

macro_rules! impl_retention_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::retention::RetentionStore for $store {
            async fn prune(
                &self,
                program: &ProgramId,
                what: $crate::store::retention::Prunable,
                cutoff: DateTime<Utc>,
                limit: i64,
            ) -> Result<u64> {
                let statement = $crate::store::retention::sql::prune(what, Self::IN_SET);
                Ok(sqlx::query(&statement)
                    .bind(program.as_str())
                    .bind(cutoff)
                    .bind(limit)
                    .execute(self.writer()?)
                    .await?
                    .rows_affected())
            }

            async fn prune_rollups(&self, program: &ProgramId, hour: i64) -> Result<u64> {
                let mut deleted = 0;
                for statement in $crate::store::retention::sql::ROLLUPS {
                    deleted += sqlx::query(statement)
                        .bind(program.as_str())
                        .bind(hour)
                        .execute(self.writer()?)
                        .await?
                        .rows_affected();
                }
                Ok(deleted)
            }
        }
    };
}
pub(crate) use impl_retention_store;
