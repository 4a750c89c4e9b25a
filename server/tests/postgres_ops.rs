//! PostgreSQL in operation, on real `herald serve` processes (skipped, loudly, without
//! `HERALD_TEST_POSTGRES_URL`):
//!
//! * three processes share one database: each delivery is sent exactly once, and when one
//!   process is killed the others take over its leases;
//! * the database goes away mid-load (a relay between Herald and PostgreSQL closes every
//!   connection and stops listening, as a restart does): ingest answers `503` with
//!   `Retry-After`, never `202` without storing, and resumes by itself when the database is back.

use crate::helpers::*;
use serde_json::json;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_share_the_work_exactly_once_and_take_over_a_dead_ones_leases() {
    let Some((url, _)) = database(Backend::Postgres, "three_processes").await else {
        return;
    };
    let key = insert_key(&url).await;
    let rx = TestReceiver::start().await;
    let mut herald = Vec::new();
    for _ in 0..3 {
        herald.push(HeraldProcess::start(&url, free_port()).await);
    }
    let bases: Vec<String> = herald.iter().map(|h| h.base.clone()).collect();
    create_load_webhook(&bases[0], &key, "Shared", &rx.url).await;

    // Normal operation: load through all three, every delivery sent once.
    let mut load = Load::start(&bases, &key, 6, Duration::from_millis(10));
    assert!(
        load.wait_for_more(202, 150, Duration::from_secs(60)).await,
        "the load never reached 150 accepted events"
    );
    let tally = load.stop().await;
    let accepted = tally.accepted_ids();
    assert!(accepted.len() >= 100, "only {} accepted", accepted.len());
    assert!(tally.refused.is_empty(), "refused: {:?}", tally.refused);
    wait_all_delivered(&rx, &accepted, Duration::from_secs(60)).await;
    let sent = rx.received().len();
    assert_eq!(
        sent,
        accepted.len(),
        "{sent} requests for {} events: some were sent more than once",
        accepted.len()
    );

    // One process dies while it holds deliveries in flight (the receiver takes 1 s each).
    rx.script((0..60).map(|_| Reply::Delay(Duration::from_secs(1), 200)));
    let client = reqwest::Client::new();
    let mut second = HashSet::new();
    for i in 0..60 {
        let r = client
            .post(format!("{}/api/v1/events", bases[0]))
            .bearer_auth(&key)
            .json(&json!({"event_type": "points.awarded", "data": {"i": i}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let body: serde_json::Value = r.json().await.unwrap();
        second.insert(body["event_id"].as_str().unwrap().to_owned());
    }
    rx.wait_for(sent + 60, Duration::from_secs(20)).await;
    let killed_at = Instant::now();
    herald[0].kill();
    let cut_off: HashSet<String> = {
        let completed: HashSet<String> = rx.completed().into_iter().collect();
        let in_flight = second.difference(&completed).cloned().collect();
        in_flight
    };
    wait_all_delivered(&rx, &second, Duration::from_secs(60)).await;
    let taken_over: Vec<_> = receipts_by_id(&rx)
        .into_iter()
        .filter(|(id, at)| second.contains(id) && at.len() > 1)
        .collect();
    assert!(
        !taken_over.is_empty(),
        "the killed process held no delivery in flight; {} were still unanswered at the kill",
        cut_off.len()
    );
    for (id, at) in &taken_over {
        assert!(
            at.iter().filter(|t| **t < killed_at).count() <= 1,
            "{id} was sent twice before the kill"
        );
    }
    eprintln!(
        "THREE PROCESSES: {} events through 3 processes, {sent} requests (each once); \
         one killed with {} of 60 slow deliveries unanswered, {} taken over by the others",
        accepted.len(),
        cut_off.len(),
        taken_over.len()
    );
}

/// A TCP relay in front of PostgreSQL that can go away (closing every connection and the
/// listening port) and come back on the same port, as a database restart looks to Herald.
struct Relay {
    addr: SocketAddr,
    target: SocketAddr,
    accepting: Option<JoinHandle<()>>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut relay = Self {
            addr: listener.local_addr().unwrap(),
            target,
            accepting: None,
            connections: Arc::default(),
        };
        relay.serve(listener);
        relay
    }

    fn serve(&mut self, listener: TcpListener) {
        let (target, connections) = (self.target, self.connections.clone());
        self.accepting = Some(tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let relay = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                connections.lock().unwrap().push(relay.abort_handle());
            }
        }));
    }

    /// Closes every connection and stops listening (new connections are refused).
    fn go_away(&mut self) {
        if let Some(accepting) = self.accepting.take() {
            accepting.abort();
        }
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    async fn come_back(&mut self) {
        let listener = eventually(Duration::from_secs(10), || async {
            TcpListener::bind(self.addr).await.ok()
        })
        .await
        .expect("rebind the relay's port");
        self.serve(listener);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_away_mid_load_answers_503_and_resumes_by_itself() {
    let Some((url, _)) = database(Backend::Postgres, "postgres_away").await else {
        return;
    };
    let key = insert_key(&url).await;
    let mut direct = url::Url::parse(&url).unwrap();
    let target = SocketAddr::new(
        direct
            .host_str()
            .unwrap()
            .parse()
            .expect("an IP address in the test URL"),
        direct.port().unwrap_or(5432),
    );
    let mut relay = Relay::start(target).await;
    direct.set_port(Some(relay.addr.port())).unwrap();
    let via_relay = direct.to_string();
    let rx = TestReceiver::start().await;
    let mut herald = HeraldProcess::start(&via_relay, free_port()).await;
    create_load_webhook(&herald.base, &key, "Shared", &rx.url).await;

    let mut load = Load::start(
        std::slice::from_ref(&herald.base),
        &key,
        4,
        Duration::from_millis(20),
    );
    // Each step waits for what the load sees, not for a time: accepted first, then refused
    // while the database is away, then accepted again once it is back.
    assert!(
        load.wait_for_more(202, 20, Duration::from_secs(60)).await,
        "ingest never got going"
    );
    let away = Instant::now();
    relay.go_away();
    assert!(
        load.wait_for_more(503, 3, Duration::from_secs(60)).await,
        "no 503 within 60 s of the database going away"
    );
    let back = Instant::now();
    relay.come_back().await;
    assert!(
        load.wait_for_more(202, 20, Duration::from_secs(60)).await,
        "ingest did not resume within 60 s of the database coming back"
    );
    let tally = load.stop().await;

    let statuses: HashSet<u16> = tally.refused.keys().copied().collect();
    assert!(
        statuses.iter().all(|s| *s == 503),
        "answers other than 202 and 503: {:?}",
        tally.refused
    );
    assert_eq!(tally.unavailable_without_retry_after, 0);
    assert_eq!(tally.unanswered, 0, "requests went unanswered");
    let while_away = tally
        .timeline
        .iter()
        .filter(|(at, s)| *at > away && *at < back && *s == 503)
        .count();
    assert!(while_away >= 3, "{while_away} answers of 503 while away");
    let resumed = tally
        .timeline
        .iter()
        .find(|(at, s)| *at > back && *s == 202)
        .map(|(at, _)| at.duration_since(back));
    let resumed = resumed.expect("ingest did not resume after the database came back");
    let accepted = tally.accepted_ids();
    wait_all_delivered(&rx, &accepted, Duration::from_secs(60)).await;
    herald.kill();
    eprintln!(
        "POSTGRES AWAY: {} accepted, {} answered 503 (all with Retry-After), 0 lost; \
         first 202 {:.2} s after the database came back",
        accepted.len(),
        tally.refused.get(&503).copied().unwrap_or(0),
        resumed.as_secs_f64()
    );
}
