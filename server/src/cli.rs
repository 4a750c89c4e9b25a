//! What the `herald` binary does: parse the command line, then serve, migrate or manage API
//! keys. Errors end the process with one line on stderr and a non-zero exit, never a backtrace.
//!
//! It lives in the library, not in `main.rs`: an `async fn`'s body is compiled by the crate that
//! first polls it. With the commands awaited in the binary, the binary compiled most of the
//! server's futures, and its own copies of the generic code they use, after the library had
//! compiled, as the last step of every release build (about a minute on two cores). Here they
//! are compiled with the library (a release rebuild of the server crate 5-12 s shorter; README,
//! thirty-ninth sitting).

use crate::config::{
    ApiKeyCommand, Cli, Command, ProgramArg, ProgramCommand, ServeArgs, UserCommand,
};
use crate::{bench, listen, relay_floor, seed, startup, telemetry, watchdog};
use anyhow::Context;
use clap::Parser;
use std::process::ExitCode;

/// Runs the command line on a multi-threaded Tokio runtime (what `#[tokio::main]` builds).
pub fn main() -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run()),
        Err(e) => {
            eprintln!("error: starting the Tokio runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("{first}\nSee `herald --help`.");
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let format = match telemetry::init() {
        Ok(format) => format,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let outcome = match cli.command {
        None => serve(cli.serve, format).await,
        Some(Command::Serve(args)) => serve(*args, format).await,
        Some(Command::Migrate(db)) => migrate(&db.database_url).await,
        Some(Command::Bench(args)) => bench::run(args).await,
        Some(Command::Seed(args)) => seed::run(args).await,
        Some(Command::Listen(args)) => listen::run(args).await,
        Some(Command::RelayFloor(args)) => relay_floor::run(args).await,
        Some(Command::ApiKey(ApiKeyCommand::Create {
            name,
            scope,
            program,
            db,
        })) => create_api_key(&name, &scope, &program, &db.database_url).await,
        Some(Command::ApiKey(ApiKeyCommand::List { program, db })) => {
            list_api_keys(&program, &db.database_url).await
        }
        Some(Command::ApiKey(ApiKeyCommand::Revoke { id, program, db })) => {
            revoke_api_key(&id, &program, &db.database_url).await
        }
        Some(Command::User(UserCommand::Create {
            email,
            role,
            install_admin,
            program,
            db,
        })) => create_user(&email, &role, install_admin, &program, &db.database_url).await,
        Some(Command::Program(command)) => programs(command).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs, format: telemetry::LogFormat) -> anyhow::Result<()> {
    let app = startup::Application::build(&args).await?;
    watchdog::start(tokio::runtime::Handle::current())
        .context("starting the runtime watchdog thread")?;
    let addr = app.local_addr();
    tracing::info!(
        database = %startup::redact_url(&args.db.database_url),
        "Herald is listening on http://{addr}"
    );
    if args.allow_private_targets {
        tracing::warn!("HERALD_ALLOW_PRIVATE_TARGETS is on: webhooks may target loopback and private addresses (development only)");
    }
    if format == telemetry::LogFormat::Json {
        tracing::info!(url = %format!("http://{addr}/"), "Herald console is ready");
        if let Some(link) = app.setup_link() {
            tracing::warn!(setup_link = %link, "no console user exists yet: open the one-time setup link to create the first admin");
        }
    } else {
        eprintln!("Herald console: http://{addr}/");
        if let Some(link) = app.setup_link() {
            eprintln!(
                "\nNo console user exists yet. Create the first admin here (one-time link):\n\n    {link}\n"
            );
        }
    }
    app.run_until_stopped(shutdown_signal()).await
}

async fn migrate(database_url: &str) -> anyhow::Result<()> {
    startup::open_store(database_url).await?;
    eprintln!(
        "migrations applied to {}",
        startup::redact_url(database_url)
    );
    Ok(())
}

async fn create_api_key(
    name: &str,
    scope: &str,
    program: &ProgramArg,
    database_url: &str,
) -> anyhow::Result<()> {
    let scope = herald::domain::account::KeyScope::parse(scope)
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let (access, actor) = command_line_access(program, database_url).await?;
    let (key, summary) = access
        .create_api_key(&actor, name, scope)
        .await
        .map_err(cli_error)?;
    eprintln!(
        "created {} API key '{}' ({}…); it is shown once:",
        scope.as_str(),
        summary.name,
        summary.prefix
    );
    println!("{key}");
    Ok(())
}

async fn list_api_keys(program: &ProgramArg, database_url: &str) -> anyhow::Result<()> {
    let (access, actor) = command_line_access(program, database_url).await?;
    let keys = access
        .list_api_keys(&actor.program)
        .await
        .map_err(cli_error)?;
    if keys.is_empty() {
        eprintln!("no API keys yet (herald api-key create --name …)");
    }
    let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map_or_else(
            || "-".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M").to_string(),
        )
    };
    for k in keys {
        println!(
            "{}\t{}\t{}…\t{}\tcreated {}\tlast used {}\t{}",
            k.id,
            k.name,
            k.prefix,
            k.scope.as_str(),
            when(Some(k.created_at)),
            when(k.last_used_at),
            k.revoked_at.map_or_else(
                || "active".to_owned(),
                |t| format!("revoked {}", when(Some(t)))
            )
        );
    }
    Ok(())
}

async fn revoke_api_key(id: &str, program: &ProgramArg, database_url: &str) -> anyhow::Result<()> {
    let id = herald::domain::ids::ApiKeyId::parse(id)
        .context("give the key's id (key_…) as `herald api-key list` shows it")?;
    let (access, actor) = command_line_access(program, database_url).await?;
    access
        .revoke_api_key(&actor, &id)
        .await
        .map_err(cli_error)?;
    eprintln!("revoked {id}");
    Ok(())
}

/// The access service on `database_url`, and the command line as the actor in `program` (the
/// default program unless named; recorded in the activity log).
async fn command_line_access(
    program: &ProgramArg,
    database_url: &str,
) -> anyhow::Result<(herald::auth::Access, herald::auth::Actor)> {
    let store = startup::open_store(database_url).await?;
    let access = herald::auth::Access::new(store.clone(), Default::default(), Default::default());
    let program = match program.program.as_deref() {
        None => store.default_program().await?,
        Some(named) => access.find_program(named).await.map_err(cli_error)?.id,
    };
    Ok((access, herald::auth::Actor::command_line(program)))
}

async fn programs(command: ProgramCommand) -> anyhow::Result<()> {
    use herald::auth::InstallAdmin;
    let admin = InstallAdmin::command_line();
    let connect = |url: String| async move {
        let store = startup::open_store(&url).await?;
        anyhow::Ok(herald::auth::Access::new(
            store,
            Default::default(),
            Default::default(),
        ))
    };
    match command {
        ProgramCommand::List { db } => {
            let access = connect(db.database_url).await?;
            for p in access.list_programs(&admin).await.map_err(cli_error)? {
                let status = match p.archived_at {
                    Some(at) => format!("archived {}", at.format("%Y-%m-%d %H:%M")),
                    None if p.is_default => "active (default)".to_owned(),
                    None => "active".to_owned(),
                };
                println!("{}\t{}\t{status}", p.id, p.name);
            }
        }
        ProgramCommand::Create { name, db } => {
            let access = connect(db.database_url).await?;
            let p = access
                .create_program(&admin, &name)
                .await
                .map_err(cli_error)?;
            eprintln!("created program '{}'", p.name);
            println!("{}", p.id);
        }
        ProgramCommand::Rename { program, name, db } => {
            let access = connect(db.database_url).await?;
            let p = access.find_program(&program).await.map_err(cli_error)?;
            access
                .rename_program(&admin, &p.id, &name)
                .await
                .map_err(cli_error)?;
            eprintln!("renamed '{}' to '{}'", p.name, name.trim());
        }
        ProgramCommand::Archive { program, db } => {
            let name = set_archived(connect(db.database_url).await?, &program, true).await?;
            eprintln!(
                "archived '{name}' (its API keys are refused, by running servers within a second)"
            );
        }
        ProgramCommand::Export {
            program,
            db,
            secrets,
        } => {
            let access = connect(db.database_url.clone()).await?;
            let p = access.find_program(&program).await.map_err(cli_error)?;
            let engine = startup::command_engine(&db.database_url, &secrets, false).await?;
            let passphrase = std::env::var("HERALD_EXPORT_PASSPHRASE").ok();
            let doc = engine
                .export_program(
                    &herald::auth::Actor::command_line(p.id),
                    &p.name,
                    passphrase.as_deref().filter(|s| !s.is_empty()),
                )
                .await
                .map_err(engine_error)?;
            println!("{}", serde_json::to_string_pretty(&doc)?);
            eprintln!(
                "exported {} webhook(s) of '{}'{}",
                doc.webhooks.len(),
                p.name,
                if doc.sealed_secrets.is_some() {
                    ", secrets sealed with HERALD_EXPORT_PASSPHRASE"
                } else {
                    " without secrets (set HERALD_EXPORT_PASSPHRASE to include them)"
                }
            );
        }
        ProgramCommand::Import {
            program,
            file,
            on_conflict,
            apply,
            allow_private_targets,
            db,
            secrets,
        } => {
            use herald::domain::transfer::{OnConflict, ProgramExport};
            let text = if file.as_os_str() == "-" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
                text
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            let doc: ProgramExport =
                serde_json::from_str(&text).context("this is not a Herald export document")?;
            let on_conflict = OnConflict::parse(&on_conflict).unwrap_or_default();
            let access = connect(db.database_url.clone()).await?;
            let p = access.find_program(&program).await.map_err(cli_error)?;
            let engine =
                startup::command_engine(&db.database_url, &secrets, allow_private_targets).await?;
            let actor = herald::auth::Actor::command_line(p.id);
            let passphrase = std::env::var("HERALD_EXPORT_PASSPHRASE").ok();
            let passphrase = passphrase.as_deref().filter(|s| !s.is_empty());
            let plan = if apply {
                engine
                    .apply_import(&actor, &doc, on_conflict, passphrase)
                    .await
            } else {
                engine
                    .plan_import(&actor, &doc, on_conflict, passphrase)
                    .await
            }
            .map_err(engine_error)?;
            for item in &plan.items {
                println!("{}\t{}\t{}", item.action.label(), item.name, item.detail);
            }
            for (name, secret) in &plan.secrets {
                if plan.applied {
                    println!("new secret\t{name}\t{secret}");
                }
            }
            eprintln!(
                "{} into '{}'",
                if plan.applied {
                    "imported"
                } else {
                    "preview only (add --apply to import)"
                },
                p.name
            );
        }
        ProgramCommand::Restore { program, db } => {
            let name = set_archived(connect(db.database_url).await?, &program, false).await?;
            eprintln!("restored '{name}'");
        }
    }
    Ok(())
}

/// Archives or restores the program named `program`, as the install admin; its name.
async fn set_archived(
    access: herald::auth::Access,
    program: &str,
    archived: bool,
) -> anyhow::Result<String> {
    let p = access.find_program(program).await.map_err(cli_error)?;
    access
        .set_program_archived(&herald::auth::InstallAdmin::command_line(), &p.id, archived)
        .await
        .map_err(cli_error)?;
    Ok(p.name)
}

/// An engine refusal reads as its message (with the field it names).
fn engine_error(e: herald::delivery::EngineError) -> anyhow::Error {
    match e {
        herald::delivery::EngineError::Validation(v) => {
            anyhow::anyhow!("{}: {}", v.field, v.message)
        }
        other => anyhow::Error::new(other),
    }
}

/// A refused input reads as its message alone (`--name`, `--email`, the password).
fn cli_error(e: herald::auth::AccessError) -> anyhow::Error {
    match e {
        herald::auth::AccessError::Validation(v) => anyhow::anyhow!("{}", v.message),
        other => anyhow::Error::new(other),
    }
}

async fn create_user(
    email: &str,
    role: &str,
    install_admin: bool,
    program: &ProgramArg,
    database_url: &str,
) -> anyhow::Result<()> {
    use herald::domain::account::Role;
    use std::io::IsTerminal;
    let role = Role::parse(role).context("--role must be admin or viewer")?;
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {email}: "))?;
        let again = rpassword::prompt_password("Same password again: ")?;
        anyhow::ensure!(first == again, "the two passwords differ");
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    let (access, actor) = command_line_access(program, database_url).await?;
    let added = access
        .add_member(&actor, email, &password, role)
        .await
        .map_err(cli_error)?;
    if install_admin {
        access
            .set_install_admin(&herald::auth::InstallAdmin::command_line(), email, true)
            .await
            .map_err(cli_error)?;
    }
    let what = if added.new_account {
        "created"
    } else {
        "existing account added as"
    };
    eprintln!(
        "{what} {} {}{}",
        role.as_str(),
        added.member.user.email,
        if install_admin {
            " (install admin)"
        } else {
            ""
        }
    );
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing deliveries in flight");
}
