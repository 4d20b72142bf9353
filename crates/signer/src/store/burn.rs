//! The burn operation: replay checks, the daily floor, and the inserts that make a grant (and
//! its session's approvals) used, all inside the writer's transaction.

use rusqlite::params;

use super::{Admission, ApprovalUse, BurnError, FloorCheck, GrantUse, StoreError};

/// The rolling window of the daily floor.
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Checks replay and the floor, then inserts the grant and consumes the session's approvals.
/// A refusal writes nothing: every check runs before the first insert, and the writer applies
/// one operation at a time inside a transaction that holds SQLite's write lock, so no other
/// request (in this process or another sharing the file) can pass the same checks meanwhile.
pub(super) fn burn(
    tx: &rusqlite::Transaction<'_>,
    grant: &GrantUse,
    floor: FloorCheck,
    approvals: Option<&ApprovalUse>,
) -> Result<Result<Admission, BurnError>, rusqlite::Error> {
    // 1. A replayed grant is reported as such, whatever else is wrong with it.
    let known = tx
        .prepare_cached("SELECT 1 FROM grants WHERE grant_id = ?1")?
        .exists([grant.grant_id.to_bytes()])?;
    if known {
        return Ok(Err(BurnError::Replayed));
    }

    // 2. A session's approvals pay once.
    if approvals.is_some() {
        let consumed = tx
            .prepare_cached("SELECT 1 FROM approved_sessions WHERE session_id = ?1")?
            .exists([grant.session_id.as_str()])?;
        if consumed {
            return Ok(Err(BurnError::ApprovalReplayed));
        }
    }

    // 3. The daily floor, unless approvals carry the grant above it.
    let admission = match floor {
        FloorCheck::Unlimited => Admission::Floor,
        FloorCheck::Approved => Admission::Approved,
        FloorCheck::Daily {
            limit,
            approvals_suffice,
        } => {
            let used = used_in_window(tx, grant)?;
            let within =
                used.saturating_add(u128::from(grant.transfer.amount)) <= u128::from(limit);
            match (within, approvals_suffice) {
                (true, _) => Admission::Floor,
                (false, true) => Admission::Approved,
                (false, false) => return Ok(Err(BurnError::DailyFloorExceeded { used, limit })),
            }
        }
    };

    // 4. The inserts.
    if let Err(refusal) = insert_grant(tx, grant, admission)? {
        return Ok(Err(refusal));
    }
    if let Some(approvals) = approvals {
        // Step 2 ran under the same write lock, so the primary key cannot be taken here; if it
        // were, the error fails the whole batch and nothing of it is written.
        tx.prepare_cached(
            "INSERT INTO approved_sessions (session_id, grant_id, agent_id, approvers, \
             used_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            grant.session_id.as_str(),
            grant.grant_id.to_bytes(),
            grant.agent_id.as_str(),
            approvals.approvers,
            i64::try_from(grant.used_at_ms).unwrap_or(i64::MAX),
        ])?;
    }
    Ok(Ok(admission))
}

/// The agent's total of unapproved grants for the asset in the 24 hours before the grant's use.
///
/// SQLite sums over the `grants_by_agent_time` index. A total beyond SQLite's signed 64-bit
/// range (its `SUM` fails with an overflow) is reported as `u128::MAX`: more than any floor, so
/// the request is refused rather than wrapped.
fn used_in_window(
    tx: &rusqlite::Transaction<'_>,
    grant: &GrantUse,
) -> Result<u128, rusqlite::Error> {
    let since = i64::try_from(grant.used_at_ms.saturating_sub(DAY_MS)).unwrap_or(i64::MAX);
    let mut stmt = tx.prepare_cached(
        "SELECT COALESCE(SUM(amount), 0) FROM grants
         WHERE agent_id = ?1 AND asset = ?2 AND used_at_ms > ?3 AND approved = 0",
    )?;
    let total: Result<i64, rusqlite::Error> = stmt.query_row(
        params![
            grant.agent_id.as_str(),
            grant.transfer.asset.symbol(),
            since
        ],
        |row| row.get(0),
    );
    match total {
        // A negative total cannot occur (amounts are inserted from u64 values that fit i64);
        // reading one as the largest total fails closed.
        Ok(total) => Ok(u128::try_from(total).unwrap_or(u128::MAX)),
        Err(rusqlite::Error::SqliteFailure(_, Some(message))) if message.contains("overflow") => {
            Ok(u128::MAX)
        }
        Err(e) => Err(e),
    }
}

/// Inserts a used grant. A duplicate id is a reply (`Replayed`), not a batch failure: SQLite
/// rolls back only the failed statement, and the rest of the batch proceeds.
fn insert_grant(
    tx: &rusqlite::Transaction<'_>,
    grant: &GrantUse,
    admission: Admission,
) -> Result<Result<(), BurnError>, rusqlite::Error> {
    let Ok(amount) = i64::try_from(grant.transfer.amount) else {
        return Ok(Err(BurnError::Store(StoreError::AmountOutOfRange)));
    };
    let used_at = i64::try_from(grant.used_at_ms).unwrap_or(i64::MAX);
    let inserted = tx
        .prepare_cached(
            "INSERT INTO grants (grant_id, key_id, agent_id, session_id, message_sha256, asset, \
             mint, amount, recipient, used_at_ms, approved) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .execute(params![
            grant.grant_id.to_bytes(),
            grant.key_id.as_str(),
            grant.agent_id.as_str(),
            grant.session_id.as_str(),
            grant.message_sha256,
            grant.transfer.asset.symbol(),
            grant.transfer.mint.map(|m| m.to_bytes()),
            amount,
            grant.transfer.recipient.to_bytes(),
            used_at,
            admission == Admission::Approved,
        ]);
    match inserted {
        Ok(_) => Ok(Ok(())),
        Err(e)
            if e.sqlite_extended_error_code()
                == Some(rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY) =>
        {
            Ok(Err(BurnError::Replayed))
        }
        Err(e) => Err(e),
    }
}
