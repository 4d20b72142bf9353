//! Step 4 of the sign sequence: checking every approval a request carries.
//!
//! Fail closed: one approval that does not pass refuses the whole request
//! (`approval_invalid`), even if the others would have been enough. The log names the check
//! that failed and the approver (name or public key), never a signature or statement.

use std::collections::HashSet;

use clawfirst_core::approval::{ApprovalDecision, SignedApproval};
use clawfirst_core::grant::{CLOCK_SKEW_MS, GrantBody};
use clawfirst_core::signer_proto::SignerErrorCode;

use crate::config::{Approver, MAX_APPROVALS_PER_REQUEST};
use crate::service::{Refusal, Service};

/// The approvals of a request, every one of them valid for its grant.
#[derive(Debug)]
pub(super) struct CheckedApprovals {
    /// The distinct approvers, in the order their approvals came.
    pub(super) approvers: Vec<Approver>,
    /// Whether they are enough to pass above the floor.
    pub(super) suffice: bool,
}

impl CheckedApprovals {
    /// `name=public_key` of each approver, separated by `,`, for the request log.
    pub(super) fn describe(&self) -> String {
        self.approvers
            .iter()
            .map(|a| format!("{}={}", a.name, a.public_key))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Service {
    /// Checks each approval: signature, approver listed, decision, payment, age, and that no
    /// approver appears twice. `None` when the request carries no approvals.
    pub(super) fn check_approvals(
        &self,
        body: &GrantBody,
        approvals: &[SignedApproval],
        now_ms: u64,
    ) -> Result<Option<CheckedApprovals>, Refusal> {
        if approvals.is_empty() {
            return Ok(None);
        }
        let Some(config) = &self.approvers else {
            return Err(invalid(
                "the signer has no [approvals] section, so it knows no approver",
            ));
        };
        if approvals.len() > MAX_APPROVALS_PER_REQUEST {
            return Err(invalid(format!(
                "{} approvals; at most {MAX_APPROVALS_PER_REQUEST} are accepted",
                approvals.len()
            )));
        }
        let list = config.current();
        let mut seen = HashSet::with_capacity(approvals.len());
        let mut approvers = Vec::with_capacity(approvals.len());

        for (index, approval) in approvals.iter().enumerate() {
            let verified = approval
                .verify()
                .map_err(|e| invalid(format!("approval {index}: {}", crate::error_chain(&e))))?;
            let statement = verified.statement();
            let Some(approver) = list.find(&statement.approver) else {
                return Err(invalid(format!(
                    "approval {index}: approver key {} is not in the signer's list",
                    statement.approver
                )));
            };
            let who = &approver.name;
            if statement.decision != ApprovalDecision::Approve {
                return Err(invalid(format!(
                    "approval {index}: {who} rejected the payment"
                )));
            }
            if !verified.matches_grant(body) {
                return Err(invalid(format!(
                    "approval {index}: {who} approved another payment ({})",
                    difference(statement, body)
                )));
            }
            if statement.decided_at_ms > now_ms.saturating_add(CLOCK_SKEW_MS) {
                return Err(invalid(format!(
                    "approval {index}: {who}'s decision is dated in the future"
                )));
            }
            if now_ms.saturating_sub(statement.decided_at_ms) > config.max_age_ms() {
                return Err(invalid(format!(
                    "approval {index}: {who}'s decision is older than approvals.max_age"
                )));
            }
            if !seen.insert(approver.public_key) {
                return Err(invalid(format!(
                    "approval {index}: {who} is counted already"
                )));
            }
            approvers.push(approver.clone());
        }

        let suffice = approvers.len() >= config.required();
        Ok(Some(CheckedApprovals { approvers, suffice }))
    }
}

/// Which part of the payment an approval's statement names differently from the grant.
fn difference(
    statement: &clawfirst_core::approval::ApprovalStatement,
    body: &GrantBody,
) -> &'static str {
    if statement.session_id != body.session_id {
        "session"
    } else if statement.agent_id != body.agent_id {
        "agent"
    } else if statement.key_id != body.key_id {
        "key"
    } else {
        "transfer"
    }
}

fn invalid(detail: impl Into<String>) -> Refusal {
    Refusal::new(SignerErrorCode::ApprovalInvalid, detail)
}
