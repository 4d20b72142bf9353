//! The writer thread: schema, group commit, and the statements it runs.

use std::path::Path;
use std::sync::mpsc;

use clawfirst_core::{AgentId, GrantId, KeyId, SessionId};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::oneshot;

use super::{BurnError, GrantState, GrantUse, RequestLog, StoreError};

/// The most operations applied in one transaction.
const MAX_BATCH: usize = 512;

/// The schema version this build writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS grants (
    grant_id       BLOB    NOT NULL PRIMARY KEY,
    key_id         TEXT    NOT NULL,
    agent_id       TEXT    NOT NULL,
    session_id     TEXT    NOT NULL,
    message_sha256 BLOB    NOT NULL,
    asset          TEXT    NOT NULL,
    mint           BLOB,
    amount         INTEGER NOT NULL,
    recipient      BLOB    NOT NULL,
    used_at_ms     INTEGER NOT NULL,
    signature      BLOB
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS grants_by_agent_time ON grants (agent_id, asset, used_at_ms);
CREATE TABLE IF NOT EXISTS requests (
    id         INTEGER PRIMARY KEY,
    at_ms      INTEGER NOT NULL,
    op         TEXT    NOT NULL,
    outcome    TEXT    NOT NULL,
    key_id     TEXT,
    grant_id   BLOB,
    agent_id   TEXT,
    session_id TEXT
);
";

/// An operation for the writer thread, with the slot its reply goes to.
pub(super) enum Op {
    Burn(
        GrantUse,
        Option<u64>,
        oneshot::Sender<Result<(), BurnError>>,
    ),
    Finish(
        GrantId,
        [u8; 64],
        RequestLog,
        oneshot::Sender<Result<(), StoreError>>,
    ),
    Log(RequestLog, oneshot::Sender<Result<(), StoreError>>),
    Status(GrantId, oneshot::Sender<Result<GrantState, StoreError>>),
}

pub(super) fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let open_error = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Open {
        path: path.to_owned(),
        source,
    };
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Create the file owner-only; SQLite gives its -wal and -shm files the same mode.
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| open_error(Box::new(e)))?;
    }
    let conn = Connection::open(path).map_err(|e| open_error(Box::new(e)))?;
    let version: i64 = conn
        .busy_timeout(std::time::Duration::from_secs(5))
        .and_then(|()| conn.query_row("PRAGMA user_version", [], |r| r.get(0)))
        .map_err(|e| open_error(Box::new(e)))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema(version));
    }
    let setup = || -> Result<(), rusqlite::Error> {
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)
    };
    setup().map_err(|e| open_error(Box::new(e)))?;
    Ok(conn)
}

/// Replies held back until the batch's commit succeeded.
enum Reply {
    Burn(
        oneshot::Sender<Result<(), BurnError>>,
        Result<(), BurnError>,
    ),
    Done(oneshot::Sender<Result<(), StoreError>>),
    Status(oneshot::Sender<Result<GrantState, StoreError>>, GrantState),
}

impl Op {
    /// The reply slot of an operation that was never applied.
    fn into_reply(self) -> Reply {
        match self {
            Op::Burn(_, _, tx) => Reply::Burn(tx, Ok(())),
            Op::Finish(_, _, _, tx) | Op::Log(_, tx) => Reply::Done(tx),
            Op::Status(_, tx) => Reply::Status(tx, GrantState::Unused),
        }
    }
}

pub(super) fn writer(mut conn: Connection, receiver: mpsc::Receiver<Op>) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let mut replies = Vec::with_capacity(batch.len());
        let mut ops = batch.into_iter();
        let outcome = apply(&mut conn, &mut ops, &mut replies);
        // Operations not reached because the batch failed early fail with it.
        replies.extend(ops.map(Op::into_reply));
        deliver(replies, outcome);
    }
}

/// Applies a batch in one transaction. On `Err`, nothing of the batch was written; every reply
/// slot already pushed, including that of the failing operation, is failed by [`deliver`].
fn apply(
    conn: &mut Connection,
    ops: &mut impl Iterator<Item = Op>,
    replies: &mut Vec<Reply>,
) -> Result<(), rusqlite::Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for op in ops {
        match op {
            Op::Burn(grant, daily_limit, reply) => {
                let result = burn_within(&tx, &grant, daily_limit);
                let (result, failure) = match result {
                    Ok(result) => (result, None),
                    Err(e) => (Ok(()), Some(e)),
                };
                replies.push(Reply::Burn(reply, result));
                failure.map_or(Ok(()), Err)?;
            }
            Op::Finish(grant_id, signature, log, reply) => {
                replies.push(Reply::Done(reply));
                tx.prepare_cached("UPDATE grants SET signature = ?2 WHERE grant_id = ?1")?
                    .execute(params![grant_id.to_bytes(), signature])?;
                insert_log(&tx, &log)?;
            }
            Op::Log(log, reply) => {
                replies.push(Reply::Done(reply));
                insert_log(&tx, &log)?;
            }
            Op::Status(grant_id, reply) => {
                let row = tx
                    .prepare_cached("SELECT signature FROM grants WHERE grant_id = ?1")
                    .and_then(|mut stmt| {
                        stmt.query_row([grant_id.to_bytes()], |r| r.get::<_, Option<Vec<u8>>>(0))
                            .optional()
                    });
                let state = match &row {
                    Ok(None) | Err(_) => GrantState::Unused,
                    Ok(Some(sig)) => GrantState::Used {
                        signature: sig.as_ref().and_then(|s| s.as_slice().try_into().ok()),
                    },
                };
                replies.push(Reply::Status(reply, state));
                row?;
            }
        }
    }
    tx.commit()
}

/// The rolling window of the daily floor.
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Checks the daily floor, then inserts the grant; a refusal writes nothing.
fn burn_within(
    tx: &rusqlite::Transaction<'_>,
    grant: &GrantUse,
    daily_limit: Option<u64>,
) -> Result<Result<(), BurnError>, rusqlite::Error> {
    if let Some(limit) = daily_limit {
        // A replay is reported as such, whatever the totals.
        let known = tx
            .prepare_cached("SELECT 1 FROM grants WHERE grant_id = ?1")?
            .exists([grant.grant_id.to_bytes()])?;
        if known {
            return Ok(Err(BurnError::Replayed));
        }
        let used = used_in_window(tx, grant)?;
        if used + u128::from(grant.transfer.amount) > u128::from(limit) {
            return Ok(Err(BurnError::DailyFloorExceeded { used, limit }));
        }
    }
    insert_grant(tx, grant)
}

/// The agent's total for the asset in the 24 hours before the grant's use.
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
         WHERE agent_id = ?1 AND asset = ?2 AND used_at_ms > ?3",
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
) -> Result<Result<(), BurnError>, rusqlite::Error> {
    let Ok(amount) = i64::try_from(grant.transfer.amount) else {
        return Ok(Err(BurnError::Store(StoreError::AmountOutOfRange)));
    };
    let used_at = i64::try_from(grant.used_at_ms).unwrap_or(i64::MAX);
    let inserted = tx
        .prepare_cached(
            "INSERT INTO grants (grant_id, key_id, agent_id, session_id, message_sha256, asset, \
             mint, amount, recipient, used_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
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

fn insert_log(tx: &rusqlite::Transaction<'_>, log: &RequestLog) -> Result<(), rusqlite::Error> {
    tx.prepare_cached(
        "INSERT INTO requests (at_ms, op, outcome, key_id, grant_id, agent_id, session_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        i64::try_from(log.at_ms).unwrap_or(i64::MAX),
        log.op,
        log.outcome,
        log.key_id.as_ref().map(KeyId::as_str),
        log.grant_id.map(GrantId::to_bytes),
        log.agent_id.as_ref().map(AgentId::as_str),
        log.session_id.as_ref().map(SessionId::as_str),
    ])?;
    Ok(())
}

fn deliver(replies: Vec<Reply>, outcome: Result<(), rusqlite::Error>) {
    // A receiver that went away (its connection closed) is not an error of the store.
    match outcome {
        Ok(()) => {
            for reply in replies {
                let _ = match reply {
                    Reply::Burn(tx, result) => tx.send(result).map_err(drop),
                    Reply::Done(tx) => tx.send(Ok(())).map_err(drop),
                    Reply::Status(tx, state) => tx.send(Ok(state)).map_err(drop),
                };
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "signer database batch failed and was rolled back");
            for reply in replies {
                let failed = || StoreError::Sqlite(clone_error(&e));
                let _ = match reply {
                    Reply::Burn(tx, _) => tx.send(Err(BurnError::Store(failed()))).map_err(drop),
                    Reply::Done(tx) => tx.send(Err(failed())).map_err(drop),
                    Reply::Status(tx, _) => tx.send(Err(failed())).map_err(drop),
                };
            }
        }
    }
}

/// `rusqlite::Error` is not `Clone`; every operation of a failed batch gets an equivalent copy.
fn clone_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e.sqlite_error() {
        Some(err) => rusqlite::Error::SqliteFailure(*err, None),
        None => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(e.to_string()),
        ),
    }
}
