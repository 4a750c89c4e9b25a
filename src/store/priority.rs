//! The SQLite writer thread's scheduling priority. Every write goes through one connection, and
//! sqlx runs each SQLite connection on a thread of its own, so that thread is the one serial step
//! of the write path: a group commit holds it for a whole transaction. On a busy machine the
//! thread, once woken, waits for a core: in `herald bench` on two cores it ran 53% of the time and
//! waited, runnable, another 25% (`/proc/<pid>/task/<tid>/schedstat`), and write transactions took
//! 2.2–3.1 ms; at nice −10 they took 1.6–1.8 ms (README, Benchmarks). So Herald asks for that
//! priority for its writer thread where the system allows it (Linux with `CAP_SYS_NICE`, e.g. as
//! root); elsewhere the thread keeps the default and everything works as before.
//!
//! sqlx offers no hook on its worker threads, but SQLite calls a collation's comparison on the
//! thread that runs the statement: the writer's connections get the collation `COLLATION`, and
//! one comparison with it (`RAISE`), run as each connects, raises that thread's priority.

/// The collation only the writer's connections have.
pub const COLLATION: &str = "herald_writer_priority";

/// One comparison with `COLLATION`: run on a writer connection, it raises its thread's priority.
pub const RAISE: &str = "SELECT 'a' < 'b' COLLATE herald_writer_priority";

/// The nice value asked for the writer thread (0 is the default, −20 the highest).
pub const NICE: i32 = -10;

/// `COLLATION`'s comparison (byte order, as SQLite's BINARY); raises the calling thread's priority.
pub fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    raise_this_thread();
    a.cmp(b)
}

#[cfg(target_os = "linux")]
fn raise_this_thread() {
    // On Linux, a thread id given as the "process" sets that thread's nice value alone.
    let thread = rustix::thread::gettid();
    match rustix::process::setpriority_process(Some(thread), NICE) {
        Ok(()) => tracing::debug!(nice = NICE, "SQLite writer thread priority raised"),
        Err(e) => tracing::debug!(
            error = %e,
            "SQLite writer thread priority left as it was (raising it needs CAP_SYS_NICE)"
        ),
    }
}

#[cfg(not(target_os = "linux"))]
fn raise_this_thread() {}
