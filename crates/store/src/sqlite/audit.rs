//! Audit trail SQL.

use clawfirst_core::SessionId;
use rusqlite::{Connection, Row};

use super::Result;
use super::convert::{Columns, json_text, limit, to_i64};
use crate::audit::{AuditEvent, AuditRecord};
use crate::error::StoreError;

const SELECT: &str =
    "SELECT seq, at_ms, actor_kind, actor_id, event, session_id, details FROM audit_log";

/// Appends `event` inside the caller's write transaction; returns its sequence number.
///
/// Must run inside a write transaction: the head row update serializes appends.
pub(super) fn append(tx: &Connection, event: &AuditEvent) -> Result<u64> {
    event
        .validate()
        .map_err(|reason| StoreError::InvalidAuditEvent { reason })?;
    let at_ms = to_i64("audit at_ms", event.at_ms)?;
    let details = json_text("audit details", &event.details)?;

    let seq: i64 = tx
        .prepare_cached(
            "UPDATE audit_head SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq",
        )?
        .query_row([], |row| row.get(0))?;
    tx.prepare_cached(
        "INSERT INTO audit_log (seq, at_ms, actor_kind, actor_id, event, session_id, details)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute((
        seq,
        at_ms,
        event.actor_kind.as_str(),
        &event.actor_id,
        &event.event,
        event.session_id.as_ref().map(SessionId::as_str),
        &details,
    ))?;
    u64::try_from(seq).map_err(|_| {
        StoreError::Corrupt {
            table: "audit_head",
            column: "last_seq",
        }
        .into()
    })
}

/// The last `limit` records, oldest first.
pub(super) fn tail(conn: &Connection, max: usize) -> Result<Vec<AuditRecord>> {
    let sql = format!("{SELECT} ORDER BY seq DESC LIMIT ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut records = collect(stmt.query([limit(max)])?)?;
    records.reverse();
    Ok(records)
}

/// Every record about one session, oldest first.
pub(super) fn for_session(conn: &Connection, session_id: &SessionId) -> Result<Vec<AuditRecord>> {
    let sql = format!("{SELECT} WHERE session_id = ?1 ORDER BY seq");
    let mut stmt = conn.prepare_cached(&sql)?;
    collect(stmt.query([session_id.as_str()])?)
}

/// How many records the trail holds.
pub(super) fn count(conn: &Connection) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM audit_log")?
        .query_row([], |row| row.get(0))?;
    u64::try_from(n).map_err(|_| {
        StoreError::Corrupt {
            table: "audit_log",
            column: "seq",
        }
        .into()
    })
}

fn collect(mut rows: rusqlite::Rows<'_>) -> Result<Vec<AuditRecord>> {
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(record(row)?);
    }
    Ok(out)
}

fn record(row: &Row<'_>) -> Result<AuditRecord> {
    let c = Columns {
        row,
        table: "audit_log",
    };
    Ok(AuditRecord {
        seq: c.u64("seq")?,
        at_ms: c.u64("at_ms")?,
        actor_kind: c.parsed("actor_kind")?,
        actor_id: c.raw("actor_id")?,
        event: c.raw("event")?,
        session_id: c.opt_parsed("session_id")?,
        details: c.json("details")?,
    })
}
