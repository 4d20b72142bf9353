//! Budget reservation SQL.

use clawfirst_core::{AgentId, Asset, SessionId};
use rusqlite::Connection;

use super::convert::{Columns, to_i64};
use super::{Error, Result};
use crate::budget::{Measure, ReservationState};
use crate::error::StoreError;
use crate::session::Session;
use crate::state::ReservationEffect;

/// The reservations that count in a window: the agent's (`?1`), created at or after `?3`,
/// reserved or committed; for base units, only those in the asset `?2`. Every statement binds
/// the same three parameters, so one call shape serves every measure.
const IN_WINDOW: &str =
    "agent_id = ?1 AND created_at_ms >= ?3 AND state IN ('reserved', 'committed')";
const IN_WINDOW_AND_ASSET: &str = "agent_id = ?1 AND asset = ?2 AND created_at_ms >= ?3 \
     AND state IN ('reserved', 'committed')";

/// The column summed for `measure` (`None`: rows are counted) and the rows that count.
fn summed_column(measure: Measure) -> (Option<&'static str>, &'static str) {
    match measure {
        Measure::BaseUnits => (Some("amount"), IN_WINDOW_AND_ASSET),
        Measure::UsdMicros => (Some("usd_micros"), IN_WINDOW),
        Measure::Count => (None, IN_WINDOW),
    }
}

/// The statement that totals a window in `measure`.
fn total_sql(measure: Measure) -> String {
    match summed_column(measure) {
        (Some(column), filter) => {
            format!("SELECT COALESCE(SUM({column}), 0) FROM reservations WHERE {filter}")
        }
        (None, filter) => format!("SELECT COUNT(*) FROM reservations WHERE {filter}"),
    }
}

/// The total, in `measure`, of the reservations of `agent_id` that count against caps
/// (reserved or committed) and were created at or after `since_ms`: in `asset` alone for
/// base units, in every asset for the other measures.
///
/// SQLite totals over a covering index, so a window costs one index range scan rather than a
/// row decoded per earlier payment. When a sum leaves SQLite's 64-bit signed range (its `SUM`
/// then fails with an overflow), the rows are summed again exactly in 128 bits.
pub(super) fn total_since(
    conn: &Connection,
    agent_id: &AgentId,
    asset: Asset,
    measure: Measure,
    since_ms: u64,
) -> Result<u128> {
    let since = to_i64("since_ms", since_ms)?;
    let params = (agent_id.as_str(), asset.symbol(), since);
    let total: Result<i64, rusqlite::Error> = conn
        .prepare_cached(&total_sql(measure))?
        .query_row(params, |row| row.get(0));
    let (column, filter) = summed_column(measure);
    let column = column.unwrap_or("state");
    match total {
        Ok(total) => u128::try_from(total).map_err(|_| corrupt(column)),
        Err(rusqlite::Error::SqliteFailure(_, Some(message))) if message.contains("overflow") => {
            exact_sum(conn, column, filter, params)
        }
        Err(e) => Err(e.into()),
    }
}

/// The same sum, row by row in 128 bits.
fn exact_sum(
    conn: &Connection,
    column: &'static str,
    filter: &str,
    params: impl rusqlite::Params,
) -> Result<u128> {
    let sql = format!("SELECT {column} FROM reservations WHERE {filter}");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params)?;
    let mut total: u128 = 0;
    while let Some(row) = rows.next()? {
        let c = Columns {
            row,
            table: "reservations",
        };
        total += u128::from(c.u64(column)?);
    }
    Ok(total)
}

fn corrupt(column: &'static str) -> Error {
    StoreError::Corrupt {
        table: "reservations",
        column,
    }
    .into()
}

/// The same total, for [`crate::Store::budget_usage_measured`], refusing a total above
/// `u64::MAX`.
pub(super) fn usage(
    conn: &Connection,
    agent_id: &AgentId,
    asset: Asset,
    measure: Measure,
    since_ms: u64,
) -> Result<u64> {
    let total = total_since(conn, agent_id, asset, measure, since_ms)?;
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

/// Reserves the session's amount, worth `usd_micros`, at `at_ms`.
pub(super) fn insert(
    conn: &Connection,
    session: &Session,
    usd_micros: u64,
    at_ms: u64,
) -> Result<()> {
    let amount = to_i64("amount", session.amount)?;
    let usd = to_i64("usd_micros", usd_micros)?;
    let at = to_i64("at_ms", at_ms)?;
    conn.prepare_cached(
        "INSERT INTO reservations
             (session_id, agent_id, asset, amount, usd_micros, state, created_at_ms,
              updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
    )?
    .execute((
        session.id.as_str(),
        session.agent_id.as_str(),
        session.asset.symbol(),
        amount,
        usd,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each window's total is read from an index alone, whatever the measure: a reservation
    /// costs index range scans, never a scan of the table.
    #[test]
    fn every_measure_is_totalled_from_a_covering_index() -> Result<(), Box<dyn std::error::Error>> {
        let mut conn = Connection::open_in_memory()?;
        super::super::schema::migrate(&mut conn, 0)?;
        for measure in [Measure::BaseUnits, Measure::UsdMicros, Measure::Count] {
            let sql = format!("EXPLAIN QUERY PLAN {}", total_sql(measure));
            let mut stmt = conn.prepare(&sql)?;
            let plan: Vec<String> = stmt
                .query_map(("agent-1", "SOL", 0), |row| row.get::<_, String>(3))?
                .collect::<Result<_, _>>()?;
            let plan = plan.join("; ");
            assert!(
                plan.contains("USING COVERING INDEX") && plan.contains("created_at_ms>?"),
                "{measure}: {plan}"
            );
        }
        Ok(())
    }
}
