//! Human approvals: the approvers, the requests a payment waits on, and their votes.
//!
//! A payment that policy sends to humans enters `awaiting_approval` together with its budget
//! reservation and an [`ApprovalRequest`] ([`crate::Store::reserve_and_await_approval`]): the
//! rule that asked for approval, the group and a snapshot of its eligible approvers, how many
//! approvals are required and until when. Votes are recorded one by one
//! ([`crate::Store::record_vote`]), each in the one transaction that checks it:
//!
//! - the session is still `awaiting_approval` and the request has not expired;
//! - the approver is in the request's snapshot and still active;
//! - the approver has not voted on this session before (the database's primary key backs this);
//! - a rejection moves the session to `rejected` at once (releasing its reservation); the
//!   approval that brings the distinct approvals to the required number moves it to
//!   `approved`. Any vote after that finds the session decided and is refused, so a quorum is
//!   reached once, however many approvers answer at the same moment.
//!
//! A request that expires without a quorum is expired by [`crate::Store::expire_due`] with the
//! failure code [`APPROVAL_TIMEOUT`].
//!
//! # Security
//!
//! The store keeps each vote's signed statement and signature as opaque text and does **not**
//! verify them: the caller verifies the signature against [`ApproverRecord::public_key`]
//! before it records the vote. The store then re-checks, inside the transaction, everything
//! that can change in the meantime (the approver's status, the session's state, the expiry,
//! an earlier vote). Approver keys are public keys; no secret is stored here. Votes cannot be
//! edited or deleted: the database refuses it.

use clawfirst_core::{Address, SessionId};
use serde::{Deserialize, Serialize};

use crate::error::named_enum;
use crate::session::Session;
use crate::state::SessionState;

/// The failure code of a session an approver rejected.
pub const APPROVAL_REJECTED: &str = "APPROVAL_REJECTED";
/// The failure code of a session whose approval request expired without a quorum.
pub const APPROVAL_TIMEOUT: &str = "APPROVAL_TIMEOUT";
/// The failure message of [`APPROVAL_TIMEOUT`].
pub const APPROVAL_TIMEOUT_MESSAGE: &str = "no quorum before the approval expired";

/// The longest approver name accepted.
pub const MAX_APPROVER_NAME_LEN: usize = 64;
/// The longest rejection reason accepted, in characters.
pub const MAX_REASON_LEN: usize = 1_000;
/// The longest signed statement or signature accepted, in bytes.
pub const MAX_EVIDENCE_LEN: usize = 16_384;

/// Whether an approver may vote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApproverStatus {
    /// The approver may vote.
    Active,
    /// The approver was removed; votes cast before stay counted, no new vote is accepted.
    Removed,
}

named_enum!(ApproverStatus, "approver status", [
    ApproverStatus::Active => "active",
    ApproverStatus::Removed => "removed",
]);

/// An approver as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApproverRecord {
    /// The approver's name, unique: 1 to 64 characters of `a-z`, `0-9`, `.`, `_`, `-`.
    pub name: String,
    /// The ed25519 public key that signs the approver's statements; unique among approvers,
    /// removed ones included.
    pub public_key: Address,
    /// Whether the approver may vote.
    pub status: ApproverStatus,
    /// When the approver was added.
    pub created_at_ms: u64,
    /// When the approver's status last changed.
    pub updated_at_ms: u64,
}

/// Whether `name` is a valid approver name (the rules of agent ids, lower case only).
pub fn valid_approver_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_APPROVER_NAME_LEN
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

/// What a payment waits on when policy sends it to human approvers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// The policy tier that applied, if tiers are configured.
    pub tier: Option<String>,
    /// The policy rule that asked for approval.
    pub rule: String,
    /// The approver group asked.
    pub group: String,
    /// The names of the group's approvers when the request was made; only they may vote.
    pub eligible: Vec<String>,
    /// How many distinct approvals approve the payment; at least 1, at most `eligible.len()`.
    pub required: u32,
    /// When the request expires; the waiting session expires with it.
    pub expires_at_ms: u64,
    /// The version of the policy that decided.
    pub policy_version: String,
}

impl ApprovalRequest {
    /// Checks that the request can be decided at all, as of `now_ms`.
    pub(crate) fn validate(&self, now_ms: u64) -> Result<(), &'static str> {
        if self.rule.is_empty() || self.group.is_empty() || self.policy_version.is_empty() {
            return Err("rule, group and policy version must not be empty");
        }
        if !self.eligible.iter().all(|n| valid_approver_name(n)) {
            return Err("eligible approvers must be valid approver names");
        }
        let mut names: Vec<&str> = self.eligible.iter().map(String::as_str).collect();
        names.sort_unstable();
        names.dedup();
        if names.len() != self.eligible.len() {
            return Err("eligible approvers must be distinct");
        }
        if self.required == 0 || usize::try_from(self.required).map_or(true, |r| r > names.len()) {
            return Err("required approvals must be between 1 and the number of eligible");
        }
        if self.expires_at_ms <= now_ms {
            return Err("the request must expire after it is made");
        }
        Ok(())
    }
}

/// An approver's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoteDecision {
    /// Counts towards the required approvals.
    Approve,
    /// Rejects the payment at once.
    Reject,
}

named_enum!(VoteDecision, "vote decision", [
    VoteDecision::Approve => "approve",
    VoteDecision::Reject => "reject",
]);

/// A vote to record; the caller has verified `signature` over `statement` with the approver's
/// key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// The approver's name.
    pub approver: String,
    /// The answer.
    pub decision: VoteDecision,
    /// The signed statement, base64, kept as evidence.
    pub statement: String,
    /// The approver's signature over `statement`, base64, kept as evidence.
    pub signature: String,
    /// Why, as the approver wrote it (shown as the failure message of a rejection).
    pub reason: Option<String>,
    /// When the vote was cast; a vote at or after the request's expiry is refused.
    pub at_ms: u64,
}

impl Vote {
    /// Checks the bounds of the evidence and the reason.
    pub(crate) fn validate(&self) -> Result<(), &'static str> {
        if self.statement.is_empty() || self.signature.is_empty() {
            return Err("statement and signature must not be empty");
        }
        if self.statement.len() > MAX_EVIDENCE_LEN || self.signature.len() > MAX_EVIDENCE_LEN {
            return Err("statement and signature must be at most 16384 bytes");
        }
        if let Some(reason) = &self.reason
            && reason.chars().count() > MAX_REASON_LEN
        {
            return Err("reason must be at most 1000 characters");
        }
        Ok(())
    }
}

/// A vote as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteRecord {
    /// The approver's name.
    pub approver: String,
    /// The answer.
    pub decision: VoteDecision,
    /// When the vote was cast.
    pub at_ms: u64,
    /// Why, as the approver wrote it.
    pub reason: Option<String>,
    /// The signed statement, base64.
    pub statement: String,
    /// The signature over it, base64.
    pub signature: String,
}

/// A session's approval request and the votes cast on it so far.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// The session waiting.
    pub session_id: SessionId,
    /// What it waits on.
    pub request: ApprovalRequest,
    /// When the request was made.
    pub created_at_ms: u64,
    /// The votes, in the order they were cast.
    pub votes: Vec<VoteRecord>,
}

impl ApprovalRecord {
    /// How many distinct approvers approved.
    pub fn approvals(&self) -> u32 {
        let approvals = self
            .votes
            .iter()
            .filter(|v| v.decision == VoteDecision::Approve)
            .count();
        u32::try_from(approvals).unwrap_or(u32::MAX)
    }
}

/// What recording a vote did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoteOutcome {
    /// The session after the vote.
    pub session: Session,
    /// The distinct approvals so far, this vote included.
    pub approvals: u32,
    /// The approvals required.
    pub required: u32,
    /// The state this vote moved the session to: `approved` when it completed the quorum,
    /// `rejected` for a rejection; `None` while the session still waits.
    pub decided: Option<SessionState>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(eligible: &[&str], required: u32) -> ApprovalRequest {
        ApprovalRequest {
            tier: Some("high".into()),
            rule: "large_payment".into(),
            group: "finance".into(),
            eligible: eligible.iter().map(|n| (*n).to_owned()).collect(),
            required,
            expires_at_ms: 100,
            policy_version: "9f2c".into(),
        }
    }

    #[test]
    fn approver_names_follow_the_agent_id_rules_in_lower_case() {
        for good in ["alice", "bob.smith", "ops_2", "a-b", &"a".repeat(64)] {
            assert!(valid_approver_name(good), "{good}");
        }
        for bad in ["", "Alice", "a b", "a@b", "é", &"a".repeat(65)] {
            assert!(!valid_approver_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_request_must_be_decidable() {
        assert_eq!(request(&["a", "b", "c"], 2).validate(10), Ok(()));
        assert!(request(&["a", "b"], 3).validate(10).is_err());
        assert!(request(&["a", "b"], 0).validate(10).is_err());
        assert!(request(&["a", "a"], 2).validate(10).is_err());
        assert!(request(&["a", "B"], 1).validate(10).is_err());
        assert!(request(&[], 1).validate(10).is_err());
        assert!(request(&["a"], 1).validate(100).is_err(), "already expired");
        let mut no_rule = request(&["a"], 1);
        no_rule.rule.clear();
        assert!(no_rule.validate(10).is_err());
    }

    #[test]
    fn votes_are_bounded() {
        let vote = Vote {
            approver: "a".into(),
            decision: VoteDecision::Reject,
            statement: "c3RhdGVtZW50".into(),
            signature: "c2ln".into(),
            reason: Some("too much".into()),
            at_ms: 1,
        };
        assert_eq!(vote.validate(), Ok(()));
        let long_reason = Vote {
            reason: Some("x".repeat(MAX_REASON_LEN + 1)),
            ..vote.clone()
        };
        assert!(long_reason.validate().is_err());
        let unsigned = Vote {
            signature: String::new(),
            ..vote
        };
        assert!(unsigned.validate().is_err());
    }
}
