//! SQLite on a disk that fills up: the database lives on a small tmpfs (mounted by the test; it
//! needs root, and is skipped loudly without it). Ingest answers `503` with `Retry-After` and an
//! error that says the disk is full, nothing is half-written (every stored event has its
//! delivery), and Herald recovers by itself once there is space again.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A tmpfs mounted over a temporary directory, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn resize(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.path())
            .status()
            .unwrap();
        assert!(ok.success(), "could not resize the tmpfs to {size}");
    }

    fn used_kib(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=used", "-k"])
            .arg(self.path())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .unwrap()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

/// The default program's Webhooks page as the signed-in admin gets it (server-rendered).
async fn console_page(app: &TestApp, cookie: &str) -> String {
    let r = app
        .client
        .get(app.url(&format!("/p/{}", app.program)))
        .header(reqwest::header::COOKIE, format!("herald_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_writes_nothing_half_and_recovers() {
    let Some(disk) = SmallDisk::mount("64m") else {
        eprintln!("SKIPPED a_full_disk_answers_503…: cannot mount a tmpfs here (needs root)");
        return;
    };
    let file: PathBuf = disk.path().join("herald.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let app = spawn_with(serve_args(&url), None).await;
    let rx = TestReceiver::start().await;
    let hook = app
        .create_webhook(json!({"name": "Full", "url": rx.url, "event_types": ["points.awarded"]}))
        .await;
    assert!(hook["id"].is_string());
    let cookie = app.console_session().await;
    // Leave about 1 MiB free, then post 8 KiB events until the disk is full.
    disk.resize(&format!("{}k", disk.used_kib() + 1024));
    let padding = "x".repeat(8 * 1024);
    let mut accepted = std::collections::HashSet::new();
    let mut full = None;
    for i in 0..2_000 {
        let r = app
            .client
            .post(app.url("/api/v1/events"))
            .bearer_auth(&app.key)
            .json(&json!({"event_type": "points.awarded", "data": {"i": i, "padding": padding}}))
            .send()
            .await
            .unwrap();
        match r.status() {
            StatusCode::ACCEPTED => {
                let body: serde_json::Value = r.json().await.unwrap();
                accepted.insert(body["event_id"].as_str().unwrap().to_owned());
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(
                    r.headers().contains_key("retry-after"),
                    "503 without Retry-After"
                );
                full = Some(r.json::<serde_json::Value>().await.unwrap());
                break;
            }
            other => panic!("event {i} answered {other}: {}", r.text().await.unwrap()),
        }
    }
    let full = full.expect("the disk never filled up");
    let message = full["error"]["message"].as_str().unwrap();
    assert!(message.contains("disk is full"), "unclear error: {full}");
    assert!(!accepted.is_empty());
    // The database still answers reads, but the health check says writes are failing and why.
    let (status, health) = app.get("/healthz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{health}");
    let reason = health["reason"].as_str().unwrap();
    assert!(
        reason.contains("writes are failing") && reason.contains("disk is full"),
        "{health}"
    );
    assert!(health["since"].is_string(), "{health}");
    let warning = health["warnings"][0].as_str().unwrap_or_default();
    assert!(
        warning.starts_with("The database's disk is nearly full"),
        "{health}"
    );
    // So does every console page, to a signed-in admin.
    let page = console_page(&app, &cookie).await;
    assert!(
        page.contains("Herald cannot store new events: the database&#x27;s disk is full")
            || page.contains("Herald cannot store new events: the database's disk is full"),
        "no banner on the console page"
    );
    // While the disk stays full, every try is refused the same way (none "succeeds" into a
    // transaction that is never committed).
    for i in 0..5 {
        let (status, body) = app
            .post(
                "/api/v1/events",
                json!({"event_type": "points.awarded", "data": {"still_full": i, "padding": padding}}),
            )
            .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    }

    // Space returns: ingest works again without a restart.
    disk.resize("64m");
    let mut resumed = None;
    for i in 0..50 {
        let (status, body) = app
            .post(
                "/api/v1/events",
                json!({"event_type": "points.awarded", "data": {"after": i}}),
            )
            .await;
        if status == StatusCode::ACCEPTED {
            accepted.insert(body["event_id"].as_str().unwrap().to_owned());
            resumed = Some(i);
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        resumed.is_some(),
        "ingest did not recover once space returned"
    );
    let (status, health) = app.get("/healthz").await;
    assert_eq!(status, StatusCode::OK, "a write succeeded: {health}");
    assert!(health.get("warnings").is_none(), "room again: {health}");
    let page = console_page(&app, &cookie).await;
    assert!(page.contains("Webhooks") && !page.contains("Herald cannot store new events"));
    wait_all_delivered(&rx, &accepted, Duration::from_secs(60)).await;

    // Nothing half-written: the stored events are exactly the accepted ones, each with its
    // delivery.
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let events: Vec<String> = sqlx::query_scalar("SELECT id FROM events")
        .fetch_all(&pool)
        .await
        .unwrap();
    let orphans: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM events e WHERE NOT EXISTS \
         (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(orphans, 0, "events stored without their delivery");
    let stored: std::collections::HashSet<String> = events.into_iter().collect();
    assert_eq!(
        stored, accepted,
        "stored events differ from the accepted ones"
    );
    pool.close().await;
    app.stop().await;
}

/// A batch is stored whole or not at all: posting batches onto a filling disk, the one answered
/// `503` has stored none of its events (before, its events went to the database in several
/// transactions and the first could commit), so resending it as it was, with no event ids of
/// the client's own, stores each of its events exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_refused_on_a_full_disk_stored_none_of_its_events() {
    let Some(disk) = SmallDisk::mount("64m") else {
        eprintln!(
            "SKIPPED a_batch_refused_on_a_full_disk…: cannot mount a tmpfs here (needs root)"
        );
        return;
    };
    let file: PathBuf = disk.path().join("herald.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let app = spawn_with(serve_args(&url), None).await;
    let rx = TestReceiver::start().await;
    app.create_webhook(json!({"name": "Full", "url": rx.url, "event_types": ["points.awarded"]}))
        .await;
    disk.resize(&format!("{}k", disk.used_kib() + 1024));
    let padding = "x".repeat(2 * 1024);
    let batch = |n: usize| {
        let events: Vec<_> = (0..100)
            .map(|i| {
                json!({"event_type": "points.awarded",
                       "data": {"batch": format!("b{n}"), "i": i, "padding": padding}})
            })
            .collect();
        json!({ "events": events })
    };
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let stored_of = |n: usize| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM events WHERE body LIKE ?")
                .bind(format!("%\"batch\":\"b{n}\"%"))
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let mut refused = None;
    for n in 0..40 {
        let (status, body) = app.post("/api/v1/events/batch", batch(n)).await;
        match status {
            StatusCode::ACCEPTED => assert_eq!(body["items"].as_array().unwrap().len(), 100),
            StatusCode::SERVICE_UNAVAILABLE => {
                let message = body["error"]["message"].as_str().unwrap();
                assert!(message.contains("disk is full"), "unclear error: {body}");
                refused = Some(n);
                break;
            }
            other => panic!("batch {n} answered {other}: {body}"),
        }
        assert_eq!(stored_of(n).await, 100, "batch {n} accepted whole");
    }
    let refused = refused.expect("the disk never filled up");
    assert!(
        refused > 0,
        "no batch fitted at all: the disk was left too small"
    );
    assert_eq!(
        stored_of(refused).await,
        0,
        "a refused batch stored some events"
    );

    // Space returns; the same request again stores each of its events once.
    disk.resize("64m");
    let mut accepted = false;
    for _ in 0..50 {
        let (status, body) = app.post("/api/v1/events/batch", batch(refused)).await;
        if status == StatusCode::ACCEPTED {
            accepted = true;
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(accepted, "ingest did not recover once space returned");
    assert_eq!(stored_of(refused).await, 100);
    pool.close().await;
    app.stop().await;
}

/// An engine on a 64 MiB tmpfs with a manual clock, its default program e-mailing alerts to a
/// real SMTP server on 127.0.0.1 (`None`, loudly, where no tmpfs can be mounted).
struct Alarmed {
    disk: SmallDisk,
    file: PathBuf,
    clock: std::sync::Arc<herald::delivery::clock::ManualClock>,
    engine: herald::delivery::Engine,
    program: herald::domain::ids::ProgramId,
    sink: SmtpSink,
}

async fn alarmed(test: &str) -> Option<Alarmed> {
    let Some(disk) = SmallDisk::mount("64m") else {
        eprintln!("SKIPPED {test}: cannot mount a tmpfs here (needs root)");
        return None;
    };
    let file: PathBuf = disk.path().join("herald.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let clock = std::sync::Arc::new(herald::delivery::clock::ManualClock::new());
    let engine = engine_on(&url, clock.clone(), false).await;
    let program = engine.store().default_program().await.unwrap();
    let admin = herald::auth::Actor::command_line(program.clone());
    let sink = SmtpSink::start().await;
    let settings = herald::domain::alerts::AlertSettingsDraft {
        email_enabled: true,
        smtp_host: "127.0.0.1".into(),
        smtp_port: sink.port,
        smtp_tls: herald::domain::alerts::SmtpTls::None,
        smtp_username: String::new(),
        smtp_password: None,
        from: "herald@example.com".into(),
        recipients: "ops@example.com".into(),
        window_minutes: 60,
    };
    engine.save_alert_settings(&admin, &settings).await.unwrap();
    Some(Alarmed {
        disk,
        file,
        clock,
        engine,
        program,
        sink,
    })
}

/// Ingests one `points.awarded` event with `data` at the engine's time.
async fn ingest_at(
    engine: &herald::delivery::Engine,
    program: &herald::domain::ids::ProgramId,
    data: serde_json::Value,
) -> Result<(), String> {
    let event =
        herald::domain::event::NewEvent::parse("points.awarded", data, None, None, engine.now())
            .unwrap();
    engine
        .ingest(program, event)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// The sink holds `count` messages, the last with a subject starting `subject`.
fn assert_last_mail(sink: &SmtpSink, count: usize, subject: &str) {
    let mails = sink.mails();
    assert_eq!(mails.len(), count);
    let last = &mails[count - 1];
    assert!(
        last.data.contains(&format!("Subject: {subject}")),
        "{}",
        last.data
    );
}

/// The write alarm (see `herald::delivery::write_alarm`): once writes have failed for 30 s, the
/// program's alert recipients get one e-mail naming the reason, however often the alert task
/// looks; once a write succeeds again, one more (a failure that only aged out is no all-clear).
/// Driven by hand with a manual clock (the engine's own; no alert task runs), against a real SMTP
/// server on 127.0.0.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_failing_for_half_a_minute_are_e_mailed_and_so_is_the_recovery() {
    use herald::delivery::write_alarm::{WriteAlarmKind, AFTER};
    let Some(Alarmed {
        disk,
        clock,
        engine,
        program,
        sink,
        ..
    }) = alarmed("writes_failing_…_e_mailed").await
    else {
        return;
    };
    assert_eq!(engine.watch_writes().await, None, "nothing failing");

    disk.resize(&format!("{}k", disk.used_kib() + 1024));
    let padding = "x".repeat(8 * 1024);
    let mut refused = None;
    for i in 0..2_000 {
        if let Err(e) = ingest_at(&engine, &program, json!({"i": i, "padding": padding})).await {
            refused = Some(e);
            break;
        }
    }
    let refused = refused.expect("the disk never filled up");
    assert!(refused.contains("disk is full"), "{refused}");
    assert_eq!(
        engine.watch_writes().await,
        None,
        "a moment of failing is no news"
    );
    assert!(sink.mails().is_empty());

    clock.advance(AFTER);
    let sent = engine.watch_writes().await.expect("the alarm goes off");
    assert_eq!(
        (sent.kind, sent.sent, sent.failed),
        (WriteAlarmKind::Failing, 1, 0)
    );
    assert_last_mail(
        &sink,
        1,
        "[Herald] Cannot store new events: the database's disk is full",
    );
    assert_eq!(sink.mails()[0].to, vec!["ops@example.com".to_owned()]);
    clock.advance(chrono::Duration::seconds(10));
    assert_eq!(
        engine.watch_writes().await,
        None,
        "once per run of failures"
    );
    // With no write for over a minute the failure ages out of the health check, but nothing
    // has shown the database taking writes again: no all-clear yet.
    clock.advance(chrono::Duration::seconds(90));
    assert_eq!(engine.write_trouble(), None);
    assert_eq!(engine.watch_writes().await, None, "no write has succeeded");

    // Space returns; the next write succeeds and the recovery is announced once.
    disk.resize("64m");
    ingest_at(&engine, &program, json!({"after": true}))
        .await
        .unwrap();
    let sent = engine
        .watch_writes()
        .await
        .expect("the recovery is announced");
    assert_eq!(
        (sent.kind, sent.sent, sent.failed),
        (WriteAlarmKind::Recovered, 1, 0)
    );
    assert_last_mail(&sink, 2, "[Herald] Storing new events again");
    assert_eq!(engine.watch_writes().await, None);
}

/// A disk nearly full is told before it fills: the engine's reading, the warning the console
/// and `/healthz` show, and one e-mail when it goes low and one when there is room again (not
/// one per look). The tmpfs is filled by a plain file beside the database, as other programs
/// fill real disks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nearly_full_disk_is_e_mailed_before_it_fills_and_so_is_the_room_returning() {
    use herald::delivery::disk::DiskAlarmKind;
    let Some(Alarmed {
        disk,
        file,
        engine,
        program,
        sink,
        ..
    }) = alarmed("a_nearly_full_disk_…").await
    else {
        return;
    };

    // 64 MiB: low below a tenth of it.
    let reading = engine.disk().expect("SQLite's disk is watched");
    assert_eq!(reading.space.total, 64 * 1024 * 1024);
    assert_eq!(reading.mark, reading.space.total / 10);
    assert!(!reading.low, "{reading:?}");
    assert_eq!(engine.disk_warning(), None);
    assert_eq!(engine.watch_disk().await, None, "nothing to say");

    // Another program fills the disk to 2 MiB free.
    let ballast = disk.path().join("ballast");
    let fill = reading.space.free - 2 * 1024 * 1024;
    std::fs::write(&ballast, vec![0u8; fill as usize]).unwrap();
    let reading = engine.disk().unwrap();
    assert!(reading.low, "{reading:?}");
    let warning = engine.disk_warning().expect("a warning while low");
    assert!(
        warning.starts_with("The database's disk is nearly full: ")
            && warning.contains(" MiB free of 64 MiB ("),
        "{warning}"
    );
    let sent = engine.watch_disk().await.expect("announced");
    assert_eq!(
        (sent.kind, sent.sent, sent.failed),
        (DiskAlarmKind::Low, 1, 0)
    );
    assert_eq!(engine.watch_disk().await, None, "once per low run");
    assert_last_mail(&sink, 1, "[Herald] The database's disk is nearly full: ");
    // Events are still stored meanwhile.
    ingest_at(&engine, &program, json!({"while": "low"}))
        .await
        .unwrap();

    // Just above the mark is not yet room (no flapping at the edge); well above it is.
    std::fs::remove_file(&ballast).unwrap();
    // (Read past the engine, whose every look moves the low mark's state.)
    let free = herald::delivery::disk::DiskSpace::of(&file).unwrap().free;
    let mark = reading.mark;
    std::fs::write(&ballast, vec![0u8; (free - mark - mark / 10) as usize]).unwrap();
    assert!(engine.disk().unwrap().low, "within a fifth above the mark");
    assert_eq!(engine.watch_disk().await, None);
    std::fs::remove_file(&ballast).unwrap();
    let sent = engine.watch_disk().await.expect("room announced");
    assert_eq!(
        (sent.kind, sent.sent, sent.failed),
        (DiskAlarmKind::Room, 1, 0)
    );
    assert_eq!(engine.disk_warning(), None);
    assert_last_mail(&sink, 2, "[Herald] Room on the database's disk again");
    assert_eq!(engine.watch_disk().await, None);
}
