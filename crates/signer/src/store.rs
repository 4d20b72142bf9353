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
//! the same grant id, in one process or in several sharing the file, cannot both insert. The
//! primary key of `approved_sessions` does the same for human approvals: the approvals of one
//! payment session are consumed by the first grant that carries them, in the same operation as
//! that grant's burn.
//!
//! # Durability
//!
//! The database runs in WAL mode with `synchronous = FULL`: each commit syncs the WAL before it
//! returns, so a grant recorded as used stays used across a power loss, not only across a crash
//! of the process. `NORMAL` would be safe against process crashes only; a grant row lost to a
//! power cut would let the same grant be signed again and, later, undercount the per-agent
//! totals that the daily floor reads from this table. The price of `FULL` is one sync
//! per commit, which group commit spreads over every request that arrived meanwhile. The request
//! log rides in the same transactions and is therefore as durable.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use clawfirst_core::{AgentId, GrantId, KeyId, SessionId, Transfer};

use tokio::sync::oneshot;

mod burn;
#[cfg(test)]
mod tests;
mod writer;

use writer::{Op, open_connection, writer};

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

/// A grant being used: everything replay protection and the daily floor read.
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
    /// The approvers whose approvals the request carried, `name=public_key` separated by `,`;
    /// never their signatures.
    pub approvers: Option<String>,
}

/// How the floor applies to a grant being burned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloorCheck {
    /// No floor at all (`dangerous_no_floor`).
    Unlimited,
    /// Within the per-transaction floor: the agent's rolling 24-hour total of unapproved grants
    /// for the asset, plus this amount, must not exceed `limit`, unless `approved_suffice`
    /// (the grant carries enough approvals), in which case it passes as approved.
    Daily {
        /// The daily floor in base units.
        limit: u64,
        /// Whether enough valid approvals came with the grant to pass above the floor.
        approvals_suffice: bool,
    },
    /// Above the per-transaction floor with enough valid approvals.
    Approved,
}

/// The approvals a grant carried, consumed for its session when the grant is burned.
#[derive(Debug, Clone)]
pub struct ApprovalUse {
    /// `name=public_key` of each approver, separated by `,`.
    pub approvers: String,
}

/// How a burned grant was admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Within the floor (or without one); counted in the agent's daily total.
    Floor,
    /// Above the floor on human approvals; not counted in the daily total.
    Approved,
}

/// Why a grant could not be marked as used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BurnError {
    /// The grant id is already recorded.
    #[error("grant was used before")]
    Replayed,
    /// Approvals were already consumed by another grant of the same session. Nothing was
    /// written.
    #[error("approvals for this session were used before")]
    ApprovalReplayed,
    /// The agent's rolling 24-hour total for the asset, with this grant, would exceed the
    /// daily floor. Nothing was written.
    #[error("daily floor exceeded: {used} already used in 24 hours, limit {limit}")]
    DailyFloorExceeded {
        /// Base units of the asset the agent's grants used in the last 24 hours.
        used: u128,
        /// The daily floor in base units.
        limit: u64,
    },
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
    /// `floor` says how the daily floor applies (see [`FloorCheck`]): the agent's total of
    /// unapproved grants for the asset over the 24 hours before `used_at_ms`, plus this grant's
    /// amount, must not exceed the limit unless the grant passes on approvals. With
    /// `approvals`, the grant's session is recorded as having consumed its approvals; a
    /// session recorded before is refused. The checks and the inserts are one operation of the
    /// writer thread, inside its transaction: concurrent grants cannot pass them together.
    ///
    /// # Errors
    /// [`BurnError::Replayed`] when the grant id is already recorded;
    /// [`BurnError::ApprovalReplayed`] when the session's approvals were consumed before;
    /// [`BurnError::DailyFloorExceeded`] when the daily limit would be exceeded.
    pub async fn burn(
        &self,
        grant: GrantUse,
        floor: FloorCheck,
        approvals: Option<ApprovalUse>,
    ) -> Result<Admission, BurnError> {
        let (tx, rx) = oneshot::channel();
        self.send(Op::Burn(Box::new((grant, floor, approvals)), tx))
            .map_err(BurnError::Store)?;
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
