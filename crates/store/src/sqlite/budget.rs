//! Budget reservation SQL.

use clawfirst_core::{AgentId, Asset, SessionId};
use rusqlite::Connection;

use super::Result;
use super::convert::{Columns, to_i64};
use crate::budget::ReservationState;
use crate::error::StoreError;
use crate::session::Session;
use crate::state::ReservationEffect;

/// The total of the reservations of `agent_id` in `asset` that count against caps (reserved
/// or committed) and were created at or after `since_ms`.
///
/// SQLite sums over a covering index, so a reservation costs an index range scan rather than a
/// row decoded per earlier payment. When the total leaves SQLite's 64-bit signed range (its
/// `SUM` then fails with an overflow), the rows are summed again exactly in 128 bits.
pub(super) fn total_since(
    conn: &Connection,
    agent_id: &AgentId,
    asset: Asset,
    since_ms: u64,
) -> Result<u128> {
    let since = to_i64("since_ms", since_ms)?;
    let mut stmt = conn.prepare_cached(
        "SELECT COALESCE(SUM(amount), 0) FROM reservations
         WHERE agent_id = ?1 AND asset = ?2 AND created_at_ms >= ?3
           AND state IN ('reserved', 'committed')",
    )?;
    let total: Result<i64, rusqlite::Error> =
        stmt.query_row((agent_id.as_str(), asset.symbol(), since), |row| row.get(0));
    match total {
        Ok(total) => u128::try_from(total).map_err(|_| {
            StoreError::Corrupt {
                table: "reservations",
                column: "amount",
            }
            .into()
        }),
        Err(rusqlite::Error::SqliteFailure(_, Some(message))) if message.contains("overflow") => {
            exact_total_since(conn, agent_id, asset, since)
        }
        Err(e) => Err(e.into()),
    }
}

/// The same total, summed row by row in 128 bits.
fn exact_total_since(
    conn: &Connection,
    agent_id: &AgentId,
    asset: Asset,
    since: i64,
) -> Result<u128> {
    let mut stmt = conn.prepare_cached(
        "SELECT amount FROM reservations
         WHERE agent_id = ?1 AND asset = ?2 AND created_at_ms >= ?3
           AND state IN ('reserved', 'committed')",
    )?;
    let mut rows = stmt.query((agent_id.as_str(), asset.symbol(), since))?;
    let mut total: u128 = 0;
    while let Some(row) = rows.next()? {
        let c = Columns {
            row,
            table: "reservations",
        };
        total += u128::from(c.u64("amount")?);
    }
    Ok(total)
}

/// The same total, for [`crate::Store::budget_usage`], refusing a total above `u64::MAX`.
pub(super) fn usage(
    conn: &Connection,
    agent_id: &AgentId,
    asset: Asset,
    since_ms: u64,
) -> Result<u64> {
    let total = total_since(conn, agent_id, asset, since_ms)?;
    u64::try_from(total).map_err(|_| {
        StoreError::UsageOverflow {
            agent_id: agent_id.clone(),
        }
        .into()
    })
}

/// Whether the session already holds a reservation (in any state).
pub(super) fn exists(conn: &Connection, session_id: &SessionId) -> Result<bool> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM reservations WHERE session_id = ?1")?
        .query_row([session_id.as_str()], |row| row.get(0))?;
    Ok(n > 0)
}

/// Reserves the session's amount at `at_ms`.
pub(super) fn insert(conn: &Connection, session: &Session, at_ms: u64) -> Result<()> {
    let amount = to_i64("amount", session.amount)?;
    let at = to_i64("at_ms", at_ms)?;
    conn.prepare_cached(
        "INSERT INTO reservations
             (session_id, agent_id, asset, amount, state, created_at_ms, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    )?
    .execute((
        session.id.as_str(),
        session.agent_id.as_str(),
        session.asset.symbol(),
        amount,
        ReservationState::Reserved.as_str(),
        at,
    ))?;
    Ok(())
}

/// Releases or commits the session's reservation, if it holds one that is still reserved.
pub(super) fn apply_effect(
    conn: &Connection,
    session_id: &SessionId,
    effect: ReservationEffect,
    at_ms: u64,
) -> Result<()> {
    let to = match effect {
        ReservationEffect::Keep => return Ok(()),
        ReservationEffect::Release => ReservationState::Released,
        ReservationEffect::Commit => ReservationState::Committed,
    };
    let at = to_i64("at_ms", at_ms)?;
    conn.prepare_cached(
        "UPDATE reservations SET state = ?1, updated_at_ms = ?2
         WHERE session_id = ?3 AND state = ?4",
    )?
    .execute((
        to.as_str(),
        at,
        session_id.as_str(),
        ReservationState::Reserved.as_str(),
    ))?;
    Ok(())
}

/// The state of the session's reservation, if it holds one.
pub(super) fn state_of(
    conn: &Connection,
    session_id: &SessionId,
) -> Result<Option<ReservationState>> {
    let mut stmt = conn.prepare_cached("SELECT state FROM reservations WHERE session_id = ?1")?;
    let mut rows = stmt.query([session_id.as_str()])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    Columns {
        row,
        table: "reservations",
    }
    .parsed("state")
    .map(Some)
}
