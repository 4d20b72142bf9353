//! The server's configuration: a TOML file parsed once into validated types.
//!
//! [`RawConfig`] mirrors the file; [`Config::load`] checks every field and resolves relative
//! paths against the file's directory. Nothing else reads the file or the environment.
//!
//! | key | default | security consequence |
//! |---|---|---|
//! | `network` | `localnet` | `localnet` runs an embedded ledger; nothing real moves |
//! | `server.listen` | `127.0.0.1:8402` | listening beyond loopback exposes the MCP endpoint |
//! | `server.allowed_hosts` | loopback names | Host header allowlist against DNS rebinding |
//! | `server.tool_naming` | `dotted` | cosmetic |
//! | `server.admin_token_sha256` | none | admin API disabled without it |
//! | `rate_limits.tool_calls_per_minute` | 6000 | per agent; see [`rate_limits`] |
//! | `rate_limits.payments_per_minute` | 600 | payments an agent may start per minute |
//! | `rate_limits.open_sessions` | 1000 | payment sessions an agent may have open |
//! | `auth.delegation_key_file` | `delegation.key` | signs delegation tokens; see [`auth`] |
//! | `auth.jwt.*` | off | JWT bearer tokens from an identity provider; see [`auth`] |
//! | `tls.cert_file`, `tls.key_file` | none | HTTPS (TLS 1.3) instead of plain HTTP; see [`tls`] |
//! | `tls.client_ca_file` | none | agents may authenticate by client certificates it issued |
//! | `tls.client_auth` | `required` | `optional` also lets clients without a certificate in |
//! | `tls.client_identity` | `san_uri` | where a client certificate names its agent |
//! | `storage.sqlite` | `clawfirst.sqlite` | holds sessions, credentials' hashes, audit |
//! | `storage.synchronous` | `full` | `normal` may lose the last commits on power loss |
//! | `signer.socket` | `signer.sock` | the only way to the wallet keys |
//! | `signer.grant_key_file` | `grant.key` | its holder can authorize up to the signer's floor |
//! | `signer.default_key_id` | `default` | the wallet key of agents without their own |
//! | `signer.tls_address` | none | a signer's TLS listener, `host:port`; replaces the socket |
//! | `signer.tls_ca_file` | none | the only CA trusted for the signer's certificate |
//! | `signer.tls_server_name` | none | the name the signer's certificate must carry |
//! | `signer.tls_cert_file` | none | this server's client certificate, as the signer allows |
//! | `signer.tls_key_file` | none | its key (0600): its holder reaches the signer as this server |
//! | `sessions.ttl_seconds` | 900 | how long an unsubmitted session lives |
//! | `fees.compute_unit_price_micro_lamports` | 1000 | priority fee per compute unit |
//! | `localnet.state` | `ledger.sqlite` | the embedded ledger's state |
//! | `localnet.slot_interval_ms` | 100 | simulated slot time |
//! | `policy.file` | `policy.toml` | the approval policy; reloaded when it changes |
//! | `approvals.webhook_url` | none | a JSON POST per pending approval and decision |
//! | `approvals.webhook_secret_file` | none | HMAC key of the webhook's signature header |
//! | `payees."e-mail"` | none | e-mail recipients agents may name |
//! | `stdio.agent_id` | `demo-agent` | the identity of the stdio transport (local trust) |
//!
//! The policy file's own reference (caps, lists, windows, tiers, approver groups) is in the
//! `clawfirst_policy` crate. Without `approvals.webhook_secret_file` notifications are sent
//! unsigned, and a receiver cannot tell them from forgeries.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clawfirst_core::recipient::PayeeDirectory;
use clawfirst_core::{Address, AgentId, KeyId};
use serde::Deserialize;

use crate::rate_limit::RateLimits;
use crate::signer_client::SignerTls;
use crate::tools::schema::ToolNaming;

pub mod auth;
pub mod rate_limits;
pub mod tls;

pub use auth::{AuthConfig, JwtConfig};
pub use tls::{ClientAuth, ClientCertificates, TlsConfig};

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("configuration file {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's description, naming the key.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("configuration key {key}: {message}")]
    Invalid {
        /// The dotted key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(key: impl Into<String>, message: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.to_string(),
    }
}

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    network: Option<String>,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    storage: RawStorage,
    #[serde(default)]
    signer: RawSigner,
    #[serde(default)]
    sessions: RawSessions,
    #[serde(default)]
    fees: RawFees,
    #[serde(default)]
    localnet: RawLocalnet,
    #[serde(default)]
    policy: RawPolicy,
    #[serde(default)]
    approvals: RawApprovals,
    #[serde(default)]
    payees: BTreeMap<String, String>,
    #[serde(default)]
    stdio: RawStdio,
    #[serde(default)]
    rate_limits: rate_limits::RawRateLimits,
    #[serde(default)]
    auth: auth::RawAuth,
    #[serde(default)]
    tls: tls::RawTls,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    allowed_hosts: Option<Vec<String>>,
    tool_naming: Option<ToolNaming>,
    admin_token_sha256: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    sqlite: Option<PathBuf>,
    synchronous: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSigner {
    socket: Option<PathBuf>,
    grant_key_file: Option<PathBuf>,
    default_key_id: Option<String>,
    tls_address: Option<String>,
    tls_ca_file: Option<PathBuf>,
    tls_server_name: Option<String>,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSessions {
    ttl_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFees {
    compute_unit_price_micro_lamports: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocalnet {
    state: Option<PathBuf>,
    slot_interval_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApprovals {
    webhook_url: Option<String>,
    webhook_secret_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStdio {
    agent_id: Option<String>,
}

/// SQLite durability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Every commit reaches the disk before it is acknowledged.
    Full,
    /// Survives a process crash; the last commits may be lost on power loss.
    Normal,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The directory relative paths were resolved against.
    pub base_dir: PathBuf,
    /// Where the MCP endpoint listens.
    pub listen: SocketAddr,
    /// Host header allowlist.
    pub allowed_hosts: Vec<String>,
    /// Tool name spelling.
    pub tool_naming: ToolNaming,
    /// SHA-256 of the admin token; the admin API is off without it.
    pub admin_token_sha256: Option<[u8; 32]>,
    /// Per-agent rate limits.
    pub rate_limits: RateLimits,
    /// Delegation tokens and JWT bearer tokens.
    pub auth: AuthConfig,
    /// HTTPS and client certificates; plain HTTP when absent.
    pub tls: Option<TlsConfig>,
    /// The SQLite database.
    pub sqlite_path: PathBuf,
    /// Its durability.
    pub durability: Durability,
    /// The signer's socket.
    pub signer_socket: PathBuf,
    /// The signer's TLS listener; when set, the signer is reached there instead of the socket.
    pub signer_tls: Option<SignerTls>,
    /// The grant key file.
    pub grant_key_file: PathBuf,
    /// The wallet key of agents without their own.
    pub default_key_id: KeyId,
    /// Session lifetime.
    pub session_ttl_ms: u64,
    /// Priority fee.
    pub compute_unit_price_micro_lamports: u64,
    /// Embedded ledger state.
    pub localnet_state: PathBuf,
    /// Simulated slot time.
    pub slot_interval_ms: u64,
    /// The approval policy file.
    pub policy_file: PathBuf,
    /// Where approval notifications go.
    pub webhook_url: Option<reqwest::Url>,
    /// The webhook's HMAC key file.
    pub webhook_secret_file: Option<PathBuf>,
    /// E-mail payees.
    pub payees: PayeeDirectory,
    /// The stdio transport's agent.
    pub stdio_agent: AgentId,
}

impl Config {
    /// Reads and validates a configuration file.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file or key at fault.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let raw: RawConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Self::from_raw(raw, &base)
    }

    /// Validates a parsed file.
    ///
    /// # Errors
    /// A [`ConfigError::Invalid`] naming the key at fault.
    pub fn from_raw(raw: RawConfig, base_dir: &Path) -> Result<Self, ConfigError> {
        let resolve = |p: Option<PathBuf>, default: &str| {
            let p = p.unwrap_or_else(|| PathBuf::from(default));
            if p.is_absolute() { p } else { base_dir.join(p) }
        };

        match raw.network.as_deref() {
            None | Some("localnet") => {}
            Some(other) => {
                return Err(invalid(
                    "network",
                    format!("{other:?} is not available yet; only \"localnet\" is supported"),
                ));
            }
        }

        let listen = raw.server.listen.as_deref().unwrap_or("127.0.0.1:8402");
        let listen: SocketAddr = listen
            .parse()
            .map_err(|_| invalid("server.listen", "must be an IP:port address"))?;
        let admin_token_sha256 = raw
            .server
            .admin_token_sha256
            .map(|h| {
                let mut out = [0u8; 32];
                hex::decode_to_slice(&h, &mut out)
                    .map(|()| out)
                    .map_err(|_| invalid("server.admin_token_sha256", "must be 64 hex digits"))
            })
            .transpose()?;
        let rate_limits = rate_limits::build(raw.rate_limits)?;
        let auth = auth::build(raw.auth, base_dir)?;

        let durability = match raw.storage.synchronous.as_deref() {
            None | Some("full") => Durability::Full,
            Some("normal") => Durability::Normal,
            Some(_) => return Err(invalid("storage.synchronous", "must be full or normal")),
        };

        let default_key_id = KeyId::new(raw.signer.default_key_id.as_deref().unwrap_or("default"))
            .map_err(|e| invalid("signer.default_key_id", e))?;
        let signer_tls = SignerTls::from_keys(
            raw.signer.tls_address,
            raw.signer.tls_ca_file,
            raw.signer.tls_server_name,
            raw.signer.tls_cert_file,
            raw.signer.tls_key_file,
            |p| resolve(Some(p), ""),
        )
        .map_err(|(key, message)| invalid(key, message))?;

        let ttl = raw.sessions.ttl_seconds.unwrap_or(900);
        if !(10..=86_400).contains(&ttl) {
            return Err(invalid(
                "sessions.ttl_seconds",
                "must be between 10 and 86400",
            ));
        }
        let price = raw.fees.compute_unit_price_micro_lamports.unwrap_or(1000);
        if price > 5_000_000 {
            return Err(invalid(
                "fees.compute_unit_price_micro_lamports",
                "must be at most 5000000",
            ));
        }
        let slot_interval_ms = raw.localnet.slot_interval_ms.unwrap_or(100);
        if !(1..=10_000).contains(&slot_interval_ms) {
            return Err(invalid(
                "localnet.slot_interval_ms",
                "must be between 1 and 10000",
            ));
        }

        let webhook_url = raw
            .approvals
            .webhook_url
            .as_deref()
            .map(|u| {
                let url =
                    reqwest::Url::parse(u).map_err(|e| invalid("approvals.webhook_url", e))?;
                match url.scheme() {
                    "http" | "https" => Ok(url),
                    _ => Err(invalid(
                        "approvals.webhook_url",
                        "must be an http or https URL",
                    )),
                }
            })
            .transpose()?;
        let webhook_secret_file = raw
            .approvals
            .webhook_secret_file
            .map(|p| resolve(Some(p), ""));
        let payees = build_payees(raw.payees)?;
        let stdio_agent = AgentId::new(raw.stdio.agent_id.as_deref().unwrap_or("demo-agent"))
            .map_err(|e| invalid("stdio.agent_id", e))?;

        Ok(Self {
            base_dir: base_dir.to_owned(),
            listen,
            allowed_hosts: raw
                .server
                .allowed_hosts
                .unwrap_or_else(|| vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]),
            tool_naming: raw.server.tool_naming.unwrap_or_default(),
            admin_token_sha256,
            rate_limits,
            auth,
            tls: tls::build(raw.tls, base_dir)?,
            sqlite_path: resolve(raw.storage.sqlite, "clawfirst.sqlite"),
            durability,
            signer_socket: resolve(raw.signer.socket, "signer.sock"),
            signer_tls,
            grant_key_file: resolve(raw.signer.grant_key_file, "grant.key"),
            default_key_id,
            session_ttl_ms: ttl * 1000,
            compute_unit_price_micro_lamports: price,
            localnet_state: resolve(raw.localnet.state, "ledger.sqlite"),
            slot_interval_ms,
            policy_file: resolve(raw.policy.file, "policy.toml"),
            webhook_url,
            webhook_secret_file,
            payees,
            stdio_agent,
        })
    }
}

fn build_payees(raw: BTreeMap<String, String>) -> Result<PayeeDirectory, ConfigError> {
    let mut entries = Vec::new();
    for (email, address) in raw {
        let key = format!("payees.{email:?}");
        let address = Address::parse(&address).map_err(|e| invalid(&key, e))?;
        entries.push((email, address));
    }
    PayeeDirectory::new(entries).map_err(|e| invalid("payees", e))
}

#[cfg(test)]
mod tests;
