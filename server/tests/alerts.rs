//! Alerts end to end: dead letters, switch-offs and recoveries raised by a real engine (manual
//! clock, real receivers on 127.0.0.1, both backends), grouped per webhook and window, sent as
//! signed operational events to a subscribed webhook and as e-mail to a real SMTP sink that the
//! test runs; settings and the test alert through the engine and the REST API.

use crate::helpers::*;
use chrono::Duration;
use herald::domain::alerts::{AlertKind, AlertSettingsDraft, SmtpTls};
use herald::domain::ids::WebhookId;
use serde_json::{json, Value};

async fn webhook(s: &Setup, name: &str, url: &str, event_types: &[&str]) -> WebhookId {
    s.webhook(json!({
        "name": name, "url": url, "event_types": event_types,
        "retry": {"attempts": 0, "delay_seconds": 60, "backoff": "fixed", "timeout_seconds": 5},
    }))
    .await
}

async fn post(s: &Setup) {
    s.post("points.awarded", json!({"points": 5})).await;
}

fn email_to(sink: &SmtpSink) -> AlertSettingsDraft {
    AlertSettingsDraft {
        email_enabled: true,
        smtp_host: "127.0.0.1".into(),
        smtp_port: sink.port,
        smtp_tls: SmtpTls::None,
        smtp_username: "herald".into(),
        smtp_password: Some("s3cret-smtp".into()),
        from: "herald@example.com".into(),
        recipients: "ops@example.com, oncall@example.com".into(),
        window_minutes: 60,
    }
}

/// An SMTP sink on 127.0.0.1, and the program's alerts e-mailed to it.
async fn email_alerts(s: &Setup) -> SmtpSink {
    let sink = SmtpSink::start().await;
    s.engine
        .save_alert_settings(&s.admin, &email_to(&sink))
        .await
        .unwrap();
    sink
}

/// The operational events an alert receiver got, as (type, data).
fn operational(rx: &TestReceiver) -> Vec<(String, Value)> {
    rx.received()
        .iter()
        .map(|r| {
            let body = r.json();
            (
                body["event_type"].as_str().unwrap().to_owned(),
                body["data"].clone(),
            )
        })
        .collect()
}

/// Three dead letters make one alert (count 3) that goes out at once as a signed
/// `delivery.exhausted` event and one e-mail; two more within the window wait and go out as one
/// after it; a success afterwards announces the recovery. Failures of the alert receivers' own
/// deliveries raise nothing.
async fn dead_letters_are_grouped_and_sent_as_events_and_email(backend: Backend) {
    let Some(s) = setup(backend, "alerts_grouped").await else {
        return;
    };
    let sink = email_alerts(&s).await;
    let failing = TestReceiver::start().await;
    failing.script(std::iter::repeat_n(Reply::Status(503), 5));
    let crm = webhook(&s, "Rewards CRM", &failing.url, &["points.awarded"]).await;
    let ops = TestReceiver::start().await;
    let ops_id = webhook(
        &s,
        "Ops pager",
        &ops.url,
        &[
            "delivery.exhausted",
            "endpoint.disabled",
            "endpoint.recovered",
        ],
    )
    .await;
    // A second alert receiver that is down: its own dead letters must not raise alerts.
    let broken = TestReceiver::start().await;
    broken.script(std::iter::repeat_n(Reply::Status(500), 10));
    let broken_id = webhook(&s, "Broken pager", &broken.url, &["delivery.exhausted"]).await;

    for _ in 0..3 {
        post(&s).await;
    }
    assert_eq!(s.engine.drain().await.unwrap(), 3);
    assert_eq!(s.engine.flush_alerts().await.unwrap(), 1);
    s.engine.drain().await.unwrap();
    let got = operational(&ops);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "delivery.exhausted");
    assert_eq!(got[0].1["count"], 3);
    assert_eq!(got[0].1["webhook_id"], crm.as_str());
    assert_eq!(got[0].1["webhook_name"], "Rewards CRM");
    assert!(
        got[0].1["detail"].as_str().unwrap().contains("503"),
        "{got:?}"
    );
    assert!(ops.received()[0]
        .header("webhook-signature")
        .starts_with("v1,"));
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0].subject(),
        "[Herald] Rewards CRM: 3 deliveries dead-lettered"
    );
    assert_eq!(mails[0].from, "herald@example.com");
    assert_eq!(mails[0].to, ["ops@example.com", "oncall@example.com"]);
    assert_eq!(mails[0].auth.as_deref(), Some("herald:s3cret-smtp"));

    // Two more inside the window: counted, not sent, until the window has passed.
    s.clock.advance(Duration::minutes(10));
    post(&s).await;
    post(&s).await;
    assert_eq!(s.engine.drain().await.unwrap(), 2);
    assert_eq!(s.engine.flush_alerts().await.unwrap(), 0);
    s.clock.advance(Duration::minutes(51));
    assert_eq!(s.engine.flush_alerts().await.unwrap(), 1);
    s.engine.drain().await.unwrap();
    let got = operational(&ops);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].1["count"], 2);
    assert_eq!(sink.mails().len(), 2);

    // The CRM answers again: one recovery notice, once.
    post(&s).await;
    post(&s).await;
    s.engine.drain().await.unwrap();
    assert_eq!(s.engine.flush_alerts().await.unwrap(), 1);
    s.engine.drain().await.unwrap();
    let got = operational(&ops);
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].0, "endpoint.recovered");
    assert_eq!(sink.mails()[2].subject(), "[Herald] Rewards CRM recovered");
    post(&s).await;
    s.engine.drain().await.unwrap();
    assert_eq!(s.engine.flush_alerts().await.unwrap(), 0);

    let alerts = s.engine.recent_alerts(&s.admin, 50).await.unwrap();
    let kinds: Vec<(AlertKind, &str, i64)> = alerts
        .iter()
        .map(|a| (a.kind, a.webhook_name.as_str(), a.count))
        .collect();
    assert_eq!(
        kinds,
        [
            (AlertKind::Recovered, "Rewards CRM", 1),
            (AlertKind::Exhausted, "Rewards CRM", 2),
            (AlertKind::Exhausted, "Rewards CRM", 3),
        ]
    );
    assert!(alerts.iter().all(|a| a.sent_at.is_some()));
    assert!(alerts.iter().all(|a| a.webhook_id != broken_id.as_str()));
    assert!(!broken.received().is_empty(), "the broken pager was tried");
    assert!(alerts.iter().all(|a| a.webhook_id != ops_id.as_str()));

    // The SMTP password is sealed at rest and never shown.
    let doc = s
        .engine
        .store()
        .alert_settings(&s.admin.program)
        .await
        .unwrap()
        .unwrap();
    assert!(!doc.contains("s3cret-smtp"), "{doc}");
    let shown = s.engine.alert_settings(&s.admin).await.unwrap();
    assert!(shown.smtp_password_set);
}

/// A webhook switched off by Herald raises `endpoint.disabled` with the reason.
async fn a_switched_off_webhook_raises_an_alert(backend: Backend) {
    let Some(s) = setup(backend, "alerts_disabled").await else {
        return;
    };
    let gone = TestReceiver::start().await;
    gone.script([Reply::Status(410)]);
    webhook(&s, "Old CRM", &gone.url, &["points.awarded"]).await;
    let ops = TestReceiver::start().await;
    webhook(&s, "Ops pager", &ops.url, &["endpoint.disabled"]).await;
    post(&s).await;
    s.engine.drain().await.unwrap();
    // Two alerts: switched off, and the delivery (no retries) dead-lettered.
    assert_eq!(s.engine.flush_alerts().await.unwrap(), 2);
    s.engine.drain().await.unwrap();
    let got = operational(&ops);
    assert_eq!(got.len(), 1, "subscribed to endpoint.disabled only");
    assert_eq!(got[0].0, "endpoint.disabled");
    assert!(
        got[0].1["detail"]
            .as_str()
            .unwrap()
            .starts_with("endpoint answered 410 Gone"),
        "{got:?}"
    );
}

/// "Send test alert" reaches the SMTP server at once, or says why not.
async fn a_test_alert_reaches_the_smtp_server_or_says_why_not(backend: Backend) {
    let Some(s) = setup(backend, "alerts_test").await else {
        return;
    };
    let refused = s.engine.send_test_alert(&s.admin).await.unwrap_err();
    assert!(
        refused.to_string().contains("E-mail alerts are off"),
        "{refused}"
    );

    let sink = email_alerts(&s).await;
    let said = s.engine.send_test_alert(&s.admin).await.unwrap();
    assert_eq!(
        said,
        "Test alert sent to ops@example.com, oncall@example.com"
    );
    assert_eq!(sink.mails()[0].subject(), "[Herald] Test alert");

    // Saving without a password keeps it; a closed port is reported, not hidden.
    let closed = RefusingPort::new();
    let elsewhere = AlertSettingsDraft {
        smtp_port: closed.addr.port(),
        smtp_password: None,
        ..email_to(&sink)
    };
    let shown = s
        .engine
        .save_alert_settings(&s.admin, &elsewhere)
        .await
        .unwrap();
    assert!(shown.smtp_password_set);
    let failed = s.engine.send_test_alert(&s.admin).await.unwrap_err();
    assert!(
        failed
            .to_string()
            .contains(&format!("127.0.0.1:{}", closed.addr.port())),
        "{failed}"
    );
}

/// Through the REST API: operational events cannot be posted; settings are validated field by
/// field, the password never comes back; alerts are listed.
async fn the_api_serves_alert_settings_and_refuses_operational_events(backend: Backend) {
    let Some(s) = setup(backend, "alerts_api").await else {
        return;
    };
    let (base, key) = s.serve_api().await;
    let http = reqwest::Client::new();
    let send = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut req = http
            .request(method, format!("{base}/api/v1{path}"))
            .bearer_auth(&key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, body) = send(
        reqwest::Method::POST,
        "/events",
        Some(json!({"event_type": "endpoint.disabled", "data": {}})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "event_type");

    let (status, body) = send(
        reqwest::Method::PUT,
        "/alerts/settings",
        Some(
            json!({"email_enabled": true, "smtp_host": "smtp.example.com",
            "from": "herald@example.com", "recipients": "ops@example.com; nobody"}),
        ),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "recipients");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("nobody"));

    let (status, body) = send(
        reqwest::Method::PUT,
        "/alerts/settings",
        Some(
            json!({"email_enabled": true, "smtp_host": "smtp.example.com",
            "smtp_username": "herald", "smtp_password": "pw-123456",
            "from": "herald@example.com", "recipients": "ops@example.com"}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["smtp_password_set"], true);
    assert_eq!(body["smtp_port"], 587);
    assert!(!body.to_string().contains("pw-123456"));
    let (status, got) = send(reqwest::Method::GET, "/alerts/settings", None).await;
    assert_eq!((status, got), (200, body));
    let (status, body) = send(reqwest::Method::GET, "/alerts", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"], json!([]));
}

/// The operational event goes out before the alert is marked sent, under the alert's own id: a
/// flush that stored the event but never marked the alert (the process died in between) is
/// followed by one that finds the event already stored, so subscribers get it once, and the
/// alert is then marked and e-mailed.
async fn an_alert_flushed_twice_raises_its_event_once(backend: Backend) {
    let Some(s) = setup(backend, "alerts_once").await else {
        return;
    };
    let sink = email_alerts(&s).await;
    let failing = TestReceiver::start().await;
    failing.script(std::iter::repeat_n(Reply::Status(503), 5));
    webhook(&s, "Rewards CRM", &failing.url, &["points.awarded"]).await;
    let ops = TestReceiver::start().await;
    webhook(&s, "Ops pager", &ops.url, &["delivery.exhausted"]).await;
    post(&s).await;
    assert_eq!(s.engine.drain().await.unwrap(), 1);

    assert_eq!(s.engine.flush_alerts().await.unwrap(), 1);
    let alerts = s.engine.recent_alerts(&s.admin, 10).await.unwrap();
    assert_eq!(alerts.len(), 1);
    let alert_uuid = alerts[0].id.trim_start_matches("alr_").to_owned();
    // As if the process had died after storing the event and before marking the alert sent.
    let sql = "UPDATE alerts SET sent_at = NULL";
    if s.url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&s.url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
    } else {
        let pool = sqlx::PgPool::connect(&s.url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    assert_eq!(s.engine.flush_alerts().await.unwrap(), 1);
    s.engine.drain().await.unwrap();

    let got = ops.received();
    assert_eq!(got.len(), 1, "one operational event");
    let id = got[0].header("webhook-id").replace('-', "");
    assert_eq!(id, alert_uuid, "the event carries the alert's id");
    assert_eq!(got[0].json()["event_type"], "delivery.exhausted");
    let alerts = s.engine.recent_alerts(&s.admin, 10).await.unwrap();
    assert!(alerts[0].sent_at.is_some());
    assert_eq!(
        sink.mails().len(),
        2,
        "each flush that marked the alert e-mailed it"
    );
}

on_both_backends!(
    dead_letters_are_grouped_and_sent_as_events_and_email,
    a_switched_off_webhook_raises_an_alert,
    a_test_alert_reaches_the_smtp_server_or_says_why_not,
    the_api_serves_alert_settings_and_refuses_operational_events,
    an_alert_flushed_twice_raises_its_event_once,
);
