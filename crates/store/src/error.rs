//! The one error type of the store boundary.

use std::error::Error as StdError;
use std::fmt;
use std::path::PathBuf;

use clawfirst_core::{Address, AgentId, SessionId};

use crate::state::SessionState;

/// A boxed cause, so the public error does not name the backend's own error types.
pub type BoxedCause = Box<dyn StdError + Send + Sync + 'static>;

/// Everything that can go wrong when the store is used.
///
/// Variants say what happened at this boundary; the backend's own error, when there is one, is
/// in [`source()`](std::error::Error::source) and is not repeated in the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file could not be opened or configured.
    #[error("cannot open the database at {path}")]
    Open {
        /// The file that was opened.
        path: PathBuf,
        /// The backend's error.
        #[source]
        source: BoxedCause,
    },
    /// An option passed to the store is outside what it accepts.
    #[error("invalid store option {option}: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Applying a schema migration failed; nothing of it was applied.
    #[error("schema migration {version} failed")]
    Migration {
        /// The migration that failed.
        version: u32,
        /// The backend's error.
        #[source]
        source: BoxedCause,
    },
    /// The database was written by a newer version of the store.
    #[error("database schema version {found} is newer than the supported version {supported}")]
    SchemaTooNew {
        /// The version found in the database.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// The database stayed locked by another connection or process past the busy timeout.
    #[error("database is busy during {operation}")]
    Busy {
        /// What the store was doing.
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: BoxedCause,
    },
    /// Any other failure of the database itself (I/O, corruption, constraint backstops).
    #[error("database failure during {operation}")]
    Database {
        /// What the store was doing.
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: BoxedCause,
    },
    /// A value read back from the database does not decode; the row was written by something
    /// other than this store, or the file is damaged.
    #[error("stored value {table}.{column} is invalid")]
    Corrupt {
        /// The table read.
        table: &'static str,
        /// The column read.
        column: &'static str,
    },
    /// The blocking task that ran the database work panicked or was cancelled.
    #[error("database task did not complete")]
    TaskFailed(#[source] BoxedCause),

    /// A number does not fit the database's signed 64-bit integers; it is refused, never
    /// wrapped.
    #[error("{field} {value} exceeds the largest storable value {max}", max = i64::MAX)]
    OutOfRange {
        /// Which value.
        field: &'static str,
        /// The value refused.
        value: u64,
    },
    /// A budget sum does not fit in 64 bits.
    #[error("budget usage of agent {agent_id} overflows 64 bits")]
    UsageOverflow {
        /// The agent whose usage was summed.
        agent_id: AgentId,
    },

    /// No agent with this id exists.
    #[error("agent {0} not found")]
    AgentNotFound(AgentId),
    /// An agent with this id already exists.
    #[error("agent {0} already exists")]
    AgentExists(AgentId),
    /// An API key with this public id already exists.
    #[error("api key id {0} already exists")]
    ApiKeyExists(String),

    /// A public API-key id is empty, longer than 64 characters or not printable ASCII.
    #[error("api key id must be 1 to 64 characters of letters, digits, '_', '-' and '.'")]
    InvalidKeyIdPublic,

    /// No session with this id exists.
    #[error("session {0} not found")]
    SessionNotFound(SessionId),
    /// A session with this id already exists.
    #[error("session {0} already exists")]
    SessionExists(SessionId),
    /// The agent already used this idempotency key for a payment with other parameters.
    #[error("idempotency key already used by session {existing} with different parameters")]
    IdempotencyConflict {
        /// The session created first with this key.
        existing: SessionId,
    },
    /// The session was not in the state the caller expected; nothing was written.
    #[error("session {session_id} is {actual}, not {expected}")]
    StateConflict {
        /// The session.
        session_id: SessionId,
        /// The state the caller expected.
        expected: SessionState,
        /// The state the session is in.
        actual: SessionState,
    },
    /// The transition is not in the session state machine; nothing was written.
    #[error("a session cannot move from {from} to {to}")]
    IllegalTransition {
        /// The state moved from.
        from: SessionState,
        /// The state asked for.
        to: SessionState,
    },
    /// A patch would replace a write-once field (the message, the grant id, the signature or the
    /// signed transaction) with a different value.
    #[error("session {session_id} already has a different {field}")]
    WriteOnceField {
        /// The session.
        session_id: SessionId,
        /// The field.
        field: &'static str,
    },
    /// The session already holds a budget reservation.
    #[error("session {0} already holds a budget reservation")]
    AlreadyReserved(SessionId),
    /// A reservation was asked for together with a move into a terminal state.
    #[error("cannot reserve budget for a session moving to {to}")]
    ReservationIntoTerminal {
        /// The terminal state asked for.
        to: SessionState,
    },
    /// An approver name is empty, longer than 64 characters or not `a-z`, `0-9`, `.`, `_`,
    /// `-`.
    #[error("approver name must be 1 to 64 characters of a-z, 0-9, '.', '_' and '-'")]
    InvalidApproverName,
    /// An approver with this name exists (or existed: names of removed approvers stay taken).
    #[error("approver {0} already exists")]
    ApproverExists(String),
    /// This public key already belongs to an approver (removed ones included).
    #[error("public key {public_key} already belongs to approver {approver}")]
    ApproverKeyInUse {
        /// The key.
        public_key: Address,
        /// The approver it belongs to.
        approver: String,
    },
    /// No approver with this name exists.
    #[error("approver {0} not found")]
    ApproverNotFound(String),
    /// An approval request could never be decided; nothing was written.
    #[error("invalid approval request: {reason}")]
    InvalidApprovalRequest {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A vote's evidence or reason is out of bounds; nothing was written.
    #[error("invalid vote: {reason}")]
    InvalidVote {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The session waits for approval without an approval request (it entered
    /// `awaiting_approval` through [`crate::Store::reserve_and_transition`]).
    #[error("session {0} has no approval request")]
    NoApprovalRequest(SessionId),
    /// The approval request expired before the vote; nothing was written.
    #[error("the approval request of session {session_id} expired at {expires_at_ms}")]
    ApprovalExpired {
        /// The session.
        session_id: SessionId,
        /// When its request expired.
        expires_at_ms: u64,
    },
    /// The approver is not in the request's eligible snapshot, or is no longer active.
    #[error("approver {approver} may not vote on session {session_id}")]
    NotEligible {
        /// The session.
        session_id: SessionId,
        /// The approver refused.
        approver: String,
    },
    /// The approver already voted on this session; the first vote stands.
    #[error("approver {approver} already voted on session {session_id}")]
    DuplicateVote {
        /// The session.
        session_id: SessionId,
        /// The approver.
        approver: String,
    },
    /// A reservation has a window counting micro-US-dollars but no USD value
    /// ([`crate::Reservation::usd_micros`]); nothing was written.
    #[error("a budget window counts usd but the reservation has no usd value")]
    MissingUsdValue,
    /// An audit event is malformed and was not written (and neither was the change it records).
    #[error("invalid audit event: {reason}")]
    InvalidAuditEvent {
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl StoreError {
    /// Whether retrying the same call later may succeed (the database was busy).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Busy { .. })
    }
}

/// A name (of a state, a status, an actor kind) that is not one of the known names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {text:?}")]
pub struct UnknownName {
    /// What was being parsed.
    pub kind: &'static str,
    /// The text refused, shortened to at most 32 characters.
    pub text: String,
}

impl UnknownName {
    pub(crate) fn new(kind: &'static str, text: &str) -> Self {
        const MAX: usize = 32;
        let mut shown: String = text.chars().take(MAX).collect();
        if text.chars().nth(MAX).is_some() {
            shown.push('…');
        }
        Self { kind, text: shown }
    }
}

/// Implements `Display` and `FromStr` for a fieldless enum from one table of names, so the
/// two directions can never disagree.
macro_rules! named_enum {
    ($ty:ty, $kind:literal, [$($variant:path => $name:literal),+ $(,)?]) => {
        impl $ty {
            /// The name stored in the database and shown to people.
            pub const fn as_str(&self) -> &'static str {
                match self {
                    $($variant => $name,)+
                }
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::error::UnknownName;

            /// Parses the exact, lower-case name.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok($variant),)+
                    _ => Err($crate::error::UnknownName::new($kind, s)),
                }
            }
        }
    };
}

pub(crate) use named_enum;

/// Formats a cause chain on one line, for the rare place that must show it as text.
pub(crate) struct Chain<'a>(pub &'a (dyn StdError + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(cause) = next {
            write!(f, ": {cause}")?;
            next = cause.source();
        }
        Ok(())
    }
}
