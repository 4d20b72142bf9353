//! The `clawfirst` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::config::Config;
use crate::datadir::default_data_dir;
use crate::http::{HttpState, router};
use crate::runtime::Services;
use crate::up::{UpOptions, wait_for_signal};

mod agents;
mod approvals;
mod approver_files;
mod ca;
mod policy;

pub use approvals::SIGNER_APPROVERS_FILE;

/// ClawFirst: payments on Solana for AI agents, without keys in the agent's hands.
#[derive(Debug, Parser)]
#[command(name = "clawfirst", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run everything locally on embedded defaults: local ledger, SQLite, signer process, MCP
    /// over HTTP.
    Up {
        /// The data directory (default: $CLAWFIRST_DATA_DIR or ~/.local/share/clawfirst).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The address to listen on, for a new data directory (default 127.0.0.1:8402).
        #[arg(long)]
        listen: Option<String>,
        /// Print the connection details as one JSON line instead of the banner.
        #[arg(long)]
        json: bool,
    },
    /// Serve MCP over streamable HTTP from a configuration file; the signer must be running.
    Serve {
        /// The server configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Manage agents through the running server's admin API.
    Agents {
        #[command(subcommand)]
        command: agents::AgentsCommand,
    },
    /// The operator CA in the data directory, for trying mutual TLS: `init`, `server-cert`.
    Ca {
        #[command(subcommand)]
        command: ca::CaCommand,
    },
    /// Register approvers: people whose signed decisions release payments that need approval.
    Approvers {
        #[command(subcommand)]
        command: approvals::ApproversCommand,
    },
    /// Payments waiting for human approval: list, approve, reject.
    Approvals {
        #[command(subcommand)]
        command: approvals::ApprovalsCommand,
    },
    /// The approval policy: check a file, explain a decision, reload.
    Policy {
        #[command(subcommand)]
        command: policy::PolicyCommand,
    },
    /// Serve MCP over stdio: attaches to a running `clawfirst up` on the data directory, or
    /// runs the stack itself.
    Stdio {
        /// The data directory (default as for `up`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

/// Parses arguments, runs the command, prints the error chain on failure.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    crate::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("clawfirst: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clawfirst: error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Libraries that log whole requests or responses at debug; capped at info unless the filter
/// names them, so raising the level to debug never puts payloads in the log.
const PAYLOAD_LOGGERS: [&str; 3] = ["rmcp", "hyper", "h2"];

fn init_tracing() {
    let requested = std::env::var("CLAWFIRST_LOG").unwrap_or_else(|_| "info".to_owned());
    let mut directives = requested.clone();
    for crate_name in PAYLOAD_LOGGERS {
        if !requested.contains(crate_name) {
            directives.push_str(&format!(",{crate_name}=info"));
        }
    }
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs go to standard error, so standard output stays clean for stdio MCP and --json.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Up {
            data_dir,
            listen,
            json,
        } => {
            crate::up::run(UpOptions {
                data_dir: data_dir.unwrap_or_else(default_data_dir),
                listen,
                json,
            })
            .await
        }
        Command::Serve { config } => serve(&config).await,
        Command::Agents { command } => agents::run(command).await,
        Command::Ca { command } => ca::run(command),
        Command::Approvers { command } => approvals::approvers(command).await,
        Command::Approvals { command } => approvals::approvals(command).await,
        Command::Policy { command } => policy::run(command).await,
        Command::Stdio { data_dir } => {
            crate::stdio::run(&data_dir.unwrap_or_else(default_data_dir)).await
        }
    }
}

async fn serve(path: &std::path::Path) -> Result<()> {
    let config = Config::load(path)?;
    let tls = match &config.tls {
        Some(tls) => Some((tls, crate::tls::server_config(tls)?)),
        None => None,
    };
    let mut services = Services::start(&config, None).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let shutdown = CancellationToken::new();
    let state = HttpState {
        store: services.store.clone(),
        payments: services.payments.clone(),
        admin_token_sha256: config.admin_token_sha256,
        auth: services.auth.clone(),
        delegation_key: services.delegation_key.clone(),
    };
    let app = router(
        state,
        services.mcp.clone(),
        config.allowed_hosts.clone(),
        shutdown.clone(),
    );
    let scheme = if tls.is_some() { "HTTPS" } else { "HTTP" };
    tracing::info!(listen = %config.listen, "serving MCP over {scheme}");
    let stop = shutdown.clone();
    let result = crate::tls::serve(listener, app, tls, services.store.clone(), async move {
        wait_for_signal().await;
        stop.cancel();
    })
    .await
    .context("the HTTP server failed");
    services.stop().await;
    result
}
