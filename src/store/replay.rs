//! Storage of bulk replay jobs (see migration 0013 for the rules), both backends through
//! `impl_replay_store!`.
//!
//! Invariant: a batch moves the job's cursor and requeues its deliveries in one transaction, so a
//! job that dies between batches resumes exactly where it stopped, and no dead letter is replayed
//! twice by one job.

use super::decode::from_row;
use super::Result;
use crate::domain::ids::{ProgramId, ReplayJobId, WebhookId};
use crate::domain::replay::ReplayJobStatus;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Which dead letters a job replays.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplayScope {
    pub webhook: Option<WebhookId>,
    pub event_type: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

impl ReplayScope {
    /// The scope a filter names, as the console and the API send it (empty fields match all);
    /// the error names the field that is wrong.
    pub fn parse(
        filter: &crate::domain::replay::ReplayFilter,
    ) -> Result<Self, crate::domain::ValidationError> {
        let (created_from, created_before) =
            crate::domain::query::parse_range(&filter.start, &filter.end)?;
        let webhook = match filter.webhook_id.trim() {
            "" => None,
            raw => Some(WebhookId::parse(raw).ok_or_else(|| {
                crate::domain::ValidationError::new(
                    "webhook_id",
                    "webhook_id is not a webhook id (wh_…)",
                )
            })?),
        };
        Ok(Self {
            webhook,
            event_type: filter.checked_event_type()?,
            created_from,
            created_before,
        })
    }

    /// The same scope always gives the same key (one running job per program and key).
    pub fn key(&self) -> String {
        let t = |d: &Option<DateTime<Utc>>| d.map(|d| d.to_rfc3339()).unwrap_or_default();
        format!(
            "{}|{}|{}|{}",
            self.webhook
                .as_ref()
                .map(|w| w.as_str())
                .unwrap_or_default(),
            self.event_type.as_deref().unwrap_or_default(),
            t(&self.created_from),
            t(&self.created_before)
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReplayJobRecord {
    pub id: ReplayJobId,
    pub program: ProgramId,
    pub scope: ReplayScope,
    pub status: ReplayJobStatus,
    pub total: i64,
    pub replayed: i64,
    pub started_by: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait ReplayStore: Send + Sync + 'static {
    /// Starts a job over `scope`, counting its dead letters, or returns the job already running
    /// over the same scope (`false`: nothing new was started).
    async fn start_replay_job(
        &self,
        program: &ProgramId,
        scope: &ReplayScope,
        started_by: &str,
        now: DateTime<Utc>,
    ) -> Result<(ReplayJobRecord, bool)>;
    async fn replay_job(
        &self,
        program: &ProgramId,
        id: &ReplayJobId,
    ) -> Result<Option<ReplayJobRecord>>;
    /// The program's latest jobs, newest first.
    async fn list_replay_jobs(
        &self,
        program: &ProgramId,
        limit: i64,
    ) -> Result<Vec<ReplayJobRecord>>;
    /// Takes a running job whose lease is free or has run out (any program) for `lease` (its
    /// next batch frees it again); `None` if none.
    async fn claim_replay_job(
        &self,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> Result<Option<ReplayJobId>>;
    /// Requeues the job's next `limit` dead letters and moves its cursor (finishing it when fewer
    /// were left); returns the job as it now stands and how many this batch requeued.
    async fn replay_job_batch(
        &self,
        id: &ReplayJobId,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<(ReplayJobRecord, i64)>;
}

pub(crate) mod sql {
    use super::ReplayScope;
    use sqlx::{Database, Encode, QueryBuilder, Type};

    pub const COLUMNS: &str = "id, program_id, webhook_id, event_type, created_from, \
        created_before, status, total, replayed, started_by, created_at, finished_at, \
        cursor_at, cursor_id";
    pub const INSERT: &str = "INSERT INTO replay_jobs (id, program_id, filter_key, webhook_id, \
        event_type, created_from, created_before, status, total, started_by, created_at, \
        updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', $8, $9, $10, $10)";
    pub const CLAIM: &str = "UPDATE replay_jobs SET lease_until = $2 WHERE id = $1 \
        AND status = 'running' AND (lease_until IS NULL OR lease_until < $3)";
    pub const CLAIMABLE: &str = "SELECT id FROM replay_jobs WHERE status = 'running' \
        AND (lease_until IS NULL OR lease_until < $1) ORDER BY created_at LIMIT 1";
    /// Also frees the lease: the batch is done, and the next may be taken by any process.
    pub const ADVANCE: &str = "UPDATE replay_jobs SET replayed = replayed + $2, cursor_at = $3, \
        cursor_id = $4, updated_at = $5, lease_until = NULL, status = CASE WHEN $6 THEN 'done' ELSE status END, \
        finished_at = CASE WHEN $6 THEN $5 ELSE finished_at END WHERE id = $1";
    /// Most dead letters one requeue statement names (a batch goes in `sized_chunks` of it).
    pub const REQUEUE_PER_STATEMENT: usize = 256;

    /// Puts the dead letters among `ids` back in the queue with a fresh budget: due `now`, or
    /// held (`held_due()`) while their webhook is switched off. Due now, a switched-off
    /// webhook's would sit at the head of the due index, where every claim walks past them
    /// until a sweep holds them.
    pub fn requeue<'a, DB>(
        ids: &[String],
        now: chrono::DateTime<chrono::Utc>,
    ) -> QueryBuilder<'a, DB>
    where
        DB: Database,
        for<'q> String: Encode<'q, DB> + Type<DB>,
        for<'q> chrono::DateTime<chrono::Utc>: Encode<'q, DB> + Type<DB>,
    {
        let mut qb = QueryBuilder::new(
            "UPDATE deliveries SET status = 'pending', trigger = 'replay', tries = 0, \
             interruptions = 0, lease_expires_at = NULL, last_error = NULL, \
             next_attempt_at = CASE WHEN EXISTS (SELECT 1 FROM webhooks w \
             WHERE w.id = deliveries.webhook_id AND w.enabled) THEN ",
        );
        qb.push_bind(now)
            .push(" ELSE ")
            .push_bind(crate::store::sql::held_due())
            .push(" END, updated_at = ")
            .push_bind(now)
            .push(" WHERE status = 'failed' AND id IN ");
        crate::store::sql::push_list(&mut qb, ids);
        qb
    }

    /// The dead letters in `scope` of `program` accepted up to `until`, after the cursor, in
    /// (created_at, id) order; `count` selects their number instead.
    pub fn matching<'a, DB>(
        program: &str,
        scope: &ReplayScope,
        until: chrono::DateTime<chrono::Utc>,
        cursor: Option<(chrono::DateTime<chrono::Utc>, String)>,
        count: bool,
    ) -> QueryBuilder<'a, DB>
    where
        DB: Database,
        for<'q> String: Encode<'q, DB> + Type<DB>,
        for<'q> chrono::DateTime<chrono::Utc>: Encode<'q, DB> + Type<DB>,
    {
        let mut qb = QueryBuilder::new(if count {
            "SELECT COUNT(*) FROM deliveries d"
        } else {
            "SELECT d.id, d.created_at FROM deliveries d"
        });
        if scope.event_type.is_some() {
            qb.push(" JOIN events e ON e.program_id = d.program_id AND e.id = d.event_id");
        }
        // The program's status index leaves deliveries in flight out (`NOT_IN_FLIGHT`).
        qb.push(" WHERE d.status = 'failed' AND ")
            .push(crate::store::sql::NOT_IN_FLIGHT)
            .push(" AND d.program_id = ")
            .push_bind(program.to_owned());
        qb.push(" AND d.created_at <= ").push_bind(until);
        qb.push(" AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = d.webhook_id AND w.deleted_at IS NULL)");
        if let Some(w) = &scope.webhook {
            qb.push(" AND d.webhook_id = ").push_bind(w.to_string());
        }
        if let Some(t) = &scope.event_type {
            qb.push(" AND e.event_type = ").push_bind(t.clone());
        }
        if let Some(f) = scope.created_from {
            qb.push(" AND d.created_at >= ").push_bind(f);
        }
        if let Some(b) = scope.created_before {
            qb.push(" AND d.created_at < ").push_bind(b);
        }
        if let Some((at, id)) = cursor {
            // The range on `created_at` alone is what an index can start from: the tie-break
            // on `id` inside an OR could only filter, so each batch read every dead letter
            // before the cursor again (a job over n dead letters read n²/2000 of them).
            qb.push(" AND d.created_at >= ")
                .push_bind(at)
                .push(" AND (d.created_at > ")
                .push_bind(at)
                .push(" OR d.id > ")
                .push_bind(id)
                .push(")");
        }
        if !count {
            qb.push(" ORDER BY d.created_at, d.id");
        }
        qb
    }
}

pub(crate) struct JobRow {
    id: String,
    program_id: String,
    webhook_id: Option<String>,
    event_type: Option<String>,
    created_from: Option<DateTime<Utc>>,
    created_before: Option<DateTime<Utc>>,
    status: String,
    total: i64,
    replayed: i64,
    started_by: String,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    pub(crate) cursor_at: Option<DateTime<Utc>>,
    pub(crate) cursor_id: Option<String>,
}
from_row!(JobRow {
    id,
    program_id,
    webhook_id,
    event_type,
    created_from,
    created_before,
    status,
    total,
    replayed,
    started_by,
    created_at,
    finished_at,
    cursor_at,
    cursor_id
});

impl TryFrom<JobRow> for ReplayJobRecord {
    type Error = super::StoreError;

    fn try_from(r: JobRow) -> Result<Self> {
        Ok(Self {
            status: ReplayJobStatus::parse(&r.status)
                .ok_or_else(|| super::StoreError::Corrupt(format!("job status {}", r.status)))?,
            id: ReplayJobId::from_trusted(r.id),
            program: ProgramId::from_trusted(r.program_id),
            scope: ReplayScope {
                webhook: r.webhook_id.map(WebhookId::from_trusted),
                event_type: r.event_type,
                created_from: r.created_from,
                created_before: r.created_before,
            },
            total: r.total,
            replayed: r.replayed,
            started_by: r.started_by,
            created_at: r.created_at,
            finished_at: r.finished_at,
        })
    }
}

macro_rules! impl_replay_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::replay::ReplayStore for $store {
            async fn start_replay_job(
                &self,
                program: &ProgramId,
                scope: &$crate::store::replay::ReplayScope,
                started_by: &str,
                now: DateTime<Utc>,
            ) -> Result<($crate::store::replay::ReplayJobRecord, bool)> {
                use $crate::store::replay::{sql, JobRow};
                let key = scope.key();
                let running = || async {
                    let row: Option<JobRow> = sqlx::query_as(&format!(
                        "SELECT {} FROM replay_jobs WHERE program_id = $1 AND filter_key = $2 \
                         AND status = 'running'",
                        sql::COLUMNS
                    ))
                    .bind(program.as_str())
                    .bind(&key)
                    .fetch_optional(self.writer()?)
                    .await?;
                    row.map(TryInto::try_into).transpose()
                };
                if let Some(job) = running().await? {
                    return Ok((job, false));
                }
                let total: i64 = sql::matching::<$db>(program.as_str(), scope, now, None, true)
                    .build_query_scalar()
                    .fetch_one(&self.reader)
                    .await?;
                let id = $crate::domain::ids::ReplayJobId::generate();
                let inserted = sqlx::query(sql::INSERT)
                    .bind(id.as_str())
                    .bind(program.as_str())
                    .bind(&key)
                    .bind(scope.webhook.as_ref().map(|w| w.to_string()))
                    .bind(scope.event_type.clone())
                    .bind(scope.created_from)
                    .bind(scope.created_before)
                    .bind(total)
                    .bind(started_by)
                    .bind(now)
                    .execute(self.writer()?)
                    .await;
                match inserted {
                    Ok(_) => {}
                    // Another start of the same scope won the race: that job is the answer.
                    Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                        if let Some(job) = running().await? {
                            return Ok((job, false));
                        }
                        return Err($crate::store::StoreError::Conflict { field: "filter" });
                    }
                    Err(e) => return Err(e.into()),
                }
                let job = self
                    .replay_job(program, &id)
                    .await?
                    .ok_or_else(|| $crate::store::StoreError::Corrupt("a job just written is gone".into()))?;
                Ok((job, true))
            }

            async fn replay_job(
                &self,
                program: &ProgramId,
                id: &$crate::domain::ids::ReplayJobId,
            ) -> Result<Option<$crate::store::replay::ReplayJobRecord>> {
                let row: Option<$crate::store::replay::JobRow> = sqlx::query_as(&format!(
                    "SELECT {} FROM replay_jobs WHERE id = $1 AND program_id = $2",
                    $crate::store::replay::sql::COLUMNS
                ))
                .bind(id.as_str())
                .bind(program.as_str())
                .fetch_optional(self.writer()?)
                .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn list_replay_jobs(
                &self,
                program: &ProgramId,
                limit: i64,
            ) -> Result<Vec<$crate::store::replay::ReplayJobRecord>> {
                let rows: Vec<$crate::store::replay::JobRow> = sqlx::query_as(&format!(
                    "SELECT {} FROM replay_jobs WHERE program_id = $1 \
                     ORDER BY created_at DESC, id DESC LIMIT $2",
                    $crate::store::replay::sql::COLUMNS
                ))
                .bind(program.as_str())
                .bind(limit)
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn claim_replay_job(
                &self,
                now: DateTime<Utc>,
                lease: chrono::Duration,
            ) -> Result<Option<$crate::domain::ids::ReplayJobId>> {
                use $crate::store::replay::sql;
                let id: Option<String> = sqlx::query_scalar(sql::CLAIMABLE)
                    .bind(now)
                    .fetch_optional(self.writer()?)
                    .await?;
                let Some(id) = id else { return Ok(None) };
                let taken = sqlx::query(sql::CLAIM)
                    .bind(&id)
                    .bind(now + lease)
                    .bind(now)
                    .execute(self.writer()?)
                    .await?
                    .rows_affected();
                Ok((taken == 1).then(|| $crate::domain::ids::ReplayJobId::from_trusted(id)))
            }

            async fn replay_job_batch(
                &self,
                id: &$crate::domain::ids::ReplayJobId,
                now: DateTime<Utc>,
                limit: i64,
            ) -> Result<($crate::store::replay::ReplayJobRecord, i64)> {
                use $crate::store::replay::{sql, JobRow, ReplayJobRecord};
                let mut tx = self.writer()?.begin().await?;
                let row: JobRow = sqlx::query_as(&format!(
                    "SELECT {} FROM replay_jobs WHERE id = $1",
                    sql::COLUMNS
                ))
                .bind(id.as_str())
                .fetch_one(&mut *tx)
                .await?;
                let cursor = row.cursor_at.zip(row.cursor_id.clone());
                let job: ReplayJobRecord = row.try_into()?;
                if job.status == $crate::domain::replay::ReplayJobStatus::Done {
                    return Ok((job, 0));
                }
                let mut qb = sql::matching::<$db>(job.program.as_str(), &job.scope, job.created_at, cursor, false);
                qb.push(" LIMIT ").push_bind(limit);
                let batch: Vec<(String, DateTime<Utc>)> =
                    qb.build_query_as().fetch_all(&mut *tx).await?;
                // One statement per chunk: a statement per dead letter made a batch of 500
                // as many round trips inside the write transaction.
                let ids: Vec<String> = batch.iter().map(|(id, _)| id.clone()).collect();
                let mut requeued = 0i64;
                for chunk in $crate::store::sql::sized_chunks(&ids, sql::REQUEUE_PER_STATEMENT) {
                    requeued += sql::requeue::<$db>(chunk, now)
                        .build()
                        .execute(&mut *tx)
                        .await?
                        .rows_affected() as i64;
                }
                let last = batch.last().map(|(id, at)| (*at, id.clone()));
                let finished = (batch.len() as i64) < limit;
                sqlx::query(sql::ADVANCE)
                    .bind(id.as_str())
                    .bind(requeued)
                    .bind(last.as_ref().map(|(at, _)| *at))
                    .bind(last.as_ref().map(|(_, id)| id.clone()))
                    .bind(now)
                    .bind(finished)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                let job = self
                    .replay_job(&job.program, id)
                    .await?
                    .ok_or_else(|| $crate::store::StoreError::Corrupt("a running job is gone".into()))?;
                Ok((job, requeued))
            }
        }
    };
}
pub(crate) use impl_replay_store;
