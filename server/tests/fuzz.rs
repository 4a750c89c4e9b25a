//! Schemathesis (installed by `scripts/install-tools.sh test` in `.tools/venv`) fuzzes the REST
//! API against its own OpenAPI document, with a real API key, on a real server, once on a SQLite
//! file and once on PostgreSQL (text PostgreSQL cannot store, such as NUL, answered 500 there only):
//! no response may be a server error or contradict the document (status codes, content types,
//! headers, bodies), and invalid input must be refused. The short run here makes
//! `HERALD_FUZZ_EXAMPLES` (default 8) cases per operation from a fixed seed; `scripts/fuzz.sh`
//! runs the long one with fresh seeds.

use crate::helpers::*;
use std::path::PathBuf;
use std::process::Command;

/// The checks that judge each response (every check schemathesis has that needs no knowledge of
/// the data beyond the document).
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_headers_conformance,response_schema_conformance,negative_data_rejection,\
missing_required_header,ignored_auth,use_after_free,ensure_resource_availability";

on_both_backends!(the_api_keeps_to_its_openapi_document_under_fuzzing);

async fn the_api_keeps_to_its_openapi_document_under_fuzzing(backend: Backend) {
    let tool = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/schemathesis");
    if !tool.exists() {
        eprintln!(
            "SKIPPED the_api_keeps_to_its_openapi_document_under_fuzzing: schemathesis is not \
             installed (scripts/install-tools.sh test installs it)"
        );
        assert!(
            std::env::var_os("CI").is_none(),
            "schemathesis must be installed in CI"
        );
        return;
    }
    let Some(app) = spawn_app(backend, "fuzz").await else {
        return;
    };
    let examples = std::env::var("HERALD_FUZZ_EXAMPLES").unwrap_or_else(|_| "8".into());
    let seed = std::env::var("HERALD_FUZZ_SEED").unwrap_or_else(|_| "20261201".into());
    let reports = tempfile::tempdir().unwrap();
    let schema = app.url("/api/v1/openapi.json");
    let auth = format!("Authorization: Bearer {}", app.key);
    // A body past its size limit is refused with 413, which schemathesis does not count as a
    // refusal of data outside the document by default (a batch of more than 500 events is
    // usually larger than 256 KiB too).
    let refusals = "[checks.negative_data_rejection]\nexpected-statuses = [\"400\", \"401\", \
        \"403\", \"404\", \"405\", \"406\", \"409\", \"413\", \"415\", \"422\", \"428\", \"429\", \
        \"5xx\"]\n\n";
    let checks_file = reports.path().join("checks.toml");
    std::fs::write(&checks_file, refusals).unwrap();
    let run = |extra: Vec<String>, config: Option<PathBuf>| {
        let (tool, schema, auth) = (tool.clone(), schema.clone(), auth.clone());
        let (examples, seed, dir) = (examples.clone(), seed.clone(), reports.path().to_owned());
        tokio::task::spawn_blocking(move || {
            let mut cmd = Command::new(tool);
            // Its cache and reports stay in the temporary directory.
            cmd.current_dir(&dir);
            if let Some(config) = config {
                cmd.arg("--config-file").arg(config);
            }
            cmd.args(["run", &schema, "--header", &auth, "--checks", CHECKS])
                .args(["--max-examples", &examples, "--workers", "2"])
                .args(["--request-timeout", "30", "--generation-database", "none"])
                .args(["--no-color", "--report-dir"])
                .arg(&dir)
                .args(extra);
            if !seed.is_empty() {
                cmd.args(["--seed", &seed]);
            }
            let out = cmd.output().expect("run schemathesis");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let summary: Vec<&str> = text.lines().rev().take(12).collect();
            eprintln!(
                "{}",
                summary.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
            assert!(
                out.status.success(),
                "schemathesis found problems:\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        })
    };
    // Every operation, ids made up or followed from the links of the responses.
    run(
        vec![
            // Applying an import changes what the same request answers next (the names are then
            // taken), which Hypothesis reports as a flaky test rather than a finding; its
            // preview (the same input, nothing written) is fuzzed, and `tests/transfer.rs`
            // covers applying.
            "--exclude-operation-id".into(),
            "apply_import".into(),
            // A test alert talks to whatever SMTP server the fuzzed settings name; its own test
            // (`tests/alerts.rs`) drives it against a real SMTP sink.
            "--exclude-operation-id".into(),
            "send_test_alert".into(),
        ],
        Some(checks_file),
    )
    .await
    .unwrap();

    // Made-up ids find nothing (404), so the operations on one webhook, attempt or delivery run
    // again on real ones: a webhook whose delivery was attempted. Their bodies and queries are
    // still generated; deleting is left to the first run, so the webhook stays for this one.
    // The first run may have switched schema validation on for the type (a long run did, and
    // the event below broke the schema).
    let rx = TestReceiver::start().await;
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/event-types/points.awarded/validation",
            Some(serde_json::json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let hook = app
        .create_webhook(
            serde_json::json!({"name": "Fuzzed (second run)", "url": rx.url,
            "event_types": ["points.awarded"]}),
        )
        .await;
    let posted = std::time::Instant::now();
    let (status, body) = app
        .post(
            "/api/v1/events",
            serde_json::json!({"event_type": "points.awarded", "data": {"points": 5}}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    // Behind whatever backlog the first run left (a long run once kept it from arriving within
    // 10 s on both backends; two later long runs delivered it in 15-60 ms): should it not arrive,
    // the failure says what the queue held.
    let arrived = eventually(std::time::Duration::from_secs(60), || {
        let n = rx.received().len();
        async move { (n >= 1).then_some(n) }
    })
    .await;
    let waited = posted.elapsed();
    if arrived.is_none() {
        let (_, queue) = app
            .get(&format!(
                "/api/v1/deliveries?webhook_id={}",
                hook["id"].as_str().unwrap_or("")
            ))
            .await;
        panic!(
            "the second run's event was not delivered within 60 s; its deliveries: {queue}; \
             the queue: {}",
            queue_figures(&app.database_url).await
        );
    }
    eprintln!(
        "{backend:?}: the second run's event arrived after {waited:?} (the queue then: {})",
        queue_figures(&app.database_url).await
    );
    let hook_id = hook["id"].as_str().expect("a webhook id").to_owned();
    let attempts = eventually(std::time::Duration::from_secs(10), || {
        let (app, hook_id) = (&app, hook_id.clone());
        async move {
            let (_, page) = app
                .get(&format!("/api/v1/attempts?webhook_id={hook_id}"))
                .await;
            page["items"].as_array().filter(|a| !a.is_empty()).cloned()
        }
    })
    .await
    .expect("the attempt is recorded");
    let fixed = [
        (
            Some(hook_id.as_str()),
            "get_webhook update_webhook get_webhook_insights send_test_event verify_webhook \
             get_webhook_secret rotate_webhook_secret",
        ),
        (attempts[0]["id"].as_str(), "get_attempt"),
        (attempts[0]["delivery_id"].as_str(), "replay_delivery"),
    ];
    let mut config = refusals.to_owned();
    let mut only = Vec::new();
    for (id, operations) in fixed {
        let id = id.expect("an id");
        for op in operations.split_whitespace() {
            config.push_str(&format!(
                "[[operations]]\ninclude-operation-id = \"{op}\"\nparameters = {{ id = \"{id}\" }}\n\n"
            ));
            only.extend(["--include-operation-id".to_owned(), op.to_owned()]);
        }
    }
    let config_file = reports.path().join("fixed-ids.toml");
    std::fs::write(&config_file, config).unwrap();
    // No stateful phase here: it follows links to the resources it creates itself.
    only.extend([
        "--phases".to_owned(),
        "examples,coverage,fuzzing".to_owned(),
    ]);
    run(only, Some(config_file)).await.unwrap();
    // The first request was the event's delivery; Send Test and Verify sent the rest.
    assert!(
        rx.received().len() > 1,
        "the second run reached the webhook's receiver"
    );
    app.stop().await;
}

/// The queue's gauges, in words.
async fn queue_figures(database_url: &str) -> String {
    let gauges = herald::store::connect(database_url)
        .await
        .unwrap()
        .queue_gauges()
        .await
        .unwrap();
    format!(
        "{} pending, {} in flight, {} dead-lettered",
        gauges.pending, gauges.in_flight, gauges.failed
    )
}
