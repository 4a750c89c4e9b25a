//! Logging: human-readable lines on stderr, filtered by `RUST_LOG` (default: info for Herald,
//! warnings for libraries). Secrets never reach a log line: they are sealed types without a
//! printing `Debug`, and request headers are redacted before they are stored or logged.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,hyper=warn,tower_http=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
