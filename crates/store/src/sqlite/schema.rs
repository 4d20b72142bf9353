//! The schema and its numbered migrations.
//!
//! Each migration runs once, in order, and all pending migrations run in one `BEGIN IMMEDIATE`
//! transaction at open: a process that opens the database while another one migrates waits
//! for it, then finds nothing left to do. `schema_version` records each applied version.
//!
//! The SQL keeps to what PostgreSQL also understands (`BIGINT` for integers, `BLOB` to be read
//! as `BYTEA`, `CHECK` constraints, triggers for append-only tables), so a PostgreSQL schema
//! is a line-by-line translation. Integers are signed 64-bit in both; the store refuses larger
//! values before they reach SQL.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::error::StoreError;

/// The migrations, oldest first. Versions start at 1 and have no gaps.
const MIGRATIONS: &[(u32, &str)] = &[
    (1, V1_INITIAL),
    (2, V2_WINDOW_TOTALS),
    (3, V3_MEASURES),
    (4, V4_APPROVALS),
    (5, V5_CREDENTIALS),
    (6, V6_CERTIFICATE_PIN),
];

/// The one client certificate (its SHA-256) an agent may authenticate with, once the operator
/// pins one; rotating the agent's certificate replaces the pin, so the old certificate fails at
/// once on every server sharing the database.
const V6_CERTIFICATE_PIN: &str = "
ALTER TABLE agents ADD COLUMN certificate_sha256 BLOB
    CHECK (certificate_sha256 IS NULL OR length(certificate_sha256) = 32);
";

/// Credential rotation: each agent's credential generation (delegation tokens name the
/// generation they were issued in; rotation moves it on, so every older token fails at once),
/// and the ids of delegation tokens revoked one by one.
const V5_CREDENTIALS: &str = "
ALTER TABLE agents ADD COLUMN credential_generation BIGINT NOT NULL DEFAULT 0
    CHECK (credential_generation >= 0);
CREATE TABLE revoked_tokens (
    token_id      TEXT PRIMARY KEY,
    agent_id      TEXT NOT NULL REFERENCES agents (agent_id),
    revoked_at_ms BIGINT NOT NULL
);
";

/// A covering index for the rolling-window totals: the sum is read from the index alone.
const V2_WINDOW_TOTALS: &str = "
CREATE INDEX reservations_window_totals
    ON reservations (agent_id, asset, created_at_ms, state, amount);
DROP INDEX reservations_by_window;
";

/// Budgets in micro-US-dollars and in payments: each reservation keeps the USD value it was
/// made with, and one covering index serves both per-agent sums (every asset) with a range
/// scan. A reservation made before this version counts as worth 0 USD.
const V3_MEASURES: &str = "
ALTER TABLE reservations ADD COLUMN usd_micros BIGINT NOT NULL DEFAULT 0
    CHECK (usd_micros >= 0);
CREATE INDEX reservations_agent_totals
    ON reservations (agent_id, created_at_ms, state, usd_micros);
";

/// Human approvals: approvers, the request a waiting session holds (its eligible approvers a
/// JSON array of names, snapshot of the group), and append-only votes, one per approver and
/// session. Also the index behind "has this agent paid this recipient before".
const V4_APPROVALS: &str = "
CREATE TABLE approvers (
    name          TEXT PRIMARY KEY,
    public_key    TEXT NOT NULL UNIQUE,
    status        TEXT NOT NULL CHECK (status IN ('active', 'removed')),
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

CREATE TABLE approval_requests (
    session_id     TEXT PRIMARY KEY REFERENCES sessions (session_id),
    tier           TEXT,
    rule           TEXT NOT NULL,
    approver_group TEXT NOT NULL,
    eligible       TEXT NOT NULL,
    required       BIGINT NOT NULL CHECK (required > 0),
    expires_at_ms  BIGINT NOT NULL,
    policy_version TEXT NOT NULL,
    created_at_ms  BIGINT NOT NULL
);

CREATE TABLE approval_votes (
    session_id TEXT NOT NULL REFERENCES approval_requests (session_id),
    approver   TEXT NOT NULL REFERENCES approvers (name),
    decision   TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
    statement  TEXT NOT NULL,
    signature  TEXT NOT NULL,
    reason     TEXT,
    at_ms      BIGINT NOT NULL,
    PRIMARY KEY (session_id, approver)
);

CREATE TRIGGER approval_votes_no_update BEFORE UPDATE ON approval_votes
BEGIN
    SELECT RAISE(ABORT, 'approval_votes is append-only');
END;
CREATE TRIGGER approval_votes_no_delete BEFORE DELETE ON approval_votes
BEGIN
    SELECT RAISE(ABORT, 'approval_votes is append-only');
END;

CREATE INDEX sessions_by_recipient ON sessions (agent_id, recipient, state);
";

/// The newest schema version this build knows.
pub(crate) fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |(version, _)| *version)
}

const V1_INITIAL: &str = "
CREATE TABLE agents (
    agent_id      TEXT PRIMARY KEY,
    key_id        TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'revoked')),
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

CREATE TABLE api_keys (
    key_id_public TEXT PRIMARY KEY,
    agent_id      TEXT NOT NULL REFERENCES agents (agent_id),
    key_hash      BLOB NOT NULL CHECK (length(key_hash) = 32),
    created_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT
);
CREATE INDEX api_keys_by_agent ON api_keys (agent_id);

CREATE TABLE sessions (
    session_id                TEXT PRIMARY KEY,
    agent_id                  TEXT NOT NULL REFERENCES agents (agent_id),
    state                     TEXT NOT NULL CHECK (state IN (
        'initialized', 'awaiting_approval', 'approved', 'signed', 'submitted', 'confirmed',
        'finalized', 'rejected', 'cancelled', 'expired', 'failed')),
    asset                     TEXT NOT NULL CHECK (asset IN ('SOL', 'USDC', 'BONK')),
    amount                    BIGINT NOT NULL CHECK (amount >= 0),
    recipient                 TEXT NOT NULL,
    recipient_input           TEXT NOT NULL,
    purpose                   TEXT,
    settlement_constraint     TEXT NOT NULL CHECK (settlement_constraint IN (
        'immediate', 'defer_until_approval', 'scheduled')),
    execute_after_ms          BIGINT,
    idempotency_key           TEXT,
    request_digest            BLOB NOT NULL CHECK (length(request_digest) = 32),
    metadata                  TEXT,
    created_at_ms             BIGINT NOT NULL,
    updated_at_ms             BIGINT NOT NULL,
    expires_at_ms             BIGINT NOT NULL,
    key_id                    TEXT NOT NULL,
    payer                     TEXT NOT NULL,
    message                   BLOB,
    grant_id                  BLOB CHECK (grant_id IS NULL OR length(grant_id) = 16),
    blockhash_last_valid_slot BIGINT,
    signature                 TEXT,
    signed_transaction        BLOB,
    slot                      BIGINT,
    failure_code              TEXT,
    failure_message           TEXT,
    policy_rule               TEXT,
    UNIQUE (agent_id, idempotency_key),
    CHECK ((failure_code IS NULL) = (failure_message IS NULL))
);
CREATE INDEX sessions_by_state ON sessions (state, updated_at_ms);
CREATE INDEX sessions_by_expiry ON sessions (state, expires_at_ms);
CREATE INDEX sessions_by_agent ON sessions (agent_id, created_at_ms);

CREATE TABLE reservations (
    session_id    TEXT PRIMARY KEY REFERENCES sessions (session_id),
    agent_id      TEXT NOT NULL REFERENCES agents (agent_id),
    asset         TEXT NOT NULL CHECK (asset IN ('SOL', 'USDC', 'BONK')),
    amount        BIGINT NOT NULL CHECK (amount >= 0),
    state         TEXT NOT NULL CHECK (state IN ('reserved', 'committed', 'released')),
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX reservations_by_window ON reservations (agent_id, asset, created_at_ms);

-- One row holding the last sequence number handed out; the hash chain will keep its head
-- hash here too. Appends update this row, which serializes them in any database.
CREATE TABLE audit_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq BIGINT NOT NULL CHECK (last_seq >= 0)
);
INSERT INTO audit_head (id, last_seq) VALUES (1, 0);

CREATE TABLE audit_log (
    seq        BIGINT PRIMARY KEY CHECK (seq > 0),
    at_ms      BIGINT NOT NULL,
    actor_kind TEXT NOT NULL CHECK (actor_kind IN ('agent', 'approver', 'operator', 'system')),
    actor_id   TEXT NOT NULL,
    event      TEXT NOT NULL,
    session_id TEXT,
    details    TEXT NOT NULL
);
CREATE INDEX audit_by_session ON audit_log (session_id, seq);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
";

/// Brings the schema up to date in one transaction; returns the version afterwards.
///
/// # Errors
/// [`StoreError::SchemaTooNew`] when the file was migrated by a newer build, and
/// [`StoreError::Migration`] when a migration fails (then none of them is applied).
pub(super) fn migrate(conn: &mut Connection, now_ms: i64) -> Result<u32, StoreError> {
    let failed = |version: u32| {
        move |e: rusqlite::Error| StoreError::Migration {
            version,
            source: Box::new(e),
        }
    };
    // Version 0 is the bookkeeping table itself.
    let bookkeeping = 0;

    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed(bookkeeping))?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version       INTEGER PRIMARY KEY,
             applied_at_ms BIGINT NOT NULL
         );",
    )
    .map_err(failed(bookkeeping))?;
    let found = current_version(&tx).map_err(failed(bookkeeping))?;

    if found > latest_version() {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: latest_version(),
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        tx.execute_batch(sql).map_err(failed(*version))?;
        tx.execute(
            "INSERT INTO schema_version (version, applied_at_ms) VALUES (?1, ?2)",
            (version, now_ms),
        )
        .map_err(failed(*version))?;
    }

    tx.commit().map_err(failed(latest_version()))?;
    Ok(latest_version())
}

/// The newest applied version, 0 for an empty database.
pub(super) fn current_version(conn: &Connection) -> rusqlite::Result<u32> {
    let version: Option<i64> = conn
        .query_row("SELECT MAX(version) FROM schema_version", [], |row| {
            row.get(0)
        })
        .optional()?
        .flatten();
    // A version that does not fit is certainly not one this build wrote.
    Ok(version.map_or(0, |v| u32::try_from(v).unwrap_or(u32::MAX)))
}

#[cfg(test)]
mod tests;
