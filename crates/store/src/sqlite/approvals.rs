//! Approval request and vote SQL: waiting for approvers atomically with the budget step, and
//! recording each vote in the transaction that checks it.
//!
//! Like `sessions`, every function taking `tx` runs on the writer thread inside a
//! `BEGIN IMMEDIATE` transaction, in its own savepoint, so a vote's checks (state, expiry,
//! eligibility, an earlier vote) cannot be overtaken by another vote before it writes.

use clawfirst_core::{Address, AgentId, SessionId};
use rusqlite::{Connection, Row};

use super::convert::{Columns, json_text, limit, to_i64};
use super::sessions::{finish_move, load_expecting, reserve_and_transition};
use super::{Result, approvers, audit, session_rows};
use crate::approval::{
    APPROVAL_REJECTED, ApprovalRecord, ApprovalRequest, ApproverStatus, Vote, VoteDecision,
    VoteOutcome, VoteRecord,
};
use crate::audit::{ActorKind, AuditEvent};
use crate::budget::{CapExceeded, Reservation};
use crate::error::StoreError;
use crate::session::{Failure, Session, SessionPatch};
use crate::state::SessionState;

/// The message of a rejection that gave no reason.
const NO_REASON: &str = "rejected by an approver";

/// The budget step into `awaiting_approval`, with the request the session then waits on; the
/// session's expiry becomes the request's.
pub(super) fn reserve_and_await(
    tx: &Connection,
    id: &SessionId,
    expected: SessionState,
    reservation: &Reservation,
    request: ApprovalRequest,
    mut patch: SessionPatch,
    event: AuditEvent,
) -> Result<Result<Session, CapExceeded>> {
    request
        .validate(event.at_ms)
        .map_err(|reason| StoreError::InvalidApprovalRequest { reason })?;
    patch.expires_at_ms = Some(request.expires_at_ms);
    let at_ms = event.at_ms;

    let to = SessionState::AwaitingApproval;
    let session = match reserve_and_transition(tx, id, expected, to, reservation, patch, event)? {
        Ok(session) => session,
        Err(exceeded) => return Ok(Err(exceeded)),
    };
    insert_request(tx, id, &request, at_ms)?;
    Ok(Ok(session))
}

fn insert_request(
    tx: &Connection,
    id: &SessionId,
    request: &ApprovalRequest,
    at_ms: u64,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO approval_requests (session_id, tier, rule, approver_group, eligible,
             required, expires_at_ms, policy_version, created_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute((
        id.as_str(),
        &request.tier,
        &request.rule,
        &request.group,
        json_text("eligible", &request.eligible)?,
        i64::from(request.required),
        to_i64("expires_at_ms", request.expires_at_ms)?,
        &request.policy_version,
        to_i64("at_ms", at_ms)?,
    ))?;
    Ok(())
}

/// Records `vote` on the session and decides it when the vote rejects or completes the quorum.
pub(super) fn record_vote(
    tx: &Connection,
    id: &SessionId,
    vote: Vote,
    mut event: AuditEvent,
) -> Result<VoteOutcome> {
    vote.validate()
        .map_err(|reason| StoreError::InvalidVote { reason })?;

    // 1. The session still waits, on a request that has not expired. The later of the vote's
    //    time and the time it is recorded counts, so a vote cast in time but arriving late is
    //    refused as well.
    let current = load_expecting(tx, id, SessionState::AwaitingApproval, &mut event)?;
    let record = find_request(tx, id)?.ok_or_else(|| StoreError::NoApprovalRequest(id.clone()))?;
    let request = &record.request;
    if vote.at_ms.max(event.at_ms) >= request.expires_at_ms {
        return Err(StoreError::ApprovalExpired {
            session_id: id.clone(),
            expires_at_ms: request.expires_at_ms,
        }
        .into());
    }

    // 2. The approver was asked and may still vote, and has not voted on this session.
    let asked = request.eligible.contains(&vote.approver);
    let active =
        approvers::find(tx, &vote.approver)?.is_some_and(|a| a.status == ApproverStatus::Active);
    if !asked || !active {
        return Err(StoreError::NotEligible {
            session_id: id.clone(),
            approver: vote.approver,
        }
        .into());
    }
    if record.votes.iter().any(|v| v.approver == vote.approver) {
        return Err(StoreError::DuplicateVote {
            session_id: id.clone(),
            approver: vote.approver,
        }
        .into());
    }

    // 3. The vote and its audit record.
    insert_vote(tx, id, &vote)?;
    audit::append(tx, &event)?;

    // 4. A rejection decides at once; an approval decides when it completes the quorum.
    let earlier = record.approvals();
    let (approvals, decided) = match vote.decision {
        VoteDecision::Reject => (earlier, Some(SessionState::Rejected)),
        VoteDecision::Approve => {
            let approvals = earlier.saturating_add(1);
            (
                approvals,
                (approvals >= request.required).then_some(SessionState::Approved),
            )
        }
    };
    let required = request.required;
    let Some(to) = decided else {
        return Ok(VoteOutcome {
            session: current,
            approvals,
            required,
            decided: None,
        });
    };
    let patch = match vote.decision {
        VoteDecision::Reject => SessionPatch {
            failure: Some(Failure {
                code: APPROVAL_REJECTED.to_owned(),
                message: vote.reason.clone().unwrap_or_else(|| NO_REASON.to_owned()),
            }),
            ..SessionPatch::none()
        },
        VoteDecision::Approve => SessionPatch::none(),
    };
    let decision = AuditEvent::new(ActorKind::System, "store.approvals", "session.transition")
        .at_ms(event.at_ms)
        .session(id)
        .detail("from", SessionState::AwaitingApproval.as_str())
        .detail("to", to.as_str())
        .detail("approvals", approvals)
        .detail("required", required)
        .detail("decided_by", vote.approver.as_str());
    let session = finish_move(tx, current, to, patch, &decision)?;
    Ok(VoteOutcome {
        session,
        approvals,
        required,
        decided: Some(to),
    })
}

fn insert_vote(tx: &Connection, id: &SessionId, vote: &Vote) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO approval_votes (session_id, approver, decision, statement, signature,
             reason, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute((
        id.as_str(),
        &vote.approver,
        vote.decision.as_str(),
        &vote.statement,
        &vote.signature,
        &vote.reason,
        to_i64("at_ms", vote.at_ms)?,
    ))?;
    Ok(())
}

/// The session's request and its votes, if it has one.
pub(super) fn find_request(conn: &Connection, id: &SessionId) -> Result<Option<ApprovalRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT session_id, tier, rule, approver_group, eligible, required, expires_at_ms,
             policy_version, created_at_ms
         FROM approval_requests WHERE session_id = ?1",
    )?;
    let mut rows = stmt.query([id.as_str()])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let mut record = request(row)?;
    record.votes = votes(conn, id)?;
    Ok(Some(record))
}

fn votes(conn: &Connection, id: &SessionId) -> Result<Vec<VoteRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT approver, decision, at_ms, reason, statement, signature
         FROM approval_votes WHERE session_id = ?1 ORDER BY at_ms, approver",
    )?;
    let mut rows = stmt.query([id.as_str()])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let c = Columns {
            row,
            table: "approval_votes",
        };
        out.push(VoteRecord {
            approver: c.raw("approver")?,
            decision: c.parsed("decision")?,
            at_ms: c.u64("at_ms")?,
            reason: c.raw("reason")?,
            statement: c.raw("statement")?,
            signature: c.raw("signature")?,
        });
    }
    Ok(out)
}

/// Up to `max` waiting sessions with their requests, the longest waiting first, read in one
/// snapshot.
pub(super) fn pending(conn: &Connection, max: usize) -> Result<Vec<(Session, ApprovalRecord)>> {
    let snapshot = conn.unchecked_transaction()?;
    let ids = {
        let mut stmt = snapshot.prepare_cached(
            "SELECT r.session_id FROM approval_requests r
             JOIN sessions s ON s.session_id = r.session_id
             WHERE s.state = 'awaiting_approval'
             ORDER BY r.created_at_ms, r.session_id LIMIT ?1",
        )?;
        let mut rows = stmt.query([limit(max)])?;
        let mut ids: Vec<SessionId> = Vec::new();
        while let Some(row) = rows.next()? {
            ids.push(
                Columns {
                    row,
                    table: "approval_requests",
                }
                .parsed("session_id")?,
            );
        }
        ids
    };
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let session = session_rows::find(&snapshot, &id)?;
        let record = find_request(&snapshot, &id)?;
        if let (Some(session), Some(record)) = (session, record) {
            out.push((session, record));
        }
    }
    snapshot.commit()?;
    Ok(out)
}

/// Whether the agent has a payment to `recipient` that was signed or went further.
pub(super) fn has_paid_recipient(
    conn: &Connection,
    agent_id: &AgentId,
    recipient: &Address,
) -> Result<bool> {
    let paid: i64 = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM sessions
                 WHERE agent_id = ?1 AND recipient = ?2
                   AND state IN ('signed', 'submitted', 'confirmed', 'finalized'))",
        )?
        .query_row((agent_id.as_str(), recipient.to_string()), |row| row.get(0))?;
    Ok(paid != 0)
}

fn request(row: &Row<'_>) -> Result<ApprovalRecord> {
    let c = Columns {
        row,
        table: "approval_requests",
    };
    let required = u32::try_from(c.u64("required")?).map_err(|_| StoreError::Corrupt {
        table: "approval_requests",
        column: "required",
    })?;
    Ok(ApprovalRecord {
        session_id: c.parsed("session_id")?,
        request: ApprovalRequest {
            tier: c.raw("tier")?,
            rule: c.raw("rule")?,
            group: c.raw("approver_group")?,
            eligible: c.json("eligible")?,
            required,
            expires_at_ms: c.u64("expires_at_ms")?,
            policy_version: c.raw("policy_version")?,
        },
        created_at_ms: c.u64("created_at_ms")?,
        votes: Vec::new(),
    })
}
