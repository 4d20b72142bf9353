//! Approver SQL.

use clawfirst_core::Address;
use rusqlite::{Connection, Row};

use super::convert::{Columns, to_i64};
use super::{Result, audit};
use crate::approval::{ApproverRecord, ApproverStatus, valid_approver_name};
use crate::audit::AuditEvent;
use crate::error::StoreError;

const SELECT: &str = "SELECT name, public_key, status, created_at_ms, updated_at_ms FROM approvers";

pub(super) fn add(
    tx: &Connection,
    name: String,
    public_key: Address,
    audit_event: &AuditEvent,
) -> Result<ApproverRecord> {
    if !valid_approver_name(&name) {
        return Err(StoreError::InvalidApproverName.into());
    }
    if find(tx, &name)?.is_some() {
        return Err(StoreError::ApproverExists(name).into());
    }
    if let Some(holder) = find_by_key(tx, &public_key)? {
        return Err(StoreError::ApproverKeyInUse {
            public_key,
            approver: holder.name,
        }
        .into());
    }
    let at_ms = to_i64("at_ms", audit_event.at_ms)?;

    tx.prepare_cached(
        "INSERT INTO approvers (name, public_key, status, created_at_ms, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?4)",
    )?
    .execute((
        &name,
        public_key.to_string(),
        ApproverStatus::Active.as_str(),
        at_ms,
    ))?;
    audit::append(tx, audit_event)?;

    Ok(ApproverRecord {
        name,
        public_key,
        status: ApproverStatus::Active,
        created_at_ms: audit_event.at_ms,
        updated_at_ms: audit_event.at_ms,
    })
}

/// Marks the approver removed (a removed one stays removed) and audits the removal.
pub(super) fn remove(
    tx: &Connection,
    name: &str,
    audit_event: &AuditEvent,
) -> Result<ApproverRecord> {
    let Some(mut record) = find(tx, name)? else {
        return Err(StoreError::ApproverNotFound(name.to_owned()).into());
    };
    if record.status != ApproverStatus::Removed {
        let at_ms = to_i64("at_ms", audit_event.at_ms)?;
        tx.prepare_cached("UPDATE approvers SET status = ?1, updated_at_ms = ?2 WHERE name = ?3")?
            .execute((ApproverStatus::Removed.as_str(), at_ms, name))?;
        record.status = ApproverStatus::Removed;
        record.updated_at_ms = audit_event.at_ms;
    }
    audit::append(tx, audit_event)?;
    Ok(record)
}

pub(super) fn find(conn: &Connection, name: &str) -> Result<Option<ApproverRecord>> {
    if !valid_approver_name(name) {
        return Ok(None);
    }
    let sql = format!("{SELECT} WHERE name = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([name])?;
    rows.next()?.map(approver).transpose()
}

fn find_by_key(conn: &Connection, public_key: &Address) -> Result<Option<ApproverRecord>> {
    let sql = format!("{SELECT} WHERE public_key = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([public_key.to_string()])?;
    rows.next()?.map(approver).transpose()
}

/// Every approver, removed ones included, by name.
pub(super) fn list(conn: &Connection) -> Result<Vec<ApproverRecord>> {
    let sql = format!("{SELECT} ORDER BY name");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(approver(row)?);
    }
    Ok(out)
}

fn approver(row: &Row<'_>) -> Result<ApproverRecord> {
    let c = Columns {
        row,
        table: "approvers",
    };
    Ok(ApproverRecord {
        name: c.raw("name")?,
        public_key: c.parsed("public_key")?,
        status: c.parsed("status")?,
        created_at_ms: c.u64("created_at_ms")?,
        updated_at_ms: c.u64("updated_at_ms")?,
    })
}
