//! Herald's background tasks (the dispatcher, alerts, retention, bulk replays, hold sweeps) run
//! until shutdown. One that ends by panicking (a bug) would leave Herald looking healthy while it
//! accepts events it no longer sends, or raises alerts it never flushes. `watch_task` keeps each
//! in view: the panic is logged as an error, counted (`herald_task_panics_total{task}`) and kept,
//! and `/healthz` answers 503 naming the task and what has stopped working, so a liveness probe
//! restarts Herald (the leases hand what the process had claimed to the next one); every console
//! page says the same. A request of the dispatcher's that panics ends only that request: it is
//! logged and counted (`task="delivery"`), and its delivery is claimed again after its lease, its
//! tries counted, so one that always panics is dead-lettered when its budget is spent.

use super::Engine;
use chrono::{DateTime, Utc};
use std::future::Future;
use std::sync::Mutex;

/// A background task that ended by panicking.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoppedTask {
    /// Its name, e.g. `dispatcher`.
    pub task: &'static str,
    /// The panic's message and where it happened.
    pub panic: String,
    pub at: DateTime<Utc>,
}

impl StoppedTask {
    /// What no longer happens while it is stopped, in words an operator can act on.
    pub fn consequence(&self) -> &'static str {
        match self.task {
            "dispatcher" => "events are still accepted and stored, but none is delivered",
            "alerts" => "alerts are neither sent nor e-mailed",
            "retention" => "old attempts and events are not deleted",
            "bulk replay" => "bulk replay jobs do not advance",
            "hold sweeps" => "deliveries of webhooks switched on or off may stay where they are",
            "member backfill" => {
                "events stored before the upgrade may not be found by member in the audit log"
            }
            _ => "part of Herald's background work has stopped",
        }
    }

    /// The sentence `/healthz` and the console show.
    pub fn describe(&self) -> String {
        format!(
            "Herald's {} stopped after an internal error at {} UTC ({}): {}; restart Herald",
            self.task,
            self.at.format("%Y-%m-%d %H:%M:%S"),
            self.panic,
            self.consequence()
        )
    }
}

#[derive(Debug, Default)]
pub(super) struct Stopped {
    tasks: Mutex<Vec<StoppedTask>>,
}

/// Aborts a task when dropped (the watcher's own abort reaches the task it watches).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A panic's payload as text.
pub(super) fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

impl Engine {
    /// Spawns `work` as the background task `task`, reporting it if it ends by panicking (see the
    /// module). Aborting the handle returned aborts the task.
    pub fn watch_task<F>(&self, task: &'static str, work: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let engine = self.clone();
        tokio::spawn(async move {
            let running = tokio::spawn(work);
            let _abort = AbortOnDrop(running.abort_handle());
            if let Err(e) = running.await {
                if e.is_panic() {
                    engine.task_panicked(task, panic_text(e.into_panic()));
                }
            }
        })
    }

    /// Background tasks that have stopped by panicking since Herald started.
    pub fn stopped_tasks(&self) -> Vec<StoppedTask> {
        self.inner
            .stopped
            .tasks
            .lock()
            .expect("stopped tasks")
            .clone()
    }

    fn task_panicked(&self, task: &'static str, panic: String) {
        let stopped = StoppedTask {
            task,
            panic,
            at: self.now(),
        };
        tracing::error!(task, panic = %stopped.panic, "{}", stopped.describe());
        metrics::counter!("herald_task_panics_total", "task" => task).increment(1);
        self.inner
            .stopped
            .tasks
            .lock()
            .expect("stopped tasks")
            .push(stopped);
    }

    /// One request of the dispatcher's ended by panicking: logged and counted; the dispatcher
    /// goes on (see the module).
    pub(super) fn delivery_panicked(&self, e: tokio::task::JoinError) {
        if e.is_panic() {
            let panic = panic_text(e.into_panic());
            tracing::error!(panic = %panic, "a delivery's request ended in an internal error; its delivery is claimed again after its lease");
            metrics::counter!("herald_task_panics_total", "task" => "delivery").increment(1);
        }
    }
}
