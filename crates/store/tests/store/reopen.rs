//! Durability across restarts, idempotent migrations, and what the database itself enforces.

use clawfirst_core::Asset;
use clawfirst_store::{SessionState, SqliteOptions, Store, StoreError, Synchronous};

use crate::support::*;

#[tokio::test]
async fn data_survives_closing_and_reopening() -> TestResult {
    let db = TestDb::new()?;
    let (agent, id, audit_len) = {
        let store = db.open().await?;
        let agent = add_agent(&store, "agent-1").await?;
        let mut new = new_session(&agent, "ps_1", 7)?;
        new.idempotency_key = Some("k".into());
        let id = create(&store, new).await?;
        reserve(&store, &id, APPROVE, daily_cap(10), T0 + 1).await??;
        (agent, id, store.audit_len().await?)
    };

    let store = db.open().await?;

    let session = store.session(&id).await?.ok_or("session lost")?;
    assert_eq!(session.state, SessionState::Approved);
    assert_eq!(session.idempotency_key.as_deref(), Some("k"));
    assert_eq!(
        session.request_digest,
        new_session(&agent, "ps_1", 7)?.request_digest
    );
    assert_eq!(store.budget_usage(&agent, Asset::Sol, 0).await?, 7);
    assert!(store.agent(&agent).await?.is_some());
    assert_eq!(store.audit_len().await?, audit_len);
    let seq = store
        .append_audit(operator_event("store.reopened", T0 + 2))
        .await?;
    assert_eq!(
        seq,
        audit_len + 1,
        "the sequence continues where it stopped"
    );
    Ok(())
}

#[tokio::test]
async fn migrations_run_once_however_often_the_file_is_opened() -> TestResult {
    let db = TestDb::new()?;
    for _ in 0..3 {
        let store = db.open().await?;
        assert_eq!(store.schema_version().await?, LATEST_SCHEMA);
    }

    let conn = rusqlite::Connection::open(db.path())?;
    let rows: i64 = conn.query_row("SELECT COUNT(*) FROM schema_version", [], |r| r.get(0))?;
    assert_eq!(
        rows,
        i64::from(LATEST_SCHEMA),
        "one row per migration, each applied once"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_first_opens_of_a_new_file_agree() -> TestResult {
    let db = TestDb::new()?;
    let mut opens = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let path = db.path();
        opens.spawn(async move { Store::open_sqlite(&path, fast_options()).await });
    }
    while let Some(joined) = opens.join_next().await {
        assert_eq!(joined??.schema_version().await?, LATEST_SCHEMA);
    }
    Ok(())
}

#[tokio::test]
async fn a_database_from_a_newer_build_is_refused() -> TestResult {
    let db = TestDb::new()?;
    drop(db.open().await?);
    let conn = rusqlite::Connection::open(db.path())?;
    conn.execute(
        "INSERT INTO schema_version (version, applied_at_ms) VALUES (99, 0)",
        [],
    )?;
    drop(conn);

    let refused = db.open().await;

    assert!(
        matches!(
            refused,
            Err(ref e) if matches!(
                e.downcast_ref::<StoreError>(),
                Some(StoreError::SchemaTooNew { found: 99, supported: LATEST_SCHEMA })
            )
        ),
        "{refused:?}"
    );
    Ok(())
}

#[tokio::test]
async fn the_database_refuses_to_edit_or_delete_audit_records() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    store
        .append_audit(operator_event("operator.login", T0))
        .await?;
    let conn = rusqlite::Connection::open(db.path())?;

    let edit = conn.execute("UPDATE audit_log SET actor_id = 'someone-else'", []);
    let delete = conn.execute("DELETE FROM audit_log", []);

    assert!(edit.is_err_and(|e| e.to_string().contains("append-only")));
    assert!(delete.is_err_and(|e| e.to_string().contains("append-only")));
    assert_eq!(store.audit_tail(10).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn both_durability_levels_open_and_unusable_options_are_refused() -> TestResult {
    let db = TestDb::new()?;
    for synchronous in [Synchronous::Full, Synchronous::Normal] {
        let options = SqliteOptions {
            synchronous,
            ..SqliteOptions::default()
        };
        drop(Store::open_sqlite(&db.path(), options).await?);
    }

    let forever = SqliteOptions {
        busy_timeout: std::time::Duration::MAX,
        ..SqliteOptions::default()
    };
    let refused = Store::open_sqlite(&db.path(), forever).await;
    assert!(
        matches!(
            refused,
            Err(StoreError::InvalidOption {
                option: "busy_timeout",
                ..
            })
        ),
        "{refused:?}"
    );

    let missing_dir = db.dir().join("no-such-dir").join("x.db");
    let refused = Store::open_sqlite(&missing_dir, SqliteOptions::default()).await;
    assert!(
        matches!(refused, Err(StoreError::Open { .. })),
        "{refused:?}"
    );
    Ok(())
}

#[cfg(unix)]
#[tokio::test]
async fn a_new_database_is_private_to_its_owner() -> TestResult {
    use std::os::unix::fs::PermissionsExt;

    let db = TestDb::new()?;
    let store = db.open().await?;
    store
        .append_audit(operator_event("operator.login", T0))
        .await?;

    for suffix in ["", "-wal", "-shm"] {
        let file = db.dir().join(format!("clawfirst.db{suffix}"));
        let mode = std::fs::metadata(&file)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    Ok(())
}
