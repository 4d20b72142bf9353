//! [`Store`]: the one way callers touch persistence.

use std::path::Path;
use std::sync::Arc;

use clawfirst_core::{AgentId, Asset, KeyId, SessionId};
use tracing::{debug, info, instrument, warn};

use crate::agent::{AgentRecord, AgentStatus, ApiKeyRecord, NewApiKey};
use crate::audit::{AuditEvent, AuditRecord};
use crate::budget::{CapExceeded, Measure, Reservation, ReservationState};
use crate::error::StoreError;
use crate::session::{CreateOutcome, NewSession, Session, SessionPatch};
use crate::sqlite::change::ChangeToken;
use crate::sqlite::{SqliteBackend, SqliteOptions};
use crate::state::SessionState;

/// The persistence of the approval layer: sessions, budgets, agents, API-key hashes, audit.
///
/// Cheap to clone; clones share the connections and the writer thread, which ends when the
/// last clone is dropped. Every method that changes something takes the [`AuditEvent`] that
/// records the change and writes both atomically, stamping the change with the event's time:
/// if the record cannot be written, neither is the change. A method that changes something
/// returns once the change is committed (see the crate documentation on group commit).
#[derive(Clone, Debug)]
pub struct Store {
    backend: Arc<Backend>,
}

/// The databases the store can run on. PostgreSQL joins SQLite here, behind the same methods.
#[derive(Debug)]
enum Backend {
    Sqlite(SqliteBackend),
}

/// Forwards a call to whichever backend the store runs on.
macro_rules! dispatch {
    ($store:expr, $method:ident($($arg:expr),* $(,)?)) => {
        match &*$store.backend {
            Backend::Sqlite(db) => db.$method($($arg),*).await,
        }
    };
}

impl Store {
    /// A token of the database's state as of now: when two tokens are equal, nothing was
    /// committed in between, by this process or any other sharing the database, so an answer
    /// read in between still holds. `None` means "cannot tell": read again. Costs one `pread`,
    /// no transaction.
    pub fn change_token(&self) -> Option<ChangeToken> {
        match &*self.backend {
            Backend::Sqlite(db) => db.change_token(),
        }
    }

    /// Opens the SQLite database at `path`, creating it if needed, and applies pending
    /// migrations. Several processes may open the same file.
    ///
    /// # Errors
    /// [`StoreError::Open`], [`StoreError::InvalidOption`], [`StoreError::Migration`] or
    /// [`StoreError::SchemaTooNew`].
    #[instrument(skip_all, fields(db.path = %path.display()))]
    pub async fn open_sqlite(path: &Path, options: SqliteOptions) -> Result<Store, StoreError> {
        let db = SqliteBackend::open(path, options).await?;
        debug!("store opened");
        Ok(Store {
            backend: Arc::new(Backend::Sqlite(db)),
        })
    }

    /// The schema version of the database.
    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        dispatch!(self, schema_version())
    }

    // Agents and API keys.

    /// Creates an active agent paying with `key_id`.
    ///
    /// # Errors
    /// [`StoreError::AgentExists`] when the id is taken.
    #[instrument(skip_all, fields(agent.id = %agent_id))]
    pub async fn create_agent(
        &self,
        agent_id: &AgentId,
        key_id: &KeyId,
        audit: AuditEvent,
    ) -> Result<AgentRecord, StoreError> {
        dispatch!(self, create_agent(agent_id.clone(), key_id.clone(), audit))
    }

    /// The agent, if it exists.
    pub async fn agent(&self, agent_id: &AgentId) -> Result<Option<AgentRecord>, StoreError> {
        dispatch!(self, agent(agent_id.clone()))
    }

    /// Every agent, by id.
    pub async fn list_agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        dispatch!(self, list_agents())
    }

    /// Sets whether the agent may pay.
    ///
    /// # Errors
    /// [`StoreError::AgentNotFound`].
    #[instrument(skip_all, fields(agent.id = %agent_id, agent.status = %status))]
    pub async fn set_agent_status(
        &self,
        agent_id: &AgentId,
        status: AgentStatus,
        audit: AuditEvent,
    ) -> Result<AgentRecord, StoreError> {
        let record = dispatch!(self, set_agent_status(agent_id.clone(), status, audit))?;
        info!("agent status changed");
        Ok(record)
    }

    /// Registers the hash of a new API key.
    ///
    /// # Security
    /// Pass only the key's public id and its SHA-256, never the key (see [`crate::agent`]).
    ///
    /// # Errors
    /// [`StoreError::AgentNotFound`], [`StoreError::ApiKeyExists`] or
    /// [`StoreError::InvalidKeyIdPublic`].
    #[instrument(skip_all, fields(agent.id = %key.agent_id, api_key.id = %key.key_id_public))]
    pub async fn add_api_key(
        &self,
        key: NewApiKey,
        audit: AuditEvent,
    ) -> Result<ApiKeyRecord, StoreError> {
        dispatch!(self, add_api_key(key, audit))
    }

    /// The API key with this public id, revoked or not. The caller compares the hash of the
    /// presented key with [`ApiKeyRecord::hash`] in constant time and checks
    /// [`ApiKeyRecord::is_usable`].
    pub async fn api_key(&self, key_id_public: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        dispatch!(self, api_key(key_id_public.to_owned()))
    }

    /// Revokes every unrevoked API key of the agent at once; returns how many.
    ///
    /// # Errors
    /// [`StoreError::AgentNotFound`].
    #[instrument(skip_all, fields(agent.id = %agent_id))]
    pub async fn revoke_api_keys(
        &self,
        agent_id: &AgentId,
        audit: AuditEvent,
    ) -> Result<usize, StoreError> {
        let revoked = dispatch!(self, revoke_api_keys(agent_id.clone(), audit))?;
        info!(api_key.revoked = revoked, "api keys revoked");
        Ok(revoked)
    }

    /// Rotates the agent's credentials at once: revokes every API key, moves the credential
    /// generation on (every delegation token issued before fails from now on, on every server
    /// sharing this database), and stores `key`, the new API key's hash. With
    /// `certificate_sha256`, also pins the agent to that client certificate, so the one it used
    /// before fails as well. Returns the agent and how many keys were revoked.
    ///
    /// # Errors
    /// [`StoreError::AgentNotFound`], [`StoreError::ApiKeyExists`],
    /// [`StoreError::InvalidKeyIdPublic`].
    #[instrument(skip_all, fields(agent.id = %key.agent_id))]
    pub async fn rotate_credentials(
        &self,
        key: NewApiKey,
        certificate_sha256: Option<[u8; 32]>,
        audit: AuditEvent,
    ) -> Result<(AgentRecord, usize), StoreError> {
        let rotated = dispatch!(self, rotate_credentials(key, certificate_sha256, audit))?;
        info!(
            agent.credential_generation = rotated.0.credential_generation,
            api_key.revoked = rotated.1,
            "credentials rotated"
        );
        Ok(rotated)
    }

    /// Pins the agent to the one client certificate with this SHA-256 (of its DER), or with
    /// `None` lifts the pin. Takes effect on the next request on every server sharing this
    /// database.
    ///
    /// # Errors
    /// [`StoreError::AgentNotFound`].
    #[instrument(skip_all, fields(agent.id = %agent_id, pinned = certificate_sha256.is_some()))]
    pub async fn pin_certificate(
        &self,
        agent_id: &AgentId,
        certificate_sha256: Option<[u8; 32]>,
        audit: AuditEvent,
    ) -> Result<AgentRecord, StoreError> {
        dispatch!(
            self,
            pin_certificate(agent_id.clone(), certificate_sha256, audit)
        )
    }

    /// Revokes one delegation token by its id.
    ///
    /// # Errors
    /// [`StoreError::AgentNotFound`].
    #[instrument(skip_all, fields(agent.id = %agent_id))]
    pub async fn revoke_token(
        &self,
        token_id: &str,
        agent_id: &AgentId,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        dispatch!(
            self,
            revoke_token(token_id.to_owned(), agent_id.clone(), audit)
        )
    }

    /// The API key with this public id and the agent it belongs to, read on one connection:
    /// what authenticating an API key needs, in one trip to the database.
    pub async fn api_key_and_agent(
        &self,
        key_id_public: &str,
    ) -> Result<Option<(ApiKeyRecord, Option<AgentRecord>)>, StoreError> {
        dispatch!(self, api_key_and_agent(key_id_public.to_owned()))
    }

    /// The agent, and whether the delegation token id was revoked, read on one connection:
    /// what authenticating a delegation token needs, in one trip to the database.
    pub async fn agent_and_token_revoked(
        &self,
        agent_id: &AgentId,
        token_id: &str,
    ) -> Result<(Option<AgentRecord>, bool), StoreError> {
        dispatch!(
            self,
            agent_and_token_revoked(agent_id.clone(), token_id.to_owned())
        )
    }

    /// Whether a delegation token id was revoked.
    pub async fn token_revoked(&self, token_id: &str) -> Result<bool, StoreError> {
        dispatch!(self, token_revoked(token_id.to_owned()))
    }

    // Sessions.

    /// Creates a session in `initialized`, or returns the agent's earlier session with the same
    /// idempotency key and request digest (then nothing is written, not even `audit`).
    ///
    /// # Errors
    /// [`StoreError::IdempotencyConflict`] when the key was used with another digest,
    /// [`StoreError::AgentNotFound`], [`StoreError::SessionExists`],
    /// [`StoreError::OutOfRange`] for an amount or time above `i64::MAX`.
    #[instrument(skip_all, fields(session.id = %new.id, agent.id = %new.agent_id))]
    pub async fn create_session(
        &self,
        new: NewSession,
        audit: AuditEvent,
    ) -> Result<CreateOutcome, StoreError> {
        let outcome = dispatch!(self, create_session(new, audit))?;
        match &outcome {
            CreateOutcome::Created(_) => debug!("session created"),
            CreateOutcome::Existing(_) => debug!("idempotent replay of an existing session"),
        }
        Ok(outcome)
    }

    /// The session, if it exists.
    pub async fn session(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        dispatch!(self, session(id.clone()))
    }

    /// Moves a session from `expected` to `to` (compare-and-set), applying `patch` and appending
    /// `audit` in the same transaction. Entering `rejected`, `cancelled`, `expired` or `failed`
    /// releases the session's budget reservation; entering `finalized` commits it.
    ///
    /// Move to `failed` only on proven failure: it releases the budget.
    ///
    /// # Errors
    /// [`StoreError::IllegalTransition`], [`StoreError::StateConflict`] (with the actual state),
    /// [`StoreError::SessionNotFound`], [`StoreError::WriteOnceField`]; in every case nothing is
    /// written.
    #[instrument(skip_all, fields(session.id = %id, session.from = %expected, session.to = %to))]
    pub async fn transition(
        &self,
        id: &SessionId,
        expected: SessionState,
        to: SessionState,
        patch: SessionPatch,
        audit: AuditEvent,
    ) -> Result<Session, StoreError> {
        let result = dispatch!(self, transition(id.clone(), expected, to, patch, audit));
        log_move(&result);
        result
    }

    /// Applies `patch` to a session that is in `expected`, without changing its state (for
    /// example, stores the unsigned message before the signer is asked).
    ///
    /// # Errors
    /// As [`Store::transition`].
    #[instrument(skip_all, fields(session.id = %id, session.state = %expected))]
    pub async fn patch_session(
        &self,
        id: &SessionId,
        expected: SessionState,
        patch: SessionPatch,
        audit: AuditEvent,
    ) -> Result<Session, StoreError> {
        let result = dispatch!(self, patch_session(id.clone(), expected, patch, audit));
        log_move(&result);
        result
    }

    /// The atomic budget step: in one transaction that excludes every other writer (in this
    /// process and in others sharing the database), checks that the session's amount fits in
    /// every window of `reservation`, counting the agent's reserved and committed amounts in
    /// each window's [`Measure`]; then reserves it (with its USD value), moves the session from
    /// `expected` to `to` and appends `audit`. The time of the step is `audit.at_ms`.
    ///
    /// `Ok(Err(CapExceeded))` names the first window that would be exceeded; nothing is
    /// written, and the caller records the denial (typically by a move to `rejected`).
    ///
    /// # Errors
    /// As [`Store::transition`], plus [`StoreError::AlreadyReserved`] and
    /// [`StoreError::ReservationIntoTerminal`], [`StoreError::MissingUsdValue`].
    #[instrument(skip_all, fields(session.id = %id, session.from = %expected, session.to = %to))]
    pub async fn reserve_and_transition(
        &self,
        id: &SessionId,
        expected: SessionState,
        to: SessionState,
        reservation: Reservation,
        patch: SessionPatch,
        audit: AuditEvent,
    ) -> Result<Result<Session, CapExceeded>, StoreError> {
        let result = dispatch!(
            self,
            reserve_and_transition(id.clone(), expected, to, reservation, patch, audit)
        );
        match &result {
            Ok(Ok(session)) => debug!(agent.id = %session.agent_id, "budget reserved"),
            Ok(Err(exceeded)) => info!(
                policy.rule = %exceeded.name,
                budget.measure = %exceeded.measure,
                budget.cap = exceeded.cap,
                budget.used = exceeded.used,
                budget.requested = exceeded.requested,
                "budget reservation denied"
            ),
            Err(e) => info!(error = %e, "budget reservation refused"),
        }
        result
    }

    /// Up to `limit` sessions in any of `states`, least recently updated first: for crash
    /// recovery and the settlement watcher.
    pub async fn sessions_in_states(
        &self,
        states: &[SessionState],
        limit: usize,
    ) -> Result<Vec<Session>, StoreError> {
        dispatch!(self, sessions_in_states(states.to_vec(), limit))
    }

    /// Up to `limit` sessions, newest first, of one agent or of all.
    pub async fn list_sessions(
        &self,
        agent_id: Option<&AgentId>,
        limit: usize,
    ) -> Result<Vec<Session>, StoreError> {
        dispatch!(self, list_sessions(agent_id.cloned(), limit))
    }

    /// How many of the agent's sessions have not ended yet (every state but `finalized`,
    /// `rejected`, `cancelled`, `expired` and `failed`): the measure of the open-sessions rate
    /// limit.
    pub async fn open_session_count(&self, agent_id: &AgentId) -> Result<u64, StoreError> {
        dispatch!(self, open_session_count(agent_id.clone()))
    }

    /// Moves every `initialized` or `awaiting_approval` session whose `expires_at_ms` is at or
    /// before `now_ms` to `expired`, releasing its reservation and auditing it, each session on
    /// its own (a session another writer moved first is skipped). A session that was waiting
    /// for approvers records the failure code [`crate::approval::APPROVAL_TIMEOUT`]. Returns
    /// the sessions expired by this call.
    ///
    /// # Errors
    /// A database failure. Sessions expired before or alongside it stay expired (and audited)
    /// but are not in the error; a later call, or [`Store::audit_tail`], shows them.
    #[instrument(skip_all, fields(now_ms = now_ms))]
    pub async fn expire_due(&self, now_ms: u64) -> Result<Vec<Session>, StoreError> {
        let expired = dispatch!(self, expire_due(now_ms))?;
        for session in &expired {
            info!(session.id = %session.id, agent.id = %session.agent_id, "session expired");
        }
        Ok(expired)
    }

    // Budgets.

    /// What the agent has reserved or spent in `asset` since `since_ms` (inclusive).
    ///
    /// # Errors
    /// [`StoreError::UsageOverflow`] when the total does not fit in 64 bits.
    pub async fn budget_usage(
        &self,
        agent_id: &AgentId,
        asset: Asset,
        since_ms: u64,
    ) -> Result<u64, StoreError> {
        self.budget_usage_measured(agent_id, asset, Measure::BaseUnits, since_ms)
            .await
    }

    /// What the agent has reserved or spent since `since_ms` (inclusive), in `measure`: base
    /// units of `asset`, or micro-US-dollars or payments over every asset (then `asset` is
    /// not used). The same sums [`Store::reserve_and_transition`] checks caps against.
    ///
    /// # Errors
    /// [`StoreError::UsageOverflow`] when the total does not fit in 64 bits.
    pub async fn budget_usage_measured(
        &self,
        agent_id: &AgentId,
        asset: Asset,
        measure: Measure,
        since_ms: u64,
    ) -> Result<u64, StoreError> {
        dispatch!(
            self,
            budget_usage(agent_id.clone(), asset, measure, since_ms)
        )
    }

    /// The state of the session's reservation, if it holds one.
    pub async fn reservation_state(
        &self,
        id: &SessionId,
    ) -> Result<Option<ReservationState>, StoreError> {
        dispatch!(self, reservation_state(id.clone()))
    }

    // Audit.

    /// Appends an event that no other change goes with; returns its sequence number.
    ///
    /// # Errors
    /// [`StoreError::InvalidAuditEvent`] or a database failure.
    #[instrument(skip_all, fields(audit.event = %audit.event))]
    pub async fn append_audit(&self, audit: AuditEvent) -> Result<u64, StoreError> {
        dispatch!(self, append_audit(audit))
    }

    /// The last `limit` records, oldest first.
    pub async fn audit_tail(&self, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        dispatch!(self, audit_tail(limit))
    }

    /// Every record about one session, oldest first.
    pub async fn audit_for_session(&self, id: &SessionId) -> Result<Vec<AuditRecord>, StoreError> {
        dispatch!(self, audit_for_session(id.clone()))
    }

    /// How many records the audit trail holds.
    pub async fn audit_len(&self) -> Result<u64, StoreError> {
        dispatch!(self, audit_len())
    }
}

mod approvals;

/// Conflicts are what concurrent callers expect now and then: info, with the state found.
/// Database failures are warnings: a payment cannot proceed.
pub(crate) fn log_move(result: &Result<Session, StoreError>) {
    match result {
        Ok(session) => debug!(session.state = %session.state, "session updated"),
        Err(StoreError::StateConflict { actual, .. }) => {
            info!(session.actual = %actual, "session state conflict");
        }
        Err(e @ (StoreError::Database { .. } | StoreError::Busy { .. })) => {
            warn!(error = %crate::error::Chain(e), "session update failed");
        }
        Err(e) => info!(error = %e, "session update refused"),
    }
}
