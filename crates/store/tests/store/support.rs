//! Shared fixtures: a database in a temporary directory, agents and sessions.

use std::path::PathBuf;
use std::time::Duration;

use clawfirst_core::{Address, AgentId, Asset, KeyId, SessionId};
use clawfirst_store::{
    ActorKind, AuditEvent, CapExceeded, NewSession, Reservation, Session, SessionPatch,
    SessionState, SettlementConstraint, SqliteOptions, Store, StoreError, Synchronous,
};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A fixed start time, so windows and expiry are exact.
pub const T0: u64 = 1_700_000_000_000;
/// The schema version this build migrates to.
pub const LATEST_SCHEMA: u32 = 6;
/// An hour in milliseconds.
pub const HOUR: u64 = 3_600_000;

/// A database file in its own temporary directory, removed on drop.
pub struct TestDb {
    dir: TempDir,
}

impl TestDb {
    pub fn new() -> TestResult<Self> {
        Ok(Self {
            dir: tempfile::tempdir()?,
        })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("clawfirst.db")
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Opens with the default (fully durable) options.
    pub async fn open(&self) -> TestResult<Store> {
        Ok(Store::open_sqlite(&self.path(), SqliteOptions::default()).await?)
    }

    /// Opens with `synchronous = NORMAL` and a long busy timeout, for tests that commit
    /// thousands of times; locking is the same as with the defaults.
    pub async fn open_fast(&self) -> TestResult<Store> {
        Ok(Store::open_sqlite(&self.path(), fast_options()).await?)
    }
}

pub fn fast_options() -> SqliteOptions {
    SqliteOptions {
        synchronous: Synchronous::Normal,
        busy_timeout: Duration::from_secs(30),
        ..SqliteOptions::default()
    }
}

pub fn agent_id(name: &str) -> TestResult<AgentId> {
    Ok(AgentId::new(name)?)
}

pub fn session_id(name: &str) -> TestResult<SessionId> {
    Ok(SessionId::new(name)?)
}

/// An operator event at `at_ms`.
pub fn operator_event(event: &str, at_ms: u64) -> AuditEvent {
    AuditEvent::new(ActorKind::Operator, "operator-1", event).at_ms(at_ms)
}

/// An agent event at `at_ms`.
pub fn agent_event(agent: &AgentId, event: &str, at_ms: u64) -> AuditEvent {
    AuditEvent::new(ActorKind::Agent, agent.as_str(), event).at_ms(at_ms)
}

/// Creates an agent paying with key `wallet-1`.
pub async fn add_agent(store: &Store, name: &str) -> TestResult<AgentId> {
    let id = agent_id(name)?;
    store
        .create_agent(
            &id,
            &KeyId::new("wallet-1")?,
            operator_event("agent.created", T0),
        )
        .await?;
    Ok(id)
}

/// The digest a caller would compute over the canonical parameters.
pub fn digest(parts: &[&str]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher.finalize().into()
}

/// A SOL payment of `amount` lamports that expires 15 minutes after `T0`.
pub fn new_session(agent: &AgentId, id: &str, amount: u64) -> TestResult<NewSession> {
    let recipient = Address::new([7; 32]);
    Ok(NewSession {
        id: session_id(id)?,
        agent_id: agent.clone(),
        asset: Asset::Sol,
        amount,
        recipient,
        recipient_input: recipient.to_string(),
        purpose: Some("coffee".into()),
        settlement_constraint: SettlementConstraint::Immediate,
        execute_after_ms: None,
        idempotency_key: None,
        request_digest: digest(&[agent.as_str(), &amount.to_string(), &recipient.to_string()]),
        metadata: Some(serde_json::json!({ "order": id })),
        expires_at_ms: T0 + 15 * 60_000,
        key_id: KeyId::new("wallet-1")?,
        payer: Address::new([9; 32]),
    })
}

/// Creates a session (at `T0`) and returns its id.
pub async fn create(store: &Store, new: NewSession) -> TestResult<SessionId> {
    let agent = new.agent_id.clone();
    let outcome = store
        .create_session(new, agent_event(&agent, "tool.initialize_payment", T0))
        .await?;
    Ok(outcome.into_session().id)
}

/// A reservation under one daily cap.
pub fn daily_cap(cap: u64) -> Reservation {
    Reservation::default().window("daily_cap", 24 * HOUR, cap)
}

/// Moves a session with no patch; the audit event is a `session.transition` at `at_ms`.
pub async fn advance(
    store: &Store,
    id: &SessionId,
    from: SessionState,
    to: SessionState,
    at_ms: u64,
) -> TestResult<Session> {
    let event = operator_event("session.transition", at_ms);
    Ok(store
        .transition(id, from, to, SessionPatch::none(), event)
        .await?)
}

/// Reserves with no patch; the audit event is a `policy.decision` at `at_ms`.
pub async fn reserve(
    store: &Store,
    id: &SessionId,
    (from, to): (SessionState, SessionState),
    reservation: Reservation,
    at_ms: u64,
) -> Result<Result<Session, CapExceeded>, StoreError> {
    let event = operator_event("policy.decision", at_ms);
    store
        .reserve_and_transition(id, from, to, reservation, SessionPatch::none(), event)
        .await
}

/// `initialized -> approved`, the usual move of a reservation.
pub const APPROVE: (SessionState, SessionState) =
    (SessionState::Initialized, SessionState::Approved);
