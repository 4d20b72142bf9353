//! Starting a `clawfirst up` stack tuned for measurement.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::mcp::McpClient;

/// A running stack with one API key per agent.
#[derive(Debug)]
pub struct Stack {
    child: Child,
    url: String,
    keys: Vec<String>,
    recipients: Vec<String>,
    _dir: tempfile::TempDir,
}

fn bin_dir(given: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(d) = given {
        return Ok(d);
    }
    let exe = std::env::current_exe()?;
    exe.parent()
        .map(PathBuf::from)
        .context("no binary directory")
}

async fn start_up(
    bin: &std::path::Path,
    data: &std::path::Path,
    port: u16,
) -> Result<(Child, Value)> {
    let mut child = Command::new(bin.join("clawfirst"))
        .args([
            "up",
            "--json",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data)
        .env("CLAWFIRST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| {
            format!(
                "cannot start {}/clawfirst; build with --release",
                bin.display()
            )
        })?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = lines.next_line().await?.context("clawfirst up exited")?;
    Ok((child, serde_json::from_str(&line)?))
}

async fn stop_child(child: &mut Child) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status();
        if tokio::time::timeout(Duration::from_secs(20), child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = child.kill().await;
}

impl Stack {
    /// Starts a stack, raises its limits, and creates `agents` agents.
    pub async fn start(bin: Option<PathBuf>, synchronous: &str, agents: usize) -> Result<Self> {
        let bin = bin_dir(bin)?;
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        let port = free_port()?;

        // First start creates the data directory; then the limits are raised for measurement.
        let (mut child, _) = start_up(&bin, &data, port).await?;
        stop_child(&mut child).await;
        let config_path = data.join("clawfirst.toml");
        let config = std::fs::read_to_string(&config_path)?
            .replace(
                "tool_calls_per_minute = 6000",
                "tool_calls_per_minute = 100000000",
            )
            .replace(
                "payments_per_minute = 600",
                "payments_per_minute = 100000000",
            )
            .replace("open_sessions = 1000", "open_sessions = 100000000")
            .replace(
                "synchronous = \"full\"",
                &format!("synchronous = \"{synchronous}\""),
            );
        std::fs::write(&config_path, config)?;
        let policy_path = data.join("policy.toml");
        let policy = std::fs::read_to_string(&policy_path)?
            .replace("USDC = \"1000\"", "USDC = \"1000000\"")
            .replace("USDC = \"5000\"", "USDC = \"10000000\"");
        std::fs::write(&policy_path, policy)?;
        // The signer enforces its own floor, equal to the default caps: raise it alike.
        let signer_path = data.join("signer.toml");
        let signer = std::fs::read_to_string(&signer_path)?
            .replace("USDC = \"1000 USDC\"", "USDC = \"1000000 USDC\"")
            .replace("USDC = \"5000 USDC\"", "USDC = \"10000000 USDC\"");
        std::fs::write(&signer_path, signer)?;

        let (child, info) = start_up(&bin, &data, port).await?;
        let url = info["mcp_url"].as_str().context("no mcp_url")?.to_owned();
        let admin = info["admin_url"]
            .as_str()
            .context("no admin_url")?
            .to_owned();
        let token = info["admin_token"]
            .as_str()
            .context("no admin_token")?
            .to_owned();
        let http = reqwest::Client::new();
        let mut keys = Vec::new();
        for i in 0..agents {
            let created: Value = http
                .post(format!("{admin}/agents"))
                .bearer_auth(&token)
                .json(&serde_json::json!({ "agent_id": format!("bench-{i}") }))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            keys.push(
                created["api_key"]
                    .as_str()
                    .context("no api_key")?
                    .to_owned(),
            );
        }
        // Recipients whose token accounts exist after their first payment, as in steady use.
        let recipients = (0..agents).map(|i| recipient(i as u8)).collect();
        let stack = Self {
            child,
            url,
            keys,
            recipients,
            _dir: dir,
        };
        for i in 0..agents {
            stack
                .client(i)
                .await?
                .pay("0.01 USDC", 0)
                .await
                .context("warm-up payment")?;
        }
        Ok(stack)
    }

    /// A connected client for agent `i`.
    pub async fn client(&self, i: usize) -> Result<McpClient> {
        McpClient::connect(&self.url, &self.keys[i], &self.recipients[i]).await
    }

    /// Polls every session until finalized; returns how many are not.
    pub async fn wait_all_finalized(&self, sessions: &[(usize, String)]) -> Result<usize> {
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut clients = Vec::new();
        for i in 0..self.keys.len() {
            clients.push(self.client(i).await?);
        }
        let mut pending: Vec<(usize, String)> = sessions.to_vec();
        while !pending.is_empty() && Instant::now() < deadline {
            let mut still = Vec::new();
            for chunk in pending.chunks(256) {
                let checks = chunk.iter().map(|(i, id)| {
                    let c = clients[*i].clone();
                    let id = id.clone();
                    async move { (c.settlement_state(&id).await, id) }
                });
                for ((state, id), (i, _)) in futures::future::join_all(checks)
                    .await
                    .into_iter()
                    .zip(chunk)
                {
                    match state.as_deref() {
                        Ok("finalized") => {}
                        Ok("failed") | Ok("expired") | Ok("cancelled") | Ok("rejected") => {
                            bail!("session {id} ended {}", state.unwrap_or_default())
                        }
                        _ => still.push((*i, id)),
                    }
                }
            }
            pending = still;
            if !pending.is_empty() {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        Ok(pending.len())
    }

    /// Stops the stack.
    pub async fn stop(mut self) {
        stop_child(&mut self.child).await;
    }
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A deterministic valid address for recipient `i` (base58 of 32 bytes).
fn recipient(i: u8) -> String {
    let mut bytes = [0u8; 32];
    bytes[0] = 1;
    bytes[31] = i.wrapping_add(1);
    bs58::encode(bytes).into_string()
}
