//! Row-level session SQL: reading, inserting and updating session rows, and the listing
//! queries. The transactional rules live in `sessions`.

use clawfirst_core::{AgentId, GrantId, SessionId};
use rusqlite::types::Value;
use rusqlite::{Connection, Row, params, params_from_iter};

use super::Result;
use super::convert::{Columns, json_text, limit, opt_to_i64, to_i64};
use crate::error::StoreError;
use crate::session::{Failure, Session};
use crate::state::SessionState;

macro_rules! select_sessions {
    ($tail:literal) => {
        concat!(
            "SELECT session_id, agent_id, state, asset, amount, recipient, recipient_input, ",
            "purpose, settlement_constraint, execute_after_ms, idempotency_key, request_digest, ",
            "metadata, created_at_ms, updated_at_ms, expires_at_ms, key_id, payer, message, ",
            "grant_id, blockhash_last_valid_slot, signature, signed_transaction, slot, ",
            "failure_code, failure_message, policy_rule FROM sessions ",
            $tail
        )
    };
}

pub(super) fn find(conn: &Connection, id: &SessionId) -> Result<Option<Session>> {
    let mut stmt = conn.prepare_cached(select_sessions!("WHERE session_id = ?1"))?;
    let mut rows = stmt.query([id.as_str()])?;
    rows.next()?.map(session).transpose()
}

pub(super) fn find_by_idempotency_key(
    conn: &Connection,
    agent_id: &AgentId,
    key: &str,
) -> Result<Option<Session>> {
    let mut stmt = conn.prepare_cached(select_sessions!(
        "WHERE agent_id = ?1 AND idempotency_key = ?2"
    ))?;
    let mut rows = stmt.query((agent_id.as_str(), key))?;
    rows.next()?.map(session).transpose()
}

/// Up to `max` sessions in any of `states`, least recently updated first.
pub(super) fn in_states(
    conn: &Connection,
    states: &[SessionState],
    max: usize,
) -> Result<Vec<Session>> {
    let mut names: Vec<&str> = states.iter().map(SessionState::as_str).collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        return Ok(Vec::new());
    }

    let placeholders = vec!["?"; names.len()].join(", ");
    let sql = format!(
        "{} WHERE state IN ({placeholders}) ORDER BY updated_at_ms, session_id LIMIT ?",
        select_sessions!("")
    );
    let mut values: Vec<Value> = names.iter().map(|n| Value::Text((*n).to_owned())).collect();
    values.push(Value::Integer(limit(max)));

    let mut stmt = conn.prepare(&sql)?;
    collect(stmt.query(params_from_iter(values))?)
}

/// Up to `max` sessions, newest first, of one agent or of all.
pub(super) fn list(
    conn: &Connection,
    agent_id: Option<&AgentId>,
    max: usize,
) -> Result<Vec<Session>> {
    match agent_id {
        Some(agent_id) => {
            let mut stmt = conn.prepare_cached(select_sessions!(
                "WHERE agent_id = ?1 ORDER BY created_at_ms DESC, session_id DESC LIMIT ?2"
            ))?;
            collect(stmt.query((agent_id.as_str(), limit(max)))?)
        }
        None => {
            let mut stmt = conn.prepare_cached(select_sessions!(
                "ORDER BY created_at_ms DESC, session_id DESC LIMIT ?1"
            ))?;
            collect(stmt.query([limit(max)])?)
        }
    }
}

/// How many of the agent's sessions have not ended (any state that is not terminal).
pub(super) fn open_count(conn: &Connection, agent_id: &AgentId) -> Result<u64> {
    let count: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM sessions
             WHERE agent_id = ?1 AND state IN ('initialized', 'awaiting_approval', 'approved',
                                               'signed', 'submitted', 'confirmed')",
        )?
        .query_row([agent_id.as_str()], |row| row.get(0))?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Up to `max` ids of sessions that [`expire_one`] would expire at `now_ms`.
pub(super) fn due_for_expiry(conn: &Connection, now_ms: u64, max: usize) -> Result<Vec<SessionId>> {
    let now = to_i64("now_ms", now_ms)?;
    let mut stmt = conn.prepare_cached(
        "SELECT session_id FROM sessions
         WHERE state IN ('initialized', 'awaiting_approval') AND expires_at_ms <= ?1
         ORDER BY expires_at_ms, session_id LIMIT ?2",
    )?;
    let mut rows = stmt.query((now, limit(max)))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(
            Columns {
                row,
                table: "sessions",
            }
            .parsed("session_id")?,
        );
    }
    Ok(out)
}

pub(super) fn insert(tx: &Connection, s: &Session) -> Result<()> {
    let metadata = s
        .metadata
        .as_ref()
        .map(|m| json_text("metadata", m))
        .transpose()?;
    tx.prepare_cached(
        "INSERT INTO sessions (session_id, agent_id, state, asset, amount, recipient,
             recipient_input, purpose, settlement_constraint, execute_after_ms, idempotency_key,
             request_digest, metadata, created_at_ms, updated_at_ms, expires_at_ms, key_id, payer)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    )?
    .execute(params![
        s.id.as_str(),
        s.agent_id.as_str(),
        s.state.as_str(),
        s.asset.symbol(),
        to_i64("amount", s.amount)?,
        s.recipient.to_string(),
        s.recipient_input,
        s.purpose,
        s.settlement_constraint.as_str(),
        opt_to_i64("execute_after_ms", s.execute_after_ms)?,
        s.idempotency_key,
        &s.request_digest[..],
        metadata,
        to_i64("created_at_ms", s.created_at_ms)?,
        to_i64("updated_at_ms", s.updated_at_ms)?,
        to_i64("expires_at_ms", s.expires_at_ms)?,
        s.key_id.as_str(),
        s.payer.to_string(),
    ])?;
    Ok(())
}

/// Writes the fields a move may change, only if the session is still in `from`.
pub(super) fn update(tx: &Connection, s: &Session, from: SessionState) -> Result<()> {
    let changed = tx
        .prepare_cached(
            "UPDATE sessions SET state = ?1, updated_at_ms = ?2, message = ?3, grant_id = ?4,
             blockhash_last_valid_slot = ?5, signature = ?6, signed_transaction = ?7, slot = ?8,
             failure_code = ?9, failure_message = ?10, policy_rule = ?11, expires_at_ms = ?12
         WHERE session_id = ?13 AND state = ?14",
        )?
        .execute(params![
            s.state.as_str(),
            to_i64("updated_at_ms", s.updated_at_ms)?,
            s.message,
            s.grant_id.map(GrantId::to_bytes).map(Vec::from),
            opt_to_i64("blockhash_last_valid_slot", s.blockhash_last_valid_slot)?,
            s.signature,
            s.signed_transaction,
            opt_to_i64("slot", s.slot)?,
            s.failure.as_ref().map(|f| f.code.as_str()),
            s.failure.as_ref().map(|f| f.message.as_str()),
            s.policy_rule,
            to_i64("expires_at_ms", s.expires_at_ms)?,
            s.id.as_str(),
            from.as_str(),
        ])?;
    // The write lock is held since the session was read, so the row cannot have moved; this
    // guards the compare-and-set should the locking ever change.
    if changed != 1 {
        let actual = find(tx, &s.id)?.map_or(from, |now| now.state);
        return Err(StoreError::StateConflict {
            session_id: s.id.clone(),
            expected: from,
            actual,
        }
        .into());
    }
    Ok(())
}

fn collect(mut rows: rusqlite::Rows<'_>) -> Result<Vec<Session>> {
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(session(row)?);
    }
    Ok(out)
}

fn session(row: &Row<'_>) -> Result<Session> {
    let c = Columns {
        row,
        table: "sessions",
    };
    let failure_code: Option<String> = c.raw("failure_code")?;
    let failure_message: Option<String> = c.raw("failure_message")?;
    let failure = match (failure_code, failure_message) {
        (Some(code), Some(message)) => Some(Failure { code, message }),
        (None, None) => None,
        _ => {
            return Err(StoreError::Corrupt {
                table: "sessions",
                column: "failure_code",
            }
            .into());
        }
    };

    Ok(Session {
        id: c.parsed("session_id")?,
        agent_id: c.parsed("agent_id")?,
        state: c.parsed("state")?,
        asset: c.parsed("asset")?,
        amount: c.u64("amount")?,
        recipient: c.parsed("recipient")?,
        recipient_input: c.raw("recipient_input")?,
        purpose: c.raw("purpose")?,
        settlement_constraint: c.parsed("settlement_constraint")?,
        execute_after_ms: c.opt_u64("execute_after_ms")?,
        idempotency_key: c.raw("idempotency_key")?,
        request_digest: c.bytes("request_digest")?,
        metadata: c.opt_json("metadata")?,
        created_at_ms: c.u64("created_at_ms")?,
        updated_at_ms: c.u64("updated_at_ms")?,
        expires_at_ms: c.u64("expires_at_ms")?,
        key_id: c.parsed("key_id")?,
        payer: c.parsed("payer")?,
        message: c.raw("message")?,
        grant_id: c.opt_bytes("grant_id")?.map(GrantId::from_bytes),
        blockhash_last_valid_slot: c.opt_u64("blockhash_last_valid_slot")?,
        signature: c.raw("signature")?,
        signed_transaction: c.raw("signed_transaction")?,
        slot: c.opt_u64("slot")?,
        failure,
        policy_rule: c.raw("policy_rule")?,
    })
}
