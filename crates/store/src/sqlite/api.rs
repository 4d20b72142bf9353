//! The backend's operations: each runs one piece of SQL work on the right connection.

use clawfirst_core::{AgentId, Asset, KeyId, SessionId};

use super::{SqliteBackend, agents, audit, budget, receive, schema, session_rows, sessions};
use crate::agent::{AgentRecord, AgentStatus, ApiKeyRecord, NewApiKey};
use crate::audit::{AuditEvent, AuditRecord};
use crate::budget::{CapExceeded, Measure, Reservation, ReservationState};
use crate::error::StoreError;
use crate::session::{CreateOutcome, NewSession, Session, SessionPatch};
use crate::state::SessionState;

/// How many due sessions one expiry pass looks up at a time.
const EXPIRY_BATCH: usize = 256;

impl SqliteBackend {
    pub(crate) async fn schema_version(&self) -> Result<u32, StoreError> {
        self.read("schema_version", |conn| Ok(schema::current_version(conn)?))
            .await
    }

    pub(crate) async fn create_agent(
        &self,
        agent_id: AgentId,
        key_id: KeyId,
        event: AuditEvent,
    ) -> Result<AgentRecord, StoreError> {
        self.write("create_agent", move |tx| {
            agents::create(tx, agent_id, key_id, &event)
        })
        .await
    }

    pub(crate) async fn agent(&self, agent_id: AgentId) -> Result<Option<AgentRecord>, StoreError> {
        self.read_point("agent", move |conn| agents::find(conn, &agent_id))
    }

    pub(crate) async fn list_agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        self.read("list_agents", agents::list).await
    }

    pub(crate) async fn set_agent_status(
        &self,
        agent_id: AgentId,
        status: AgentStatus,
        event: AuditEvent,
    ) -> Result<AgentRecord, StoreError> {
        self.write("set_agent_status", move |tx| {
            agents::set_status(tx, &agent_id, status, &event)
        })
        .await
    }

    pub(crate) async fn add_api_key(
        &self,
        key: NewApiKey,
        event: AuditEvent,
    ) -> Result<ApiKeyRecord, StoreError> {
        self.write("add_api_key", move |tx| agents::add_key(tx, key, &event))
            .await
    }

    pub(crate) async fn api_key(
        &self,
        key_id_public: String,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.read_point("api_key", move |conn| {
            agents::find_key(conn, &key_id_public)
        })
    }

    pub(crate) async fn revoke_api_keys(
        &self,
        agent_id: AgentId,
        event: AuditEvent,
    ) -> Result<usize, StoreError> {
        self.write("revoke_api_keys", move |tx| {
            agents::revoke_keys(tx, &agent_id, &event)
        })
        .await
    }

    pub(crate) async fn rotate_credentials(
        &self,
        key: NewApiKey,
        certificate_sha256: Option<[u8; 32]>,
        event: AuditEvent,
    ) -> Result<(AgentRecord, usize), StoreError> {
        self.write("rotate_credentials", move |tx| {
            agents::rotate(tx, key, certificate_sha256, &event)
        })
        .await
    }

    pub(crate) async fn pin_certificate(
        &self,
        agent_id: AgentId,
        certificate_sha256: Option<[u8; 32]>,
        event: AuditEvent,
    ) -> Result<AgentRecord, StoreError> {
        self.write("pin_certificate", move |tx| {
            agents::pin_certificate(tx, &agent_id, certificate_sha256, &event)
        })
        .await
    }

    pub(crate) async fn revoke_token(
        &self,
        token_id: String,
        agent_id: AgentId,
        event: AuditEvent,
    ) -> Result<(), StoreError> {
        self.write("revoke_token", move |tx| {
            agents::revoke_token(tx, &token_id, &agent_id, &event)
        })
        .await
    }

    pub(crate) async fn api_key_and_agent(
        &self,
        key_id_public: String,
    ) -> Result<Option<(ApiKeyRecord, Option<AgentRecord>)>, StoreError> {
        self.read_point("api_key_and_agent", move |conn| {
            // One read transaction for both lookups: one snapshot, one round of locking.
            let tx = conn.unchecked_transaction()?;
            let Some(key) = agents::find_key(&tx, &key_id_public)? else {
                return Ok(None);
            };
            let agent = agents::find(&tx, &key.agent_id)?;
            tx.commit()?;
            Ok(Some((key, agent)))
        })
    }

    pub(crate) async fn agent_and_token_revoked(
        &self,
        agent_id: AgentId,
        token_id: String,
    ) -> Result<(Option<AgentRecord>, bool), StoreError> {
        self.read_point("agent_and_token_revoked", move |conn| {
            // One read transaction for both lookups: one snapshot, one round of locking.
            let tx = conn.unchecked_transaction()?;
            let agent = agents::find(&tx, &agent_id)?;
            let revoked = agents::token_revoked(&tx, &token_id)?;
            tx.commit()?;
            Ok((agent, revoked))
        })
    }

    pub(crate) async fn token_revoked(&self, token_id: String) -> Result<bool, StoreError> {
        self.read_point("token_revoked", move |conn| {
            agents::token_revoked(conn, &token_id)
        })
    }

    pub(crate) async fn create_session(
        &self,
        new: NewSession,
        event: AuditEvent,
    ) -> Result<CreateOutcome, StoreError> {
        self.write("create_session", move |tx| sessions::create(tx, new, event))
            .await
    }

    pub(crate) async fn session(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.read_point("session", move |conn| session_rows::find(conn, &id))
    }

    pub(crate) async fn transition(
        &self,
        id: SessionId,
        expected: SessionState,
        to: SessionState,
        patch: SessionPatch,
        event: AuditEvent,
    ) -> Result<Session, StoreError> {
        self.write("transition", move |tx| {
            sessions::transition(tx, &id, expected, to, patch, event)
        })
        .await
    }

    pub(crate) async fn patch_session(
        &self,
        id: SessionId,
        expected: SessionState,
        patch: SessionPatch,
        event: AuditEvent,
    ) -> Result<Session, StoreError> {
        self.write("patch_session", move |tx| {
            sessions::patch(tx, &id, expected, patch, event)
        })
        .await
    }

    pub(crate) async fn reserve_and_transition(
        &self,
        id: SessionId,
        expected: SessionState,
        to: SessionState,
        reservation: Reservation,
        patch: SessionPatch,
        event: AuditEvent,
    ) -> Result<Result<Session, CapExceeded>, StoreError> {
        self.write("reserve_and_transition", move |tx| {
            sessions::reserve_and_transition(tx, &id, expected, to, &reservation, patch, event)
        })
        .await
    }

    pub(crate) async fn sessions_in_states(
        &self,
        states: Vec<SessionState>,
        max: usize,
    ) -> Result<Vec<Session>, StoreError> {
        self.read("sessions_in_states", move |conn| {
            session_rows::in_states(conn, &states, max)
        })
        .await
    }

    pub(crate) async fn list_sessions(
        &self,
        agent_id: Option<AgentId>,
        max: usize,
    ) -> Result<Vec<Session>, StoreError> {
        self.read("list_sessions", move |conn| {
            session_rows::list(conn, agent_id.as_ref(), max)
        })
        .await
    }

    pub(crate) async fn open_session_count(&self, agent_id: AgentId) -> Result<u64, StoreError> {
        self.read("open_session_count", move |conn| {
            session_rows::open_count(conn, &agent_id)
        })
        .await
    }

    /// Expires due sessions, each in its own savepoint: a failure leaves every other expiry
    /// complete. A page of candidates is queued at once, so its expiries share commits.
    pub(crate) async fn expire_due(&self, now_ms: u64) -> Result<Vec<Session>, StoreError> {
        let mut expired = Vec::new();
        loop {
            let due = self
                .read("expire_due", move |conn| {
                    session_rows::due_for_expiry(conn, now_ms, EXPIRY_BATCH)
                })
                .await?;
            let page_len = due.len();
            let replies = due
                .into_iter()
                .map(|id| {
                    self.enqueue("expire_due", move |tx| {
                        sessions::expire_one(tx, &id, now_ms)
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut progressed = false;
            for reply in replies {
                if let Some(session) = receive(reply).await? {
                    progressed = true;
                    expired.push(session);
                }
            }
            // Stop on a short page, or when another writer took every candidate first.
            if page_len < EXPIRY_BATCH || !progressed {
                return Ok(expired);
            }
        }
    }

    pub(crate) async fn budget_usage(
        &self,
        agent_id: AgentId,
        asset: Asset,
        measure: Measure,
        since_ms: u64,
    ) -> Result<u64, StoreError> {
        self.read("budget_usage", move |conn| {
            budget::usage(conn, &agent_id, asset, measure, since_ms)
        })
        .await
    }

    pub(crate) async fn reservation_state(
        &self,
        id: SessionId,
    ) -> Result<Option<ReservationState>, StoreError> {
        self.read_point("reservation_state", move |conn| budget::state_of(conn, &id))
    }

    pub(crate) async fn append_audit(&self, event: AuditEvent) -> Result<u64, StoreError> {
        self.write("append_audit", move |tx| audit::append(tx, &event))
            .await
    }

    pub(crate) async fn audit_tail(&self, max: usize) -> Result<Vec<AuditRecord>, StoreError> {
        self.read("audit_tail", move |conn| audit::tail(conn, max))
            .await
    }

    pub(crate) async fn audit_for_session(
        &self,
        id: SessionId,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.read("audit_for_session", move |conn| {
            audit::for_session(conn, &id)
        })
        .await
    }

    pub(crate) async fn audit_len(&self) -> Result<u64, StoreError> {
        self.read("audit_len", audit::count).await
    }
}
