//! `clawfirst stdio`: MCP over standard input and output, for desktop clients that start their
//! servers themselves.
//!
//! Two modes, chosen automatically:
//! - **attach**: when `clawfirst up` is already running on the data directory, every JSON-RPC
//!   message is relayed to its HTTP endpoint with the demo agent's API key from `up.json`. The
//!   client sees the same sessions, ledger and wallet as HTTP clients.
//! - **standalone**: otherwise this process runs the stack itself (signer process, ledger,
//!   SQLite) and serves the tools directly, as the agent named by `stdio.agent_id`.
//!
//! # Security
//!
//! The stdio transport is local trust: whoever can start this process on this machine acts as
//! the configured agent. Standard output carries only MCP messages; logs go to standard error.

use std::path::Path;

use anyhow::{Context, Result, bail};
use clawfirst_core::secret::SecretString;
use rmcp::ServiceExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tracing::info;

use crate::datadir::DataDir;
use crate::mcp::{Identity, McpHandler};
use crate::up::{Stack, lock_data_dir};

/// Runs the stdio transport on a data directory.
///
/// # Errors
/// When neither mode can start.
pub async fn run(data_dir: &Path) -> Result<()> {
    let dir = DataDir::new(data_dir)?;
    if dir.is_initialized() && lock_data_dir(&dir)?.is_none() {
        return attach(&dir).await;
    }
    standalone(&dir).await
}

async fn standalone(dir: &DataDir) -> Result<()> {
    let (stack, _) = Stack::start(dir, None).await?;
    crate::up::ensure_demo_agent(&stack.services.store, &stack.config).await?;
    info!(agent.id = %stack.config.stdio_agent, "serving MCP over stdio");
    let handler = McpHandler::new(
        stack.services.mcp.clone(),
        Identity::Configured(stack.config.stdio_agent.clone()),
    );
    let served = handler.serve(rmcp::transport::stdio()).await;
    let result = match served {
        Ok(running) => running
            .waiting()
            .await
            .map(|_| ())
            .context("the stdio session failed"),
        Err(e) => Err(anyhow::anyhow!("cannot start the stdio session: {e}")),
    };
    stack.stop().await;
    result
}

/// Relays stdin lines to the running server and its answers to stdout.
async fn attach(dir: &DataDir) -> Result<()> {
    let up: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path("up.json"))
            .context("a server runs on the data directory but up.json is missing")?,
    )?;
    let url = up["mcp_url"]
        .as_str()
        .context("up.json has no mcp_url")?
        .to_owned();
    let key = SecretString::new(
        up["api_key"]
            .as_str()
            .context("up.json has no api_key")?
            .to_owned(),
    );
    info!(mcp.url = %url, "attaching to the running server");

    // Over HTTPS, trust the data directory's operator CA and present its operator
    // certificate, as the admin commands do.
    let http = if url.starts_with("https://") {
        let tls = crate::tls::operator::admin_client_tls(dir.root())?;
        reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .build()
            .context("cannot set up the HTTPS client")?
    } else {
        reqwest::Client::new()
    };
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdout = tokio::io::stdout();
    let mut protocol_version: Option<String> = None;
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let mut request = http
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .bearer_auth(key.expose())
            .body(line);
        if let Some(v) = &protocol_version {
            request = request.header("mcp-protocol-version", v);
        }
        let response = request
            .send()
            .await
            .context("the running server does not answer")?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            bail!("the running server refused the API key in up.json");
        }
        let is_sse = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let body = response.text().await?;
        let messages: Vec<String> = if is_sse {
            body.lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.trim().to_owned())
                .filter(|d| !d.is_empty())
                .collect()
        } else if body.trim().is_empty() {
            Vec::new()
        } else {
            vec![body.trim().to_owned()]
        };
        for message in messages {
            if protocol_version.is_none()
                && let Ok(value) = serde_json::from_str::<serde_json::Value>(&message)
                && let Some(v) = value["result"]["protocolVersion"].as_str()
            {
                protocol_version = Some(v.to_owned());
            }
            stdout.write_all(message.as_bytes()).await?;
            stdout.write_all(b"\n").await?;
            stdout.flush().await?;
        }
    }
    Ok(())
}
