//! A minimal MCP client over streamable HTTP: JSON-RPC requests with JSON responses, as the
//! server's stateless mode serves them.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// One agent's connection.
#[derive(Clone, Debug)]
pub struct McpClient {
    http: reqwest::Client,
    url: String,
    api_key: String,
    protocol_version: String,
    recipient: String,
}

impl McpClient {
    /// Connects and performs the `initialize` handshake.
    pub async fn connect(url: &str, api_key: &str, recipient: &str) -> Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(4)
            .build()?;
        let mut client = Self {
            http,
            url: url.to_owned(),
            api_key: api_key.to_owned(),
            protocol_version: "2025-06-18".to_owned(),
            recipient: recipient.to_owned(),
        };
        let init = client
            .rpc(
                "initialize",
                json!({
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": { "name": "clawfirst-bench", "version": "0.1.0" }
                }),
            )
            .await?;
        if let Some(v) = init["protocolVersion"].as_str() {
            client.protocol_version = v.to_owned();
        }
        Ok(client)
    }

    async fn rpc(&self, method: &str, params: Value) -> Result<Value> {
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        let response = self
            .http
            .post(&self.url)
            .bearer_auth(&self.api_key)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", &self.protocol_version)
            .json(&body)
            .send()
            .await
            .context("request failed")?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("HTTP {status}: {text}");
        }
        let payload = text
            .lines()
            .find_map(|l| l.strip_prefix("data:"))
            .unwrap_or(&text);
        let value: Value =
            serde_json::from_str(payload.trim()).context("invalid JSON-RPC response")?;
        if let Some(err) = value.get("error") {
            bail!("JSON-RPC error: {err}");
        }
        Ok(value["result"].clone())
    }

    /// Calls a tool and returns the envelope's `result`, failing on an error envelope.
    pub async fn tool(&self, name: &str, arguments: Value) -> Result<Value> {
        let result = self
            .rpc(
                "tools/call",
                json!({ "name": name, "arguments": arguments }),
            )
            .await?;
        let envelope = &result["structuredContent"];
        if envelope["success"] != Value::Bool(true) {
            bail!("{name} failed: {}", envelope["error"]);
        }
        Ok(envelope["result"].clone())
    }

    /// One payment: initialize, then authorize; returns the session id.
    pub async fn pay(&self, amount: &str, n: u64) -> Result<String> {
        let init = self
            .tool(
                "x402.initialize_payment",
                json!({
                    "amount": amount,
                    "recipient": self.recipient,
                    "purpose": format!("bench {n}"),
                }),
            )
            .await?;
        let id = init["session_id"]
            .as_str()
            .context("no session_id")?
            .to_owned();
        let auth = self
            .tool("x402.authorize_transaction", json!({ "session_id": id }))
            .await?;
        if auth["signature"].as_str().is_none() {
            bail!("authorize returned no signature: {auth}");
        }
        Ok(id)
    }

    /// The session's state after a settlement check.
    pub async fn settlement_state(&self, id: &str) -> Result<String> {
        let r = self
            .tool("x402.verify_settlement", json!({ "session_id": id }))
            .await?;
        Ok(r["state"].as_str().unwrap_or_default().to_owned())
    }
}
