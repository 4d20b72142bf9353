//! The payment session state machine (SPEC section 4).
//!
//! ```text
//! initialized -> awaiting_approval -> approved -> signed -> submitted -> confirmed -> finalized
//! ```
//!
//! `awaiting_approval` is skipped when policy approves on its own. The side exits:
//! `rejected` from `initialized` and `awaiting_approval`; `cancelled` and `expired` from those
//! and `approved`; `failed` from every state before `confirmed`.
//!
//! The table in [`SessionState::allowed_next`] is the whole machine; the store refuses every
//! other move. Two choices matter for safety:
//!
//! - Once a session is `signed`, its transaction may already be on the wire, so it can no
//!   longer be cancelled or expired: it ends `finalized` or, on proven failure, `failed`.
//!   Recovery may skip forward (`signed` straight to `confirmed` when the chain shows the
//!   signature), never back.
//! - A `confirmed` session can only become `finalized`: releasing the budget of a payment the
//!   chain has confirmed would let an agent spend past its caps.

use serde::{Deserialize, Serialize};

use crate::error::named_enum;

/// Where a payment session stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Created from the agent's intent; nothing decided yet.
    Initialized,
    /// Waiting for human approvers.
    AwaitingApproval,
    /// Allowed by policy (and approvers, if any); not yet signed.
    Approved,
    /// The signer returned a signed transaction, stored before it is sent.
    Signed,
    /// Sent to the network; the outcome is not known yet (a timeout stays here, it is not a
    /// failure).
    Submitted,
    /// The chain confirmed the transaction.
    Confirmed,
    /// The chain finalized the transaction. Terminal; the budget reservation is committed.
    Finalized,
    /// Denied by policy or by an approver. Terminal; the reservation is released.
    Rejected,
    /// Cancelled by the agent or an operator before it was signed. Terminal; the reservation is
    /// released.
    Cancelled,
    /// Not completed in time. Terminal; the reservation is released.
    Expired,
    /// Proven not to have paid. Terminal; the reservation is released.
    Failed,
}

named_enum!(SessionState, "session state", [
    SessionState::Initialized => "initialized",
    SessionState::AwaitingApproval => "awaiting_approval",
    SessionState::Approved => "approved",
    SessionState::Signed => "signed",
    SessionState::Submitted => "submitted",
    SessionState::Confirmed => "confirmed",
    SessionState::Finalized => "finalized",
    SessionState::Rejected => "rejected",
    SessionState::Cancelled => "cancelled",
    SessionState::Expired => "expired",
    SessionState::Failed => "failed",
]);

/// What entering a state does to the session's budget reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReservationEffect {
    /// The reservation stays as it is.
    Keep,
    /// The reserved amount stops counting against the caps.
    Release,
    /// The reserved amount counts for good: the money has moved.
    Commit,
}

impl SessionState {
    /// Every state, in the order of the happy path and then the side exits.
    pub const ALL: [SessionState; 11] = [
        SessionState::Initialized,
        SessionState::AwaitingApproval,
        SessionState::Approved,
        SessionState::Signed,
        SessionState::Submitted,
        SessionState::Confirmed,
        SessionState::Finalized,
        SessionState::Rejected,
        SessionState::Cancelled,
        SessionState::Expired,
        SessionState::Failed,
    ];

    /// Whether the session can never change state again.
    pub const fn is_terminal(&self) -> bool {
        self.allowed_next().is_empty()
    }

    /// The states this one may move to.
    pub const fn allowed_next(&self) -> &'static [SessionState] {
        use SessionState::*;
        match self {
            Initialized => &[
                AwaitingApproval,
                Approved,
                Rejected,
                Cancelled,
                Expired,
                Failed,
            ],
            AwaitingApproval => &[Approved, Rejected, Cancelled, Expired, Failed],
            Approved => &[Signed, Cancelled, Expired, Failed],
            Signed => &[Submitted, Confirmed, Finalized, Failed],
            Submitted => &[Confirmed, Finalized, Failed],
            Confirmed => &[Finalized],
            Finalized | Rejected | Cancelled | Expired | Failed => &[],
        }
    }

    /// Whether moving from `self` to `to` is in the state machine.
    pub fn can_move_to(&self, to: SessionState) -> bool {
        self.allowed_next().contains(&to)
    }

    /// Whether a session in this state may be expired by [`crate::Store::expire_due`]: only
    /// sessions that have not been approved yet.
    pub const fn expires_automatically(&self) -> bool {
        matches!(
            self,
            SessionState::Initialized | SessionState::AwaitingApproval
        )
    }

    pub(crate) const fn reservation_effect(&self) -> ReservationEffect {
        match self {
            SessionState::Finalized => ReservationEffect::Commit,
            SessionState::Rejected
            | SessionState::Cancelled
            | SessionState::Expired
            | SessionState::Failed => ReservationEffect::Release,
            _ => ReservationEffect::Keep,
        }
    }
}

#[cfg(test)]
mod tests;
