//! Operator commands that act through the running server's admin API, so their effects are
//! immediate and audited: `clawfirst agents add|list`.
//!
//! The admin endpoint and token come from the data directory's `up.json`; an `https` endpoint
//! is reached as [`crate::tls::operator::admin_client_tls`] says. An approver on their own
//! machine has neither: [`AdminEndpoint::as_approver`] signs each request with their key
//! instead, which admits them to the approval routes only.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clawfirst_core::approval::ApproverKey;
use clawfirst_core::now_ms;
use clawfirst_core::secret::SecretString;
use serde_json::{Value, json};

/// Where and how to reach the admin API.
#[derive(Debug)]
pub struct AdminEndpoint {
    url: String,
    auth: Credential,
    /// Where to find the operator CA for an `https` endpoint.
    tls: TlsTrust,
}

/// How requests prove who sends them.
#[derive(Debug)]
enum Credential {
    /// The admin token.
    Token(SecretString),
    /// An approver's signature on each request.
    Approver { name: String, key: Box<ApproverKey> },
}

/// What an `https` endpoint is trusted by.
#[derive(Debug)]
enum TlsTrust {
    /// The data directory's operator CA, presenting an operator certificate.
    DataDir(PathBuf),
    /// A CA certificate file (PEM), presenting no certificate.
    CaFile(Option<PathBuf>),
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
            auth: Credential::Token(SecretString::new(token.to_owned())),
            tls: TlsTrust::DataDir(dir.to_owned()),
        })
    }

    /// An approver's own access to the approval routes at `url` (the admin API's base, ending
    /// in `/admin/v1`), each request signed with `key`; over https, the server's certificate
    /// must chain to the PEM CA in `ca_file`.
    ///
    /// # Errors
    /// When the URL is not http(s).
    pub fn as_approver(
        url: &str,
        name: &str,
        key: ApproverKey,
        ca_file: Option<PathBuf>,
    ) -> Result<Self> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("--server {url:?}: must be an http:// or https:// URL ending in /admin/v1");
        }
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            auth: Credential::Approver {
                name: name.to_owned(),
                key: Box::new(key),
            },
            tls: TlsTrust::CaFile(ca_file),
        })
    }

    fn client(&self) -> Result<reqwest::Client> {
        if !self.url.starts_with("https://") {
            return Ok(reqwest::Client::new());
        }
        let builder = match &self.tls {
            TlsTrust::DataDir(dir) => reqwest::Client::builder()
                .use_preconfigured_tls(crate::tls::operator::admin_client_tls(dir)?),
            TlsTrust::CaFile(None) => reqwest::Client::builder(),
            TlsTrust::CaFile(Some(path)) => {
                let pem = std::fs::read(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let ca = reqwest::Certificate::from_pem(&pem)
                    .with_context(|| format!("{} is not a PEM certificate", path.display()))?;
                reqwest::Client::builder()
                    .use_rustls_tls()
                    .add_root_certificate(ca)
            }
        };
        builder.build().context("cannot set up the admin client")
    }

    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let client = self.client()?;
        let url = reqwest::Url::parse(&format!("{}{path}", self.url))
            .with_context(|| format!("{}{path} is not a URL", self.url))?;
        let target = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let authorization = match &self.auth {
            Credential::Token(token) => format!("Bearer {}", token.expose()),
            Credential::Approver { name, key } => {
                key.sign_request(name, method.as_str(), &target, now_ms())
            }
        };
        let mut request = client
            .request(method, url)
            .header(reqwest::header::AUTHORIZATION, authorization);
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
