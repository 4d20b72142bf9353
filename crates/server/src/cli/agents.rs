//! `clawfirst agents add|list|rotate|revoke|token|revoke-token|pin-cert`: agents and their
//! credentials, through the running server's admin API.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

use crate::datadir::default_data_dir;

/// `clawfirst agents ...`
#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// Create an agent paying from the default wallet; prints its API key once. With --mtls,
    /// also issues it a client certificate from the data directory's operator CA.
    Add {
        /// The new agent's id (letters, digits, '.', '_', '-').
        agent_id: String,
        /// Issue a client certificate into agents/ID.pem and agents/ID.key (the CA is created
        /// on first use).
        #[arg(long)]
        mtls: bool,
        /// The client certificate's lifetime in days, with --mtls.
        #[arg(long, default_value_t = 90, requires = "mtls")]
        days: u32,
        /// The data directory of the running server (default as for `up`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replace every credential of an agent: its API keys and delegation tokens stop working
    /// at once; prints the new API key once. With --mtls or --cert-sha256, its client
    /// certificate is replaced too: only the new one authenticates it from then on.
    Rotate {
        /// The agent.
        agent_id: String,
        /// Issue a new client certificate from the data directory's operator CA (replacing
        /// agents/ID.pem and agents/ID.key) and pin the agent to it.
        #[arg(long, conflicts_with = "cert_sha256")]
        mtls: bool,
        /// The new certificate's lifetime in days, with --mtls.
        #[arg(long, default_value_t = 90, requires = "mtls")]
        days: u32,
        /// Pin the agent to this certificate (SHA-256 of its DER, hex), one the operator's
        /// own PKI issued.
        #[arg(long)]
        cert_sha256: Option<String>,
        /// The data directory of the running server (default as for `up`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Issue a short-lived delegation token for an agent (shown once), optionally with a
    /// per-payment maximum per asset and bound to a client certificate.
    Token {
        /// The agent.
        agent_id: String,
        /// Lifetime: a number and s, m, h or d (at most 1d).
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// A per-payment maximum, e.g. "10 USDC"; repeat for more assets. With any, assets not
        /// listed cannot be paid with the token.
        #[arg(long = "max-amount")]
        max_amounts: Vec<String>,
        /// Bind the token to the client certificate with this SHA-256 (hex, of the DER).
        #[arg(long)]
        bind_cert_sha256: Option<String>,
        /// The data directory of the running server (default as for `up`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke one delegation token by its id.
    RevokeToken {
        /// The agent.
        agent_id: String,
        /// The token id printed when it was issued.
        token_id: String,
        /// The data directory of the running server (default as for `up`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an agent for good: it can no longer authenticate or pay.
    Revoke {
        /// The agent.
        agent_id: String,
        /// The data directory of the running server (default as for `up`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Pin an agent to one client certificate (SHA-256 of its DER, hex): every other
    /// certificate naming it is refused from then on. --clear lifts the pin.
    PinCert {
        /// The agent.
        agent_id: String,
        /// The certificate's SHA-256, hex.
        #[arg(required_unless_present = "clear", conflicts_with = "clear")]
        sha256: Option<String>,
        /// Lift the pin: any certificate from the client CA naming the agent works again.
        #[arg(long)]
        clear: bool,
        /// The data directory of the running server (default as for `up`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List agents.
    List {
        /// The data directory of the running server (default as for `up`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs an `agents` command.
///
/// # Errors
/// Bad arguments, or an unreachable or refusing server.
pub async fn run(command: AgentsCommand) -> Result<()> {
    use crate::admin_client::AdminEndpoint;
    match command {
        AgentsCommand::Add {
            agent_id,
            mtls,
            days,
            data_dir,
            json,
        } => {
            let id = clawfirst_core::AgentId::new(agent_id.as_str())
                .map_err(|e| anyhow::anyhow!("agent id {agent_id:?}: {e}"))?;
            let dir = data_dir.unwrap_or_else(default_data_dir);
            if mtls && !(1..=clawfirst_auth::ca::MAX_CERTIFICATE_DAYS).contains(&days) {
                anyhow::bail!(
                    "--days {days}: must be between 1 and {}",
                    clawfirst_auth::ca::MAX_CERTIFICATE_DAYS
                );
            }
            let admin = AdminEndpoint::from_data_dir(&dir)?;
            let mut created = admin.add_agent(&agent_id).await?;
            let certificate = match mtls {
                true => {
                    let written =
                        crate::tls::operator::issue_agent_certificate(&dir, &id, days, false)?;
                    // A certificate ClawFirst issued is the only one the agent needs.
                    admin
                        .post(
                            &format!("/agents/{agent_id}/certificate"),
                            serde_json::json!({ "certificate_sha256": written.sha256 }),
                        )
                        .await?;
                    Some(written)
                }
                false => None,
            };
            if json {
                if let Some(written) = &certificate {
                    created["cert_file"] = serde_json::json!(written.cert_file);
                    created["key_file"] = serde_json::json!(written.key_file);
                    created["certificate_sha256"] = serde_json::json!(written.sha256);
                }
                println!("{created}");
            } else {
                println!(
                    "created agent {}",
                    created["agent_id"].as_str().unwrap_or_default()
                );
                println!(
                    "API key (shown once): {}",
                    created["api_key"].as_str().unwrap_or_default()
                );
                if let Some(written) = &certificate {
                    super::ca::print_written(written, "client certificate", false);
                }
            }
            Ok(())
        }
        AgentsCommand::Rotate {
            agent_id,
            mtls,
            days,
            cert_sha256,
            data_dir,
            json,
        } => {
            let id = clawfirst_core::AgentId::new(agent_id.as_str())
                .map_err(|e| anyhow::anyhow!("agent id {agent_id:?}: {e}"))?;
            if let Some(hash) = &cert_sha256 {
                check_sha256_hex(hash)?;
            }
            if mtls && !(1..=clawfirst_auth::ca::MAX_CERTIFICATE_DAYS).contains(&days) {
                anyhow::bail!(
                    "--days {days}: must be between 1 and {}",
                    clawfirst_auth::ca::MAX_CERTIFICATE_DAYS
                );
            }
            let dir = data_dir.unwrap_or_else(default_data_dir);
            let admin = AdminEndpoint::from_data_dir(&dir)?;
            // The new certificate is written before the rotation pins it; until then the old
            // one still works, so a failed rotation leaves the agent with a usable credential.
            let certificate = match mtls {
                true => Some(crate::tls::operator::issue_agent_certificate(
                    &dir, &id, days, true,
                )?),
                false => None,
            };
            let pin = certificate
                .as_ref()
                .map(|c| c.sha256.clone())
                .or(cert_sha256);
            let mut rotated = admin
                .post(
                    &format!("/agents/{agent_id}/rotate"),
                    serde_json::json!({ "certificate_sha256": pin }),
                )
                .await?;
            if json {
                if let Some(written) = &certificate {
                    rotated["cert_file"] = serde_json::json!(written.cert_file);
                    rotated["key_file"] = serde_json::json!(written.key_file);
                }
                println!("{rotated}");
            } else {
                println!(
                    "rotated agent {agent_id}: {} API key(s) revoked, older delegation tokens \
                     no longer valid",
                    rotated["revoked_api_keys"]
                );
                println!(
                    "new API key (shown once): {}",
                    rotated["api_key"].as_str().unwrap_or_default()
                );
                if let Some(written) = &certificate {
                    super::ca::print_written(written, "new client certificate", false);
                } else if let Some(pin) = rotated["certificate_sha256"].as_str() {
                    println!("client certificate pinned to SHA-256 {pin}");
                }
            }
            Ok(())
        }
        AgentsCommand::PinCert {
            agent_id,
            sha256,
            clear: _,
            data_dir,
            json,
        } => {
            clawfirst_core::AgentId::new(agent_id.as_str())
                .map_err(|e| anyhow::anyhow!("agent id {agent_id:?}: {e}"))?;
            if let Some(hash) = &sha256 {
                check_sha256_hex(hash)?;
            }
            let admin = AdminEndpoint::from_data_dir(&data_dir.unwrap_or_else(default_data_dir))?;
            let pinned = admin
                .post(
                    &format!("/agents/{agent_id}/certificate"),
                    serde_json::json!({ "certificate_sha256": sha256 }),
                )
                .await?;
            if json {
                println!("{pinned}");
            } else if let Some(pin) = pinned["certificate_sha256"].as_str() {
                println!("{agent_id} now authenticates by mutual TLS only with SHA-256 {pin}");
            } else {
                println!("{agent_id} accepts any client certificate from the CA naming it");
            }
            Ok(())
        }
        AgentsCommand::Revoke {
            agent_id,
            data_dir,
            json,
        } => {
            clawfirst_core::AgentId::new(agent_id.as_str())
                .map_err(|e| anyhow::anyhow!("agent id {agent_id:?}: {e}"))?;
            let admin = AdminEndpoint::from_data_dir(&data_dir.unwrap_or_else(default_data_dir))?;
            let revoked = admin
                .post(&format!("/agents/{agent_id}/revoke"), serde_json::json!({}))
                .await?;
            if json {
                println!("{revoked}");
            } else {
                println!(
                    "revoked agent {agent_id} and {} API key(s)",
                    revoked["revoked_api_keys"]
                );
            }
            Ok(())
        }
        AgentsCommand::Token {
            agent_id,
            ttl,
            max_amounts,
            bind_cert_sha256,
            data_dir,
            json,
        } => {
            clawfirst_core::AgentId::new(agent_id.as_str())
                .map_err(|e| anyhow::anyhow!("agent id {agent_id:?}: {e}"))?;
            let ttl_seconds = parse_ttl(&ttl)?;
            let admin = AdminEndpoint::from_data_dir(&data_dir.unwrap_or_else(default_data_dir))?;
            let issued = admin
                .post(
                    &format!("/agents/{agent_id}/tokens"),
                    serde_json::json!({
                        "ttl_seconds": ttl_seconds,
                        "max_amounts": max_amounts,
                        "certificate_sha256": bind_cert_sha256,
                    }),
                )
                .await?;
            if json {
                println!("{issued}");
            } else {
                println!(
                    "delegation token for {agent_id} (id {}, shown once):",
                    issued["token_id"].as_str().unwrap_or_default()
                );
                println!("{}", issued["token"].as_str().unwrap_or_default());
            }
            Ok(())
        }
        AgentsCommand::RevokeToken {
            agent_id,
            token_id,
            data_dir,
            json,
        } => {
            clawfirst_core::AgentId::new(agent_id.as_str())
                .map_err(|e| anyhow::anyhow!("agent id {agent_id:?}: {e}"))?;
            if token_id.len() != 32 || !token_id.bytes().all(|b| b.is_ascii_hexdigit()) {
                anyhow::bail!("token id {token_id:?}: must be 32 hex digits");
            }
            let admin = AdminEndpoint::from_data_dir(&data_dir.unwrap_or_else(default_data_dir))?;
            let revoked = admin
                .post(
                    &format!("/agents/{agent_id}/tokens/{token_id}/revoke"),
                    serde_json::json!({}),
                )
                .await?;
            if json {
                println!("{revoked}");
            } else {
                println!("revoked delegation token {token_id} of {agent_id}");
            }
            Ok(())
        }
        AgentsCommand::List { data_dir, json } => {
            let admin = AdminEndpoint::from_data_dir(&data_dir.unwrap_or_else(default_data_dir))?;
            let listed = admin.list_agents().await?;
            if json {
                println!("{listed}");
            } else {
                for a in listed["agents"].as_array().into_iter().flatten() {
                    println!(
                        "{}\t{}\t{}",
                        a["agent_id"].as_str().unwrap_or_default(),
                        a["status"].as_str().unwrap_or_default(),
                        a["key_id"].as_str().unwrap_or_default()
                    );
                }
            }
            Ok(())
        }
    }
}

/// Checks a certificate SHA-256 argument: 64 hex digits.
fn check_sha256_hex(text: &str) -> Result<()> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        anyhow::bail!("certificate SHA-256 {text:?}: must be 64 hex digits");
    }
    Ok(())
}

/// A lifetime such as `90s`, `15m`, `1h` or `1d`, in seconds.
fn parse_ttl(text: &str) -> Result<u64> {
    let bad = || anyhow::anyhow!("--ttl {text:?}: a whole number and s, m, h or d, like 1h");
    let (digits, unit) = text.split_at(text.len().saturating_sub(1));
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let value: u64 = digits.parse().map_err(|_| bad())?;
    value.checked_mul(factor).ok_or_else(bad)
}
