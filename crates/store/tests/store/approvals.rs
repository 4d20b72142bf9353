//! Human approvals: quorums, refusals of ineligible, repeated and late votes, rejection and
//! expiry releasing the budget, and one decision under concurrent votes.

use clawfirst_core::{Address, AgentId, Asset, SessionId};
use clawfirst_store::approval::{APPROVAL_REJECTED, APPROVAL_TIMEOUT};
use clawfirst_store::{
    ApprovalRequest, AuditEvent, ReservationState, SessionPatch, SessionState, Store, StoreError,
    Vote, VoteDecision, VoteOutcome,
};

use crate::support::*;

/// When the requests of these tests expire.
pub const EXPIRES: u64 = T0 + 60_000;

/// Adds approvers `names`, each with its own key.
pub async fn add_approvers(store: &Store, names: &[&str]) -> TestResult {
    for (i, name) in names.iter().enumerate() {
        let key = Address::new([u8::try_from(i + 1)?; 32]);
        store
            .add_approver(name, key, operator_event("approver.added", T0))
            .await?;
    }
    Ok(())
}

pub fn request(eligible: &[&str], required: u32) -> ApprovalRequest {
    ApprovalRequest {
        tier: Some("high".into()),
        rule: "large_payment".into(),
        group: "finance".into(),
        eligible: eligible.iter().map(|n| (*n).to_owned()).collect(),
        required,
        expires_at_ms: EXPIRES,
        policy_version: "9f2c".into(),
    }
}

/// A 5-lamport session of `agent`, reserved and waiting on `request`.
pub async fn waiting(
    store: &Store,
    agent: &AgentId,
    name: &str,
    request: ApprovalRequest,
) -> TestResult<SessionId> {
    let id = create(store, new_session(agent, name, 5)?).await?;
    let patch = SessionPatch {
        policy_rule: Some("large_payment".into()),
        ..SessionPatch::none()
    };
    store
        .reserve_and_await_approval(
            &id,
            SessionState::Initialized,
            daily_cap(100),
            request,
            patch,
            operator_event("policy.decision", T0 + 1),
        )
        .await??;
    Ok(id)
}

pub fn vote(approver: &str, decision: VoteDecision, at_ms: u64) -> Vote {
    Vote {
        approver: approver.to_owned(),
        decision,
        statement: format!("c3RhdGVtZW50-{approver}"),
        signature: format!("c2lnbmF0dXJl-{approver}"),
        reason: (decision == VoteDecision::Reject).then(|| "not this month".to_owned()),
        at_ms,
    }
}

pub async fn cast(
    store: &Store,
    id: &SessionId,
    approver: &str,
    decision: VoteDecision,
    at_ms: u64,
) -> Result<VoteOutcome, StoreError> {
    let audit = AuditEvent::approver(approver, "approval.vote").at_ms(at_ms);
    store
        .record_vote(id, vote(approver, decision, at_ms), audit)
        .await
}

#[tokio::test]
async fn two_of_three_needs_two_distinct_eligible_approvers() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    add_approvers(&store, &["alice", "bob", "carol", "dave"]).await?;
    let id = waiting(
        &store,
        &agent,
        "ps_1",
        request(&["alice", "bob", "carol"], 2),
    )
    .await?;
    let approve = VoteDecision::Approve;

    let first = cast(&store, &id, "alice", approve, T0 + 10).await?;
    assert_eq!(
        (first.approvals, first.required, first.decided),
        (1, 2, None)
    );
    assert_eq!(first.session.state, SessionState::AwaitingApproval);

    let again = cast(&store, &id, "alice", approve, T0 + 11).await;
    assert!(
        matches!(again, Err(StoreError::DuplicateVote { ref approver, .. }) if approver == "alice"),
        "{again:?}"
    );
    for outsider in ["dave", "mallory", "Not A Name"] {
        let refused = cast(&store, &id, outsider, approve, T0 + 12).await;
        assert!(
            matches!(refused, Err(StoreError::NotEligible { .. })),
            "{outsider}: {refused:?}"
        );
    }

    let second = cast(&store, &id, "bob", approve, T0 + 13).await?;
    assert_eq!(
        (second.approvals, second.decided),
        (2, Some(SessionState::Approved))
    );
    assert_eq!(second.session.state, SessionState::Approved);
    assert_eq!(second.session.policy_rule.as_deref(), Some("large_payment"));
    assert_eq!(
        store.reservation_state(&id).await?,
        Some(ReservationState::Reserved)
    );

    let late = cast(&store, &id, "carol", approve, T0 + 14).await;
    assert!(
        matches!(
            late,
            Err(StoreError::StateConflict {
                actual: SessionState::Approved,
                ..
            })
        ),
        "{late:?}"
    );

    let record = store.approval_request(&id).await?.ok_or("request lost")?;
    assert_eq!(record.request, request(&["alice", "bob", "carol"], 2));
    let voters: Vec<&str> = record.votes.iter().map(|v| v.approver.as_str()).collect();
    assert_eq!(voters, ["alice", "bob"]);
    assert_eq!(record.votes[1].statement, "c3RhdGVtZW50-bob");
    assert_eq!(record.votes[1].signature, "c2lnbmF0dXJl-bob");
    assert_eq!(record.votes[1].at_ms, T0 + 13);

    let events: Vec<(String, String)> = store
        .audit_for_session(&id)
        .await?
        .into_iter()
        .map(|r| (r.actor_id, r.event))
        .collect();
    let votes = events.iter().filter(|(_, e)| e == "approval.vote").count();
    assert_eq!(votes, 2, "refused votes leave no audit record: {events:?}");
    assert!(events.contains(&(
        "store.approvals".to_owned(),
        "session.transition".to_owned()
    )));
    Ok(())
}

#[tokio::test]
async fn a_rejection_decides_at_once_and_releases_the_budget() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    add_approvers(&store, &["alice", "bob", "carol"]).await?;
    let id = waiting(
        &store,
        &agent,
        "ps_1",
        request(&["alice", "bob", "carol"], 2),
    )
    .await?;
    cast(&store, &id, "alice", VoteDecision::Approve, T0 + 10).await?;
    assert_eq!(store.budget_usage(&agent, Asset::Sol, 0).await?, 5);

    let rejected = cast(&store, &id, "bob", VoteDecision::Reject, T0 + 11).await?;

    assert_eq!(rejected.decided, Some(SessionState::Rejected));
    let failure = rejected.session.failure.ok_or("no failure recorded")?;
    assert_eq!(failure.code, APPROVAL_REJECTED);
    assert_eq!(failure.message, "not this month");
    assert_eq!(
        store.reservation_state(&id).await?,
        Some(ReservationState::Released)
    );
    assert_eq!(store.budget_usage(&agent, Asset::Sol, 0).await?, 0);
    let after = cast(&store, &id, "carol", VoteDecision::Approve, T0 + 12).await;
    assert!(
        matches!(
            after,
            Err(StoreError::StateConflict {
                actual: SessionState::Rejected,
                ..
            })
        ),
        "{after:?}"
    );
    Ok(())
}

#[tokio::test]
async fn without_a_quorum_in_time_the_session_expires_and_releases_the_budget() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    add_approvers(&store, &["alice", "bob"]).await?;
    let id = waiting(&store, &agent, "ps_1", request(&["alice", "bob"], 2)).await?;
    let session = store.session(&id).await?.ok_or("session lost")?;
    assert_eq!(
        session.expires_at_ms, EXPIRES,
        "the session expires with its request"
    );
    cast(&store, &id, "alice", VoteDecision::Approve, EXPIRES - 1).await?;

    let late = cast(&store, &id, "bob", VoteDecision::Approve, EXPIRES).await;
    assert!(
        matches!(
            late,
            Err(StoreError::ApprovalExpired {
                expires_at_ms: EXPIRES,
                ..
            })
        ),
        "{late:?}"
    );
    // Cast in time but recorded too late is late as well.
    let audit = AuditEvent::approver("bob", "approval.vote").at_ms(EXPIRES + 5);
    let stale = store
        .record_vote(&id, vote("bob", VoteDecision::Approve, EXPIRES - 1), audit)
        .await;
    assert!(
        matches!(stale, Err(StoreError::ApprovalExpired { .. })),
        "{stale:?}"
    );

    assert!(store.expire_due(EXPIRES - 1).await?.is_empty());
    let expired = store.expire_due(EXPIRES).await?;

    assert_eq!(expired.len(), 1);
    let session = store.session(&id).await?.ok_or("session lost")?;
    assert_eq!(session.state, SessionState::Expired);
    assert_eq!(
        session.failure.map(|f| f.code),
        Some(APPROVAL_TIMEOUT.to_owned())
    );
    assert_eq!(
        store.reservation_state(&id).await?,
        Some(ReservationState::Released)
    );
    assert_eq!(store.budget_usage(&agent, Asset::Sol, 0).await?, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_votes_on_two_of_sixteen_decide_once() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open_fast().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let names: Vec<String> = (0..16).map(|i| format!("approver-{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    add_approvers(&store, &refs).await?;

    for round in 0..10 {
        let id = waiting(&store, &agent, &format!("ps_{round}"), request(&refs, 2)).await?;
        let mut votes = tokio::task::JoinSet::new();
        for name in names.clone() {
            let (store, id) = (store.clone(), id.clone());
            votes.spawn(
                async move { cast(&store, &id, &name, VoteDecision::Approve, T0 + 5).await },
            );
        }
        let (mut counted, mut decided, mut conflicts) = (Vec::new(), 0, 0);
        while let Some(joined) = votes.join_next().await {
            match joined? {
                Ok(outcome) => {
                    decided += usize::from(outcome.decided == Some(SessionState::Approved));
                    counted.push(outcome.approvals);
                }
                Err(StoreError::StateConflict {
                    actual: SessionState::Approved,
                    ..
                }) => {
                    conflicts += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }

        counted.sort_unstable();
        assert_eq!(counted, [1, 2], "round {round}: each vote counted once");
        assert_eq!((decided, conflicts), (1, 14), "round {round}");
        let record = store.approval_request(&id).await?.ok_or("request lost")?;
        assert_eq!(record.votes.len(), 2, "round {round}");
        let transitions = store
            .audit_for_session(&id)
            .await?
            .into_iter()
            .filter(|r| r.actor_id == "store.approvals")
            .count();
        assert_eq!(transitions, 1, "round {round}: the state moved once");
        assert_eq!(
            store.session(&id).await?.map(|s| s.state),
            Some(SessionState::Approved)
        );
    }
    Ok(())
}

#[tokio::test]
async fn an_undecidable_request_is_refused_and_writes_nothing() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let id = create(&store, new_session(&agent, "ps_1", 5)?).await?;
    let audit_before = store.audit_len().await?;

    for bad in [
        request(&["alice"], 2),
        request(&[], 1),
        request(&["alice", "alice"], 1),
    ] {
        let refused = store
            .reserve_and_await_approval(
                &id,
                SessionState::Initialized,
                daily_cap(100),
                bad,
                SessionPatch::none(),
                operator_event("policy.decision", T0 + 1),
            )
            .await;
        assert!(
            matches!(refused, Err(StoreError::InvalidApprovalRequest { .. })),
            "{refused:?}"
        );
    }

    assert_eq!(
        store.session(&id).await?.map(|s| s.state),
        Some(SessionState::Initialized)
    );
    assert_eq!(store.reservation_state(&id).await?, None);
    assert_eq!(store.approval_request(&id).await?, None);
    assert_eq!(store.audit_len().await?, audit_before);
    Ok(())
}
