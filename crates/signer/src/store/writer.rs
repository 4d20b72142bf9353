//! The writer thread: schema, group commit, and the statements it runs.

use std::path::Path;
use std::sync::mpsc;

use clawfirst_core::{AgentId, GrantId, KeyId, SessionId};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::oneshot;

use super::StoreError;
use super::burn::burn;
use super::{Admission, ApprovalUse, BurnError, FloorCheck, GrantState, GrantUse, RequestLog};

/// The most operations applied in one transaction.
const MAX_BATCH: usize = 512;

/// The schema version this build writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 2;

/// Version 1: grants and the request log.
pub(super) const SCHEMA_1: &str = "
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

/// Version 2: approved grants are marked (and left out of the daily floor's total), each
/// session's approvals are consumed once, and the request log names the approvers.
const SCHEMA_2: &str = "
ALTER TABLE grants ADD COLUMN approved INTEGER NOT NULL DEFAULT 0;
ALTER TABLE requests ADD COLUMN approvers TEXT;
CREATE TABLE approved_sessions (
    session_id TEXT    NOT NULL PRIMARY KEY,
    grant_id   BLOB    NOT NULL,
    agent_id   TEXT    NOT NULL,
    approvers  TEXT    NOT NULL,
    used_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
";

/// A burn request: the grant, how the floor applies, and the approvals it consumes.
pub(super) type BurnRequest = Box<(GrantUse, FloorCheck, Option<ApprovalUse>)>;

/// An operation for the writer thread, with the slot its reply goes to.
pub(super) enum Op {
    Burn(BurnRequest, oneshot::Sender<Result<Admission, BurnError>>),
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
        migrate(&conn)
    };
    setup().map_err(|e| open_error(Box::new(e)))?;
    Ok(conn)
}

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction. The version is read again
/// inside it, so two processes opening the same file cannot both migrate.
fn migrate(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let steps = || -> Result<(), rusqlite::Error> {
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version < 1 {
            conn.execute_batch(SCHEMA_1)?;
        }
        if version < 2 {
            conn.execute_batch(SCHEMA_2)?;
        }
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)
    };
    match steps() {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            // The rollback's own failure would hide the cause; the connection is dropped anyway.
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Replies held back until the batch's commit succeeded.
enum Reply {
    Burn(
        oneshot::Sender<Result<Admission, BurnError>>,
        Result<Admission, BurnError>,
    ),
    Done(oneshot::Sender<Result<(), StoreError>>),
    Status(oneshot::Sender<Result<GrantState, StoreError>>, GrantState),
}

impl Op {
    /// The reply slot of an operation that was never applied.
    fn into_reply(self) -> Reply {
        match self {
            Op::Burn(_, tx) => Reply::Burn(tx, Err(BurnError::Store(StoreError::Closed))),
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
            Op::Burn(request, reply) => {
                let (grant, floor, approvals) = *request;
                let result = burn(&tx, &grant, floor, approvals.as_ref());
                let (result, failure) = match result {
                    Ok(result) => (result, None),
                    Err(e) => (Err(BurnError::Store(StoreError::Closed)), Some(e)),
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

fn insert_log(tx: &rusqlite::Transaction<'_>, log: &RequestLog) -> Result<(), rusqlite::Error> {
    tx.prepare_cached(
        "INSERT INTO requests (at_ms, op, outcome, key_id, grant_id, agent_id, session_id, \
         approvers) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        i64::try_from(log.at_ms).unwrap_or(i64::MAX),
        log.op,
        log.outcome,
        log.key_id.as_ref().map(KeyId::as_str),
        log.grant_id.map(GrantId::to_bytes),
        log.agent_id.as_ref().map(AgentId::as_str),
        log.session_id.as_ref().map(SessionId::as_str),
        log.approvers.as_deref(),
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
