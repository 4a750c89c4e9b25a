//! Bulk replay: dead letters matching a filter go back in the queue, as a background job whose
//! progress the console and the API show. Starting the same filter again while a job runs
//! returns that job (idempotent); a job is worked in batches by whichever process holds its
//! lease, so one that dies mid-way is picked up again where it stopped.

use super::webhooks::admin;
use super::{Engine, EngineError, Result};
use crate::auth::Actor;
use crate::domain::ids::ReplayJobId;
use crate::domain::replay::{ReplayFilter, ReplayJobView};
use crate::store::{ReplayJobRecord, ReplayScope};
use std::time::Duration;

/// Dead letters requeued per transaction.
const BATCH: i64 = 500;

/// How long a process owns a job between batches before another may take it over.
const LEASE_SECONDS: i64 = 60;

/// How often the background task looks for jobs when not woken.
const IDLE: Duration = Duration::from_secs(5);

impl Engine {
    /// Starts replaying the dead letters matching `filter` (or returns the job already doing so).
    /// Returns the job and whether it is new.
    pub async fn start_bulk_replay(
        &self,
        actor: &Actor,
        filter: &ReplayFilter,
    ) -> Result<(ReplayJobView, bool)> {
        let program = admin(actor)?;
        let scope = ReplayScope::parse(filter)?;
        let (job, new) = self
            .store()
            .start_replay_job(program, &scope, &actor.name, self.now())
            .await?;
        if new {
            crate::auth::access::record_activity(
                self.store().as_ref(),
                actor,
                "started",
                "bulk replay",
                &format!("{} dead letters ({})", job.total, describe(&scope)),
            )
            .await;
            self.inner.replay_wake.notify_one();
        }
        Ok((view(job), new))
    }

    /// One job of the actor's program.
    pub async fn bulk_replay(&self, actor: &Actor, id: &str) -> Result<ReplayJobView> {
        let id = ReplayJobId::parse(id).ok_or(EngineError::NotFound("replay job"))?;
        self.store()
            .replay_job(&actor.program, &id)
            .await?
            .map(view)
            .ok_or(EngineError::NotFound("replay job"))
    }

    /// The program's latest jobs, newest first.
    pub async fn bulk_replays(&self, actor: &Actor, limit: i64) -> Result<Vec<ReplayJobView>> {
        let jobs = self
            .store()
            .list_replay_jobs(&actor.program, limit.clamp(1, 100))
            .await?;
        Ok(jobs.into_iter().map(view).collect())
    }

    /// Takes one job whose lease is free and requeues one batch of it. Returns the job as it
    /// stands after the batch, or `None` when no job wants work. (Tests call this directly; the
    /// background task loops over it.)
    pub async fn work_bulk_replay(&self) -> Result<Option<ReplayJobView>> {
        let now = self.now();
        let lease = chrono::Duration::seconds(LEASE_SECONDS);
        let Some(id) = self.store().claim_replay_job(now, lease).await? else {
            return Ok(None);
        };
        let (job, requeued) = self.store().replay_job_batch(&id, now, BATCH).await?;
        super::observe::bulk_replayed(requeued);
        if requeued > 0 {
            self.wake();
        }
        Ok(Some(view(job)))
    }

    /// Works bulk replay jobs until `shutdown` turns true, pausing between batches.
    pub async fn run_bulk_replays(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            let worked = match self.work_bulk_replay().await {
                Ok(job) => job.is_some(),
                Err(e) => {
                    tracing::warn!(error = %e, "bulk replay batch failed; trying again shortly");
                    false
                }
            };
            let pause = if worked {
                Duration::from_millis(20)
            } else {
                IDLE
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.inner.replay_wake.notified() => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    }
}

fn describe(scope: &ReplayScope) -> String {
    let mut parts = Vec::new();
    if let Some(w) = &scope.webhook {
        parts.push(format!("webhook {w}"));
    }
    if let Some(t) = &scope.event_type {
        parts.push(format!("type {t}"));
    }
    if let Some(f) = scope.created_from {
        parts.push(format!("from {}", f.format("%Y-%m-%d %H:%M UTC")));
    }
    if let Some(b) = scope.created_before {
        parts.push(format!("before {}", b.format("%Y-%m-%d %H:%M UTC")));
    }
    if parts.is_empty() {
        "all".to_owned()
    } else {
        parts.join(", ")
    }
}

fn view(j: ReplayJobRecord) -> ReplayJobView {
    ReplayJobView {
        id: j.id.to_string(),
        status: j.status,
        total: j.total,
        replayed: j.replayed,
        webhook_id: j.scope.webhook.map(|w| w.to_string()),
        event_type: j.scope.event_type,
        created_from: j.scope.created_from,
        created_before: j.scope.created_before,
        started_by: j.started_by,
        created_at: j.created_at,
        finished_at: j.finished_at,
    }
}
