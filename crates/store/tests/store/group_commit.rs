//! Group commit seen from the outside: operations that share a transaction still succeed or
//! fail one by one, and everything acknowledged is durable with a gapless audit trail.

use std::time::Duration;

use clawfirst_store::{SessionPatch, SessionState, Store, StoreError};

use crate::support::*;

use SessionState::{Approved, AwaitingApproval, Cancelled, Initialized, Signed};

/// Moves a session with no patch, audited as a `session.transition`.
async fn try_move(
    store: &Store,
    id: &clawfirst_core::SessionId,
    (from, to): (SessionState, SessionState),
) -> Result<(), StoreError> {
    let event = operator_event("session.transition", T0 + 1);
    store
        .transition(id, from, to, SessionPatch::none(), event)
        .await
        .map(drop)
}

/// The sequence numbers of the whole trail, checked to run from 1 with no gap.
async fn assert_gapless(store: &Store) -> TestResult<u64> {
    let len = store.audit_len().await?;
    let seqs: Vec<u64> = store
        .audit_tail(usize::try_from(len)? + 1)
        .await?
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, (1..=len).collect::<Vec<_>>());
    Ok(len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_move_among_concurrent_writes_leaves_nothing_and_the_rest_lasts() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(create(&store, new_session(&agent, &format!("ps_{i}"), 1)?).await?);
    }
    let stale = create(&store, new_session(&agent, "ps_stale", 1)?).await?;
    let before = store.audit_len().await?;

    // Another process holds the write lock for a moment, so every write below queues up and
    // most of them share one transaction once it is released.
    let other = rusqlite::Connection::open(db.path())?;
    other.execute_batch("BEGIN IMMEDIATE")?;
    let mut moves = tokio::task::JoinSet::new();
    for id in &ids {
        let (store, id) = (store.clone(), id.clone());
        moves.spawn(async move { try_move(&store, &id, (Initialized, AwaitingApproval)).await });
    }
    let refused = {
        let (store, stale) = (store.clone(), stale.clone());
        tokio::spawn(async move { try_move(&store, &stale, (Approved, Signed)).await })
    };
    let mut appends = tokio::task::JoinSet::new();
    for i in 0..5 {
        let store = store.clone();
        appends.spawn(async move {
            store
                .append_audit(operator_event("operator.note", T0 + i))
                .await
        });
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    other.execute_batch("COMMIT")?;

    while let Some(moved) = moves.join_next().await {
        moved??;
    }
    while let Some(appended) = appends.join_next().await {
        appended??;
    }
    match refused.await? {
        Err(StoreError::StateConflict {
            actual: Initialized,
            expected: Approved,
            ..
        }) => {}
        other => return Err(format!("expected a state conflict, got {other:?}").into()),
    }

    // Reopened: every acknowledged write is there, and nothing of the refused one.
    drop(store);
    let store = db.open().await?;
    assert_eq!(assert_gapless(&store).await?, before + 20 + 5);
    for id in &ids {
        let session = store.session(id).await?.ok_or("session lost")?;
        assert_eq!(session.state, AwaitingApproval);
    }
    let stale_now = store.session(&stale).await?.ok_or("session lost")?;
    assert_eq!(stale_now.state, Initialized);
    assert_eq!(
        stale_now.updated_at_ms, T0,
        "the refused move changed nothing"
    );
    assert_eq!(
        store.audit_for_session(&stale).await?.len(),
        1,
        "its creation only"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_sessions_move_at_once_with_a_gapless_trail() -> TestResult {
    const SESSIONS: usize = 500;
    /// Sessions that a rival cancel races for; exactly one of the two may win.
    const CONTESTED: usize = 100;
    let db = TestDb::new()?;
    let store = db.open_fast().await?;
    let agent = add_agent(&store, "agent-1").await?;

    let mut creates = tokio::task::JoinSet::new();
    for i in 0..SESSIONS {
        let (store, new) = (
            store.clone(),
            new_session(&agent, &format!("ps_{i:03}"), 1)?,
        );
        creates.spawn(async move { create(&store, new).await });
    }
    let mut ids = Vec::with_capacity(SESSIONS);
    while let Some(created) = creates.join_next().await {
        ids.push(created??);
    }
    ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));

    let mut moves = tokio::task::JoinSet::new();
    for (i, id) in ids.iter().enumerate() {
        let (store, id) = (store.clone(), id.clone());
        let rival = i < CONTESTED;
        moves.spawn(async move {
            let (approve, cancel) = tokio::join!(
                try_move(&store, &id, (Initialized, AwaitingApproval)),
                async {
                    if rival {
                        Some(try_move(&store, &id, (Initialized, Cancelled)).await)
                    } else {
                        None
                    }
                }
            );
            (id, approve, cancel)
        });
    }
    while let Some(joined) = moves.join_next().await {
        let (id, approve, cancel) = joined?;
        let state = store.session(&id).await?.ok_or("session lost")?.state;
        match (approve, cancel) {
            (Ok(()), None) => assert_eq!(state, AwaitingApproval),
            (Ok(()), Some(Err(StoreError::StateConflict { actual, .. }))) => {
                assert_eq!((state, actual), (AwaitingApproval, AwaitingApproval));
            }
            (Err(StoreError::StateConflict { actual, .. }), Some(Ok(()))) => {
                assert_eq!((state, actual), (Cancelled, Cancelled));
            }
            other => return Err(format!("{id}: unexpected outcome {other:?}").into()),
        }
        assert_eq!(store.audit_for_session(&id).await?.len(), 2, "{id}");
    }

    let expected = 1 + 2 * SESSIONS as u64;
    assert_eq!(assert_gapless(&store).await?, expected);
    Ok(())
}
