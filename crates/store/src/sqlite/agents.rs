//! Agent and API-key SQL.

use clawfirst_core::{AgentId, KeyId};
use rusqlite::{Connection, Row};

use super::convert::{Columns, to_i64};
use super::{Result, audit};
use crate::agent::{AgentRecord, AgentStatus, ApiKeyRecord, NewApiKey, valid_key_id_public};
use crate::audit::AuditEvent;
use crate::error::StoreError;

const SELECT_AGENT: &str =
    "SELECT agent_id, key_id, status, created_at_ms, updated_at_ms, credential_generation,
            certificate_sha256
     FROM agents";
const SELECT_KEY: &str =
    "SELECT key_id_public, agent_id, key_hash, created_at_ms, revoked_at_ms FROM api_keys";

pub(super) fn create(
    tx: &Connection,
    agent_id: AgentId,
    key_id: KeyId,
    audit_event: &AuditEvent,
) -> Result<AgentRecord> {
    if find(tx, &agent_id)?.is_some() {
        return Err(StoreError::AgentExists(agent_id).into());
    }
    let at_ms = to_i64("at_ms", audit_event.at_ms)?;

    tx.prepare_cached(
        "INSERT INTO agents (agent_id, key_id, status, created_at_ms, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?4)",
    )?
    .execute((
        agent_id.as_str(),
        key_id.as_str(),
        AgentStatus::Active.as_str(),
        at_ms,
    ))?;
    audit::append(tx, audit_event)?;

    Ok(AgentRecord {
        agent_id,
        key_id,
        status: AgentStatus::Active,
        created_at_ms: audit_event.at_ms,
        updated_at_ms: audit_event.at_ms,
        credential_generation: 0,
        certificate_sha256: None,
    })
}

pub(super) fn find(conn: &Connection, agent_id: &AgentId) -> Result<Option<AgentRecord>> {
    let sql = format!("{SELECT_AGENT} WHERE agent_id = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([agent_id.as_str()])?;
    rows.next()?.map(agent).transpose()
}

pub(super) fn list(conn: &Connection) -> Result<Vec<AgentRecord>> {
    let sql = format!("{SELECT_AGENT} ORDER BY agent_id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(agent(row)?);
    }
    Ok(out)
}

pub(super) fn set_status(
    tx: &Connection,
    agent_id: &AgentId,
    status: AgentStatus,
    audit_event: &AuditEvent,
) -> Result<AgentRecord> {
    let at_ms = to_i64("at_ms", audit_event.at_ms)?;
    let changed = tx
        .prepare_cached("UPDATE agents SET status = ?1, updated_at_ms = ?2 WHERE agent_id = ?3")?
        .execute((status.as_str(), at_ms, agent_id.as_str()))?;
    if changed == 0 {
        return Err(StoreError::AgentNotFound(agent_id.clone()).into());
    }
    audit::append(tx, audit_event)?;

    find(tx, agent_id)?.ok_or_else(|| StoreError::AgentNotFound(agent_id.clone()).into())
}

pub(super) fn add_key(
    tx: &Connection,
    key: NewApiKey,
    audit_event: &AuditEvent,
) -> Result<ApiKeyRecord> {
    if !valid_key_id_public(&key.key_id_public) {
        return Err(StoreError::InvalidKeyIdPublic.into());
    }
    if find(tx, &key.agent_id)?.is_none() {
        return Err(StoreError::AgentNotFound(key.agent_id).into());
    }
    if find_key(tx, &key.key_id_public)?.is_some() {
        return Err(StoreError::ApiKeyExists(key.key_id_public).into());
    }
    let at_ms = to_i64("at_ms", audit_event.at_ms)?;

    tx.prepare_cached(
        "INSERT INTO api_keys (key_id_public, agent_id, key_hash, created_at_ms)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute((
        &key.key_id_public,
        key.agent_id.as_str(),
        &key.hash[..],
        at_ms,
    ))?;
    audit::append(tx, audit_event)?;

    Ok(ApiKeyRecord {
        key_id_public: key.key_id_public,
        agent_id: key.agent_id,
        hash: key.hash,
        created_at_ms: audit_event.at_ms,
        revoked_at_ms: None,
    })
}

pub(super) fn find_key(conn: &Connection, key_id_public: &str) -> Result<Option<ApiKeyRecord>> {
    if !valid_key_id_public(key_id_public) {
        return Ok(None);
    }
    let sql = format!("{SELECT_KEY} WHERE key_id_public = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([key_id_public])?;
    rows.next()?.map(api_key).transpose()
}

pub(super) fn revoke_keys(
    tx: &Connection,
    agent_id: &AgentId,
    audit_event: &AuditEvent,
) -> Result<usize> {
    if find(tx, agent_id)?.is_none() {
        return Err(StoreError::AgentNotFound(agent_id.clone()).into());
    }
    let at_ms = to_i64("at_ms", audit_event.at_ms)?;

    let revoked = tx
        .prepare_cached(
            "UPDATE api_keys SET revoked_at_ms = ?1 WHERE agent_id = ?2 AND revoked_at_ms IS NULL",
        )?
        .execute((at_ms, agent_id.as_str()))?;
    audit::append(tx, audit_event)?;
    Ok(revoked)
}

/// Rotates the agent's credentials in one step: every API key revoked, the credential
/// generation moved on (so older delegation tokens fail), the new key stored.
pub(super) fn rotate(
    tx: &Connection,
    key: NewApiKey,
    certificate_sha256: Option<[u8; 32]>,
    audit_event: &AuditEvent,
) -> Result<(AgentRecord, usize)> {
    let agent_id = key.agent_id.clone();
    let Some(agent) = find(tx, &agent_id)? else {
        return Err(StoreError::AgentNotFound(agent_id).into());
    };
    if agent.credential_generation == u32::MAX {
        return Err(StoreError::Corrupt {
            table: "agents",
            column: "credential_generation",
        }
        .into());
    }
    if !valid_key_id_public(&key.key_id_public) {
        return Err(StoreError::InvalidKeyIdPublic.into());
    }
    if find_key(tx, &key.key_id_public)?.is_some() {
        return Err(StoreError::ApiKeyExists(key.key_id_public).into());
    }
    let at_ms = to_i64("at_ms", audit_event.at_ms)?;

    let revoked = tx
        .prepare_cached(
            "UPDATE api_keys SET revoked_at_ms = ?1 WHERE agent_id = ?2 AND revoked_at_ms IS NULL",
        )?
        .execute((at_ms, agent_id.as_str()))?;
    tx.prepare_cached(
        "UPDATE agents SET credential_generation = credential_generation + 1, updated_at_ms = ?1
         WHERE agent_id = ?2",
    )?
    .execute((at_ms, agent_id.as_str()))?;
    if let Some(pin) = certificate_sha256 {
        set_certificate_pin(tx, &agent_id, Some(pin), at_ms)?;
    }
    tx.prepare_cached(
        "INSERT INTO api_keys (key_id_public, agent_id, key_hash, created_at_ms)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute((&key.key_id_public, agent_id.as_str(), &key.hash[..], at_ms))?;
    audit::append(tx, audit_event)?;

    let agent = find(tx, &agent_id)?.ok_or(StoreError::AgentNotFound(agent_id))?;
    Ok((agent, revoked))
}

/// Pins the agent to one client certificate, or (`None`) lifts the pin.
pub(super) fn pin_certificate(
    tx: &Connection,
    agent_id: &AgentId,
    certificate_sha256: Option<[u8; 32]>,
    audit_event: &AuditEvent,
) -> Result<AgentRecord> {
    if find(tx, agent_id)?.is_none() {
        return Err(StoreError::AgentNotFound(agent_id.clone()).into());
    }
    let at_ms = to_i64("at_ms", audit_event.at_ms)?;
    set_certificate_pin(tx, agent_id, certificate_sha256, at_ms)?;
    audit::append(tx, audit_event)?;
    find(tx, agent_id)?.ok_or_else(|| StoreError::AgentNotFound(agent_id.clone()).into())
}

fn set_certificate_pin(
    tx: &Connection,
    agent_id: &AgentId,
    certificate_sha256: Option<[u8; 32]>,
    at_ms: i64,
) -> Result<()> {
    tx.prepare_cached(
        "UPDATE agents SET certificate_sha256 = ?1, updated_at_ms = ?2 WHERE agent_id = ?3",
    )?
    .execute((
        certificate_sha256.as_ref().map(<[u8; 32]>::as_slice),
        at_ms,
        agent_id.as_str(),
    ))?;
    Ok(())
}

/// Records a delegation token as revoked; revoking it again changes nothing.
pub(super) fn revoke_token(
    tx: &Connection,
    token_id: &str,
    agent_id: &AgentId,
    audit_event: &AuditEvent,
) -> Result<()> {
    if find(tx, agent_id)?.is_none() {
        return Err(StoreError::AgentNotFound(agent_id.clone()).into());
    }
    let at_ms = to_i64("at_ms", audit_event.at_ms)?;
    tx.prepare_cached(
        "INSERT INTO revoked_tokens (token_id, agent_id, revoked_at_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (token_id) DO NOTHING",
    )?
    .execute((token_id, agent_id.as_str(), at_ms))?;
    audit::append(tx, audit_event)?;
    Ok(())
}

/// Whether a delegation token id was revoked.
pub(super) fn token_revoked(conn: &Connection, token_id: &str) -> Result<bool> {
    let revoked: i64 = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE token_id = ?1)")?
        .query_row([token_id], |row| row.get(0))?;
    Ok(revoked != 0)
}

fn agent(row: &Row<'_>) -> Result<AgentRecord> {
    let c = Columns {
        row,
        table: "agents",
    };
    Ok(AgentRecord {
        certificate_sha256: c.opt_bytes("certificate_sha256")?,
        agent_id: c.parsed("agent_id")?,
        key_id: c.parsed("key_id")?,
        status: c.parsed("status")?,
        created_at_ms: c.u64("created_at_ms")?,
        updated_at_ms: c.u64("updated_at_ms")?,
        credential_generation: u32::try_from(c.u64("credential_generation")?).map_err(|_| {
            StoreError::Corrupt {
                table: "agents",
                column: "credential_generation",
            }
        })?,
    })
}

fn api_key(row: &Row<'_>) -> Result<ApiKeyRecord> {
    let c = Columns {
        row,
        table: "api_keys",
    };
    Ok(ApiKeyRecord {
        key_id_public: c.raw("key_id_public")?,
        agent_id: c.parsed("agent_id")?,
        hash: c.bytes("key_hash")?,
        created_at_ms: c.u64("created_at_ms")?,
        revoked_at_ms: c.opt_u64("revoked_at_ms")?,
    })
}
