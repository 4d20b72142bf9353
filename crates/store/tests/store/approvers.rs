//! Approvers (unique names and keys, removal), the queue of waiting sessions, and whether an
//! agent has paid a recipient before.

use clawfirst_core::{Address, SessionId};
use clawfirst_store::{ApproverStatus, SessionPatch, SessionState, StoreError, VoteDecision};

use crate::approvals::{add_approvers, cast, request, waiting};
use crate::support::*;

#[tokio::test]
async fn approvers_are_unique_validated_and_removable() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    add_approvers(&store, &["alice", "bob"]).await?;
    let event = || operator_event("approver.added", T0);

    let same_name = store
        .add_approver("alice", Address::new([42; 32]), event())
        .await;
    assert!(
        matches!(same_name, Err(StoreError::ApproverExists(ref n)) if n == "alice"),
        "{same_name:?}"
    );
    let same_key = store
        .add_approver("eve", Address::new([1; 32]), event())
        .await;
    assert!(
        matches!(
            same_key,
            Err(StoreError::ApproverKeyInUse { ref approver, .. }) if approver == "alice"
        ),
        "{same_key:?}"
    );
    for bad in ["", "Alice", "a b", &"a".repeat(65)] {
        let refused = store
            .add_approver(bad, Address::new([43; 32]), event())
            .await;
        assert!(
            matches!(refused, Err(StoreError::InvalidApproverName)),
            "{bad:?}"
        );
    }
    let unknown = store
        .remove_approver("zed", operator_event("approver.removed", T0))
        .await;
    assert!(
        matches!(unknown, Err(StoreError::ApproverNotFound(_))),
        "{unknown:?}"
    );

    let id = waiting(&store, &agent, "ps_1", request(&["alice", "bob"], 1)).await?;
    let removed = store
        .remove_approver("alice", operator_event("approver.removed", T0 + 2))
        .await?;
    assert_eq!(removed.status, ApproverStatus::Removed);
    let refused = cast(&store, &id, "alice", VoteDecision::Approve, T0 + 3).await;
    assert!(
        matches!(refused, Err(StoreError::NotEligible { .. })),
        "{refused:?}"
    );
    let names: Vec<String> = store
        .approvers()
        .await?
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(
        store.approver("bob").await?.map(|a| a.public_key),
        Some(Address::new([2; 32]))
    );
    Ok(())
}

#[tokio::test]
async fn pending_approvals_list_waiting_sessions_oldest_first() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    add_approvers(&store, &["alice"]).await?;
    let first = waiting(&store, &agent, "ps_b_first", request(&["alice"], 1)).await?;
    let second = create(&store, new_session(&agent, "ps_a_second", 5)?).await?;
    store
        .reserve_and_await_approval(
            &second,
            SessionState::Initialized,
            daily_cap(100),
            request(&["alice"], 1),
            SessionPatch::none(),
            operator_event("policy.decision", T0 + 2),
        )
        .await??;
    let decided = waiting(&store, &agent, "ps_decided", request(&["alice"], 1)).await?;
    cast(&store, &decided, "alice", VoteDecision::Approve, T0 + 3).await?;

    let pending = store.pending_approvals(10).await?;

    let ids: Vec<&SessionId> = pending.iter().map(|(s, _)| &s.id).collect();
    assert_eq!(ids, [&first, &second]);
    assert!(
        pending
            .iter()
            .all(|(s, r)| s.id == r.session_id && r.votes.is_empty())
    );
    assert_eq!(store.pending_approvals(1).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_recipient_counts_as_paid_once_a_payment_to_it_was_signed() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let other = add_agent(&store, "agent-2").await?;
    let recipient = new_session(&agent, "ps_x", 1)?.recipient;
    let id = create(&store, new_session(&agent, "ps_1", 1)?).await?;
    reserve(&store, &id, APPROVE, daily_cap(10), T0 + 1).await??;

    assert!(
        !store.has_paid_recipient(&agent, &recipient).await?,
        "approved is not paid"
    );
    advance(
        &store,
        &id,
        SessionState::Approved,
        SessionState::Signed,
        T0 + 2,
    )
    .await?;
    assert!(store.has_paid_recipient(&agent, &recipient).await?);
    assert!(
        !store.has_paid_recipient(&other, &recipient).await?,
        "per agent"
    );
    assert!(
        !store
            .has_paid_recipient(&agent, &Address::new([8; 32]))
            .await?
    );
    Ok(())
}
