//! The backend's approval operations.

use clawfirst_core::{Address, AgentId, SessionId};

use super::{SqliteBackend, approvals, approvers};
use crate::approval::{ApprovalRecord, ApprovalRequest, ApproverRecord, Vote, VoteOutcome};
use crate::audit::AuditEvent;
use crate::budget::{CapExceeded, Reservation};
use crate::error::StoreError;
use crate::session::{Session, SessionPatch};
use crate::state::SessionState;

impl SqliteBackend {
    pub(crate) async fn add_approver(
        &self,
        name: String,
        public_key: Address,
        event: AuditEvent,
    ) -> Result<ApproverRecord, StoreError> {
        self.write("add_approver", move |tx| {
            approvers::add(tx, name, public_key, &event)
        })
        .await
    }

    pub(crate) async fn approver(
        &self,
        name: String,
    ) -> Result<Option<ApproverRecord>, StoreError> {
        self.read_point("approver", move |conn| approvers::find(conn, &name))
    }

    pub(crate) async fn approvers(&self) -> Result<Vec<ApproverRecord>, StoreError> {
        self.read("approvers", approvers::list).await
    }

    pub(crate) async fn remove_approver(
        &self,
        name: String,
        event: AuditEvent,
    ) -> Result<ApproverRecord, StoreError> {
        self.write("remove_approver", move |tx| {
            approvers::remove(tx, &name, &event)
        })
        .await
    }

    pub(crate) async fn reserve_and_await_approval(
        &self,
        id: SessionId,
        expected: SessionState,
        reservation: Reservation,
        request: ApprovalRequest,
        patch: SessionPatch,
        event: AuditEvent,
    ) -> Result<Result<Session, CapExceeded>, StoreError> {
        self.write("reserve_and_await_approval", move |tx| {
            approvals::reserve_and_await(tx, &id, expected, &reservation, request, patch, event)
        })
        .await
    }

    pub(crate) async fn record_vote(
        &self,
        id: SessionId,
        vote: Vote,
        event: AuditEvent,
    ) -> Result<VoteOutcome, StoreError> {
        self.write("record_vote", move |tx| {
            approvals::record_vote(tx, &id, vote, event)
        })
        .await
    }

    pub(crate) async fn approval_request(
        &self,
        id: SessionId,
    ) -> Result<Option<ApprovalRecord>, StoreError> {
        self.read("approval_request", move |conn| {
            // The request and its votes from one snapshot.
            let snapshot = conn.unchecked_transaction()?;
            let record = approvals::find_request(&snapshot, &id)?;
            snapshot.commit()?;
            Ok(record)
        })
        .await
    }

    pub(crate) async fn pending_approvals(
        &self,
        max: usize,
    ) -> Result<Vec<(Session, ApprovalRecord)>, StoreError> {
        self.read("pending_approvals", move |conn| {
            approvals::pending(conn, max)
        })
        .await
    }

    pub(crate) async fn has_paid_recipient(
        &self,
        agent_id: AgentId,
        recipient: Address,
    ) -> Result<bool, StoreError> {
        self.read("has_paid_recipient", move |conn| {
            approvals::has_paid_recipient(conn, &agent_id, &recipient)
        })
        .await
    }
}
