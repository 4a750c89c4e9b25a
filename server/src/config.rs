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
    Serve(Box<ServeArgs>),
    /// Apply database migrations and exit.
    Migrate(DatabaseArgs),
    /// Measure end-to-end throughput and latency against a real `herald serve` (see README).
    Bench(crate::bench::BenchArgs),
    /// Fill a program with a week of delivery history made by the real engine (demo, insights).
    Seed(crate::seed::SeedArgs),
    /// A local receiver for integration work: verifies, prints and answers (or forwards) each
    /// webhook request.
    Listen(crate::listen::ListenArgs),
    /// The least a durable, signed relay costs on Herald's stack, for `herald bench --floor`
    /// (one webhook, SQLite only; a measuring stick, not a product).
    #[command(name = "relay-floor")]
    RelayFloor(crate::relay_floor::FloorArgs),
    /// Manage API keys for the events API.
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
    /// Manage console users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage the loyalty programs sharing this install.
    #[command(subcommand)]
    Program(ProgramCommand),
}

/// Which program a command acts in: its id (`prg_…`) or name; the default program if left out.
#[derive(Debug, Args, Clone, Default)]
pub struct ProgramArg {
    #[arg(long)]
    pub program: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ProgramCommand {
    /// List programs: id, name, status.
    List {
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Create a program; prints its id on stdout.
    Create {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Rename a program (given by id or current name).
    Rename {
        program: String,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Archive a program: hidden from the console's switcher, its API keys stop working.
    Archive {
        program: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Restore an archived program.
    Restore {
        program: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Print a program's webhook configurations as a JSON document. With
    /// `HERALD_EXPORT_PASSPHRASE` set, secrets come along sealed with it.
    Export {
        program: String,
        #[command(flatten)]
        db: DatabaseArgs,
        #[command(flatten)]
        secrets: SecretArgs,
    },
    /// Preview importing an export document (a file, or `-` for stdin) into a program; `--apply`
    /// imports it, all or nothing. `HERALD_EXPORT_PASSPHRASE` opens sealed secrets.
    Import {
        program: String,
        file: PathBuf,
        /// What to do with a webhook whose name the program already uses.
        #[arg(long, default_value = "skip", value_parser = ["skip", "update"])]
        on_conflict: String,
        /// Import (without it, only the preview is printed).
        #[arg(long)]
        apply: bool,
        /// Accept webhook URLs on loopback or private addresses (development only).
        #[arg(long, env = "HERALD_ALLOW_PRIVATE_TARGETS", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
        allow_private_targets: bool,
        #[command(flatten)]
        db: DatabaseArgs,
        #[command(flatten)]
        secrets: SecretArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a console user. The password is asked for on a terminal; without one, it is the
    /// first line of standard input.
    Create {
        #[arg(long)]
        email: String,
        /// `admin` (everything in the program) or `viewer` (reads lists, audit logs and
        /// attempts).
        #[arg(long, value_parser = ["admin", "viewer"])]
        role: String,
        /// Also manages programs and users, and is an admin of every program.
        #[arg(long)]
        install_admin: bool,
        #[command(flatten)]
        program: ProgramArg,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key; prints the key alone on stdout (shown once; only its hash is stored).
    Create {
        /// A name to recognise the key by.
        #[arg(long)]
        name: String,
        /// `ingest` (post events only: what the loyalty platform needs) or `admin` (the whole
        /// API).
        #[arg(long, default_value = "admin", value_parser = ["admin", "ingest"])]
        scope: String,
        #[command(flatten)]
        program: ProgramArg,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List the keys: id, name, prefix, scope, created, last used, revoked.
    List {
        #[command(flatten)]
        program: ProgramArg,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Revoke a key by its id (`key_…`, from `list`): refused at once by every process within
    /// a minute.
    Revoke {
        id: String,
        #[command(flatten)]
        program: ProgramArg,
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
    /// Seconds a stop (SIGTERM, Ctrl-C) waits for requests in flight, both the ones Herald is
    /// answering and the ones it is sending, before it closes them and releases unfinished
    /// deliveries to be sent again.
    #[arg(long, env = "HERALD_SHUTDOWN_GRACE_SECONDS", default_value_t = 10)]
    pub shutdown_grace_seconds: u64,
    /// While the queue is drained, send a new event's deliveries straight from the process that
    /// accepted it (each stored already claimed, so a crash loses nothing). `false` sends every
    /// delivery through the queue (kept for comparing the two in benchmarks).
    #[arg(long, env = "HERALD_EXPRESS", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub express: bool,
    #[command(flatten)]
    pub auto_disable: AutoDisableArgs,
    /// Days to keep attempts, finished deliveries and their events (and sent alerts); older ones
    /// are deleted in small batches every hour. 0 keeps everything.
    #[arg(long, env = "HERALD_RETENTION_DAYS", default_value_t = 30)]
    pub retention_days: u32,
    /// SQLite: the database's disk counts as nearly full below this many MiB free (or a tenth of
    /// a disk smaller than ten times this); Herald then warns in the console, in /healthz and by
    /// e-mail.
    #[arg(long, env = "HERALD_DISK_LOW_MIB", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub disk_low_mib: u64,
    #[command(flatten)]
    pub console: ConsoleArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

/// When Herald switches off a webhook that keeps failing.
#[derive(Debug, Clone, Args)]
pub struct AutoDisableArgs {
    /// Switch a webhook off when every live try has failed for this many hours (and at least
    /// `auto-disable-min-failures` times in a row); its deliveries are held until it is switched on
    /// again. 0 never switches one off for failing (a `410 Gone` still does).
    #[arg(long, env = "HERALD_AUTO_DISABLE_AFTER_HOURS", default_value_t = 24)]
    pub auto_disable_after_hours: u32,
    /// Fewest failed tries in a row before a failing webhook is switched off.
    #[arg(long, env = "HERALD_AUTO_DISABLE_MIN_FAILURES", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub auto_disable_min_failures: u32,
}

impl Default for AutoDisableArgs {
    fn default() -> Self {
        Self {
            auto_disable_after_hours: 24,
            auto_disable_min_failures: 10,
        }
    }
}

/// Prometheus `/metrics`: off unless one of these is set.
#[derive(Debug, Clone, Default, Args)]
pub struct MetricsArgs {
    /// Serve `/metrics` on the main address to requests with `Authorization: Bearer <token>`.
    #[arg(long, env = "HERALD_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Serve `/metrics` (without a token) on this address of its own, e.g. `127.0.0.1:9464`
    /// for a scraper on the same host or a private network.
    #[arg(long, env = "HERALD_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
}

#[derive(Debug, Clone, Args)]
pub struct ConsoleArgs {
    /// The address people open the console at (for the first-run setup link), e.g.
    /// `https://herald.example.com`. Defaults to the listening address.
    #[arg(long, env = "HERALD_PUBLIC_URL")]
    pub public_url: Option<url::Url>,
    /// A console session ends after this many seconds without a request.
    #[arg(long, env = "HERALD_SESSION_IDLE_SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u32).range(10..))]
    pub session_idle_seconds: u32,
    /// A console session ends this many seconds after signing in, however active.
    #[arg(long, env = "HERALD_SESSION_MAX_SECONDS", default_value_t = 43_200, value_parser = clap::value_parser!(u32).range(10..))]
    pub session_max_seconds: u32,
    /// Reverse proxies (addresses or CIDR blocks, comma-separated) whose `X-Forwarded-For` names
    /// the client for sign-in throttling. Empty (the default): the socket's address counts.
    #[arg(long, env = "HERALD_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<herald::auth::client_ip::ProxyNet>,
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

impl Default for ConsoleArgs {
    fn default() -> Self {
        Self {
            public_url: None,
            session_idle_seconds: 3600,
            session_max_seconds: 43_200,
            trusted_proxies: Vec::new(),
        }
    }
}
