//! Expiry: only unapproved sessions past their deadline expire, and their budget is released.

use clawfirst_core::Asset;
use clawfirst_store::{ActorKind, ReservationState, SessionPatch, SessionState};

use crate::support::*;

#[tokio::test]
async fn only_due_unapproved_sessions_expire_and_release_their_budget() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let deadline = T0 + 100;
    let session = |id: &str, expires_at_ms: u64| -> TestResult<_> {
        let mut new = new_session(&agent, id, 2)?;
        new.expires_at_ms = expires_at_ms;
        Ok(new)
    };
    let due_new = create(&store, session("ps_due_new", deadline)?).await?;
    let due_waiting = create(&store, session("ps_due_waiting", deadline - 50)?).await?;
    let not_due = create(&store, session("ps_not_due", deadline + 1)?).await?;
    let approved = create(&store, session("ps_approved", deadline)?).await?;
    let cancelled = create(&store, session("ps_cancelled", deadline)?).await?;
    reserve(
        &store,
        &due_waiting,
        (SessionState::Initialized, SessionState::AwaitingApproval),
        daily_cap(100),
        T0 + 1,
    )
    .await??;
    reserve(&store, &approved, APPROVE, daily_cap(100), T0 + 1).await??;
    store
        .transition(
            &cancelled,
            SessionState::Initialized,
            SessionState::Cancelled,
            SessionPatch::none(),
            operator_event("tool.cancel_payment", T0 + 1),
        )
        .await?;
    assert_eq!(store.budget_usage(&agent, Asset::Sol, 0).await?, 4);

    let expired = store.expire_due(deadline).await?;

    let mut ids: Vec<_> = expired.iter().map(|s| s.id.clone()).collect();
    ids.sort();
    assert_eq!(ids, [due_new.clone(), due_waiting.clone()]);
    assert!(
        expired
            .iter()
            .all(|s| s.state == SessionState::Expired && s.updated_at_ms == deadline)
    );
    let state = |id| {
        let store = store.clone();
        async move { TestResult::Ok(store.session(&id).await?.map(|s| s.state)) }
    };
    assert_eq!(state(due_new.clone()).await?, Some(SessionState::Expired));
    assert_eq!(
        state(due_waiting.clone()).await?,
        Some(SessionState::Expired)
    );
    assert_eq!(state(not_due).await?, Some(SessionState::Initialized));
    assert_eq!(state(approved).await?, Some(SessionState::Approved));
    assert_eq!(state(cancelled).await?, Some(SessionState::Cancelled));
    assert_eq!(
        store.reservation_state(&due_waiting).await?,
        Some(ReservationState::Released)
    );
    assert_eq!(
        store.budget_usage(&agent, Asset::Sol, 0).await?,
        2,
        "only the approved one counts"
    );

    let records = store.audit_for_session(&due_waiting).await?;
    let last = records.last().ok_or("no audit record")?;
    assert_eq!(
        (last.actor_kind, last.event.as_str()),
        (ActorKind::System, "session.transition")
    );
    assert_eq!(last.details["from"], "awaiting_approval");
    assert_eq!(last.details["to"], "expired");

    assert!(
        store.expire_due(deadline).await?.is_empty(),
        "a second pass finds nothing"
    );
    Ok(())
}

#[tokio::test]
async fn more_due_sessions_than_one_batch_all_expire() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open_fast().await?;
    let agent = add_agent(&store, "agent-1").await?;
    for i in 0..300 {
        let mut new = new_session(&agent, &format!("ps_{i}"), 1)?;
        new.expires_at_ms = T0 + i;
        create(&store, new).await?;
    }

    let expired = store.expire_due(T0 + 1_000).await?;

    assert_eq!(expired.len(), 300);
    let left = store
        .sessions_in_states(&[SessionState::Initialized], 1_000)
        .await?;
    assert!(left.is_empty(), "{} sessions left", left.len());
    Ok(())
}
