//! The audit trail: gapless sequence numbers, tails, per-session queries, validation.

use clawfirst_store::{ActorKind, AuditEvent, StoreError};

use crate::support::*;

#[tokio::test]
async fn records_are_numbered_without_gaps_and_read_back_intact() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let ps = session_id("ps_1")?;
    let first = store
        .append_audit(operator_event("operator.login", T0))
        .await?;
    let refused = store.append_audit(operator_event("", T0)).await;
    let event = AuditEvent::new(ActorKind::Approver, "carol@example.com", "approval.granted")
        .at_ms(T0 + 1)
        .session(&ps)
        .detail("tier", 2)
        .detail("approvers", serde_json::json!(["carol"]));
    let second = store.append_audit(event.clone()).await?;

    assert!(
        matches!(refused, Err(StoreError::InvalidAuditEvent { .. })),
        "{refused:?}"
    );
    assert_eq!((first, second), (1, 2), "a refused event takes no number");
    let tail = store.audit_tail(10).await?;
    assert_eq!(tail.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2]);
    let stored = store.audit_for_session(&ps).await?;
    let [record] = stored.as_slice() else {
        return Err(format!("expected one record, got {stored:?}").into());
    };
    assert_eq!(record.seq, 2);
    assert_eq!(record.at_ms, T0 + 1);
    assert_eq!(record.actor_kind, ActorKind::Approver);
    assert_eq!(record.actor_id, "carol@example.com");
    assert_eq!(record.event, "approval.granted");
    assert_eq!(record.session_id.as_ref(), Some(&ps));
    assert_eq!(record.details, event.details);
    Ok(())
}

#[tokio::test]
async fn the_tail_is_the_newest_records_oldest_first() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open_fast().await?;
    for i in 0..20 {
        store
            .append_audit(operator_event("operator.action", T0 + i))
            .await?;
    }

    let tail = store.audit_tail(3).await?;

    assert_eq!(tail.iter().map(|r| r.seq).collect::<Vec<_>>(), [18, 19, 20]);
    assert_eq!(store.audit_len().await?, 20);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_appends_get_distinct_consecutive_numbers() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open_fast().await?;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .append_audit(operator_event("operator.action", T0 + i))
                .await
        });
    }
    let mut seqs = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        seqs.push(joined??);
    }
    seqs.sort_unstable();

    assert_eq!(seqs, (1..=50).collect::<Vec<u64>>());
    Ok(())
}
