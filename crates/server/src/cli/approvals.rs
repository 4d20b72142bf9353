//! `clawfirst approvers add|list` and `clawfirst approvals list|approve|reject`.
//!
//! An approver's key never leaves the approver's machine: `approvers add` writes the private
//! key to a 0600 file (or registers a public key made elsewhere), and `approvals approve`
//! signs the payment's exact facts locally, showing them first, then sends only the signed
//! statement through the admin API. The server counts it; the signer checks it again against
//! its own list of approvers.
//!
//! `approvals` commands reach the server in one of two ways: on the operator's machine with the
//! data directory's admin token, or (`--server URL`) from an approver's own machine, signing
//! every request with the approver's key, which admits them to the approval routes only.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Subcommand;
use clawfirst_core::approval::{ApprovalDecision, ApprovalStatement, ApproverKey};
use clawfirst_core::{Address, AgentId, Amount, KeyId, SessionId, Transfer, now_ms};
use serde_json::{Value, json};

use crate::admin_client::AdminEndpoint;
use crate::datadir::default_data_dir;

use super::approver_files::{create_key_file, read_key_file, trust_in_signer};

/// The approvers file of the signer that `clawfirst up` runs, in its data directory.
pub const SIGNER_APPROVERS_FILE: &str = "signer-approvers.toml";

/// `clawfirst approvers ...`
#[derive(Debug, Subcommand)]
pub enum ApproversCommand {
    /// Register an approver: creates a key pair in DATA_DIR/approvers/NAME.key (mode 0600),
    /// or registers a public key made elsewhere. On a `clawfirst up` data directory the
    /// signer is told to trust the key too.
    Add {
        /// The approver's name (letters, digits, '.', '_', '-'), as policy groups list it.
        name: String,
        /// A base58 Ed25519 public key whose private key the approver keeps elsewhere.
        #[arg(long)]
        public_key: Option<String>,
        /// The data directory of the running server (default as for `up`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List approvers.
    List {
        /// The data directory of the running server (default as for `up`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// How an `approvals` command reaches the server.
#[derive(Debug, clap::Args)]
pub struct Access {
    /// The data directory of the running server (default as for `up`): its admin token is
    /// used, and approver key files are looked up in its approvers/ directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Instead of the data directory's admin token, reach this admin API (its base URL,
    /// ending in /admin/v1) as the approver named by --as, signing each request with the
    /// approver's key.
    #[arg(long)]
    server: Option<String>,
    /// With an https --server: the CA certificate (PEM) its certificate chains to.
    #[arg(long, requires = "server")]
    ca_file: Option<PathBuf>,
}

impl Access {
    fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(default_data_dir)
    }

    /// The approver's key: `key_file`, or the data directory's approvers/NAME.key.
    fn approver_key(&self, approver: &str, key_file: Option<&Path>) -> Result<ApproverKey> {
        let path = key_file.map_or_else(
            || {
                self.data_dir()
                    .join("approvers")
                    .join(format!("{approver}.key"))
            },
            Path::to_path_buf,
        );
        read_key_file(&path)
    }

    /// The endpoint: the admin token, or with --server the approver's signed requests.
    fn endpoint(&self, approver: Option<(&str, ApproverKey)>) -> Result<AdminEndpoint> {
        match (&self.server, approver) {
            (None, _) => AdminEndpoint::from_data_dir(&self.data_dir()),
            (Some(url), Some((name, key))) => {
                AdminEndpoint::as_approver(url, name, key, self.ca_file.clone())
            }
            (Some(_), None) => anyhow::bail!("--server needs --as NAME (and your --key-file)"),
        }
    }
}

/// `clawfirst approvals ...`
#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// List payments waiting for approvers.
    List {
        /// With --server: your approver name.
        #[arg(long = "as")]
        approver: Option<String>,
        /// With --server: your key file (default DATA_DIR/approvers/NAME.key).
        #[arg(long)]
        key_file: Option<PathBuf>,
        #[command(flatten)]
        access: Access,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve a payment, signing its exact facts with your approver key.
    Approve {
        /// The payment session id.
        session_id: String,
        /// Your approver name.
        #[arg(long = "as")]
        approver: String,
        /// Your key file (default DATA_DIR/approvers/NAME.key).
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// A note for the audit trail.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        access: Access,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Reject a payment; its budget is released and the agent is told why.
    Reject {
        /// The payment session id.
        session_id: String,
        /// Your approver name.
        #[arg(long = "as")]
        approver: String,
        /// Why; the agent sees it.
        #[arg(long)]
        reason: String,
        /// Your key file (default DATA_DIR/approvers/NAME.key).
        #[arg(long)]
        key_file: Option<PathBuf>,
        #[command(flatten)]
        access: Access,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs an `approvers` command.
///
/// # Errors
/// Bad arguments, an unreachable or refusing server, an unwritable key file.
pub async fn approvers(command: ApproversCommand) -> Result<()> {
    match command {
        ApproversCommand::Add {
            name,
            public_key,
            data_dir,
            json,
        } => {
            let dir = data_dir.unwrap_or_else(default_data_dir);
            let admin = AdminEndpoint::from_data_dir(&dir)?;
            AgentId::new(name.as_str()).map_err(|_| {
                anyhow::anyhow!(
                    "approver name {name:?}: use 1 to 64 letters, digits, '.', '_', '-'"
                )
            })?;
            let (public_key, key_file) = match public_key {
                Some(text) => {
                    let key =
                        Address::parse(&text).map_err(|e| anyhow::anyhow!("--public-key: {e}"))?;
                    (key, None)
                }
                None => {
                    let key = ApproverKey::generate();
                    let path = create_key_file(&dir, &name, &key)?;
                    (key.public_key(), Some(path))
                }
            };
            let registered = admin
                .post(
                    "/approvers",
                    json!({ "name": name, "public_key": public_key.to_string() }),
                )
                .await?;
            let signer_file = dir.join(SIGNER_APPROVERS_FILE);
            let signer_trusts = signer_file.exists();
            if signer_trusts {
                trust_in_signer(&signer_file, &name, &public_key)?;
            }
            if json {
                let mut out = registered;
                if let Some(map) = out.as_object_mut() {
                    map.insert("key_file".into(), json!(key_file));
                    map.insert("signer_trusts".into(), json!(signer_trusts));
                }
                println!("{out}");
                return Ok(());
            }
            println!("registered approver {name} with public key {public_key}");
            if let Some(path) = key_file {
                println!("private key: {} (keep it to yourself)", path.display());
            }
            if signer_trusts {
                println!("the signer trusts this approver (added to {SIGNER_APPROVERS_FILE})");
            } else {
                println!(
                    "add this public key to the signer's approvers file, or the signer will \
                     refuse payments above its floor that this approver releases"
                );
            }
            Ok(())
        }
        ApproversCommand::List { data_dir, json } => {
            let admin = AdminEndpoint::from_data_dir(&data_dir.unwrap_or_else(default_data_dir))?;
            let listed = admin.get("/approvers").await?;
            if json {
                println!("{listed}");
                return Ok(());
            }
            for a in listed["approvers"].as_array().into_iter().flatten() {
                println!(
                    "{}\t{}\t{}",
                    text(&a["name"]),
                    text(&a["status"]),
                    text(&a["public_key"])
                );
            }
            Ok(())
        }
    }
}

/// Runs an `approvals` command.
///
/// # Errors
/// Bad arguments, an unreachable or refusing server, an unreadable key file.
pub async fn approvals(command: ApprovalsCommand) -> Result<()> {
    match command {
        ApprovalsCommand::List {
            approver,
            key_file,
            access,
            json,
        } => {
            let signer = match (&access.server, &approver) {
                (Some(_), Some(name)) => Some((
                    name.as_str(),
                    access.approver_key(name, key_file.as_deref())?,
                )),
                _ => None,
            };
            let admin = access.endpoint(signer)?;
            let listed = admin.get("/approvals").await?;
            if json {
                println!("{listed}");
                return Ok(());
            }
            let pending = listed["approvals"].as_array().cloned().unwrap_or_default();
            if pending.is_empty() {
                println!("no payments are waiting for approval");
            }
            for p in pending {
                println!("{}", describe(&p));
            }
            Ok(())
        }
        ApprovalsCommand::Approve {
            session_id,
            approver,
            key_file,
            reason,
            access,
            json,
        } => {
            let decision = Decision {
                session_id,
                approver,
                key_file,
                reason,
                kind: ApprovalDecision::Approve,
            };
            decide(&access, decision, json).await
        }
        ApprovalsCommand::Reject {
            session_id,
            approver,
            reason,
            key_file,
            access,
            json,
        } => {
            let decision = Decision {
                session_id,
                approver,
                key_file,
                reason: Some(reason),
                kind: ApprovalDecision::Reject,
            };
            decide(&access, decision, json).await
        }
    }
}

struct Decision {
    session_id: String,
    approver: String,
    key_file: Option<PathBuf>,
    reason: Option<String>,
    kind: ApprovalDecision,
}

/// Fetches the payment, shows it, signs the decision locally and sends it.
async fn decide(access: &Access, decision: Decision, json: bool) -> Result<()> {
    let session_id = SessionId::new(decision.session_id.as_str())
        .map_err(|e| anyhow::anyhow!("session id {:?}: {e}", decision.session_id))?;
    let key = access.approver_key(&decision.approver, decision.key_file.as_deref())?;
    // The request signer gets its own copy of the key, read from the same file.
    let request_key = access.approver_key(&decision.approver, decision.key_file.as_deref())?;
    let admin = access.endpoint(Some((&decision.approver, request_key)))?;

    // 1. The payment's facts, as the server holds them.
    let payment = admin
        .get(&format!("/approvals/{}", session_id.as_str()))
        .await?;
    let transfer: Transfer = serde_json::from_value(payment["transfer"].clone())
        .context("the server's answer has no usable transfer")?;
    let agent_id = AgentId::new(text(&payment["agent_id"]))
        .map_err(|e| anyhow::anyhow!("the server's answer has a bad agent id: {e}"))?;
    let key_id = KeyId::new(text(&payment["key_id"]))
        .map_err(|e| anyhow::anyhow!("the server's answer has a bad key id: {e}"))?;
    if !json {
        eprintln!("{}", describe(&payment));
    }

    // 2. Signed here, with the approver's own key, over exactly those facts.
    let statement = ApprovalStatement {
        approver: key.public_key(),
        decision: decision.kind,
        decided_at_ms: now_ms(),
        session_id: session_id.clone(),
        agent_id,
        key_id,
        transfer,
    };
    let signed = key
        .sign(&statement)
        .map_err(|e| anyhow::anyhow!("cannot sign: {e}"))?;

    // 3. Sent; the server checks and counts it.
    let answer = admin
        .post(
            &format!("/approvals/{}/decisions", session_id.as_str()),
            json!({
                "approver": decision.approver,
                "statement": signed.statement,
                "signature": signed.signature,
                "reason": decision.reason,
            }),
        )
        .await?;
    if json {
        println!("{answer}");
    } else {
        let verb = match decision.kind {
            ApprovalDecision::Approve => "approved",
            ApprovalDecision::Reject => "rejected",
        };
        println!(
            "{verb} {}: {} of {} approvals, payment is {}",
            session_id.as_str(),
            answer["approval"]["approvals"],
            answer["approval"]["required"],
            text(&answer["state"])
        );
    }
    Ok(())
}

/// One line per waiting payment: what, to whom, for whom, and how far along.
fn describe(p: &Value) -> String {
    let amount = Amount::from_base_units(
        text(&p["asset"])
            .parse()
            .unwrap_or(clawfirst_core::Asset::Sol),
        text(&p["base_units"]).parse().unwrap_or(0),
    )
    .map(|a| a.to_string())
    .unwrap_or_else(|_| format!("{} {}", text(&p["amount"]), text(&p["asset"])));
    let approval = &p["approval"];
    format!(
        "{}  {}  to {}  agent {}  tier {}  {}/{} approvals  expires {}{}",
        text(&p["session_id"]),
        amount,
        text(&p["recipient"]),
        text(&p["agent_id"]),
        approval["tier"].as_str().unwrap_or("-"),
        approval["approvals"],
        approval["required"],
        text(&approval["expires_at"]),
        p["purpose"]
            .as_str()
            .map(|s| format!("  purpose: {s}"))
            .unwrap_or_default()
    )
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}
