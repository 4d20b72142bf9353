//! Idempotency keys: the same request returns the first session, another request conflicts,
//! and keys belong to one agent.

use clawfirst_store::{CreateOutcome, StoreError};

use crate::support::*;

#[tokio::test]
async fn same_key_and_digest_return_the_first_session() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;

    let mut first = new_session(&agent, "ps_first", 5)?;
    first.idempotency_key = Some("order-42".into());
    let mut retry = new_session(&agent, "ps_retry", 5)?;
    retry.idempotency_key = Some("order-42".into());
    let audit_before = store.audit_len().await?;

    let created = store
        .create_session(first, agent_event(&agent, "tool.initialize_payment", T0))
        .await?;
    let again = store
        .create_session(retry, agent_event(&agent, "tool.initialize_payment", T0))
        .await?;

    assert!(matches!(created, CreateOutcome::Created(_)));
    let CreateOutcome::Existing(existing) = again else {
        return Err(format!("expected the existing session, got {again:?}").into());
    };
    assert_eq!(existing.id.as_str(), "ps_first");
    assert_eq!(&existing, created.session());
    assert!(store.session(&session_id("ps_retry")?).await?.is_none());
    assert_eq!(
        store.audit_len().await?,
        audit_before + 1,
        "a replay writes no audit record"
    );
    Ok(())
}

#[tokio::test]
async fn same_key_with_other_parameters_conflicts_and_writes_nothing() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;

    let mut first = new_session(&agent, "ps_first", 5)?;
    first.idempotency_key = Some("order-42".into());
    let mut other = new_session(&agent, "ps_other", 6)?;
    other.idempotency_key = Some("order-42".into());
    create(&store, first).await?;
    let audit_before = store.audit_len().await?;

    let refused = store
        .create_session(other, agent_event(&agent, "tool.initialize_payment", T0))
        .await;

    match refused {
        Err(StoreError::IdempotencyConflict { existing }) => {
            assert_eq!(existing.as_str(), "ps_first")
        }
        other => return Err(format!("expected an idempotency conflict, got {other:?}").into()),
    }
    assert!(store.session(&session_id("ps_other")?).await?.is_none());
    assert_eq!(store.audit_len().await?, audit_before);
    Ok(())
}

#[tokio::test]
async fn keys_are_scoped_to_the_agent() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let alice = add_agent(&store, "alice").await?;
    let bob = add_agent(&store, "bob").await?;

    let mut from_alice = new_session(&alice, "ps_alice", 5)?;
    from_alice.idempotency_key = Some("same-key".into());
    let mut from_bob = new_session(&bob, "ps_bob", 5)?;
    from_bob.idempotency_key = Some("same-key".into());
    from_bob.request_digest = from_alice.request_digest;

    let a = store
        .create_session(
            from_alice,
            agent_event(&alice, "tool.initialize_payment", T0),
        )
        .await?;
    let b = store
        .create_session(from_bob, agent_event(&bob, "tool.initialize_payment", T0))
        .await?;

    assert!(matches!(a, CreateOutcome::Created(_)));
    assert!(matches!(b, CreateOutcome::Created(_)));
    assert_ne!(a.session().id, b.session().id);
    assert_eq!(b.session().agent_id, bob);
    Ok(())
}

#[tokio::test]
async fn sessions_without_a_key_never_collide() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;

    create(&store, new_session(&agent, "ps_one", 5)?).await?;
    create(&store, new_session(&agent, "ps_two", 5)?).await?;

    assert_eq!(store.list_sessions(Some(&agent), 10).await?.len(), 2);
    Ok(())
}

#[tokio::test]
async fn parallel_retries_with_one_key_create_one_session() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open_fast().await?;
    let agent = add_agent(&store, "agent-1").await?;

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let store = store.clone();
        let mut new = new_session(&agent, &format!("ps_try{i}"), 5)?;
        new.idempotency_key = Some("order-7".into());
        let event = agent_event(&agent, "tool.initialize_payment", T0);
        tasks.spawn(async move { store.create_session(new, event).await });
    }
    let mut created = Vec::new();
    let mut ids = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let outcome = joined??;
        ids.push(outcome.session().id.clone());
        if let CreateOutcome::Created(s) = outcome {
            created.push(s.id);
        }
    }

    assert_eq!(created.len(), 1, "exactly one request creates the session");
    assert!(
        ids.iter().all(|id| *id == created[0]),
        "every retry sees the same session"
    );
    assert_eq!(store.list_sessions(Some(&agent), 100).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn unknown_agents_and_reused_ids_are_refused() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let ghost = agent_id("ghost")?;

    let for_ghost = store
        .create_session(
            new_session(&ghost, "ps_ghost", 5)?,
            agent_event(&ghost, "tool.initialize_payment", T0),
        )
        .await;
    assert!(matches!(for_ghost, Err(StoreError::AgentNotFound(id)) if id == ghost));

    create(&store, new_session(&agent, "ps_once", 5)?).await?;
    let reused = store
        .create_session(
            new_session(&agent, "ps_once", 6)?,
            agent_event(&agent, "tool.initialize_payment", T0),
        )
        .await;
    assert!(matches!(reused, Err(StoreError::SessionExists(id)) if id.as_str() == "ps_once"));
    Ok(())
}
