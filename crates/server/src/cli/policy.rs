//! `clawfirst policy check|explain|reload`.
//!
//! `check` reads a policy file offline and reports errors (with the field at fault) and rules
//! that can never fire. `explain` shows the ordered trace of a hypothetical payment: against
//! the running server (its policy in force, the agent's standing, recipient history and
//! current usage), or offline against a file with `--policy`. `reload` asks the running server
//! to reread its policy file now.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use clawfirst_core::recipient::{PayeeDirectory, Recipient};
use clawfirst_core::{AgentId, Amount, now_ms};
use clawfirst_policy::{AgentState, PaymentFacts, Policy};
use serde_json::json;

use crate::admin_client::AdminEndpoint;
use crate::datadir::default_data_dir;
use crate::payments::explanation_json;

/// `clawfirst policy ...`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file; report errors naming the field, and rules that can never fire.
    Check {
        /// The policy file.
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show, step by step, what the policy decides for a payment that is not made.
    Explain(ExplainArgs),
    /// Make the running server reread its policy file now (it also does so when the file
    /// changes); a file that does not load is refused and the policy in force stays.
    Reload {
        /// The data directory of the running server (default as for `up`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The hypothetical payment.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The paying agent.
    #[arg(long)]
    agent: String,
    /// The amount, as agents write it: "2.5 USDC".
    #[arg(long)]
    amount: String,
    /// The recipient: a base58 address, or a payee e-mail known to the server.
    #[arg(long = "to")]
    recipient: String,
    /// The purpose the agent states.
    #[arg(long)]
    purpose: Option<String>,
    /// The agent asks for human approval (settlement_constraint defer_until_approval).
    #[arg(long)]
    defer: bool,
    /// When, RFC 3339 (default: now).
    #[arg(long)]
    at: Option<String>,
    /// Explain offline against this file instead of the running server's policy. Without a
    /// server there is no usage or history: rolling caps show as reserved at payment time,
    /// and the recipient counts as new only with --first-time.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Offline only: treat the recipient as one the agent never paid.
    #[arg(long)]
    first_time: bool,
    /// The data directory of the running server (default as for `up`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs a `policy` command.
///
/// # Errors
/// A policy file that does not load (the error names the field), bad arguments, or an
/// unreachable server.
pub async fn run(command: PolicyCommand) -> Result<()> {
    match command {
        PolicyCommand::Check { file, json } => check(&file, json),
        PolicyCommand::Explain(args) => explain(args).await,
        PolicyCommand::Reload { data_dir, json } => {
            let admin = AdminEndpoint::from_data_dir(&data_dir.unwrap_or_else(default_data_dir))?;
            let answer = admin.post("/policy/reload", json!({})).await?;
            if json {
                println!("{answer}");
            } else {
                println!(
                    "policy {}: version {}",
                    answer["outcome"].as_str().unwrap_or_default(),
                    answer["version"].as_str().unwrap_or_default()
                );
            }
            Ok(())
        }
    }
}

fn check(file: &std::path::Path, json: bool) -> Result<()> {
    let loaded = Policy::load(file)?;
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    if json {
        println!(
            "{}",
            json!({
                "file": file.display().to_string(),
                "version": loaded.policy.version().to_string(),
                "version_sha256": loaded.policy.version().to_hex(),
                "warnings": warnings,
            })
        );
        return Ok(());
    }
    println!(
        "{}: valid, version {}",
        file.display(),
        loaded.policy.version()
    );
    for warning in &warnings {
        println!("warning: {warning}");
    }
    Ok(())
}

async fn explain(args: ExplainArgs) -> Result<()> {
    let at_ms = match &args.at {
        None => None,
        Some(text) => Some(parse_time(text)?),
    };
    let answer = match &args.policy {
        Some(file) => explain_offline(&args, file, at_ms)?,
        None => {
            let dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
            let admin = AdminEndpoint::from_data_dir(&dir)?;
            admin
                .post(
                    "/policy/explain",
                    json!({
                        "agent_id": args.agent,
                        "amount": args.amount,
                        "recipient": args.recipient,
                        "purpose": args.purpose,
                        "defer_until_approval": args.defer,
                        "at_ms": at_ms,
                    }),
                )
                .await?
        }
    };
    if args.json {
        println!("{answer}");
    } else {
        print!("{}", answer["text"].as_str().unwrap_or_default());
        if !answer["text"].as_str().unwrap_or_default().ends_with('\n') {
            println!();
        }
    }
    Ok(())
}

fn explain_offline(
    args: &ExplainArgs,
    file: &std::path::Path,
    at_ms: Option<u64>,
) -> Result<serde_json::Value> {
    let loaded = Policy::load(file)?;
    let agent_id = AgentId::new(args.agent.as_str())
        .map_err(|e| anyhow::anyhow!("--agent {:?}: {e}", args.agent))?;
    let amount = Amount::parse(&args.amount)
        .map_err(|e| anyhow::anyhow!("--amount {:?}: {e}", args.amount))?;
    if args.recipient.contains('@') {
        bail!("--to: offline, name the recipient by address; e-mail payees live in the server");
    }
    let recipient = Recipient::parse(&args.recipient)
        .and_then(|r| PayeeDirectory::default().resolve(&r))
        .map_err(|e| anyhow::anyhow!("--to {:?}: {e}", args.recipient))?;
    let facts = PaymentFacts {
        agent_id: &agent_id,
        agent_state: AgentState::Active,
        network: "localnet",
        amount,
        recipient: &recipient,
        recipient_label: None,
        purpose: args.purpose.as_deref(),
        first_payment_to_recipient: args.first_time,
        defer_until_approval: args.defer,
        at_ms: at_ms.unwrap_or_else(now_ms),
        usage: None,
    };
    let explanation = loaded.policy.explain(&facts);
    Ok(explanation_json(
        &explanation,
        &loaded.policy.version().to_string(),
    ))
}

fn parse_time(text: &str) -> Result<u64> {
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("--at {text:?}: must be an RFC 3339 time"))?;
    u64::try_from(parsed.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| anyhow::anyhow!("--at {text:?}: must be after 1970"))
}
