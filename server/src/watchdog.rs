//! Tells the operator when a worker thread of the async runtime is stuck. Every request, delivery
//! and write of a Herald process runs as a task on a few worker threads (one per core); a task
//! that blocks its thread (a blocking call inside async code, a lock held too long, a loop that
//! never yields) holds up every task queued behind it, and when all workers are held the process
//! stops answering while looking alive. Nothing inside the runtime can report that, so a plain
//! thread of its own looks at the runtime's counters every second: a worker that is neither parked
//! nor finishing any batch of polls for `STALL_AFTER` is stuck inside one task's poll. It logs an
//! error naming the worker, how long, and what each of the process's threads is doing (from
//! `/proc`), a warning when the worker moves again, and keeps `herald_runtime_stalled_workers`
//! (now) and `herald_runtime_stalls_total` for alerting.

use std::time::{Duration, Instant};

/// How long a worker may run one poll before it counts as stuck. A healthy poll takes micro- to
/// milliseconds; a busy worker still reports a finished batch every 61 polls.
pub const STALL_AFTER: Duration = Duration::from_secs(10);

/// How often the watchdog thread looks.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// One worker's counters as the runtime reports them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Parks plus unparks: odd while the worker is parked (idle), even while it runs.
    pub park_unpark: u64,
    /// Time spent running tasks, published at each park and after every batch of polls.
    pub busy: Duration,
}

/// The runtime's counters for each worker now.
pub fn sample(handle: &tokio::runtime::Handle) -> Vec<Sample> {
    let metrics = handle.metrics();
    (0..metrics.num_workers())
        .map(|w| Sample {
            park_unpark: metrics.worker_park_unpark_count(w),
            busy: metrics.worker_total_busy_duration(w),
        })
        .collect()
}

/// What a look found.
#[derive(Debug, PartialEq)]
pub enum Finding {
    /// Worker `worker` has run one poll for `for_`.
    Stuck { worker: usize, for_: Duration },
    /// Worker `worker` moves again after `after` stuck.
    Moving { worker: usize, after: Duration },
}

/// The watchdog's memory: each worker's last counters and since when they have not moved.
pub struct Watch {
    stall_after: Duration,
    workers: Vec<Worker>,
}

struct Worker {
    last: Sample,
    since: Instant,
    stuck: bool,
}

impl Watch {
    pub fn new(stall_after: Duration) -> Self {
        Self {
            stall_after,
            workers: Vec::new(),
        }
    }

    /// Compares `now`'s counters with the last look's; reports each worker that became stuck and
    /// each stuck one that moves again (once each).
    pub fn look(&mut self, now: Instant, samples: &[Sample]) -> Vec<Finding> {
        if self.workers.len() != samples.len() {
            self.workers = samples
                .iter()
                .map(|s| Worker {
                    last: *s,
                    since: now,
                    stuck: false,
                })
                .collect();
            return Vec::new();
        }
        let mut found = Vec::new();
        for (i, (w, s)) in self.workers.iter_mut().zip(samples).enumerate() {
            let parked = s.park_unpark % 2 == 1;
            if *s != w.last || parked {
                if w.stuck {
                    found.push(Finding::Moving {
                        worker: i,
                        after: now.saturating_duration_since(w.since),
                    });
                }
                *w = Worker {
                    last: *s,
                    since: now,
                    stuck: false,
                };
                continue;
            }
            let still = now.saturating_duration_since(w.since);
            if !w.stuck && still >= self.stall_after {
                w.stuck = true;
                found.push(Finding::Stuck {
                    worker: i,
                    for_: still,
                });
            }
        }
        found
    }

    /// Workers stuck now.
    pub fn stuck(&self) -> usize {
        self.workers.iter().filter(|w| w.stuck).count()
    }
}

/// Starts the watchdog thread over the runtime `handle` belongs to; it lives as long as the process.
pub fn start(handle: tokio::runtime::Handle) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("herald-watchdog".into())
        .spawn(move || {
            let mut watch = Watch::new(STALL_AFTER);
            loop {
                std::thread::sleep(LOOK_EVERY);
                for finding in watch.look(Instant::now(), &sample(&handle)) {
                    match finding {
                        Finding::Stuck { worker, for_ } => {
                            metrics::counter!("herald_runtime_stalls_total").increment(1);
                            tracing::error!(
                                worker,
                                seconds = for_.as_secs(),
                                threads = %threads(),
                                "a runtime worker has been running one task for {}s without yielding: \
                                 the tasks queued on it wait (and with every worker stuck, Herald \
                                 stops answering); this is a bug, please report it with this line",
                                for_.as_secs()
                            );
                        }
                        Finding::Moving { worker, after } => tracing::warn!(
                            worker,
                            seconds = after.as_secs(),
                            "a stuck runtime worker moves again"
                        ),
                    }
                }
                metrics::gauge!("herald_runtime_stalled_workers").set(watch.stuck() as f64);
            }
        })
        .map(|_| ())
}

/// Each thread of this process: its name, scheduler state and where the kernel has it waiting
/// (`/proc/self/task/*/{comm,stat,wchan}`; empty where `/proc` is not there).
pub fn threads() -> String {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return String::new();
    };
    let mut lines: Vec<String> = tasks
        .flatten()
        .map(|t| {
            let path = t.path();
            let read = |f: &str| std::fs::read_to_string(path.join(f)).unwrap_or_default();
            let stat = read("stat");
            // The state follows the parenthesised name, which may itself hold spaces.
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.split(' ').next())
                .unwrap_or("?")
                .to_owned();
            format!(
                "{} {} {} {}",
                t.file_name().to_string_lossy(),
                read("comm").trim(),
                state,
                read("wchan").trim()
            )
        })
        .collect();
    lines.sort();
    lines.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(park_unpark: u64, busy_ms: u64) -> Sample {
        Sample {
            park_unpark,
            busy: Duration::from_millis(busy_ms),
        }
    }

    #[test]
    fn a_worker_whose_counters_stand_still_while_running_is_stuck_once() {
        let start = Instant::now();
        let mut watch = Watch::new(Duration::from_secs(10));
        assert!(watch.look(start, &[at(4, 100), at(7, 50)]).is_empty());
        // Worker 0 runs (even count) with nothing published; worker 1 is parked (odd).
        let s = [at(4, 100), at(7, 50)];
        assert!(watch.look(start + Duration::from_secs(9), &s).is_empty());
        assert_eq!(
            watch.look(start + Duration::from_secs(10), &s),
            vec![Finding::Stuck {
                worker: 0,
                for_: Duration::from_secs(10)
            }]
        );
        assert_eq!(watch.stuck(), 1);
        assert!(
            watch.look(start + Duration::from_secs(30), &s).is_empty(),
            "reported once"
        );
        assert_eq!(
            watch.look(start + Duration::from_secs(31), &[at(5, 100), at(7, 50)]),
            vec![Finding::Moving {
                worker: 0,
                after: Duration::from_secs(31)
            }]
        );
        assert_eq!(watch.stuck(), 0);
    }

    #[test]
    fn busy_workers_and_parked_ones_are_not_stuck() {
        let start = Instant::now();
        let mut watch = Watch::new(Duration::from_secs(10));
        watch.look(start, &[at(2, 0), at(3, 0)]);
        for s in 1..60u64 {
            // Worker 0 never parks but publishes its busy time; worker 1 stays parked.
            let found = watch.look(start + Duration::from_secs(s), &[at(2, s * 1000), at(3, 0)]);
            assert!(found.is_empty(), "{found:?} at {s}s");
        }
        assert_eq!(watch.stuck(), 0);
    }

    /// The real runtime's counters: a task that blocks its worker (as a blocking call in async
    /// code would) shows as stuck; once it returns, the worker moves again.
    #[test]
    fn a_task_blocking_its_worker_is_found_through_the_runtime_counters() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        runtime.spawn(async move {
            started_tx.send(()).unwrap();
            // Blocks this worker thread until the test releases it.
            release_rx.recv().unwrap();
        });
        started_rx.recv().unwrap();
        let mut watch = Watch::new(STALL_AFTER);
        let start = Instant::now();
        watch.look(start, &sample(runtime.handle()));
        let found = watch.look(start + STALL_AFTER, &sample(runtime.handle()));
        assert!(
            found
                .iter()
                .any(|f| matches!(f, Finding::Stuck { for_, .. } if *for_ == STALL_AFTER)),
            "{found:?}"
        );
        release_tx.send(()).unwrap();
        // Once released, the worker finishes the task and parks: it is seen moving.
        // (A worker that had not parked once yet when the runtime was new may have been found
        // stuck beside it; it parks too.)
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut moved = Vec::new();
        while watch.stuck() > 0 && Instant::now() < deadline {
            std::thread::yield_now();
            moved.extend(watch.look(start + STALL_AFTER * 2, &sample(runtime.handle())));
        }
        assert_eq!(watch.stuck(), 0, "{moved:?}");
        assert!(
            moved.iter().all(|f| matches!(f, Finding::Moving { .. })) && !moved.is_empty(),
            "{moved:?}"
        );
    }

    #[test]
    fn the_threads_are_named_with_their_state() {
        let threads = threads();
        if std::path::Path::new("/proc/self/task").exists() {
            assert!(
                threads.contains(" R ") || threads.contains(" S "),
                "{threads}"
            );
        }
    }
}
