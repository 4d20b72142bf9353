//! Payment session SQL: creation with idempotency, compare-and-set transitions, the atomic
//! budget step and expiry.
//!
//! Every function taking `tx` runs on the writer thread inside a `BEGIN IMMEDIATE` transaction,
//! in its own savepoint, so what it reads cannot change before it writes and it sees every
//! earlier write of its batch. Each returns an error before it has written anything that the
//! error would leave inconsistent; on any error its savepoint is rolled back as well.

use clawfirst_core::SessionId;
use rusqlite::Connection;

use super::session_rows::{find, find_by_idempotency_key, insert, update};
use super::{Result, agents, audit, budget};
use crate::approval::{APPROVAL_TIMEOUT, APPROVAL_TIMEOUT_MESSAGE};
use crate::audit::{ActorKind, AuditEvent};
use crate::budget::{CapExceeded, Claim, Reservation, check_totals};
use crate::error::StoreError;
use crate::session::{CreateOutcome, Failure, NewSession, Session, SessionPatch};
use crate::state::SessionState;

pub(super) fn create(
    tx: &Connection,
    new: NewSession,
    mut event: AuditEvent,
) -> Result<CreateOutcome> {
    event.bind_session(&new.id).map_err(invalid_audit)?;

    // 1. A key the agent used before returns the first session, or conflicts.
    let earlier = match &new.idempotency_key {
        Some(key) => find_by_idempotency_key(tx, &new.agent_id, key)?,
        None => None,
    };
    if let Some(existing) = earlier {
        if existing.request_digest != new.request_digest {
            return Err(StoreError::IdempotencyConflict {
                existing: existing.id,
            }
            .into());
        }
        return Ok(CreateOutcome::Existing(existing));
    }

    // 2. The agent exists and the session id is new.
    if agents::find(tx, &new.agent_id)?.is_none() {
        return Err(StoreError::AgentNotFound(new.agent_id).into());
    }
    if find(tx, &new.id)?.is_some() {
        return Err(StoreError::SessionExists(new.id).into());
    }

    // 3. The session and its audit record, together.
    let session = new.into_session(event.at_ms);
    insert(tx, &session)?;
    audit::append(tx, &event)?;
    Ok(CreateOutcome::Created(session))
}

pub(super) fn transition(
    tx: &Connection,
    id: &SessionId,
    expected: SessionState,
    to: SessionState,
    patch: SessionPatch,
    mut event: AuditEvent,
) -> Result<Session> {
    let current = begin_move(tx, id, expected, to, &mut event)?;
    finish_move(tx, current, to, patch, &event)
}

pub(super) fn patch(
    tx: &Connection,
    id: &SessionId,
    expected: SessionState,
    patch: SessionPatch,
    mut event: AuditEvent,
) -> Result<Session> {
    let current = load_expecting(tx, id, expected, &mut event)?;
    finish_move(tx, current, expected, patch, &event)
}

pub(super) fn reserve_and_transition(
    tx: &Connection,
    id: &SessionId,
    expected: SessionState,
    to: SessionState,
    reservation: &Reservation,
    patch: SessionPatch,
    mut event: AuditEvent,
) -> Result<Result<Session, CapExceeded>> {
    if to.is_terminal() {
        return Err(StoreError::ReservationIntoTerminal { to }.into());
    }

    // 1. The session is where the caller expects and may move on.
    let current = begin_move(tx, id, expected, to, &mut event)?;
    if budget::exists(tx, id)? {
        return Err(StoreError::AlreadyReserved(id.clone()).into());
    }

    // 2. Every window has room for the claim, counting what is reserved and spent.
    let usd_micros = reservation.checked_usd_micros()?;
    let now = event.at_ms;
    let mut used = Vec::with_capacity(reservation.windows.len());
    for window in &reservation.windows {
        let since = now.saturating_sub(window.window_ms);
        let agent = &current.agent_id;
        used.push(budget::total_since(
            tx,
            agent,
            current.asset,
            window.measure,
            since,
        )?);
    }
    let claim = Claim {
        base_units: current.amount,
        usd_micros,
    };
    if let Err(exceeded) = check_totals(&reservation.windows, &used, claim) {
        return Ok(Err(exceeded));
    }

    // 3. Reserve, move and audit, together.
    budget::insert(tx, &current, usd_micros, now)?;
    finish_move(tx, current, to, patch, &event).map(Ok)
}

/// Expires the session if, inside this transaction, it is still unapproved and due.
pub(super) fn expire_one(tx: &Connection, id: &SessionId, now_ms: u64) -> Result<Option<Session>> {
    let Some(current) = find(tx, id)? else {
        return Ok(None);
    };
    if !current.state.expires_automatically() || current.expires_at_ms > now_ms {
        return Ok(None);
    }
    // A session waiting for approvers records why it ends: no quorum in time.
    let failure = (current.state == SessionState::AwaitingApproval).then(|| Failure {
        code: APPROVAL_TIMEOUT.to_owned(),
        message: APPROVAL_TIMEOUT_MESSAGE.to_owned(),
    });
    let mut event = AuditEvent::new(ActorKind::System, "store.expiry", "session.transition")
        .at_ms(now_ms)
        .session(id)
        .detail("from", current.state.as_str())
        .detail("to", SessionState::Expired.as_str())
        .detail("expires_at_ms", current.expires_at_ms);
    if let Some(failure) = &failure {
        event = event.detail("failure_code", failure.code.as_str());
    }
    let patch = SessionPatch {
        failure,
        ..SessionPatch::none()
    };
    finish_move(tx, current, SessionState::Expired, patch, &event).map(Some)
}

/// Checks the move is in the state machine and the session is in `expected`.
fn begin_move(
    tx: &Connection,
    id: &SessionId,
    expected: SessionState,
    to: SessionState,
    event: &mut AuditEvent,
) -> Result<Session> {
    if !expected.can_move_to(to) {
        return Err(StoreError::IllegalTransition { from: expected, to }.into());
    }
    load_expecting(tx, id, expected, event)
}

pub(super) fn load_expecting(
    tx: &Connection,
    id: &SessionId,
    expected: SessionState,
    event: &mut AuditEvent,
) -> Result<Session> {
    event.bind_session(id).map_err(invalid_audit)?;
    event.validate().map_err(invalid_audit)?;

    let current = find(tx, id)?.ok_or_else(|| StoreError::SessionNotFound(id.clone()))?;
    if current.state != expected {
        let actual = current.state;
        return Err(StoreError::StateConflict {
            session_id: id.clone(),
            expected,
            actual,
        }
        .into());
    }
    Ok(current)
}

/// Applies the patch and the state, settles the reservation and appends the audit record.
pub(super) fn finish_move(
    tx: &Connection,
    mut session: Session,
    to: SessionState,
    patch: SessionPatch,
    event: &AuditEvent,
) -> Result<Session> {
    let from = session.state;
    patch
        .apply_to(&mut session)
        .map_err(|field| StoreError::WriteOnceField {
            session_id: session.id.clone(),
            field,
        })?;
    session.state = to;
    session.updated_at_ms = event.at_ms;

    update(tx, &session, from)?;
    if to != from {
        budget::apply_effect(tx, &session.id, to.reservation_effect(), event.at_ms)?;
    }
    audit::append(tx, event)?;
    Ok(session)
}

fn invalid_audit(reason: &'static str) -> StoreError {
    StoreError::InvalidAuditEvent { reason }
}
