//! The receiver fault matrix: endpoints on 127.0.0.1 that misbehave the way real ones do (hang,
//! reset, trickle, flood, redirect, refuse, speak no TLS, rate-limit with `Retry-After` in seconds
//! and as a date, answer 5xx, or 410, which switches the webhook off and holds its delivery).
//! Every try is recorded with a clear error and retried per policy, and none of them holds up a
//! healthy webhook. Driven with `run_once` and a manual clock.

use crate::helpers::*;
use chrono::Duration;
use herald::auth::Actor;
use herald::delivery::clock::Clock;
use herald::domain::delivery::AttemptStatus;
use herald::domain::event::NewEvent;
use herald::store::AttemptQuery;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, Debug)]
enum Fault {
    Hang,
    Reset,
    Trickle,
    Flood,
    HugeHeaders,
    Redirect,
    BadGateway,
    Gone,
    TooManySeconds,
    UnavailableUntilDate,
}

/// A raw TCP receiver acting out `fault`; counts the requests it saw.
async fn faulty(
    fault: Fault,
    clock: Arc<herald::delivery::clock::ManualClock>,
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let n = count.fetch_add(1, Ordering::SeqCst) + 1;
            let clock = clock.clone();
            tokio::spawn(async move { act(fault, n, socket, clock).await });
        }
    });
    (url, seen)
}

/// Acts out `fault` on the `n`th request (rate limiters answer 200 once their wait is over).
async fn act(
    fault: Fault,
    n: usize,
    mut s: TcpStream,
    clock: Arc<herald::delivery::clock::ManualClock>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let _ = s.read(&mut buf).await;
    let head = |status: &str, extra: &str, len: usize| {
        format!("HTTP/1.1 {status}\r\ncontent-length: {len}\r\n{extra}\r\n")
    };
    let _ = match fault {
        Fault::TooManySeconds | Fault::UnavailableUntilDate if n > 1 => {
            s.write_all(head("200 OK", "", 0).as_bytes()).await
        }
        Fault::Hang => {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            Ok(())
        }
        Fault::Reset => {
            // Linger 0: close with a reset, at once (no blocking on drop).
            #[allow(deprecated)]
            s.set_linger(Some(std::time::Duration::ZERO)).ok();
            drop(s);
            return;
        }
        Fault::Trickle => {
            let _ = s.write_all(head("200 OK", "", 100).as_bytes()).await;
            for _ in 0..100 {
                if s.write_all(b"x").await.is_err() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            }
            Ok(())
        }
        Fault::Flood => {
            let total = 100 * 1024 * 1024;
            let _ = s.write_all(head("200 OK", "", total).as_bytes()).await;
            let chunk = vec![b'z'; 64 * 1024];
            for _ in 0..(total / chunk.len()) {
                if s.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            Ok(())
        }
        Fault::HugeHeaders => {
            let big: String = (0..90)
                .map(|i| format!("x-big-{i}: {}\r\n", "v".repeat(3000)))
                .collect();
            s.write_all(head("200 OK", &big, 0).as_bytes()).await
        }
        Fault::Redirect => {
            s.write_all(head("302 Found", "location: /hook\r\n", 0).as_bytes())
                .await
        }
        Fault::BadGateway => s.write_all(head("502 Bad Gateway", "", 0).as_bytes()).await,
        Fault::Gone => s.write_all(head("410 Gone", "", 0).as_bytes()).await,
        Fault::TooManySeconds => {
            s.write_all(head("429 Too Many Requests", "retry-after: 120\r\n", 0).as_bytes())
                .await
        }
        Fault::UnavailableUntilDate => {
            let when = (clock.now() + Duration::seconds(300))
                .to_rfc2822()
                .replace("+0000", "GMT");
            s.write_all(
                head(
                    "503 Service Unavailable",
                    &format!("retry-after: {when}\r\n"),
                    0,
                )
                .as_bytes(),
            )
            .await
        }
    };
}

/// The newest 200 attempts of the admin's program.
async fn attempts(engine: &herald::delivery::Engine, admin: &Actor) -> herald::store::AttemptPage {
    let query = AttemptQuery {
        limit: 200,
        ..Default::default()
    };
    engine
        .store()
        .list_attempts(&admin.program, &query)
        .await
        .unwrap()
}

async fn receiver_faults_are_recorded_retried_and_isolated(backend: Backend) {
    let Some((url, _dir)) = database(backend, "fault_matrix").await else {
        return;
    };
    let (engine, clock) = manual_engine(&url).await;
    let admin = Actor::command_line(engine.store().default_program().await.unwrap());
    let healthy = TestReceiver::start().await;
    let closed = RefusingPort::new();
    let plain = TestReceiver::start().await;
    let mut cases: Vec<(String, String, Option<Arc<AtomicUsize>>, String)> = vec![];
    for (fault, expect) in [
        (Fault::Hang, "timed out after 1 s"),
        (
            Fault::Reset,
            "the receiver closed the connection without answering (",
        ),
        (Fault::Trickle, "timed out after 1 s"),
        (
            Fault::Redirect,
            "HTTP 302: redirect to /hook not followed (give the webhook its final URL)",
        ),
        (Fault::BadGateway, "HTTP 502"),
        (Fault::Gone, "HTTP 410"),
        (Fault::TooManySeconds, "HTTP 429"),
        (Fault::UnavailableUntilDate, "HTTP 503"),
        (Fault::Flood, ""),
        (Fault::HugeHeaders, ""),
    ] {
        let (u, seen) = faulty(fault, clock.clone()).await;
        cases.push((format!("{fault:?}"), u, Some(seen), expect.to_owned()));
    }
    // Failures before any answer say what happened in the receiver owner's terms, with the
    // network stack's own words after.
    cases.push((
        "Refused".into(),
        format!("http://{}/hook", closed.addr),
        None,
        format!(
            "connection refused at {}: nothing is listening there (",
            closed.addr
        ),
    ));
    let tls_url = plain.url.replace("http://", "https://");
    let tls = format!(
        "TLS handshake with {} failed: ",
        tls_url
            .trim_start_matches("https://")
            .trim_end_matches("/hook")
    );
    cases.push(("NoTls".into(), tls_url, None, tls));
    let retry =
        json!({"attempts": 2, "delay_seconds": 10, "backoff": "fixed", "timeout_seconds": 1});
    let mut ids = vec![];
    for (name, u, _, _) in &cases {
        let d = serde_json::from_value(
            json!({"name": name, "url": u, "event_types": ["points.awarded"], "retry": retry}),
        )
        .unwrap();
        ids.push(
            engine
                .create_webhook(&admin, &d)
                .await
                .unwrap()
                .webhook
                .record
                .id,
        );
    }
    let d = serde_json::from_value(json!({"name": "Healthy", "url": healthy.url, "event_types": ["points.awarded"], "retry": retry})).unwrap();
    engine.create_webhook(&admin, &d).await.unwrap();

    let event =
        NewEvent::parse("points.awarded", json!({"n": 1}), None, None, clock.now()).unwrap();
    engine.ingest(&admin.program, event).await.unwrap();
    let started = Instant::now();
    let step = tokio::spawn({
        let engine = engine.clone();
        async move { engine.run_once().await.unwrap() }
    });
    let got = healthy.wait_for(1, std::time::Duration::from_secs(5)).await;
    assert!(
        got[0].at - started < std::time::Duration::from_millis(900),
        "the healthy webhook waited {:?} behind the faulty ones",
        got[0].at - started
    );
    assert_eq!(step.await.unwrap(), cases.len() + 1);

    let page = attempts(&engine, &admin).await;
    assert_eq!(
        page.items.len(),
        cases.len() + 1,
        "every try is in the audit log"
    );
    for ((name, _, _, expect), id) in cases.iter().zip(&ids) {
        let a = page.items.iter().find(|a| a.webhook_id == *id).unwrap();
        // Two receivers answer 200 with more than the audit log keeps.
        let detail = || async {
            assert_eq!(a.status, AttemptStatus::Success, "{name}");
            let found = engine.store().get_attempt(&admin.program, &a.id).await;
            found.unwrap().expect("the attempt is stored")
        };
        if name == "HugeHeaders" {
            let headers = detail().await.response_headers.unwrap();
            let (last, kept) = headers.split_last().unwrap();
            let size: usize = kept.iter().map(|(k, v)| k.len() + v.len()).sum();
            assert!(size <= 8192, "{size} bytes of response headers kept");
            assert_eq!(last.0, "x-herald-omitted", "{last:?}");
            assert!(last.1.contains("more headers"), "{last:?}");
            continue;
        }
        if name == "Flood" {
            assert_eq!(
                detail().await.response_body.unwrap().len(),
                4096,
                "read capped at 4 KiB"
            );
            continue;
        }
        let error = a.error.clone().unwrap_or_default();
        assert_eq!(a.status, AttemptStatus::Failure, "{name}");
        assert!(error.starts_with(expect.as_str()), "{name}: {error}");
    }
    for (name, _, seen, _) in &cases {
        if let Some(seen) = seen {
            assert_eq!(
                seen.load(Ordering::SeqCst),
                1,
                "{name}: redirects are not followed"
            );
        }
    }

    // 410 Gone switched its webhook off: its delivery is held, not retried.
    let off: Vec<_> = engine
        .store()
        .list_webhooks(&admin.program, &Default::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|w| !w.record.enabled)
        .collect();
    assert_eq!(off.len(), 1, "only the gone endpoint's webhook is off");
    assert!(off[0]
        .stats
        .disabled_reason
        .as_deref()
        .unwrap_or_default()
        .starts_with("endpoint answered 410 Gone"));

    // Retries follow the policy (10 s, three tries in all), except where Retry-After asks for
    // longer: 120 s, and an HTTP date 300 s ahead.
    let failing = cases.len() - 5; // all but Flood and HugeHeaders (delivered), 429, 503 and 410 (held)
    clock.advance(Duration::seconds(10));
    assert_eq!(engine.run_once().await.unwrap(), failing);
    clock.advance(Duration::seconds(10));
    assert_eq!(
        engine.run_once().await.unwrap(),
        failing,
        "third and last tries"
    );
    clock.advance(Duration::seconds(99));
    assert_eq!(
        engine.run_once().await.unwrap(),
        0,
        "the budget is spent; 429 still waits"
    );
    clock.advance(Duration::seconds(1));
    assert_eq!(
        engine.run_once().await.unwrap(),
        1,
        "429 after its Retry-After"
    );
    clock.advance(Duration::seconds(179));
    assert_eq!(engine.run_once().await.unwrap(), 0);
    clock.advance(Duration::seconds(1));
    assert_eq!(
        engine.run_once().await.unwrap(),
        1,
        "503 at its Retry-After date"
    );
    let dead = engine
        .store()
        .list_deliveries(
            &admin.program,
            &herald::store::DeliveryQuery {
                status: Some(herald::domain::delivery::DeliveryStatus::Failed),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items;
    assert_eq!(
        dead.len(),
        failing,
        "each faulty receiver's delivery is a dead letter (the gone one's is held)"
    );
}

/// A webhook's host name that points at a private address by the time Herald sends (saved while
/// it pointed elsewhere; here: saved by a process that allows private targets) is refused at
/// connect time, nothing reaches the address, and the audit log says why in the guard's words,
/// not the HTTP client's chain.
async fn a_name_pointing_at_a_private_address_is_refused_in_words(backend: Backend) {
    let Some((url, _dir)) = database(backend, "repointed").await else {
        return;
    };
    let (open, _) = manual_engine(&url).await;
    let admin = Actor::command_line(open.store().default_program().await.unwrap());
    let rx = TestReceiver::start().await;
    let target = rx.url.replace("127.0.0.1", "localhost");
    let d = serde_json::from_value(json!({"name": "Re-pointed", "url": target,
        "event_types": ["points.awarded"],
        "retry": {"attempts": 0, "delay_seconds": 10, "backoff": "fixed", "timeout_seconds": 1}}))
    .unwrap();
    let id = open
        .create_webhook(&admin, &d)
        .await
        .unwrap()
        .webhook
        .record
        .id;
    // A process with the guard on, as in production.
    let guarded = herald::delivery::Engine::new(
        herald::store::connect(&url).await.unwrap(),
        herald::auth::seal::Sealer::from_key_text(SECRET_KEY).unwrap(),
        herald::delivery::EngineConfig {
            guard: herald::delivery::guard::GuardPolicy {
                allow_private: false,
                require_https: false,
            },
            ..Default::default()
        },
    );
    let event = NewEvent::parse(
        "points.awarded",
        json!({"n": 1}),
        None,
        None,
        chrono::Utc::now(),
    )
    .unwrap();
    guarded.ingest(&admin.program, event).await.unwrap();
    assert_eq!(guarded.run_once().await.unwrap(), 1);
    let page = attempts(&guarded, &admin).await;
    let a = page.items.iter().find(|a| a.webhook_id == id).unwrap();
    let error = a.error.clone().unwrap_or_default();
    assert!(
        error.starts_with("not sent: localhost resolves to "),
        "{error}"
    );
    assert!(error.contains("a private or reserved address"), "{error}");
    assert_eq!(
        rx.received().len(),
        0,
        "nothing reached the private address"
    );
}

on_both_backends!(
    receiver_faults_are_recorded_retried_and_isolated,
    a_name_pointing_at_a_private_address_is_refused_in_words,
);
