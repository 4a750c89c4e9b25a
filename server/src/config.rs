//! Command line and environment. Every option of `serve` can also be set by an environment
//! variable prefixed `HERALD_`; flags win over the environment.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "herald",
    version,
    about = "Webhook delivery for loyalty programs"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `herald` alone means `herald serve`, with these options.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the console, the REST API and the delivery engine (the default).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(DatabaseArgs),
    /// Measure end-to-end throughput and latency against a real `herald serve` (see README).
    Bench(crate::bench::BenchArgs),
    /// Manage API keys for the events API.
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key; prints the key alone on stdout (shown once; only its hash is stored).
    Create {
        /// A name to recognise the key by.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Where Herald keeps its data: `sqlite://FILE?mode=rwc` or `postgres://…`.
    #[arg(
        long,
        env = "HERALD_DATABASE_URL",
        default_value = "sqlite://herald.db?mode=rwc"
    )]
    pub database_url: String,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address the HTTP server listens on.
    #[arg(long, env = "HERALD_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(flatten)]
    pub secrets: SecretArgs,
    /// Allow webhook URLs that resolve to loopback or private addresses (development and tests
    /// only: it switches off the SSRF guard).
    #[arg(long, env = "HERALD_ALLOW_PRIVATE_TARGETS", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub allow_private_targets: bool,
    /// Refuse `http://` webhook URLs.
    #[arg(long, env = "HERALD_REQUIRE_HTTPS", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub require_https: bool,
    /// Requests in flight at once.
    #[arg(long, env = "HERALD_CONCURRENCY", default_value_t = 512)]
    pub concurrency: usize,
}

#[derive(Debug, Clone, Args)]
pub struct SecretArgs {
    /// Key sealing secrets at rest: 32 bytes as 64 hex digits or base64. Required with
    /// PostgreSQL (every process must share it); with SQLite, a key file is the fallback.
    #[arg(long, env = "HERALD_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// The key file used with SQLite when no key is given (created with mode 0600).
    #[arg(long, env = "HERALD_KEY_FILE")]
    pub key_file: Option<PathBuf>,
}
