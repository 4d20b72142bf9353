//! `clawfirst up`: the whole stack on embedded defaults.
//!
//! Creates (or reopens) the data directory, starts `clawfirst-signer` as its own process,
//! opens the local ledger and SQLite, creates the demo agent and its API key on first start,
//! serves MCP over HTTP, writes `up.json` and prints a client configuration. Ctrl-C (or
//! SIGTERM) stops the HTTP server, the watcher and the signer, in that order.

use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result, bail};
use clawfirst_core::AgentId;
use clawfirst_core::secret::SecretString;
use clawfirst_store::{AuditEvent, NewApiKey, Store};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::api_key;
use crate::config::Config;
use crate::datadir::{DataDir, replace_secret};
use crate::http::{HttpState, router};
use crate::runtime::{DemoFunding, Services};
use crate::signer_process::SignerProcess;

/// The demo agent `up` creates.
pub const DEMO_AGENT: &str = "demo-agent";

/// Options of `clawfirst up`.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// The data directory.
    pub data_dir: std::path::PathBuf,
    /// Overrides `server.listen` on first start.
    pub listen: Option<String>,
    /// Print `up.json` as JSON instead of the human banner.
    pub json: bool,
}

/// Holds the data directory's exclusive lock while the stack runs.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Takes the data directory's lock, or says another process holds it.
///
/// # Errors
/// When the lock is held or the file cannot be opened.
pub fn lock_data_dir(dir: &DataDir) -> Result<Option<DataDirLock>> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.path("clawfirst.lock"))
        .context("cannot open the data directory lock")?;
    match file.try_lock() {
        Ok(()) => Ok(Some(DataDirLock { _file: file })),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e).context("cannot lock the data directory"),
    }
}

/// The running stack: signer process, services, lock.
#[derive(Debug)]
pub struct Stack {
    /// The configuration.
    pub config: Config,
    /// The services.
    pub services: Services,
    signer: SignerProcess,
    _lock: DataDirLock,
}

impl Stack {
    /// Starts the signer and the services on a data directory, initializing it first if new.
    ///
    /// # Errors
    /// When another process runs on the directory, or anything fails to start.
    pub async fn start(dir: &DataDir, listen: Option<&str>) -> Result<(Self, bool)> {
        let first_start = !dir.is_initialized();
        if first_start {
            dir.initialize(listen.unwrap_or("127.0.0.1:8402"))?;
        }
        // Data directories made before delegation tokens existed get their key now.
        crate::datadir::ensure_delegation_key(&dir.path("delegation.key"))?;
        let Some(lock) = lock_data_dir(dir)? else {
            bail!(
                "another clawfirst process is running on {}; stop it first, or use \
                 `clawfirst stdio` to attach to it",
                dir.root().display()
            );
        };
        let config = Config::load(&dir.path("clawfirst.toml"))?;
        let signer = SignerProcess::start(
            &dir.path("signer.toml"),
            &dir.path("signer.log"),
            &config.signer_socket,
        )
        .await?;
        let demo = AgentId::new(DEMO_AGENT).map_err(|e| anyhow::anyhow!("{e}"))?;
        let fund = first_start.then_some((&demo, DemoFunding::DEFAULT));
        let services = match Services::start(&config, fund).await {
            Ok(s) => s,
            Err(e) => {
                let mut signer = signer;
                signer.stop().await;
                return Err(e);
            }
        };
        Ok((
            Self {
                config,
                services,
                signer,
                _lock: lock,
            },
            first_start,
        ))
    }

    /// Stops the services and the signer.
    pub async fn stop(mut self) {
        self.services.stop().await;
        self.signer.stop().await;
    }
}

/// Creates the demo agent and its API key if they do not exist; returns the key when new.
///
/// # Errors
/// Storage failures.
pub async fn ensure_demo_agent(store: &Store, config: &Config) -> Result<Option<SecretString>> {
    let id = AgentId::new(DEMO_AGENT).map_err(|e| anyhow::anyhow!("{e}"))?;
    if store.agent(&id).await?.is_some() {
        return Ok(None);
    }
    let created =
        AuditEvent::operator("up", "agent.created").details(json!({ "agent_id": DEMO_AGENT }));
    store
        .create_agent(&id, &config.default_key_id, created)
        .await?;
    issue_key(store, &id).await.map(Some)
}

/// Issues a new API key for an agent, recording only its lookup id.
async fn issue_key(store: &Store, agent_id: &AgentId) -> Result<SecretString> {
    let key = api_key::generate();
    let issued = AuditEvent::operator("up", "agent.key_issued")
        .details(json!({ "agent_id": agent_id.as_str(), "api_key_id": key.lookup_id }));
    let new = NewApiKey {
        key_id_public: key.lookup_id.clone(),
        agent_id: agent_id.clone(),
        hash: key.hash,
    };
    store.add_api_key(new, issued).await?;
    Ok(key.key)
}

/// Runs `clawfirst up` until Ctrl-C.
///
/// # Errors
/// When the stack cannot start or the port is taken.
pub async fn run(options: UpOptions) -> Result<()> {
    let dir = DataDir::new(&options.data_dir)?;
    let (stack, first_start) = Stack::start(&dir, options.listen.as_deref()).await?;

    let tls = match stack.config.tls.as_ref().map(crate::tls::server_config) {
        None => None,
        Some(Ok(server)) => Some(server),
        Some(Err(e)) => {
            stack.stop().await;
            return Err(e.into());
        }
    };
    let tls = stack.config.tls.as_ref().zip(tls);
    let new_key = ensure_demo_agent(&stack.services.store, &stack.config).await?;
    let listener = tokio::net::TcpListener::bind(stack.config.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; is another server using it?",
                stack.config.listen
            )
        })?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let base = format!("{scheme}://{}", stack.config.listen);
    let up_json = dir.path("up.json");
    let (api_key, key_is_new) = match new_key {
        Some(key) => (key, true),
        None => match previous_api_key(&up_json) {
            Some(key) => (key, false),
            None => (rotate_demo_key(&stack.services.store).await?, true),
        },
    };
    let wallet = stack
        .services
        .payments
        .wallet_address(&stack.config.default_key_id);
    let summary = json!({
        "mcp_url": format!("{base}/mcp"),
        "agent_id": DEMO_AGENT,
        "api_key": api_key.expose(),
        "admin_url": format!("{base}/admin/v1"),
        "admin_token": dir.admin_token()?.expose(),
        "data_dir": dir.root(),
        "network": "localnet",
        "wallet": wallet.map(|a| a.to_string()),
    });
    replace_secret(&up_json, serde_json::to_string_pretty(&summary)?.as_bytes())?;

    let shutdown = CancellationToken::new();
    let state = HttpState {
        store: stack.services.store.clone(),
        payments: stack.services.payments.clone(),
        admin_token_sha256: stack.config.admin_token_sha256,
        auth: stack.services.auth.clone(),
        delegation_key: stack.services.delegation_key.clone(),
    };
    let app = router(
        state,
        stack.services.mcp.clone(),
        stack.config.allowed_hosts.clone(),
        shutdown.clone(),
    );

    if options.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print_banner(&summary, &up_json, first_start, key_is_new, &dir);
    }
    info!(listen = %stack.config.listen, "serving MCP over {scheme}");

    let stop = shutdown.clone();
    let store = stack.services.store.clone();
    let server = crate::tls::serve(listener, app, tls, store, async move {
        wait_for_signal().await;
        stop.cancel();
    });
    let result = server.await.context("the HTTP server failed");
    eprintln!("clawfirst: stopping");
    stack.stop().await;
    result
}

/// The demo agent's key from a previous `up.json`, if there is one.
fn previous_api_key(up_json: &Path) -> Option<SecretString> {
    let text = std::fs::read_to_string(up_json).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value["api_key"]
        .as_str()
        .map(|s| SecretString::new(s.to_owned()))
}

/// Revokes the demo agent's keys and issues a new one, when no earlier key can be shown.
async fn rotate_demo_key(store: &Store) -> Result<SecretString> {
    let id = AgentId::new(DEMO_AGENT).map_err(|e| anyhow::anyhow!("{e}"))?;
    let revoked =
        AuditEvent::operator("up", "agent.keys_revoked").details(json!({ "agent_id": DEMO_AGENT }));
    store.revoke_api_keys(&id, revoked).await?;
    issue_key(store, &id).await
}

/// Prints the connection details. The API key is printed in full only when it was just issued;
/// afterwards it is only in `up.json`, readable by its owner alone.
fn print_banner(
    summary: &serde_json::Value,
    up_json: &Path,
    first_start: bool,
    key_is_new: bool,
    dir: &DataDir,
) {
    let url = summary["mcp_url"].as_str().unwrap_or_default();
    let key = if key_is_new {
        summary["api_key"].as_str().unwrap_or_default().to_owned()
    } else {
        format!("<api_key from {}>", up_json.display())
    };
    let client = json!({
        "mcpServers": {
            "clawfirst": {
                "type": "http",
                "url": url,
                "headers": { "Authorization": format!("Bearer {key}") }
            }
        }
    });
    let stdio = json!({
        "mcpServers": {
            "clawfirst": {
                "command": "clawfirst",
                "args": ["stdio", "--data-dir", dir.root()]
            }
        }
    });
    println!(
        "ClawFirst is up{}.",
        if first_start {
            " (new data directory)"
        } else {
            " (resumed)"
        }
    );
    println!();
    println!("  MCP endpoint   {url}");
    println!(
        "  agent          {}",
        summary["agent_id"].as_str().unwrap_or_default()
    );
    println!(
        "  wallet         {} (localnet)",
        summary["wallet"].as_str().unwrap_or("unavailable")
    );
    println!(
        "  admin API      {}",
        summary["admin_url"].as_str().unwrap_or_default()
    );
    println!("  data dir       {}", dir.root().display());
    println!("  credentials    {} (mode 0600)", up_json.display());
    println!();
    println!("MCP client configuration (streamable HTTP):");
    println!(
        "{}",
        serde_json::to_string_pretty(&client).unwrap_or_default()
    );
    println!();
    println!("Or over stdio, attaching to this server while it runs:");
    println!(
        "{}",
        serde_json::to_string_pretty(&stdio).unwrap_or_default()
    );
    println!();
    println!("Press Ctrl-C to stop.");
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
