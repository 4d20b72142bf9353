//! Migrations of files written by older builds keep their data.

use clawfirst_core::{AgentId, Asset, SessionId};
use rusqlite::Connection;

use super::{MIGRATIONS, latest_version};
use crate::audit::AuditEvent;
use crate::budget::{Measure, ReservationState};
use crate::session::SessionPatch;
use crate::sqlite::{SqliteBackend, SqliteOptions};
use crate::state::SessionState;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const T0: i64 = 1_700_000_000_000;

/// Builds a database exactly as a build of schema version `version` left it: the migrations up
/// to it, and their bookkeeping rows.
fn create_at_version(conn: &Connection, version: u32) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE schema_version (
             version       INTEGER PRIMARY KEY,
             applied_at_ms BIGINT NOT NULL
         );",
    )?;
    for (v, sql) in MIGRATIONS.iter().filter(|(v, _)| *v <= version) {
        conn.execute_batch(sql)?;
        conn.execute(
            "INSERT INTO schema_version (version, applied_at_ms) VALUES (?1, ?2)",
            (v, T0),
        )?;
    }
    Ok(())
}

/// An agent with an approved session holding a 7-lamport reservation, and one audit record,
/// written with version 2's columns.
fn fill_version_2(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "INSERT INTO agents VALUES ('agent-1', 'wallet-1', 'active', {T0}, {T0});
         INSERT INTO sessions (session_id, agent_id, state, asset, amount, recipient,
             recipient_input, settlement_constraint, request_digest, created_at_ms,
             updated_at_ms, expires_at_ms, key_id, payer, policy_rule)
         VALUES ('ps_old', 'agent-1', 'approved', 'SOL', 7,
             '11111111111111111111111111111111', 'someone', 'immediate', zeroblob(32),
             {T0}, {T0}, {T0} + 60000, 'wallet-1', '11111111111111111111111111111111',
             'auto_approve');
         INSERT INTO reservations VALUES
             ('ps_old', 'agent-1', 'SOL', 7, 'reserved', {T0}, {T0});
         UPDATE audit_head SET last_seq = 1;
         INSERT INTO audit_log VALUES
             (1, {T0}, 'agent', 'agent-1', 'grant.issued', 'ps_old', '{{}}');"
    ))
}

#[tokio::test]
async fn a_version_2_file_keeps_its_data() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("v2.db");
    {
        let conn = Connection::open(&path)?;
        create_at_version(&conn, 2)?;
        fill_version_2(&conn)?;
    }

    let db = SqliteBackend::open(&path, SqliteOptions::default()).await?;

    assert_eq!(db.schema_version().await?, latest_version());
    let id = SessionId::new("ps_old")?;
    let agent = AgentId::new("agent-1")?;
    let session = db.session(id.clone()).await?.ok_or("session lost")?;
    assert_eq!(session.state, SessionState::Approved);
    assert_eq!(session.amount, 7);
    assert_eq!(session.policy_rule.as_deref(), Some("auto_approve"));
    let usage = |measure| db.budget_usage(agent.clone(), Asset::Sol, measure, 0);
    assert_eq!(usage(Measure::BaseUnits).await?, 7);
    assert_eq!(usage(Measure::Count).await?, 1);
    assert_eq!(
        usage(Measure::UsdMicros).await?,
        0,
        "old reservations are worth 0 USD"
    );
    assert_eq!(db.audit_len().await?, 1);

    // The old rows keep working: the sequence continues, the reservation is released.
    let cancel = AuditEvent::system("session.transition").at_ms(1_700_000_001_000);
    let cancelled = db
        .transition(
            id.clone(),
            SessionState::Approved,
            SessionState::Cancelled,
            SessionPatch::none(),
            cancel,
        )
        .await?;
    assert_eq!(cancelled.state, SessionState::Cancelled);
    assert_eq!(
        db.reservation_state(id).await?,
        Some(ReservationState::Released)
    );
    assert_eq!(usage(Measure::Count).await?, 0);
    assert_eq!(db.audit_tail(1).await?.first().map(|r| r.seq), Some(2));
    Ok(())
}
