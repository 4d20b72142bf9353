//! Persistence for ClawFirst's approval layer: payment sessions, budget reservations, agents
//! and their API-key hashes, and the audit trail.
//!
//! # Architecture
//!
//! [`Store`] is the only way callers touch storage. It is cheap to clone and its methods are
//! `async`; underneath, a backend module owns all SQL. Today that is SQLite (one file, WAL
//! mode, bundled SQLite); PostgreSQL will be a second backend behind the same methods, and the
//! schema keeps to SQL both understand (see the `sqlite` module's notes on what the port must
//! lock differently).
//!
//! - [`state`]: the session state machine; the store refuses every move outside its table.
//! - [`session`]: sessions, creation with per-agent idempotency keys, patches.
//! - [`budget`]: reservations against rolling caps in base units, USD or payments.
//! - [`agent`]: agents and API-key hashes.
//! - [`approval`]: approvers, approval requests and votes, each vote checked and counted in
//!   one transaction.
//! - [`audit`]: the append-only audit trail.
//!
//! # Guarantees
//!
//! - **Atomic steps.** Each change and the audit event that records it are written together
//!   (in one savepoint of one transaction): if the event cannot be written, the change is not
//!   either. The time of the
//!   change is the time of its event.
//! - **Compare-and-set.** A session moves only from the state the caller names; otherwise
//!   [`StoreError::StateConflict`] reports the actual state and nothing is written.
//! - **Budgets hold under concurrency.** [`Store::reserve_and_transition`] checks and reserves
//!   in one transaction that takes the database's write lock before it reads, so parallel
//!   tasks, and several processes sharing the database file, can never reserve more than a cap
//!   together. Sums are computed in `u128`.
//! - **Caps in three measures.** A window counts base units of the session's asset,
//!   micro-US-dollars or payments over every asset ([`Measure`]); all are checked in the same
//!   transaction, each total from one covering-index range scan.
//! - **One decision per approval.** [`Store::record_vote`] checks the session's state, the
//!   request's expiry, the approver's eligibility and an earlier vote, records the vote and
//!   decides in one transaction: a quorum is reached once however many approvers answer
//!   together, and votes cannot be edited or deleted.
//! - **No wrapped numbers.** Amounts and times are `u64` in Rust and signed 64-bit integers in
//!   the database; a value above `i64::MAX` is refused with [`StoreError::OutOfRange`]. There
//!   is no floating point anywhere.
//! - **Durability.** [`SqliteOptions::synchronous`] defaults to [`Synchronous::Full`]; see
//!   [`Synchronous::Normal`] for the trade-off.
//!
//! # Concurrency and PostgreSQL
//!
//! One writer thread applies every change, by group commit: whatever writes have queued (up
//! to 256) run one after another in a single `BEGIN IMMEDIATE` transaction, each in its own
//! savepoint, and are acknowledged together once that transaction committed. A write that
//! fails (a state conflict, an idempotency conflict, a malformed event) is rolled back to its
//! savepoint and writes nothing; the others in the batch are not disturbed, and each sees the
//! writes before it, so budget checks count every earlier reservation. If the transaction
//! itself fails, every write in it fails and nothing of it is written. Under load, many writes
//! share one commit, and with [`Synchronous::Full`] one `fsync`; a reply still means the write
//! is durable.
//!
//! `BEGIN IMMEDIATE` takes SQLite's database-wide write lock before anything is read; that is
//! what makes idempotency checks, compare-and-set moves and the budget check atomic across
//! tasks and across processes sharing the file (another process's lock is waited for up to
//! [`SqliteOptions::busy_timeout`], then [`StoreError::Busy`], which is retryable). Reads use
//! separate read-only connections and never block writers (WAL). Dropping the last clone of
//! the [`Store`] lets the writer thread apply what is queued and end, and waits for it.
//!
//! PostgreSQL has no database-wide write lock, so its backend must serialize differently:
//! lock the agent's row (`SELECT ... FROM agents WHERE agent_id = $1 FOR UPDATE`) at the start
//! of every budget step and session move, and take audit sequence numbers from the single
//! `audit_head` row (`UPDATE ... RETURNING`), which already serializes appends in both
//! databases. The schema itself translates line by line (`BIGINT`, `BLOB` as `BYTEA`, the same
//! constraints, triggers for the append-only audit log).
//!
//! # Security
//!
//! The store must never be given secrets. It keeps the SHA-256 of API keys, never the keys
//! (callers compare hashes in constant time), and no key material of any kind. Audit events are
//! exported to SIEMs: callers must keep secrets out of them. The store's logs carry ids,
//! states, amounts and rule names only; never message or transaction bytes, metadata, the
//! agent's free text, or key hashes, and the `Debug` output of sessions and keys leaves those
//! out as well.
//!
//! Database files hold payment history: a new file (and its `-wal` and `-shm` companions) is
//! created readable and writable by its owner only.

#![forbid(unsafe_code)]

pub mod agent;
pub mod approval;
pub mod audit;
pub mod budget;
pub mod error;
pub mod session;
pub mod state;

mod sqlite;
mod store;

pub use agent::{AgentRecord, AgentStatus, ApiKeyRecord, NewApiKey};
pub use approval::{
    ApprovalRecord, ApprovalRequest, ApproverRecord, ApproverStatus, Vote, VoteDecision,
    VoteOutcome, VoteRecord,
};
pub use audit::{ActorKind, AuditEvent, AuditRecord};
pub use budget::{BudgetWindow, CapExceeded, Measure, Reservation, ReservationState};
pub use error::{StoreError, UnknownName};
pub use session::{
    CreateOutcome, Failure, NewSession, Session, SessionPatch, SettlementConstraint,
};
pub use sqlite::change::ChangeToken;
pub use sqlite::{SqliteOptions, Synchronous};
pub use state::SessionState;
pub use store::Store;
