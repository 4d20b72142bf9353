//! Payment sessions as the store keeps them.

use std::fmt;

use clawfirst_core::{Address, AgentId, Asset, GrantId, KeyId, SessionId};
use serde::{Deserialize, Serialize};

use crate::error::named_enum;
use crate::state::SessionState;

/// When the agent asked for the payment to settle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettlementConstraint {
    /// As soon as the approval layer allows it (the default).
    Immediate,
    /// Always wait for a human approval, whatever the policy tier.
    DeferUntilApproval,
    /// Not before [`Session::execute_after_ms`].
    Scheduled,
}

named_enum!(SettlementConstraint, "settlement constraint", [
    SettlementConstraint::Immediate => "immediate",
    SettlementConstraint::DeferUntilApproval => "defer_until_approval",
    SettlementConstraint::Scheduled => "scheduled",
]);

/// Why a session failed, as recorded when it moved to `failed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// A stable error code (`TRANSACTION_FAILED`, `SIGNATURE_FAILED`, ...).
    pub code: String,
    /// A human-readable explanation, free of secrets.
    pub message: String,
}

/// A payment session: the agent's intent and everything learnt as the payment advances.
///
/// Not serializable on purpose: what an agent or an operator sees of a session is chosen by
/// the layer that shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    /// The session.
    pub id: SessionId,
    /// The agent that asked for the payment.
    pub agent_id: AgentId,
    /// Where the session stands.
    pub state: SessionState,
    /// What is paid.
    pub asset: Asset,
    /// How much, in base units of `asset`.
    pub amount: u64,
    /// The resolved recipient wallet.
    pub recipient: Address,
    /// The recipient as the agent wrote it (an address or an e-mail).
    pub recipient_input: String,
    /// The agent's stated purpose.
    pub purpose: Option<String>,
    /// When the payment may settle.
    pub settlement_constraint: SettlementConstraint,
    /// For [`SettlementConstraint::Scheduled`]: not before this time.
    pub execute_after_ms: Option<u64>,
    /// The agent's idempotency key, unique per agent.
    pub idempotency_key: Option<String>,
    /// SHA-256 of the canonical request parameters, computed by the caller.
    pub request_digest: [u8; 32],
    /// Free-form metadata from the agent, kept for the audit trail.
    pub metadata: Option<serde_json::Value>,
    /// When the session was created.
    pub created_at_ms: u64,
    /// When the session last changed.
    pub updated_at_ms: u64,
    /// When an unapproved session expires.
    pub expires_at_ms: u64,
    /// The signer's key that pays.
    pub key_id: KeyId,
    /// The wallet of `key_id`.
    pub payer: Address,
    /// The unsigned message bytes, stored before the signer is asked.
    pub message: Option<Vec<u8>>,
    /// The approval grant issued for `message`.
    pub grant_id: Option<GrantId>,
    /// The last slot at which the message's blockhash is valid.
    pub blockhash_last_valid_slot: Option<u64>,
    /// The transaction signature, base58. Write-once.
    pub signature: Option<String>,
    /// The signed transaction, stored before it is sent. Write-once.
    pub signed_transaction: Option<Vec<u8>>,
    /// The slot the transaction landed in.
    pub slot: Option<u64>,
    /// Why the session failed.
    pub failure: Option<Failure>,
    /// The policy rule that decided the session.
    pub policy_rule: Option<String>,
}

impl fmt::Debug for Session {
    /// Shows identity and progress; leaves out the agent's free text, the metadata and the
    /// transaction bytes, which belong in the audit trail and not in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("agent_id", &self.agent_id)
            .field("state", &self.state)
            .field("asset", &self.asset)
            .field("amount", &self.amount)
            .field("recipient", &self.recipient)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("grant_id", &self.grant_id)
            .field("signature", &self.signature)
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

/// What the caller provides to create a session; the store adds the state (`initialized`) and
/// the timestamps (the audit event's time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSession {
    /// A fresh session id ([`SessionId::random`]).
    pub id: SessionId,
    /// The agent asking.
    pub agent_id: AgentId,
    /// What is paid.
    pub asset: Asset,
    /// How much, in base units; at most `i64::MAX`.
    pub amount: u64,
    /// The resolved recipient wallet.
    pub recipient: Address,
    /// The recipient as the agent wrote it.
    pub recipient_input: String,
    /// The agent's stated purpose.
    pub purpose: Option<String>,
    /// When the payment may settle.
    pub settlement_constraint: SettlementConstraint,
    /// For scheduled payments: not before this time.
    pub execute_after_ms: Option<u64>,
    /// The agent's idempotency key.
    pub idempotency_key: Option<String>,
    /// SHA-256 of the canonical request parameters.
    pub request_digest: [u8; 32],
    /// Free-form metadata from the agent.
    pub metadata: Option<serde_json::Value>,
    /// When the session expires unless approved.
    pub expires_at_ms: u64,
    /// The signer's key that pays.
    pub key_id: KeyId,
    /// The wallet of `key_id`.
    pub payer: Address,
}

impl NewSession {
    pub(crate) fn into_session(self, at_ms: u64) -> Session {
        Session {
            id: self.id,
            agent_id: self.agent_id,
            state: SessionState::Initialized,
            asset: self.asset,
            amount: self.amount,
            recipient: self.recipient,
            recipient_input: self.recipient_input,
            purpose: self.purpose,
            settlement_constraint: self.settlement_constraint,
            execute_after_ms: self.execute_after_ms,
            idempotency_key: self.idempotency_key,
            request_digest: self.request_digest,
            metadata: self.metadata,
            created_at_ms: at_ms,
            updated_at_ms: at_ms,
            expires_at_ms: self.expires_at_ms,
            key_id: self.key_id,
            payer: self.payer,
            message: None,
            grant_id: None,
            blockhash_last_valid_slot: None,
            signature: None,
            signed_transaction: None,
            slot: None,
            failure: None,
            policy_rule: None,
        }
    }
}

/// The outcome of [`crate::Store::create_session`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreateOutcome {
    /// A new session was stored.
    Created(Session),
    /// The agent had already created this session with the same idempotency key and the same
    /// parameters; nothing was written.
    Existing(Session),
}

impl CreateOutcome {
    /// The session, new or existing.
    pub fn session(&self) -> &Session {
        match self {
            CreateOutcome::Created(s) | CreateOutcome::Existing(s) => s,
        }
    }

    /// The session, new or existing, by value.
    pub fn into_session(self) -> Session {
        match self {
            CreateOutcome::Created(s) | CreateOutcome::Existing(s) => s,
        }
    }
}

/// Fields set as a payment advances. `None` leaves a field as it is; no field can be cleared.
///
/// `message`, `grant_id`, `signature` and `signed_transaction` are write-once: once stored, a
/// patch may repeat the same value but never replace it. So a session can never end up with a
/// second, different signed transaction, and of two executions racing to prepare the same
/// approved session only the first to store its grant proceeds to the signer.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SessionPatch {
    /// The unsigned message bytes.
    pub message: Option<Vec<u8>>,
    /// The approval grant.
    pub grant_id: Option<GrantId>,
    /// The last slot at which the message's blockhash is valid.
    pub blockhash_last_valid_slot: Option<u64>,
    /// The transaction signature, base58.
    pub signature: Option<String>,
    /// The signed transaction bytes.
    pub signed_transaction: Option<Vec<u8>>,
    /// The slot the transaction landed in.
    pub slot: Option<u64>,
    /// Why the session failed.
    pub failure: Option<Failure>,
    /// The policy rule that decided the session.
    pub policy_rule: Option<String>,
    /// A new expiry (set by [`crate::Store::reserve_and_await_approval`] to the request's).
    pub expires_at_ms: Option<u64>,
}

impl fmt::Debug for SessionPatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionPatch")
            .field("message", &self.message.as_ref().map(Vec::len))
            .field("grant_id", &self.grant_id)
            .field("blockhash_last_valid_slot", &self.blockhash_last_valid_slot)
            .field("signature", &self.signature)
            .field(
                "signed_transaction",
                &self.signed_transaction.as_ref().map(Vec::len),
            )
            .field("slot", &self.slot)
            .field("failure", &self.failure)
            .field("policy_rule", &self.policy_rule)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

impl SessionPatch {
    /// A patch that changes nothing.
    pub fn none() -> Self {
        Self::default()
    }

    /// Applies the patch to `session`, refusing to replace a write-once field.
    pub(crate) fn apply_to(self, session: &mut Session) -> Result<(), &'static str> {
        write_once(&mut session.signature, self.signature, "signature")?;
        write_once(
            &mut session.signed_transaction,
            self.signed_transaction,
            "signed transaction",
        )?;
        write_once(&mut session.message, self.message, "message")?;
        write_once(&mut session.grant_id, self.grant_id, "grant id")?;
        overwrite(
            &mut session.blockhash_last_valid_slot,
            self.blockhash_last_valid_slot,
        );
        overwrite(&mut session.slot, self.slot);
        overwrite(&mut session.failure, self.failure);
        overwrite(&mut session.policy_rule, self.policy_rule);
        if let Some(expires_at_ms) = self.expires_at_ms {
            session.expires_at_ms = expires_at_ms;
        }
        Ok(())
    }
}

fn overwrite<T>(field: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *field = value;
    }
}

fn write_once<T: PartialEq>(
    field: &mut Option<T>,
    value: Option<T>,
    name: &'static str,
) -> Result<(), &'static str> {
    match (field.as_ref(), value) {
        (_, None) => Ok(()),
        (Some(old), Some(new)) if *old != new => Err(name),
        (_, new) => {
            *field = new;
            Ok(())
        }
    }
}
