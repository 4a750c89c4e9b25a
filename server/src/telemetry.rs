//! Logging on stderr, filtered by `RUST_LOG` (default: info for Herald, warnings for libraries):
//! human-readable lines by default, or one JSON object per line with `HERALD_LOG_FORMAT=json`
//! (fields such as `webhook_id`, `event_id`, `delivery_id` and `attempt_id` as JSON fields).
//! Secrets never reach a log line: they are sealed types without a printing `Debug`, and request
//! headers are redacted before they are stored or logged.

use tracing_subscriber::EnvFilter;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    /// One JSON object per line: start-up messages then go through the log too, rather than as
    /// plain text beside it.
    Json,
}

/// Sets up logging and says in which format; the error names a `HERALD_LOG_FORMAT` it does not
/// know.
pub fn init() -> Result<LogFormat, String> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,hyper=warn,tower_http=warn"));
    let json = match std::env::var("HERALD_LOG_FORMAT") {
        Err(_) => false,
        Ok(f) if f.eq_ignore_ascii_case("json") => true,
        Ok(f) if f.eq_ignore_ascii_case("text") || f.is_empty() => false,
        Ok(other) => {
            return Err(format!(
                "HERALD_LOG_FORMAT must be text or json, not '{other}'"
            ))
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    } else {
        builder.try_init()
    };
    Ok(if json {
        LogFormat::Json
    } else {
        LogFormat::Text
    })
}
