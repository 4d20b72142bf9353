//! Payment sessions: the agent layer's use of the approval layer, the signer and the ledger.
//!
//! [`PaymentService`] implements the six tools' behaviour independently of MCP. Each operation
//! takes the authenticated [`Caller`], so a session is only ever visible to the agent that
//! created it.
//!
//! # Crash safety
//!
//! Every state change is written to the store before it takes effect outward: the unsigned
//! message and the grant id are stored (`approved`) before the signer is asked; the signed
//! transaction is stored (`signed`) before it is sent. [`PaymentService::recover`] resolves
//! whatever a crash left behind by asking the signer about the grant and the ledger about the
//! signature, so nothing is ever signed or paid twice.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use clawfirst_core::grant::GrantSigner;
use clawfirst_core::recipient::PayeeDirectory;
use clawfirst_core::{Address, AgentId, Asset, KeyId, SessionId};
use clawfirst_solana::ledger::Ledger;
use clawfirst_store::{AgentStatus, Session, Store};
use serde_json::Value;
use tracing::warn;

use crate::error::{ErrorCode, ToolError};
use crate::policy_reload::PolicyHandle;
use crate::signer_client::SignerClient;
use crate::webhook::Notifier;

mod approvals;
mod authorize;
mod execute;
mod explain;
mod initialize;
mod outcome;
mod recover;
mod settle;
mod submit;
mod view;
mod wallet;

pub use approvals::{MAX_DECISION_AGE_MS, VoteError};
pub use explain::{ExplainRequest, explanation_json};
pub use settle::start_watcher;

/// The authenticated agent on whose behalf a tool runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The agent.
    pub agent_id: AgentId,
    /// The per-payment maximum per asset of the delegation token the agent authenticated
    /// with, if any: tighter than policy, checked before it. Assets it does not list cannot be
    /// paid with that credential.
    pub delegated_limits: Option<Arc<BTreeMap<Asset, u64>>>,
}

impl Caller {
    /// An agent with no credential-specific limits (API key, JWT, stdio).
    pub fn agent(agent_id: AgentId) -> Self {
        Self {
            agent_id,
            delegated_limits: None,
        }
    }

    /// Refuses a payment above the caller's delegation limit.
    ///
    /// # Errors
    /// `POLICY_VIOLATION` naming the rule `delegation_limit`.
    pub fn check_delegated(&self, amount: clawfirst_core::Amount) -> Result<(), ToolError> {
        let Some(limits) = &self.delegated_limits else {
            return Ok(());
        };
        match limits.get(&amount.asset()) {
            Some(max) if amount.base_units() <= *max => Ok(()),
            _ => Err(ToolError::new(
                ErrorCode::PolicyViolation,
                "denied by delegation_limit: the amount exceeds what this delegation token \
                 allows",
            )
            .with_details(serde_json::json!({ "rule": "delegation_limit" }))),
        }
    }
}

/// Tunables of the payment path.
#[derive(Clone, Debug)]
pub struct PaymentSettings {
    /// How long an unsubmitted session lives.
    pub session_ttl_ms: u64,
    /// Priority fee per compute unit.
    pub compute_unit_price_micro_lamports: u64,
    /// How long a grant is valid.
    pub grant_ttl_ms: u64,
    /// The wallet key of agents created without their own.
    pub default_key_id: KeyId,
}

/// The payment path: sessions, approval, signing, submission, settlement.
pub struct PaymentService {
    store: Store,
    ledger: Arc<dyn Ledger>,
    signer: SignerClient,
    grant_signer: GrantSigner,
    policy: Arc<PolicyHandle>,
    notifier: Notifier,
    payees: PayeeDirectory,
    wallets: HashMap<KeyId, Address>,
    settings: PaymentSettings,
}

/// Everything [`PaymentService::new`] needs.
#[expect(missing_debug_implementations, reason = "holds a trait object ledger")]
pub struct PaymentDeps {
    /// Persistence.
    pub store: Store,
    /// The ledger.
    pub ledger: Arc<dyn Ledger>,
    /// The signer.
    pub signer: SignerClient,
    /// The approval layer's grant key.
    pub grant_signer: GrantSigner,
    /// The policy in force, reloadable.
    pub policy: Arc<PolicyHandle>,
    /// Where approval notifications go.
    pub notifier: Notifier,
    /// E-mail payees.
    pub payees: PayeeDirectory,
    /// Wallet addresses of the signer's keys, learned from the signer at start.
    pub wallets: HashMap<KeyId, Address>,
    /// Tunables.
    pub settings: PaymentSettings,
}

impl std::fmt::Debug for PaymentService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentService")
            .field("network", &self.ledger.network())
            .field("wallets", &self.wallets)
            .finish_non_exhaustive()
    }
}

impl PaymentService {
    /// Assembles the service.
    pub fn new(deps: PaymentDeps) -> Self {
        Self {
            store: deps.store,
            ledger: deps.ledger,
            signer: deps.signer,
            grant_signer: deps.grant_signer,
            policy: deps.policy,
            notifier: deps.notifier,
            payees: deps.payees,
            wallets: deps.wallets,
            settings: deps.settings,
        }
    }

    /// The store, for the admin API.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The ledger.
    pub fn ledger(&self) -> &Arc<dyn Ledger> {
        &self.ledger
    }

    /// The policy in force.
    pub fn policy(&self) -> &Arc<PolicyHandle> {
        &self.policy
    }

    /// The caller's wallet key and address, refusing suspended or unknown agents.
    async fn wallet_of(&self, caller: &Caller) -> Result<(KeyId, Address), ToolError> {
        let agent = self
            .store
            .agent(&caller.agent_id)
            .await
            .map_err(|e| internal("load agent", &e))?
            .ok_or_else(|| ToolError::new(ErrorCode::Unauthorized, "unknown agent"))?;
        match agent.status {
            AgentStatus::Active => {}
            AgentStatus::Suspended => {
                return Err(ToolError::new(
                    ErrorCode::AgentSuspended,
                    "agent is suspended",
                ));
            }
            _ => {
                return Err(ToolError::new(
                    ErrorCode::Unauthorized,
                    "agent is not active",
                ));
            }
        }
        let address = self.wallets.get(&agent.key_id).copied().ok_or_else(|| {
            ToolError::new(
                ErrorCode::InvalidWallet,
                "the agent's wallet key is not available",
            )
        })?;
        Ok((agent.key_id, address))
    }

    /// Loads a session of the caller's; another agent's session does not exist for it.
    async fn session_of(&self, caller: &Caller, id: &SessionId) -> Result<Session, ToolError> {
        let session = self
            .store
            .session(id)
            .await
            .map_err(|e| internal("load session", &e))?;
        match session {
            Some(s) if s.agent_id == caller.agent_id => Ok(s),
            _ => Err(
                ToolError::new(ErrorCode::SessionNotFound, "no such session")
                    .with_details(serde_json::json!({ "session_id": id.as_str() })),
            ),
        }
    }
}

/// Logs an internal failure with its cause chain and returns the vague error agents see.
pub(crate) fn internal(operation: &'static str, error: &dyn std::error::Error) -> ToolError {
    warn!(operation, error = %ErrorChain(error), "internal failure");
    ToolError::internal()
}

/// Displays an error with all its sources.
pub(crate) struct ErrorChain<'a>(pub &'a dyn std::error::Error);

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

/// A success result of a tool, before the envelope.
pub type ToolResult = Result<Value, ToolError>;

impl PaymentService {
    /// The wallet key of agents created without their own.
    pub fn default_key_id(&self) -> &KeyId {
        &self.settings.default_key_id
    }

    /// The wallet address of a signer key, if the signer reported it.
    pub fn wallet_address(&self, key_id: &KeyId) -> Option<Address> {
        self.wallets.get(key_id).copied()
    }
}
