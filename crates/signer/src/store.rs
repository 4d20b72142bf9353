//! The signer's own database: which grants were used, the signature each produced, and a log
//! of every request.
//!
//! # Design
//!
//! One SQLite connection, owned by one writer thread, receives operations over a channel and
//! applies whatever has queued up in a single transaction ("group commit"): under load, many
//! requests share one commit and one `fsync`, which is what makes a durable insert per
//! signature affordable. Replies are sent only after the commit succeeded; if anything in the
//! batch fails, the whole batch is rolled back and every operation in it fails, so there are no
//! partial writes.
//!
//! The primary key of `grants` is the source of truth for replay protection: two requests with
//! the same grant id, in one process or in several sharing the file, cannot both insert.
//!
//! # Durability
//!
//! The database runs in WAL mode with `synchronous = FULL`: each commit syncs the WAL before it
//! returns, so a grant recorded as used stays used across a power loss, not only across a crash
//! of the process. `NORMAL` would be safe against process crashes only; a grant row lost to a
//! power cut would let the same grant be signed again and, later, undercount the per-agent
//! totals that rolling floor limits will read from this table. The price of `FULL` is one sync
//! per commit, which group commit spreads over every request that arrived meanwhile. The request
//! log rides in the same transactions and is therefore as durable.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use clawfirst_core::{AgentId, GrantId, KeyId, SessionId, Transfer};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::oneshot;

#[cfg(test)]
mod tests;

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

/// Why the database failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file could not be created or opened.
    #[error("cannot open signer database {path}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The file was written by a newer signer.
    #[error("signer database has schema version {0}, newer than this build understands")]
    NewerSchema(i64),
    /// A statement or commit failed.
    #[error("signer database operation failed")]
    Sqlite(#[source] rusqlite::Error),
    /// The amount does not fit the database's signed 64-bit integer.
    #[error("amount is beyond the signer's accounting range")]
    AmountOutOfRange,
    /// The writer thread is gone.
    #[error("signer database writer has stopped")]
    Closed,
}

/// A grant being used: everything rolling per-agent limits will need later.
#[derive(Debug, Clone)]
pub struct GrantUse {
    /// The grant.
    pub grant_id: GrantId,
    /// The wallet key.
    pub key_id: KeyId,
    /// The paying agent.
    pub agent_id: AgentId,
    /// Its payment session.
    pub session_id: SessionId,
    /// SHA-256 of the signed message.
    pub message_sha256: [u8; 32],
    /// The transfer the message performs.
    pub transfer: Transfer,
    /// When the grant was used.
    pub used_at_ms: u64,
}

/// One line of the request log.
#[derive(Debug, Clone)]
pub struct RequestLog {
    /// When the request was answered.
    pub at_ms: u64,
    /// `sign`, `public_key`, `grant_status`, `health` or `invalid`.
    pub op: &'static str,
    /// `signed`, `ok`, or the error code.
    pub outcome: &'static str,
    /// The key named, if any.
    pub key_id: Option<KeyId>,
    /// The grant named, if any.
    pub grant_id: Option<GrantId>,
    /// The agent of a verified grant.
    pub agent_id: Option<AgentId>,
    /// The session of a verified grant.
    pub session_id: Option<SessionId>,
}

/// Why a grant could not be marked as used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BurnError {
    /// The grant id is already recorded.
    #[error("grant was used before")]
    Replayed,
    /// The database failed.
    #[error("cannot record the grant")]
    Store(#[source] StoreError),
}

/// What the signer knows of a grant id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantState {
    /// Never seen.
    Unused,
    /// Recorded as used, with the signature if signing completed.
    Used {
        /// The signature produced under the grant.
        signature: Option<[u8; 64]>,
    },
}

enum Op {
    Burn(GrantUse, oneshot::Sender<Result<(), BurnError>>),
    Finish(
        GrantId,
        [u8; 64],
        RequestLog,
        oneshot::Sender<Result<(), StoreError>>,
    ),
    Log(RequestLog, oneshot::Sender<Result<(), StoreError>>),
    Status(GrantId, oneshot::Sender<Result<GrantState, StoreError>>),
}

/// Handle to the writer thread. Dropping it lets the thread finish queued work and close the
/// database.
#[derive(Debug)]
pub struct Store {
    sender: Option<mpsc::Sender<Op>>,
    thread: Option<JoinHandle<()>>,
}

impl Store {
    /// Opens (creating with mode 0600 if needed) the database and starts the writer thread.
    ///
    /// # Errors
    /// [`StoreError::Open`] or [`StoreError::NewerSchema`].
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = open_connection(path)?;
        let (sender, receiver) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("signer-db".to_owned())
            .spawn(move || writer(conn, receiver))
            .map_err(|e| StoreError::Open {
                path: path.to_owned(),
                source: Box::new(e),
            })?;
        Ok(Store {
            sender: Some(sender),
            thread: Some(thread),
        })
    }

    /// Records a grant as used. Returns once the record is durable.
    ///
    /// # Errors
    /// [`BurnError::Replayed`] when the grant id is already recorded.
    pub async fn burn(&self, grant: GrantUse) -> Result<(), BurnError> {
        let (tx, rx) = oneshot::channel();
        self.send(Op::Burn(grant, tx)).map_err(BurnError::Store)?;
        rx.await.map_err(|_| BurnError::Store(StoreError::Closed))?
    }

    /// Stores a grant's signature and logs the request, in one transaction.
    ///
    /// # Errors
    /// [`StoreError`] when the database fails.
    pub async fn finish(
        &self,
        grant_id: GrantId,
        signature: [u8; 64],
        log: RequestLog,
    ) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.send(Op::Finish(grant_id, signature, log, tx))?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Logs a request that did not produce a signature.
    ///
    /// # Errors
    /// [`StoreError`] when the database fails.
    pub async fn log(&self, log: RequestLog) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.send(Op::Log(log, tx))?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Whether a grant id was used, and its signature.
    ///
    /// # Errors
    /// [`StoreError`] when the database fails.
    pub async fn status(&self, grant_id: GrantId) -> Result<GrantState, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.send(Op::Status(grant_id, tx))?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    fn send(&self, op: Op) -> Result<(), StoreError> {
        self.sender
            .as_ref()
            .ok_or(StoreError::Closed)?
            .send(op)
            .map_err(|_| StoreError::Closed)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        drop(self.sender.take());
        if let Some(thread) = self.thread.take() {
            // The writer never panics on database errors; a join error here can only follow a
            // bug, and there is nothing left to clean up.
            let _ = thread.join();
        }
    }
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
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
    let setup = || -> Result<i64, rusqlite::Error> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
    };
    let version = setup().map_err(|e| open_error(Box::new(e)))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema(version));
    }
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(|e| open_error(Box::new(e)))?;
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
            Op::Burn(_, tx) => Reply::Burn(tx, Ok(())),
            Op::Finish(_, _, _, tx) | Op::Log(_, tx) => Reply::Done(tx),
            Op::Status(_, tx) => Reply::Status(tx, GrantState::Unused),
        }
    }
}

fn writer(mut conn: Connection, receiver: mpsc::Receiver<Op>) {
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
            Op::Burn(grant, reply) => {
                let result = insert_grant(&tx, &grant);
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
