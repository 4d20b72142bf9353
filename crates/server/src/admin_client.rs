//! Operator commands that act through the running server's admin API, so their effects are
//! immediate and audited: `clawfirst agents add|list`.
//!
//! The admin endpoint and token come from the data directory's `up.json`; an `https` endpoint
//! is reached as [`crate::tls::operator::admin_client_tls`] says.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clawfirst_core::secret::SecretString;
use serde_json::{Value, json};

/// Where and how to reach the admin API.
#[derive(Debug)]
pub struct AdminEndpoint {
    url: String,
    token: SecretString,
    data_dir: PathBuf,
}

impl AdminEndpoint {
    /// Reads `up.json` in a data directory.
    ///
    /// # Errors
    /// When `up.json` is missing or incomplete.
    pub fn from_data_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("up.json");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {}; start the server with `clawfirst up` first",
                path.display()
            )
        })?;
        let value: Value = serde_json::from_str(&text).context("up.json is not valid JSON")?;
        let url = value["admin_url"]
            .as_str()
            .context("up.json has no admin_url")?
            .to_owned();
        let token = value["admin_token"]
            .as_str()
            .context("up.json has no admin_token")?;
        Ok(Self {
            url,
            token: SecretString::new(token.to_owned()),
            data_dir: dir.to_owned(),
        })
    }

    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let client = if self.url.starts_with("https://") {
            let tls = crate::tls::operator::admin_client_tls(&self.data_dir)?;
            reqwest::Client::builder()
                .use_preconfigured_tls(tls)
                .build()
                .context("cannot set up the admin client")?
        } else {
            reqwest::Client::new()
        };
        let mut request = client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(self.token.expose());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| {
            format!(
                "the admin API at {} does not answer; is `clawfirst up` running?",
                self.url
            )
        })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or(text);
            bail!("the admin API refused: {status}: {message}");
        }
        serde_json::from_str(&text).context("the admin API answered with invalid JSON")
    }

    /// Creates an agent and returns its details, with the API key shown once.
    ///
    /// # Errors
    /// When the server refuses or cannot be reached.
    pub async fn add_agent(&self, agent_id: &str) -> Result<Value> {
        self.request(
            reqwest::Method::POST,
            "/agents",
            Some(json!({ "agent_id": agent_id })),
        )
        .await
    }

    /// GET on an admin path (below `/admin/v1`).
    ///
    /// # Errors
    /// When the server refuses or cannot be reached.
    pub async fn get(&self, path: &str) -> Result<Value> {
        self.request(reqwest::Method::GET, path, None).await
    }

    /// POST of a JSON body on an admin path (below `/admin/v1`).
    ///
    /// # Errors
    /// When the server refuses or cannot be reached.
    pub async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.request(reqwest::Method::POST, path, Some(body)).await
    }

    /// Lists agents.
    ///
    /// # Errors
    /// When the server refuses or cannot be reached.
    pub async fn list_agents(&self) -> Result<Value> {
        self.request(reqwest::Method::GET, "/agents", None).await
    }
}
