//! The `banter` binary: reads settings, starts logging, runs the server
//! until SIGINT or SIGTERM, and exits 0 after a graceful shutdown.

use std::io::IsTerminal;
use std::process::ExitCode;

use banter::config::{AdminAction, Cli, Command, LogFormat};
use banter::store::Backend;
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    let command = cli.command.take();
    let settings = match cli.settings() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("banter: {e:#}");
            return ExitCode::from(2);
        }
    };
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|f| !f.trim().is_empty())
        .unwrap_or_else(|| settings.log.clone());
    let filter = match EnvFilter::try_new(&filter) {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("banter: invalid log filter {filter:?}: {e}");
            return ExitCode::from(2);
        }
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match settings.log_format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().with_current_span(false).init(),
    }

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("banter: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::Admin { action }) = command {
        return match runtime.block_on(administer(&settings, action)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                error!("{e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(Command::Invite { uses, days }) = command {
        return match runtime.block_on(make_invite(&settings, uses, days)) {
            Ok(code) => {
                println!("{code}");
                info!(uses, days, "made an invite code");
                ExitCode::SUCCESS
            }
            Err(e) => {
                error!("{e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(Command::Backup { path }) = command {
        let backend = Backend::from_settings(settings.store.as_deref(), &settings.data_dir);
        let db = match backend {
            Ok(Backend::Sqlite(db)) => db,
            Ok(Backend::Postgres(_)) => {
                error!("{}", banter::store::PG_BACKUP);
                return ExitCode::FAILURE;
            }
            Err(e) => {
                error!("{e:#}");
                return ExitCode::from(2);
            }
        };
        return match runtime.block_on(banter::store::backup_file(&db, &path)) {
            Ok(()) => {
                info!("backed up {} to {}", db.display(), path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                error!("backup failed: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(watch_signals(shutdown.clone()));
        info!(version = env!("CARGO_PKG_VERSION"), "starting banter");
        match banter::server::run(settings, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                error!("{e:#}");
                ExitCode::FAILURE
            }
        }
    })
}

/// The store a subcommand works on (the server may be running on it). Its
/// few writes are synced as they commit: it exits right after.
async fn open_store(settings: &banter::config::Settings) -> anyhow::Result<banter::store::Store> {
    use banter::store::{Store, Syncing};
    let backend = Backend::from_settings(settings.store.as_deref(), &settings.data_dir)?;
    let (store, writer) = Store::prepare_with(&backend, Syncing::Beside).await?;
    writer.start(|_, _| {});
    Ok(store)
}

/// `banter admin grant|revoke|list`.
async fn administer(
    settings: &banter::config::Settings,
    action: AdminAction,
) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let (name, admin) = match action {
        AdminAction::List => {
            for name in store.admin_names().await? {
                println!("{name}");
            }
            for name in &settings.server_admin {
                println!("{name} (--server-admin)");
            }
            return Ok(());
        }
        AdminAction::Grant { name } => (name, true),
        AdminAction::Revoke { name } => (name, false),
    };
    let account = banter_protocol::Nick::new(&name)
        .map_err(|e| anyhow::anyhow!("{name:?} is not an account name: {e}"))?;
    let named = account.clone();
    let exists = store
        .request(|reply| banter::store::Write::SetAdmin {
            account: named,
            admin,
            reply,
        })
        .await?;
    anyhow::ensure!(exists, "there is no account {account}");
    let done = if admin { "is now" } else { "is no longer" };
    info!("{account} {done} a server administrator (from its next login)");
    Ok(())
}

/// `banter invite`: stores a new code good for `uses` accounts for `days`.
async fn make_invite(
    settings: &banter::config::Settings,
    uses: u32,
    days: u32,
) -> anyhow::Result<String> {
    anyhow::ensure!(uses > 0 && days > 0, "--uses and --days must be at least 1");
    let store = open_store(settings).await?;
    let code = banter::auth::new_invite_code()?;
    let expires = banter::core::router::now_ms() + u64::from(days) * 24 * 3600 * 1000;
    let hash = banter::auth::token_hash(&code);
    store
        .request(|reply| banter::store::Write::AddInvite {
            hash,
            uses,
            expires,
            by: None,
            reply,
        })
        .await?;
    Ok(code)
}

/// The first SIGINT/SIGTERM starts a graceful shutdown; a second one
/// exits at once.
async fn watch_signals(shutdown: CancellationToken) {
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            warn!("cannot watch SIGTERM: {e}");
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    info!("shutdown requested (send the signal again to exit at once)");
    shutdown.cancel();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    warn!("second signal: exiting now");
    std::process::exit(130);
}
