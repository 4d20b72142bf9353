//! What each end of a session does to its budget reservation: finalizing commits it, every
//! other end releases it. Also the facts stored along the happy path.

use clawfirst_core::{Asset, GrantId};
use clawfirst_store::{
    ActorKind, AuditEvent, Failure, ReservationState, SessionPatch, SessionState,
};

use crate::support::*;

use SessionState::{
    Approved, AwaitingApproval, Cancelled, Confirmed, Finalized, Rejected, Signed, Submitted,
};

#[tokio::test]
async fn the_happy_path_stores_every_fact_and_finalizing_commits_the_budget() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let id = create(&store, new_session(&agent, "ps_1", 7)?).await?;
    let grant = GrantId::from_bytes([3; 16]);
    let moves = [
        (
            Approved,
            Approved,
            "grant.issued",
            SessionPatch {
                message: Some(vec![1, 2, 3]),
                grant_id: Some(grant),
                blockhash_last_valid_slot: Some(500),
                ..SessionPatch::none()
            },
        ),
        (
            Approved,
            Signed,
            "signer.signed",
            SessionPatch {
                signature: Some("5sig".into()),
                signed_transaction: Some(vec![9; 64]),
                ..SessionPatch::none()
            },
        ),
        (Signed, Submitted, "ledger.submitted", SessionPatch::none()),
        (
            Submitted,
            Confirmed,
            "ledger.confirmed",
            SessionPatch {
                slot: Some(1234),
                ..SessionPatch::none()
            },
        ),
        (
            Confirmed,
            Finalized,
            "ledger.finalized",
            SessionPatch::none(),
        ),
    ];

    let rule = SessionPatch {
        policy_rule: Some("tier.auto".into()),
        ..SessionPatch::none()
    };
    let event = operator_event("policy.decision", T0 + 1);
    let approved = store
        .reserve_and_transition(
            &id,
            SessionState::Initialized,
            Approved,
            daily_cap(100),
            rule,
            event,
        )
        .await??;
    assert_eq!(
        approved.updated_at_ms,
        T0 + 1,
        "a move is stamped with its event's time"
    );
    for (at, (from, to, name, patch)) in (T0 + 2..).zip(moves) {
        let event = operator_event(name, at);
        if from == to {
            store.patch_session(&id, from, patch, event).await?;
        } else {
            store.transition(&id, from, to, patch, event).await?;
        }
        if to == Confirmed {
            assert_eq!(
                store.reservation_state(&id).await?,
                Some(ReservationState::Reserved)
            );
        }
    }

    let stored = store.session(&id).await?.ok_or("session vanished")?;
    assert_eq!(stored.state, Finalized);
    assert_eq!(stored.message, Some(vec![1, 2, 3]));
    assert_eq!(stored.grant_id, Some(grant));
    assert_eq!(stored.blockhash_last_valid_slot, Some(500));
    assert_eq!(stored.signature.as_deref(), Some("5sig"));
    assert_eq!(stored.signed_transaction, Some(vec![9; 64]));
    assert_eq!(stored.slot, Some(1234));
    assert_eq!(stored.policy_rule.as_deref(), Some("tier.auto"));
    assert_eq!(stored.updated_at_ms, T0 + 6);
    assert_eq!(
        stored.metadata,
        Some(serde_json::json!({ "order": "ps_1" }))
    );
    assert_eq!(
        store.reservation_state(&id).await?,
        Some(ReservationState::Committed)
    );
    assert_eq!(
        store.budget_usage(&agent, Asset::Sol, T0).await?,
        7,
        "spent amounts count"
    );

    let records = store.audit_for_session(&id).await?;
    let events: Vec<&str> = records.iter().map(|r| r.event.as_str()).collect();
    let expected = [
        "tool.initialize_payment",
        "policy.decision",
        "grant.issued",
        "signer.signed",
        "ledger.submitted",
        "ledger.confirmed",
        "ledger.finalized",
    ];
    assert_eq!(events, expected);
    Ok(())
}

#[tokio::test]
async fn cancel_releases_the_reservation() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let id = create(&store, new_session(&agent, "ps_1", 7)?).await?;
    reserve(&store, &id, APPROVE, daily_cap(10), T0 + 1).await??;
    assert_eq!(store.budget_usage(&agent, Asset::Sol, T0).await?, 7);

    let event = agent_event(&agent, "tool.cancel_payment", T0 + 2);
    store
        .transition(&id, Approved, Cancelled, SessionPatch::none(), event)
        .await?;

    assert_eq!(store.budget_usage(&agent, Asset::Sol, T0).await?, 0);
    assert_eq!(
        store.reservation_state(&id).await?,
        Some(ReservationState::Released)
    );
    Ok(())
}

#[tokio::test]
async fn rejection_and_proven_failure_release_the_reservation() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let waiting = create(&store, new_session(&agent, "ps_waiting", 3)?).await?;
    let signed = create(&store, new_session(&agent, "ps_signed", 4)?).await?;
    let to_waiting = (SessionState::Initialized, AwaitingApproval);
    for id in [&waiting, &signed] {
        reserve(&store, id, to_waiting, daily_cap(10), T0 + 1).await??;
    }
    advance(&store, &signed, AwaitingApproval, Approved, T0 + 2).await?;
    advance(&store, &signed, Approved, Signed, T0 + 3).await?;
    assert_eq!(store.budget_usage(&agent, Asset::Sol, T0).await?, 7);

    let event = AuditEvent::new(ActorKind::Approver, "carol", "approval.rejected").at_ms(T0 + 4);
    store
        .transition(
            &waiting,
            AwaitingApproval,
            Rejected,
            SessionPatch::none(),
            event,
        )
        .await?;
    assert_eq!(store.budget_usage(&agent, Asset::Sol, T0).await?, 4);

    let failure = Failure {
        code: "TRANSACTION_FAILED".into(),
        message: "blockhash expired before the transaction was sent".into(),
    };
    let patch = SessionPatch {
        failure: Some(failure.clone()),
        ..SessionPatch::none()
    };
    let event = operator_event("ledger.failed", T0 + 5);
    store
        .transition(&signed, Signed, SessionState::Failed, patch, event)
        .await?;

    let stored = store.session(&signed).await?.ok_or("session vanished")?;
    assert_eq!(stored.failure, Some(failure));
    assert_eq!(store.budget_usage(&agent, Asset::Sol, T0).await?, 0);
    Ok(())
}
