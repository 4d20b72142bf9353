//! [`Store`] methods for human approvals: approvers, waiting for approval, votes.

use clawfirst_core::{Address, AgentId, SessionId};
use tracing::{debug, info, instrument};

use super::{Backend, Store};
use crate::approval::{ApprovalRecord, ApprovalRequest, ApproverRecord, Vote, VoteOutcome};
use crate::audit::AuditEvent;
use crate::budget::{CapExceeded, Reservation};
use crate::error::StoreError;
use crate::session::{Session, SessionPatch};
use crate::state::SessionState;

impl Store {
    /// Adds an active approver whose statements `public_key` (ed25519) signs.
    ///
    /// # Errors
    /// [`StoreError::InvalidApproverName`], [`StoreError::ApproverExists`] (names of removed
    /// approvers stay taken), [`StoreError::ApproverKeyInUse`].
    #[instrument(skip_all, fields(approver.name = %name))]
    pub async fn add_approver(
        &self,
        name: &str,
        public_key: Address,
        audit: AuditEvent,
    ) -> Result<ApproverRecord, StoreError> {
        let record = dispatch!(self, add_approver(name.to_owned(), public_key, audit))?;
        info!(approver.key = %record.public_key, "approver added");
        Ok(record)
    }

    /// The approver, active or removed, if it exists.
    pub async fn approver(&self, name: &str) -> Result<Option<ApproverRecord>, StoreError> {
        dispatch!(self, approver(name.to_owned()))
    }

    /// Every approver, removed ones included, by name.
    pub async fn approvers(&self) -> Result<Vec<ApproverRecord>, StoreError> {
        dispatch!(self, approvers())
    }

    /// Removes an approver: no vote of theirs is accepted from now on, votes cast before stay
    /// counted. Removing a removed approver changes nothing but is audited.
    ///
    /// # Errors
    /// [`StoreError::ApproverNotFound`].
    #[instrument(skip_all, fields(approver.name = %name))]
    pub async fn remove_approver(
        &self,
        name: &str,
        audit: AuditEvent,
    ) -> Result<ApproverRecord, StoreError> {
        let record = dispatch!(self, remove_approver(name.to_owned(), audit))?;
        info!("approver removed");
        Ok(record)
    }

    /// The budget step into `awaiting_approval`: as [`Store::reserve_and_transition`] to
    /// `awaiting_approval`, and in the same transaction stores `request`, the approval the
    /// session now waits on, and sets the session's expiry to the request's (so the waiting
    /// session expires when its approval does; an expiry in `patch` is overridden).
    ///
    /// `Ok(Err(CapExceeded))` names the first window that would be exceeded; nothing is
    /// written.
    ///
    /// # Errors
    /// As [`Store::reserve_and_transition`], plus [`StoreError::InvalidApprovalRequest`] when
    /// the request could never be decided (no eligible approver, more approvals required than
    /// eligible approvers, duplicate or invalid names, already expired at `audit.at_ms`).
    #[instrument(skip_all, fields(session.id = %id, session.from = %expected))]
    pub async fn reserve_and_await_approval(
        &self,
        id: &SessionId,
        expected: SessionState,
        reservation: Reservation,
        request: ApprovalRequest,
        patch: SessionPatch,
        audit: AuditEvent,
    ) -> Result<Result<Session, CapExceeded>, StoreError> {
        let result = dispatch!(
            self,
            reserve_and_await_approval(id.clone(), expected, reservation, request, patch, audit)
        );
        match &result {
            Ok(Ok(session)) => debug!(
                agent.id = %session.agent_id,
                session.expires_at_ms = session.expires_at_ms,
                "budget reserved, awaiting approval"
            ),
            Ok(Err(exceeded)) => info!(
                policy.rule = %exceeded.name,
                budget.measure = %exceeded.measure,
                budget.cap = exceeded.cap,
                budget.used = exceeded.used,
                budget.requested = exceeded.requested,
                "budget reservation denied"
            ),
            Err(e) => info!(error = %e, "budget reservation refused"),
        }
        result
    }

    /// Records an approver's vote, all in one transaction: the session must be
    /// `awaiting_approval`, its request not expired at the later of `vote.at_ms` and
    /// `audit.at_ms`, the approver eligible (in the request's snapshot) and active, and not
    /// have voted on this session before. Appends `audit` for the vote. A rejection moves the
    /// session to `rejected` (failure code [`crate::approval::APPROVAL_REJECTED`], the reason
    /// as message), releasing its reservation; the approval that completes the quorum moves it
    /// to `approved`. Either move is audited as a `session.transition` by the store.
    ///
    /// # Security
    /// The store does not verify `vote.signature`: verify it against the approver's
    /// [`ApproverRecord::public_key`] before calling.
    ///
    /// # Errors
    /// [`StoreError::StateConflict`] (the session is decided or not waiting),
    /// [`StoreError::NoApprovalRequest`], [`StoreError::ApprovalExpired`],
    /// [`StoreError::NotEligible`], [`StoreError::DuplicateVote`], [`StoreError::InvalidVote`],
    /// [`StoreError::SessionNotFound`]; in every case nothing is written.
    #[instrument(skip_all, fields(session.id = %id, approver.name = %vote.approver))]
    pub async fn record_vote(
        &self,
        id: &SessionId,
        vote: Vote,
        audit: AuditEvent,
    ) -> Result<VoteOutcome, StoreError> {
        let decision = vote.decision;
        let result = dispatch!(self, record_vote(id.clone(), vote, audit));
        match &result {
            Ok(outcome) if outcome.decided == Some(SessionState::Rejected) => {
                info!(approval.decision = %decision, "payment rejected by an approver");
            }
            Ok(outcome) => debug!(
                approval.decision = %decision,
                approval.count = outcome.approvals,
                approval.required = outcome.required,
                session.state = %outcome.session.state,
                "vote recorded"
            ),
            Err(e) => info!(error = %e, "vote refused"),
        }
        result
    }

    /// The session's approval request with the votes cast so far, if it has one.
    pub async fn approval_request(
        &self,
        id: &SessionId,
    ) -> Result<Option<ApprovalRecord>, StoreError> {
        dispatch!(self, approval_request(id.clone()))
    }

    /// Up to `limit` sessions waiting for approval with their requests, the longest waiting
    /// first. A session that entered `awaiting_approval` without a request is not listed.
    pub async fn pending_approvals(
        &self,
        limit: usize,
    ) -> Result<Vec<(Session, ApprovalRecord)>, StoreError> {
        dispatch!(self, pending_approvals(limit))
    }

    /// Whether the agent has a payment to `recipient` that was signed or went further
    /// (`signed`, `submitted`, `confirmed` or `finalized`), for first-payment rules.
    pub async fn has_paid_recipient(
        &self,
        agent_id: &AgentId,
        recipient: &Address,
    ) -> Result<bool, StoreError> {
        dispatch!(self, has_paid_recipient(agent_id.clone(), *recipient))
    }
}
