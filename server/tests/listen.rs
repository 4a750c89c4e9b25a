//! The binary's own tools against a real Herald. `herald listen`: a signed delivery is verified
//! and printed; with the wrong secret it says why not; `--forward` relays the request to another
//! receiver and that receiver's answer back to Herald (which records it). `herald bench`: a small
//! run counts what it sent and what arrived.

use crate::helpers::*;
use base64::Engine as _;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

struct Listen {
    child: Child,
    lines: Receiver<String>,
    url: String,
}

impl Listen {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
            .arg("listen")
            .args(["--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let first = lines.recv_timeout(Duration::from_secs(20)).unwrap();
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {first}"))
            .trim_end_matches('/')
            .to_owned();
        Self { child, lines, url }
    }

    /// Everything printed until a line containing `until` (bounded).
    fn read_until(&self, until: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    seen.push_str(&line);
                    seen.push('\n');
                    if line.contains(until) {
                        return seen;
                    }
                }
                Err(_) => panic!("'{until}' never printed; got:\n{seen}"),
            }
        }
    }
}

impl Drop for Listen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_verifies_prints_and_forwards() {
    let app = spawn_app(Backend::Sqlite, "listen").await.unwrap();
    let secret = new_secret();
    let listen = Listen::start(&["--secret", &secret]);
    app.create_webhook(
        json!({"name": "Local", "url": format!("{}/hooks", listen.url),
        "event_types": ["points.awarded"], "auth": {"kind": "signature", "secret": secret}}),
    )
    .await;
    let (_, accepted) = app
        .post(
            "/api/v1/events",
            json!({"event_type": "points.awarded", "data": {"points": 42}}),
        )
        .await;
    let event_id = accepted["event_id"].as_str().unwrap().to_owned();
    let printed = listen.read_until("\"points\": 42");
    assert!(printed.contains("points.awarded"), "{printed}");
    assert!(printed.contains(&event_id), "{printed}");
    assert!(printed.contains("signature verified"), "{printed}");

    // An `hmac` webhook, verified in the header it names.
    let hmac_secret = new_secret();
    let hmac = Listen::start(&[
        "--secret",
        &hmac_secret,
        "--hmac-header",
        "X-Incentable-Signature",
    ]);
    app.create_webhook(json!({"name": "Hmac", "url": format!("{}/hooks", hmac.url),
        "event_types": ["member.created"],
        "auth": {"kind": "hmac", "header": "X-Incentable-Signature", "secret": hmac_secret}}))
        .await;
    app.post(
        "/api/v1/events",
        json!({"event_type": "member.created", "data": {"member_id": "m_9"}}),
    )
    .await;
    let printed = hmac.read_until("\"member_id\": \"m_9\"");
    assert!(
        printed.contains("HMAC in x-incentable-signature verified"),
        "{printed}"
    );

    // The wrong secret, forwarding to a receiver that answers 503.
    let rx = TestReceiver::start().await;
    rx.script([Reply::Status(503)]);
    let relay = Listen::start(&["--secret", &new_secret(), "--forward", &rx.url]);
    let hook = app
        .create_webhook(json!({"name": "Relayed", "url": relay.url,
            "event_types": ["reward.redeemed"],
            "retry": {"attempts": 1, "delay_seconds": 60, "backoff": "fixed", "timeout_seconds": 10}}))
        .await;
    let (_, accepted) = app
        .post(
            "/api/v1/events",
            json!({"event_type": "reward.redeemed", "data": {}}),
        )
        .await;
    let printed = relay.read_until("forwarded to");
    assert!(
        printed.contains("NOT verified: the signature does not match"),
        "{printed}"
    );
    assert!(printed.contains("503"), "{printed}");
    let got = rx.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].header("webhook-id"), accepted["event_id"]);
    assert!(!got[0].header("webhook-signature").is_empty());
    // Herald recorded the relayed answer.
    let id = hook["id"].as_str().unwrap();
    let attempt = eventually(Duration::from_secs(10), || async {
        app.attempts(id).await.into_iter().next()
    })
    .await
    .expect("an attempt for the relayed delivery");
    assert_eq!(attempt["status_code"], 503, "{attempt}");
    app.stop().await;
}

/// `herald bench` with `args` (and a 60 s deadline): what it printed, once it succeeded.
fn bench(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("bench")
        .args(args)
        .args(["--deadline-secs", "60"])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    text
}

/// `herald bench` end to end, kept small: a real `herald serve` child on a fresh SQLite file and
/// three webhooks taking every event, so each event is accepted once and delivered three times;
/// with the ceiling first, and each request's answer time (Little's law over the senders).
#[test]
fn bench_counts_every_fanned_out_delivery() {
    let text = bench(&[
        "--events",
        "30",
        "--senders",
        "2",
        "--fan-out",
        "3",
        "--ceiling",
    ]);
    assert!(
        text.contains("fan-out            3 webhooks per event"),
        "{text}"
    );
    assert!(
        text.contains("accepted           30 (rejected 0)"),
        "{text}"
    );
    assert!(text.contains("delivered          90\n"), "{text}");
    assert!(text.contains("ingest answer      mean "), "{text}");
    assert!(
        text.contains("(POST to 202); 2 senders / mean = "),
        "{text}"
    );
    assert!(
        text.contains("POST/s straight to the receiver (answered in "),
        "{text}"
    );
}

/// `herald bench --floor` runs `herald relay-floor` in Herald's place: it takes the same API
/// key, webhook and events, and every event reaches the receiver, one at a time and in batches,
/// on SQLite and on PostgreSQL, so its figures measure the same work (README, Benchmarks,
/// thirty-third and thirty-fourth sittings).
#[test]
fn bench_runs_the_relay_floor_in_heralds_place() {
    let mut databases = vec![("sqlite".to_owned(), "SQLite")];
    match std::env::var("HERALD_TEST_POSTGRES_URL") {
        Ok(url) => databases.push((url, "PostgreSQL")),
        Err(_) => eprintln!("SKIPPED the floor on PostgreSQL: HERALD_TEST_POSTGRES_URL is not set"),
    }
    for (database, name) in &databases {
        for batch in ["1", "10"] {
            let text = bench(&[
                "--floor",
                "--database",
                database,
                "--events",
                "40",
                "--senders",
                "2",
                "--batch",
                batch,
            ]);
            assert!(
                text.contains(&format!(
                    "the relay floor (herald relay-floor) in Herald's place, {name}"
                )),
                "{text}"
            );
            assert!(
                text.contains("accepted           40 (rejected 0)"),
                "{text}"
            );
            assert!(text.contains("delivered          40\n"), "{text}");
        }
    }
}
