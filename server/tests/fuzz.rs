//! Schemathesis (installed by `scripts/install-tools.sh test` in `.tools/venv`) fuzzes the REST
//! API against its own OpenAPI document, with a real API key, on a real server, once on a SQLite
//! file and once on PostgreSQL (text PostgreSQL cannot store, such as NUL, answered 500 there only):
//! no response may be a server error or contradict the document (status codes, content types,
//! headers, bodies), and invalid input must be refused. The short run here makes
//! `HERALD_FUZZ_EXAMPLES` (default 8) cases per operation from a fixed seed; `scripts/fuzz.sh`
//! runs the long one with fresh seeds.

mod helpers;

use helpers::*;
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
    let run = tokio::task::spawn_blocking(move || {
        Command::new(tool)
            // Its cache and reports stay in the temporary directory.
            .current_dir(reports.path())
            .args(["run", &schema, "--header", &auth, "--checks", CHECKS])
            .args(["--max-examples", &examples, "--workers", "2"])
            .args(["--request-timeout", "30", "--generation-database", "none"])
            // Applying an import changes what the same request answers next (the names are then
            // taken), which Hypothesis reports as a flaky test rather than a finding; its preview
            // (the same input, nothing written) is fuzzed, and `tests/transfer.rs` covers applying.
            .args(["--exclude-operation-id", "apply_import"])
            // A test alert talks to whatever SMTP server the fuzzed settings name; its own test
            // (`tests/alerts.rs`) drives it against a real SMTP sink.
            .args(["--exclude-operation-id", "send_test_alert"])
            .args(["--no-color", "--report-dir"])
            .arg(reports.path())
            .args(if seed.is_empty() {
                vec![]
            } else {
                vec!["--seed".to_owned(), seed]
            })
            .output()
            .expect("run schemathesis")
    })
    .await
    .unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    let summary: Vec<&str> = out.lines().rev().take(12).collect();
    eprintln!(
        "{}",
        summary.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    assert!(
        run.status.success(),
        "schemathesis found problems:\n{out}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    app.stop().await;
}
