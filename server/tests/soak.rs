//! Processes that die and stop under steady load, on real `herald serve` processes.
//!
//! * Kill soak: while events keep arriving, the server is killed with SIGKILL at random moments
//!   and restarted. Every accepted event is delivered; an event is delivered twice only when a
//!   kill fell between its two requests (it was in flight when the process died). The short run
//!   here lasts `HERALD_SOAK_SECONDS` (default 10) with `HERALD_SOAK_KILLS` kills (default 3);
//!   `scripts/soak.sh` runs the long one (3 minutes, 10 kills) and prints the figures.
//! * SIGTERM at 500 events/s: the process stops within its grace period, exits successfully,
//!   and nothing accepted is lost or sent twice.

use crate::helpers::*;
use std::time::{Duration, Instant};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `n` distinct moments within `(lo, hi)` seconds, at random, ascending.
fn random_moments(n: u64, lo: f64, hi: f64) -> Vec<Duration> {
    let mut moments: Vec<Duration> = (0..n)
        .map(|_| {
            let r = (uuid::Uuid::new_v4().as_u128() % 1_000_000) as f64 / 1_000_000.0;
            Duration::from_secs_f64(lo + r * (hi - lo))
        })
        .collect();
    moments.sort();
    moments
}

async fn kill_soak(backend: Backend) {
    let Some((url, _dir)) = database(backend, "kill_soak").await else {
        return;
    };
    let seconds = env_number("HERALD_SOAK_SECONDS", 10);
    let kills = env_number("HERALD_SOAK_KILLS", 3);
    let key = insert_key(&url).await;
    let rx = TestReceiver::start().await;
    let mut herald = HeraldProcess::start(&url, free_port()).await;
    create_load_webhook(&herald.base, &key, "Soak", &rx.url).await;

    let began = Instant::now();
    let load = Load::start(
        std::slice::from_ref(&herald.base),
        &key,
        4,
        Duration::from_millis(10),
    );
    let mut killed_at = Vec::new();
    let mut restarts = Vec::new();
    for moment in random_moments(kills, 1.0, seconds as f64 - 1.0) {
        tokio::time::sleep_until((began + moment).into()).await;
        killed_at.push(Instant::now());
        herald.restart().await;
        restarts.push(killed_at.last().unwrap().elapsed());
    }
    tokio::time::sleep_until((began + Duration::from_secs(seconds)).into()).await;
    let tally = load.stop().await;
    let accepted = tally.accepted_ids();
    assert!(
        accepted.len() > 100,
        "only {} events accepted",
        accepted.len()
    );
    let drain_began = Instant::now();
    wait_all_delivered(&rx, &accepted, Duration::from_secs(120)).await;
    let drained = drain_began.elapsed();

    // A second request for the same delivery must have a kill between it and the one before. A
    // request the old process wrote just before it died can reach the receiver a moment after
    // the kill, so the first of the two may be up to `IN_TRANSIT` late; the resend cannot come
    // that soon (the new process waits for the lease, 12 s, to run out).
    const IN_TRANSIT: Duration = Duration::from_secs(1);
    let mut duplicates = 0;
    for (id, mut at) in receipts_by_id(&rx) {
        at.sort();
        for pair in at.windows(2) {
            duplicates += 1;
            let across = killed_at
                .iter()
                .any(|k| pair[0] <= *k + IN_TRANSIT && *k <= pair[1]);
            assert!(
                across,
                "{id} was sent twice with no kill in between: at {:?} and {:?} after the start; \
                 kills at {:?}",
                pair[0] - began,
                pair[1] - began,
                killed_at.iter().map(|k| *k - began).collect::<Vec<_>>()
            );
        }
    }
    assert_eq!(
        tally.unavailable_without_retry_after, 0,
        "a 503 without Retry-After"
    );
    let longest_restart = restarts.iter().max().copied().unwrap_or_default();
    eprintln!(
        "SOAK {backend:?}: {seconds} s, {} kills, {} accepted, {} requests, {} unique delivered, \
         {duplicates} duplicates (all across a kill), 0 lost, {} unanswered posts, refused {:?}, \
         longest restart {:.2} s, backlog drained {:.1} s after the load",
        killed_at.len(),
        accepted.len(),
        rx.received().len(),
        receipts_by_id(&rx).len(),
        tally.unanswered,
        tally.refused,
        longest_restart.as_secs_f64(),
        drained.as_secs_f64()
    );
}

async fn sigterm_at_500_events_per_second_drains(backend: Backend) {
    let Some((url, _dir)) = database(backend, "sigterm_load").await else {
        return;
    };
    let key = insert_key(&url).await;
    let rx = TestReceiver::start().await;
    let mut herald = HeraldProcess::start(&url, free_port()).await;
    create_load_webhook(&herald.base, &key, "Soak", &rx.url).await;

    // 25 senders, one event each per 50 ms: 500 events/s while answers take under 50 ms.
    let load = Load::start(
        std::slice::from_ref(&herald.base),
        &key,
        25,
        Duration::from_millis(50),
    );
    let began = Instant::now();
    // Stop once the load has carried 600 events through (about a second at 500/s; a slow
    // machine gets longer rather than fewer events), so the stop always meets a busy server.
    rx.wait_for(600, Duration::from_secs(60)).await;
    let asked = Instant::now();
    let status = herald
        .terminate(Duration::from_secs(30))
        .await
        .expect("herald did not exit within 30 s of SIGTERM");
    let stopping = asked.elapsed();
    let tally = load.stop().await;
    let rate = tally.accepted.len() as f64 / (asked - began).as_secs_f64();
    assert!(status.success(), "herald exited with {status}");
    // The grace period for requests in flight is 10 s; the rest of the stop is bounded too.
    assert!(
        stopping < Duration::from_secs(15),
        "stopping took {stopping:?}"
    );
    let accepted = tally.accepted_ids();
    assert!(
        accepted.len() > 500,
        "only {} events accepted",
        accepted.len()
    );
    let delivered_before_stop = rx.completed().len();

    // What was accepted but not yet sent waits in the database for the next start.
    herald.restart().await;
    wait_all_delivered(&rx, &accepted, Duration::from_secs(60)).await;
    let twice: Vec<_> = receipts_by_id(&rx)
        .into_iter()
        .filter(|(_, at)| at.len() > 1)
        .collect();
    assert!(
        twice.is_empty(),
        "a graceful stop sent {} deliveries twice",
        twice.len()
    );
    assert_eq!(
        tally.unavailable_without_retry_after, 0,
        "a 503 without Retry-After"
    );
    eprintln!(
        "SIGTERM {backend:?}: {} accepted at {rate:.0}/s, stopped in {:.2} s, {delivered_before_stop} \
         delivered before the stop, the rest after the restart, none twice; refused {:?}",
        accepted.len(),
        stopping.as_secs_f64(),
        tally.refused
    );
}

on_both_backends!(kill_soak, sigterm_at_500_events_per_second_drains);
