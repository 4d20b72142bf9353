//! The session state machine: compare-and-set, the transition table, write-once fields, and
//! the audit record that must go with every move.

use clawfirst_core::Asset;
use clawfirst_store::{SessionPatch, SessionState, StoreError};

use crate::support::*;

use SessionState::{Approved, Cancelled, Finalized, Initialized, Signed, Submitted};

#[tokio::test]
async fn a_wrong_expected_state_is_refused_and_nothing_is_written() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let id = create(&store, new_session(&agent, "ps_1", 5)?).await?;
    let before = store.session(&id).await?;
    let audit_before = store.audit_len().await?;

    let patch = SessionPatch {
        signature: Some("sig".into()),
        ..SessionPatch::none()
    };
    let event = operator_event("signer.signed", T0 + 1);
    let refused = store.transition(&id, Approved, Signed, patch, event).await;

    match refused {
        Err(StoreError::StateConflict {
            actual: Initialized,
            expected: Approved,
            ..
        }) => {}
        other => return Err(format!("expected a state conflict, got {other:?}").into()),
    }
    assert_eq!(
        store.session(&id).await?,
        before,
        "the session is untouched"
    );
    assert_eq!(
        store.audit_len().await?,
        audit_before,
        "no audit record is written"
    );
    Ok(())
}

#[tokio::test]
async fn moves_outside_the_state_machine_are_refused() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let id = create(&store, new_session(&agent, "ps_1", 5)?).await?;
    let audit_before = store.audit_len().await?;

    let illegal = [
        (Initialized, Finalized),
        (Initialized, Signed),
        (Initialized, Initialized),
    ];
    for (from, to) in illegal.into_iter().chain([(Cancelled, Approved)]) {
        let refused = advance(&store, &id, from, to, T0).await;

        let expected = format!("{}", StoreError::IllegalTransition { from, to });
        assert_eq!(
            refused.err().map(|e| e.to_string()),
            Some(expected),
            "{from} -> {to}"
        );
    }
    assert_eq!(
        store.session(&id).await?.map(|s| s.state),
        Some(Initialized)
    );
    assert_eq!(store.audit_len().await?, audit_before);
    Ok(())
}

#[tokio::test]
async fn a_signed_transaction_can_never_be_replaced() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let id = create(&store, new_session(&agent, "ps_1", 5)?).await?;
    advance(&store, &id, Initialized, Approved, T0).await?;
    let signed = SessionPatch {
        signature: Some("sig-a".into()),
        signed_transaction: Some(vec![1; 8]),
        ..SessionPatch::none()
    };
    let event = operator_event("signer.signed", T0);
    store
        .transition(&id, Approved, Signed, signed.clone(), event)
        .await?;
    let audit_before = store.audit_len().await?;

    let other_tx = SessionPatch {
        signed_transaction: Some(vec![2; 8]),
        ..SessionPatch::none()
    };
    let event = operator_event("ledger.submitted", T0);
    let refused = store
        .transition(&id, Signed, Submitted, other_tx, event)
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::WriteOnceField {
                field: "signed transaction",
                ..
            })
        ),
        "{refused:?}"
    );
    let other_sig = SessionPatch {
        signature: Some("sig-b".into()),
        ..SessionPatch::none()
    };
    let event = operator_event("signer.signed", T0);
    let refused = store.patch_session(&id, Signed, other_sig, event).await;
    assert!(
        matches!(
            refused,
            Err(StoreError::WriteOnceField {
                field: "signature",
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(store.audit_len().await?, audit_before);

    // Repeating the same values, as a retry after a crash would, is fine.
    let event = operator_event("ledger.submitted", T0);
    let moved = store
        .transition(&id, Signed, Submitted, signed, event)
        .await?;
    assert_eq!(moved.signed_transaction, Some(vec![1; 8]));
    Ok(())
}

/// Sessions count as open until they end, whatever ended them.
#[tokio::test]
async fn open_sessions_are_those_not_ended() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let other = add_agent(&store, "agent-2").await?;
    let a = create(&store, new_session(&agent, "ps_a", 5)?).await?;
    let b = create(&store, new_session(&agent, "ps_b", 5)?).await?;
    create(&store, new_session(&other, "ps_c", 5)?).await?;
    advance(&store, &a, Initialized, Approved, T0).await?;
    assert_eq!(store.open_session_count(&agent).await?, 2);
    advance(&store, &b, Initialized, Cancelled, T0).await?;
    assert_eq!(store.open_session_count(&agent).await?, 1);
    assert_eq!(store.open_session_count(&other).await?, 1);
    Ok(())
}

/// Two executions of one approved session race to store their grant: the second is refused,
/// so only one of them ever reaches the signer.
#[tokio::test]
async fn an_approved_session_takes_one_grant_only() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let id = create(&store, new_session(&agent, "ps_1", 5)?).await?;
    advance(&store, &id, Initialized, Approved, T0).await?;
    let first = SessionPatch {
        message: Some(vec![1; 8]),
        grant_id: Some(clawfirst_core::GrantId::random()),
        ..SessionPatch::none()
    };
    let event = operator_event("grant.issued", T0);
    store
        .patch_session(&id, Approved, first.clone(), event)
        .await?;

    let second = SessionPatch {
        message: Some(vec![2; 8]),
        grant_id: Some(clawfirst_core::GrantId::random()),
        ..SessionPatch::none()
    };
    let event = operator_event("grant.issued", T0);
    let refused = store.patch_session(&id, Approved, second, event).await;
    assert!(
        matches!(refused, Err(StoreError::WriteOnceField { .. })),
        "{refused:?}"
    );
    let stored = store.session(&id).await?.ok_or("session vanished")?;
    assert_eq!(stored.grant_id, first.grant_id);
    assert_eq!(stored.message, first.message);
    Ok(())
}

#[tokio::test]
async fn a_change_whose_audit_record_cannot_be_written_does_not_happen() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let id = create(&store, new_session(&agent, "ps_1", 5)?).await?;
    let audit_before = store.audit_len().await?;

    let bad_name = operator_event("Not A Valid Name", T0 + 1);
    let patch = SessionPatch::none();
    let refused = store
        .reserve_and_transition(&id, Initialized, Approved, daily_cap(10), patch, bad_name)
        .await;
    assert!(
        matches!(refused, Err(StoreError::InvalidAuditEvent { .. })),
        "{refused:?}"
    );
    let wrong_session = operator_event("session.transition", T0 + 1).session(&session_id("ps_2")?);
    let refused = store
        .transition(
            &id,
            Initialized,
            Cancelled,
            SessionPatch::none(),
            wrong_session,
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::InvalidAuditEvent { .. })),
        "{refused:?}"
    );

    assert_eq!(
        store.session(&id).await?.map(|s| s.state),
        Some(Initialized)
    );
    assert_eq!(store.reservation_state(&id).await?, None);
    assert_eq!(store.budget_usage(&agent, Asset::Sol, 0).await?, 0);
    assert_eq!(store.audit_len().await?, audit_before);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_many_parallel_cancels_exactly_one_wins() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open_fast().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let id = create(&store, new_session(&agent, "ps_1", 5)?).await?;

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (store, id) = (store.clone(), id.clone());
        let event = agent_event(&agent, "tool.cancel_payment", T0 + 1);
        tasks.spawn(async move {
            store
                .transition(&id, Initialized, Cancelled, SessionPatch::none(), event)
                .await
        });
    }
    let (mut won, mut lost) = (0, 0);
    while let Some(joined) = tasks.join_next().await {
        match joined? {
            Ok(_) => won += 1,
            Err(StoreError::StateConflict {
                actual: Cancelled, ..
            }) => lost += 1,
            Err(e) => return Err(e.into()),
        }
    }

    assert_eq!((won, lost), (1, 15));
    let events = store.audit_for_session(&id).await?;
    assert_eq!(
        events
            .iter()
            .filter(|r| r.event == "tool.cancel_payment")
            .count(),
        1
    );
    Ok(())
}

#[tokio::test]
async fn unknown_sessions_are_reported() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let ghost = session_id("ps_ghost")?;

    let refused = advance(&store, &ghost, Initialized, Cancelled, T0).await;

    let expected = StoreError::SessionNotFound(ghost.clone()).to_string();
    assert_eq!(refused.err().map(|e| e.to_string()), Some(expected));
    assert!(store.session(&ghost).await?.is_none());
    Ok(())
}
