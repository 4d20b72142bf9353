//! The writer thread's batches, made deterministic: a gate operation holds the thread while
//! the operations under test queue up, so that they are all applied in the next batch.

use std::sync::mpsc;
use std::time::Duration;

use clawfirst_core::{Address, AgentId, Asset, KeyId, SessionId};
use tempfile::TempDir;

use super::writer::Reply;
use super::{Result, SqliteBackend, SqliteOptions, Synchronous, audit, receive, sessions};
use crate::audit::{ActorKind, AuditEvent};
use crate::error::StoreError;
use crate::session::{NewSession, Session, SessionPatch, SettlementConstraint};
use crate::state::SessionState::{self, Approved, AwaitingApproval, Initialized};

type TestResult<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const T0: u64 = 1_700_000_000_000;

fn event(name: &str, at_ms: u64) -> AuditEvent {
    AuditEvent::new(ActorKind::Operator, "operator-1", name).at_ms(at_ms)
}

async fn open(dir: &TempDir, busy_timeout: Duration) -> Result<SqliteBackend, StoreError> {
    let options = SqliteOptions {
        synchronous: Synchronous::Normal,
        busy_timeout,
        ..SqliteOptions::default()
    };
    SqliteBackend::open(&dir.path().join("store.db"), options).await
}

/// An agent with two sessions in `initialized`.
async fn fixtures(db: &SqliteBackend) -> TestResult<[SessionId; 2]> {
    let agent = AgentId::new("agent-1")?;
    let key = KeyId::new("wallet-1")?;
    db.create_agent(agent.clone(), key.clone(), event("agent.created", T0))
        .await?;
    let mut ids = Vec::new();
    for name in ["ps_1", "ps_2"] {
        let recipient = Address::new([7; 32]);
        let new = NewSession {
            id: SessionId::new(name)?,
            agent_id: agent.clone(),
            asset: Asset::Sol,
            amount: 5,
            recipient,
            recipient_input: recipient.to_string(),
            purpose: None,
            settlement_constraint: SettlementConstraint::Immediate,
            execute_after_ms: None,
            idempotency_key: None,
            request_digest: [1; 32],
            metadata: None,
            expires_at_ms: T0 + 60_000,
            key_id: key.clone(),
            payer: Address::new([9; 32]),
        };
        ids.push(new.id.clone());
        db.create_session(new, event("session.created", T0)).await?;
    }
    let [first, second] = <[SessionId; 2]>::try_from(ids).map_err(|_| "two sessions")?;
    Ok([first, second])
}

/// Holds the writer thread inside an operation until dropped.
struct Gate {
    release: mpsc::Sender<()>,
    reply: Reply<()>,
}

impl Gate {
    /// Returns once the writer thread is inside the gate operation: whatever is queued from
    /// now until [`Gate::open`] is applied together, in the batch after the gate's.
    async fn close(db: &SqliteBackend) -> TestResult<Gate> {
        let (entered, inside) = tokio::sync::oneshot::channel();
        let (release, held) = mpsc::channel();
        let reply = db.enqueue("gate", move |_| {
            let _ = entered.send(());
            let _ = held.recv();
            Ok(())
        })?;
        inside.await?;
        Ok(Gate { release, reply })
    }

    async fn open(self) -> TestResult {
        self.release.send(())?;
        Ok(receive(self.reply).await?)
    }
}

fn append(db: &SqliteBackend, name: &'static str) -> Result<Reply<u64>, StoreError> {
    db.enqueue("append_audit", move |tx| {
        audit::append(tx, &event(name, T0 + 1))
    })
}

fn advance(
    db: &SqliteBackend,
    id: &SessionId,
    (expected, to): (SessionState, SessionState),
) -> Result<Reply<Session>, StoreError> {
    let id = id.clone();
    db.enqueue("transition", move |tx| {
        let event = event("session.transition", T0 + 1);
        sessions::transition(tx, &id, expected, to, SessionPatch::none(), event)
    })
}

#[tokio::test]
async fn a_failed_operation_in_a_batch_writes_nothing_and_spares_the_others() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(&dir, Duration::from_secs(5)).await?;
    let [first, second] = fixtures(&db).await?;
    let before = db.audit_len().await?;

    let gate = Gate::close(&db).await?;
    let appended = append(&db, "batch.first")?;
    // Writes (a move and its audit record), then fails.
    let moved_then_failed = {
        let id = first.clone();
        db.enqueue("transition", move |tx| {
            let event = event("session.transition", T0 + 1);
            sessions::transition(
                tx,
                &id,
                Initialized,
                AwaitingApproval,
                SessionPatch::none(),
                event,
            )?;
            Err::<(), _>(StoreError::SessionExists(id).into())
        })?
    };
    let conflict = advance(&db, &second, (AwaitingApproval, Approved))?;
    let moved = advance(&db, &second, (Initialized, AwaitingApproval))?;
    let appended_last = append(&db, "batch.last")?;
    gate.open().await?;

    assert_eq!(receive(appended).await?, before + 1);
    assert!(matches!(
        receive(moved_then_failed).await,
        Err(StoreError::SessionExists(_))
    ));
    assert!(matches!(
        receive(conflict).await,
        Err(StoreError::StateConflict {
            actual: Initialized,
            ..
        })
    ));
    assert_eq!(receive(moved).await?.state, AwaitingApproval);
    assert_eq!(
        receive(appended_last).await?,
        before + 3,
        "the failed operation's audit number is reused: no gap"
    );

    // Durable, and exactly what the successful operations wrote.
    drop(db);
    let db = open(&dir, Duration::from_secs(5)).await?;
    assert_eq!(db.audit_len().await?, before + 3);
    let first_now = db
        .session(first.clone())
        .await?
        .ok_or("first session lost")?;
    assert_eq!(
        first_now.state, Initialized,
        "the failed move was rolled back"
    );
    assert_eq!(
        db.audit_for_session(first).await?.len(),
        1,
        "only its creation"
    );
    let second_now = db.session(second).await?.ok_or("second session lost")?;
    assert_eq!(second_now.state, AwaitingApproval);
    let events: Vec<String> = db
        .audit_tail(3)
        .await?
        .into_iter()
        .map(|r| r.event)
        .collect();
    assert_eq!(events, ["batch.first", "session.transition", "batch.last"]);
    Ok(())
}

#[tokio::test]
async fn a_panicking_operation_is_rolled_back_alone() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(&dir, Duration::from_secs(5)).await?;
    let before = db.audit_len().await?;

    let gate = Gate::close(&db).await?;
    let appended = append(&db, "batch.first")?;
    let panicked = db.enqueue("append_audit", |tx| -> Result<u64> {
        audit::append(tx, &event("batch.panic", T0 + 1))?;
        panic!("an operation's bug");
    })?;
    let appended_last = append(&db, "batch.last")?;
    gate.open().await?;

    assert_eq!(receive(appended).await?, before + 1);
    assert!(matches!(
        receive(panicked).await,
        Err(StoreError::TaskFailed(_))
    ));
    assert_eq!(receive(appended_last).await?, before + 2);
    assert_eq!(
        receive(append(&db, "after")?).await?,
        before + 3,
        "the writer thread carries on"
    );
    Ok(())
}

#[tokio::test]
async fn a_transaction_lost_mid_batch_fails_every_operation_in_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(&dir, Duration::from_secs(5)).await?;
    let before = db.audit_len().await?;

    let gate = Gate::close(&db).await?;
    let appended = append(&db, "batch.first")?;
    // What SQLite does itself on an I/O error or a full disk: the transaction ends.
    let aborted = db.enqueue("abort", |tx| Ok(tx.execute_batch("ROLLBACK")?))?;
    let not_reached = append(&db, "batch.last")?;
    gate.open().await?;

    for result in [receive(appended).await, receive(not_reached).await] {
        assert!(
            matches!(result, Err(StoreError::Database { .. })),
            "{result:?}"
        );
    }
    let aborted = receive(aborted).await;
    assert!(
        matches!(aborted, Err(StoreError::Database { .. })),
        "{aborted:?}"
    );
    assert_eq!(
        db.audit_len().await?,
        before,
        "nothing of the batch was written"
    );
    assert_eq!(receive(append(&db, "after")?).await?, before + 1);
    Ok(())
}

#[tokio::test]
async fn a_busy_database_fails_the_whole_batch_as_retryable() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(&dir, Duration::from_millis(50)).await?;
    let before = db.audit_len().await?;

    // Another process holds the write lock past the busy timeout.
    let other = rusqlite::Connection::open(dir.path().join("store.db"))?;
    other.execute_batch("BEGIN IMMEDIATE")?;
    let replies = [
        append(&db, "one")?,
        append(&db, "two")?,
        append(&db, "three")?,
    ];
    for reply in replies {
        let result = receive(reply).await;
        assert!(
            result.as_ref().is_err_and(StoreError::is_retryable),
            "{result:?}"
        );
    }
    other.execute_batch("ROLLBACK")?;

    assert_eq!(db.audit_len().await?, before);
    assert_eq!(receive(append(&db, "retried")?).await?, before + 1);
    Ok(())
}

#[tokio::test]
async fn dropping_the_store_applies_what_is_queued_and_stops_the_writer() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = open(&dir, Duration::from_secs(5)).await?;
    let before = db.audit_len().await?;

    // The caller stopped waiting: the write is still applied.
    drop(append(&db, "unawaited")?);
    drop(db);

    // SQLite removes the WAL file when the last connection to the database closes: the
    // writer thread has ended, and its connection with it, by the time the drop returns.
    assert!(!dir.path().join("store.db-wal").exists());
    let conn = rusqlite::Connection::open(dir.path().join("store.db"))?;
    let count: i64 = conn.query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))?;
    assert_eq!(u64::try_from(count)?, before + 1);
    Ok(())
}
