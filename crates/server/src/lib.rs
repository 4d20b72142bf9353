//! The agent-facing ClawFirst server.
//!
//! Agents reach the six payment tools over MCP (streamable HTTP at `/mcp`, or stdio). Each call
//! is authenticated, rate limited and audited, then handled by the payment service, which runs
//! the approval layer, waits for human approvers where the policy asks for them, asks the
//! separate `clawfirst-signer` process for a signature bound to an approval grant, submits the
//! transaction and follows it to finality.
//!
//! ```text
//! MCP client ─ HTTP/stdio ─> agent_auth ─> mcp ─> payments ─> policy (permit/approve/deny)
//!                                                     │ ─> store (sessions, budgets, audit)
//!                                                     │ ─> signer_client ─> clawfirst-signer
//!                                                     └ ─> ledger (localnet: litesvm)
//! operator / approver ─ admin API ─> approvals (signed decisions), policy (reload, explain)
//! ```
//!
//! # Security
//!
//! - This crate does not depend on any key backend: wallet keys live only in the signer.
//! - Never logged: API keys, the admin token, the grant key, grants, approval signatures, message
//!   bytes. Errors shown to agents for signing and authentication failures are vague; the log
//!   has the reason.
//! - The grant key authorizes signatures up to the signer's own limits; above them the signer
//!   also demands approvers' signatures over the exact payment, which this server only relays.
//!   The grant key is read from a file readable only by its owner.
//! - Approver keys never reach this server: `clawfirst approvals approve` signs on the
//!   approver's machine and sends the signature; an agent credential is refused on every admin
//!   and approval route.
//! - A policy file that does not load never replaces the policy in force.

#![forbid(unsafe_code)]

pub mod admin_client;
pub mod admin_view;
pub mod agent_auth;
pub mod api_key;
pub mod auth_cache;
pub mod cli;
pub mod config;
pub mod datadir;
pub mod error;
pub mod http;
pub mod mcp;
pub mod payments;
pub mod periodic;
pub mod policy_reload;
pub mod rate_limit;
pub mod runtime;
pub mod signer_client;
pub mod signer_process;
pub mod stdio;
pub mod tls;
pub mod tools;
pub mod up;
pub mod webhook;

/// Makes aws-lc-rs the process's TLS crypto provider: the one provider in the dependency tree
/// (rustls is built without ring). HTTP clients made without an explicit TLS configuration
/// (the admin client, the webhook) use it. Call it first in every binary; a second call does
/// nothing.
pub fn install_crypto_provider() {
    // An error only means a provider is installed already.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
