//! The writer thread: every change to the database, applied by group commit.
//!
//! # Design
//!
//! One dedicated thread owns the writer connection. Write methods queue an operation (a
//! closure over the connection, with a reply slot) on a channel and await the reply; nothing
//! contends for a lock. The thread takes everything that has queued, up to [`MAX_BATCH`]
//! operations, and applies it in one transaction:
//!
//! ```text
//! BEGIN IMMEDIATE
//!   SAVEPOINT op; <operation 1>; RELEASE op                      -- succeeded
//!   SAVEPOINT op; <operation 2>; ROLLBACK TO op; RELEASE op      -- returned an error
//!   ...
//! COMMIT
//! ```
//!
//! then, and only then, sends every reply. So:
//!
//! - **Each operation is as atomic as before.** An operation that returns an error (a failed
//!   compare-and-set, an idempotency conflict, a malformed audit event) is rolled back to its
//!   savepoint: it writes nothing, and the others in the batch are not disturbed. A budget
//!   refusal writes nothing by construction.
//! - **Each operation sees the ones before it.** Operations run one after another in the same
//!   transaction, so a budget check counts the reservations made earlier in the batch, a
//!   compare-and-set sees the moves before it, and audit sequence numbers stay gapless.
//! - **Processes still exclude each other.** `BEGIN IMMEDIATE` takes SQLite's write lock
//!   before the first operation reads, exactly as one transaction per operation did; another
//!   process sharing the file is waited for up to the busy timeout, and a timeout fails the
//!   whole batch with [`StoreError::Busy`].
//! - **Nothing partial.** If `BEGIN`, `COMMIT` or the bookkeeping between operations fails,
//!   or SQLite aborts the transaction itself (an I/O error, a full disk), the whole batch is
//!   rolled back and every operation in it gets that error, even one that had succeeded. No
//!   reply is ever sent for a change that was not committed.
//!
//! An operation that panics is rolled back to its savepoint and answered with
//! [`StoreError::TaskFailed`]; the thread and the rest of the batch carry on. A caller that
//! stops waiting does not cancel its operation (as with the blocking tasks before): it is
//! applied, and its reply is dropped.
//!
//! When the last handle to the store drops, the channel closes; the thread applies what is
//! still queued, closes the connection and ends, and the drop waits for it. That is normally
//! immediate (a caller awaiting a write holds a handle, so only writes whose callers gave up
//! can be left), but it can take one batch, which may wait for another process's lock.
//!
//! # Durability
//!
//! Unchanged per operation: a reply means the operation's transaction committed, and with
//! [`Synchronous::Full`](super::Synchronous::Full) that commit reached the disk (one `fsync`
//! of the WAL) before the reply was sent. Group commit only shares that sync among every
//! operation that queued while the previous batch was being written. A crash loses at most
//! writes that were never acknowledged, never part of a batch.
//!
//! The savepoints' undo journal is kept in memory (`temp_store = MEMORY` on the writer): left
//! to spill to a temporary file, it cost one file and hundreds of small writes per batch.
//!
//! # Measurements
//!
//! The ignored `throughput` test: 64 tasks, 10,000 `append_audit` and 10,000 `transition`
//! calls, release build, ext4 on a virtual disk, 2 cores shared with other builds; four runs
//! each, the old code (blocking tasks, a mutex and one transaction per write) against this:
//!
//! | `synchronous` | one transaction per write | group commit             |
//! |---------------|---------------------------|--------------------------|
//! | `FULL`        | 2,350 – 2,500 writes/s    | 11,100 – 13,200 writes/s |
//! | `NORMAL`      | 4,550 – 5,050 writes/s    | 12,500 – 15,700 writes/s |
//!
//! Kernel time over a whole run (setup included) fell from 6.2 s to 0.7 s with `FULL`.
//! Batches average about 32 operations; the writer thread is then busy all the time with
//! SQLite's own work, which is now the limit.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;

use rusqlite::{Connection, ffi};
use tokio::sync::oneshot;
use tracing::warn;

use super::{Error, Result};
use crate::error::StoreError;

/// The most operations committed together. Bounds how long one batch holds the write lock
/// and how much one failure can take down with it.
const MAX_BATCH: usize = 256;

/// An operation queued for the writer thread.
pub(super) type Job = Box<dyn Operation>;

/// What the writer thread does with a queued operation; type-erased so that one channel
/// carries operations of every result type.
pub(super) trait Operation: Send {
    /// Runs the work (inside its savepoint) and keeps its result. `Err` when the work
    /// failed, so the savepoint must be rolled back; it carries a copy of SQLite's error when
    /// that was the failure, in case it also aborted the transaction.
    fn run(&mut self, conn: &Connection) -> Result<(), Option<rusqlite::Error>>;
    /// The batch committed: sends the kept result.
    fn deliver(self: Box<Self>);
    /// The batch was rolled back: sends `cause` instead.
    fn fail(self: Box<Self>, cause: &rusqlite::Error);
}

/// A queued operation of one result type, with its reply slot.
struct Pending<T, F> {
    operation: &'static str,
    stage: Stage<T, F>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

enum Stage<T, F> {
    Queued(F),
    Ran(Result<T, StoreError>),
    Running,
}

/// The reply of a queued operation.
pub(super) type Reply<T> = oneshot::Receiver<Result<T, StoreError>>;

/// An operation named `operation` (for errors), and where its result will arrive.
pub(super) fn job<T, F>(operation: &'static str, work: F) -> (Job, Reply<T>)
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T> + Send + 'static,
{
    let (reply, receiver) = oneshot::channel();
    let pending = Pending {
        operation,
        stage: Stage::Queued(work),
        reply,
    };
    (Box::new(pending), receiver)
}

impl<T, F> Operation for Pending<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T> + Send + 'static,
{
    fn run(&mut self, conn: &Connection) -> Result<(), Option<rusqlite::Error>> {
        let Stage::Queued(work) = std::mem::replace(&mut self.stage, Stage::Running) else {
            return Err(None);
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| work(conn))).unwrap_or_else(|_| {
            Err(StoreError::TaskFailed(Box::new(WriterError::Panicked)).into())
        });
        let status = match &outcome {
            Ok(_) => Ok(()),
            Err(Error::Sql(e)) => Err(Some(copy_error(e))),
            Err(Error::Store(_)) => Err(None),
        };
        self.stage = Stage::Ran(outcome.map_err(|e| e.into_store(self.operation)));
        status
    }

    fn deliver(self: Box<Self>) {
        let result = match self.stage {
            Stage::Ran(result) => result,
            Stage::Queued(_) | Stage::Running => {
                Err(StoreError::TaskFailed(Box::new(WriterError::NotRun)))
            }
        };
        // A caller that stopped waiting is no failure of the store: the write stands.
        let _ = self.reply.send(result);
    }

    fn fail(self: Box<Self>, cause: &rusqlite::Error) {
        let error = Error::Sql(copy_error(cause)).into_store(self.operation);
        let _ = self.reply.send(Err(error));
    }
}

/// The writer thread's loop: applies batches until every sender is gone and the queue is
/// empty, then closes the connection.
pub(super) fn run(conn: Connection, jobs: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = jobs.recv() {
        batch.push(first);
        batch.extend(jobs.try_iter().take(MAX_BATCH - 1));
        commit(&conn, &mut batch);
    }
}

/// Applies `batch` in one transaction and answers every operation in it; empties `batch`.
fn commit(conn: &Connection, batch: &mut Vec<Job>) {
    match apply(conn, batch) {
        Ok(()) => batch.drain(..).for_each(|job| job.deliver()),
        Err(cause) => {
            if !conn.is_autocommit()
                && let Err(e) = conn.execute_batch("ROLLBACK")
            {
                warn!(error = %e, "rollback of a failed write batch failed");
            }
            warn!(db.batch = batch.len(), error = %cause, "write batch rolled back");
            batch.drain(..).for_each(|job| job.fail(&cause));
        }
    }
}

/// Runs every operation of `batch` in its own savepoint of one `BEGIN IMMEDIATE`
/// transaction, and commits. On `Err` the caller rolls back whatever is left open.
fn apply(conn: &Connection, batch: &mut [Job]) -> rusqlite::Result<()> {
    // Left open only when the rollback after an earlier failure failed too.
    if !conn.is_autocommit() {
        conn.execute_batch("ROLLBACK")?;
    }
    step(conn, "BEGIN IMMEDIATE")?;
    for job in batch.iter_mut() {
        step(conn, "SAVEPOINT op")?;
        let status = job.run(conn);
        if conn.is_autocommit() {
            // SQLite rolled the whole transaction back: the writes of the operations before
            // this one are gone too.
            return Err(status.err().flatten().unwrap_or_else(aborted));
        }
        if status.is_err() {
            step(conn, "ROLLBACK TO op")?;
        }
        step(conn, "RELEASE op")?;
    }
    step(conn, "COMMIT")
}

/// Runs one statement of the batch's bookkeeping, kept prepared.
fn step(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// The error of a batch whose transaction ended without a statement error to show for it.
fn aborted() -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        ffi::Error::new(ffi::SQLITE_ABORT),
        Some("the write transaction was rolled back by sqlite".to_owned()),
    )
}

/// `rusqlite::Error` is not `Clone`: every operation of a failed batch gets an equal copy,
/// keeping SQLite's code so that a busy database still reads as [`StoreError::Busy`].
fn copy_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            ffi::Error::new(ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}

/// Why an operation did not complete: the cause inside [`StoreError::TaskFailed`].
#[derive(Debug, thiserror::Error)]
pub(super) enum WriterError {
    /// The operation panicked; its savepoint was rolled back.
    #[error("the database operation panicked")]
    Panicked,
    /// The operation was never run (a bug of the writer loop).
    #[error("the database operation was not run")]
    NotRun,
    /// The writer thread is gone, so nothing can be written.
    #[error("the database writer thread stopped")]
    Stopped,
}
