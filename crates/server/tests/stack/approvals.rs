//! Human approvals against a real stack: the server counts only signed decisions by the
//! registered key of an eligible approver over this exact payment, made recently, once per
//! approver; a quorum is signed once, by the real signer, above its floor.

use std::sync::Arc;

use clawfirst_core::approval::{ApprovalDecision, ApprovalStatement, ApproverKey};
use clawfirst_core::{Asset, SessionId, now_ms};
use clawfirst_server::payments::{PaymentService, VoteError};
use clawfirst_store::AuditEvent;
use serde_json::Value;
use tempfile::TempDir;

use crate::support::*;

const POLICY: &str = r#"
[groups]
finance = ["alice", "bob", "carol"]

[defaults]
per_transaction = { USDC = "5000" }
daily = { USDC = "20000" }

[[defaults.tiers]]
name = "small"
up_to = { USDC = "100" }
action = "allow"

[[defaults.tiers]]
name = "large"
action = "approve"
group = "finance"
approvals = 2
timeout = "1h"
"#;

/// The approvers of these tests: the group's three and one outsider.
struct Approvers {
    alice: ApproverKey,
    bob: ApproverKey,
    carol: ApproverKey,
    dave: ApproverKey,
}

/// Registers the approvers with the server and the signer, and puts [`POLICY`] in force.
async fn with_approvers(stack: &clawfirst_server::up::Stack, dir: &TempDir) -> Approvers {
    let approvers = Approvers {
        alice: ApproverKey::generate(),
        bob: ApproverKey::generate(),
        carol: ApproverKey::generate(),
        dave: ApproverKey::generate(),
    };
    let mut signer_file = String::new();
    for (name, key) in [
        ("alice", &approvers.alice),
        ("bob", &approvers.bob),
        ("carol", &approvers.carol),
        ("dave", &approvers.dave),
    ] {
        let audit = AuditEvent::operator("test", "approver.added");
        let added = stack
            .services
            .store
            .add_approver(name, key.public_key(), audit)
            .await;
        assert!(added.is_ok(), "{added:?}");
        signer_file.push_str(&format!(
            "[[approver]]\nname = \"{name}\"\npublic_key = \"{}\"\n",
            key.public_key()
        ));
    }
    let write = std::fs::write(dir.path().join("signer-approvers.toml"), signer_file);
    assert!(write.is_ok(), "{write:?}");
    let write = std::fs::write(dir.path().join("policy.toml"), POLICY);
    assert!(write.is_ok(), "{write:?}");
    let audit = AuditEvent::operator("test", "policy.reload");
    let reloaded = stack
        .services
        .payments
        .policy()
        .reload(&stack.services.store, audit)
        .await;
    assert!(reloaded.is_ok(), "{reloaded:?}");
    approvers
}

/// What the approver would sign for the session, as the server describes it.
async fn statement_for(
    payments: &PaymentService,
    id: &SessionId,
    key: &ApproverKey,
) -> Result<ApprovalStatement, Box<dyn std::error::Error>> {
    let view = payments.approval(id).await?.ok_or("no such session")?;
    Ok(ApprovalStatement {
        approver: key.public_key(),
        decision: ApprovalDecision::Approve,
        decided_at_ms: now_ms(),
        session_id: id.clone(),
        agent_id: clawfirst_core::AgentId::new(view["agent_id"].as_str().unwrap_or_default())?,
        key_id: clawfirst_core::KeyId::new(view["key_id"].as_str().unwrap_or_default())?,
        transfer: serde_json::from_value(view["transfer"].clone())?,
    })
}

async fn vote(
    payments: &Arc<PaymentService>,
    id: &SessionId,
    name: &str,
    key: &ApproverKey,
    statement: &ApprovalStatement,
) -> Result<Value, VoteError> {
    let signed = key.sign(statement).map_err(|_| VoteError::BadSignature)?;
    payments.vote(id, name, signed, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_signed_decisions_over_this_payment_count_and_a_quorum_pays_once() -> TestResult {
    let dir = TempDir::new()?;
    let stack = start(dir.path()).await?;
    let keys = with_approvers(&stack, &dir).await;
    let payments = stack.services.payments.clone();
    let before = balance(&stack.services, Asset::Usdc).await?;

    // Above the tier and above the signer's 1000 USDC floor: it waits for two approvers.
    let id = SessionId::new(initialize(&stack.services, "1500 USDC").await?)?;
    let waiting = payments.authorize_transaction(&demo(), &id).await?;
    assert_eq!(waiting["state"], "awaiting_approval");
    assert_eq!(waiting["approval"]["required"], 2);

    // Refused: another payment, an old decision, someone else's key, an outsider, a stranger.
    let mut other = statement_for(&payments, &id, &keys.alice).await?;
    other.transfer.amount += 1;
    let refused = vote(&payments, &id, "alice", &keys.alice, &other).await;
    assert_eq!(refused.err(), Some(VoteError::WrongPayment));
    let mut old = statement_for(&payments, &id, &keys.alice).await?;
    old.decided_at_ms -= 60 * 60 * 1000;
    let refused = vote(&payments, &id, "alice", &keys.alice, &old).await;
    assert_eq!(refused.err(), Some(VoteError::Stale));
    let bobs = statement_for(&payments, &id, &keys.bob).await?;
    let refused = vote(&payments, &id, "alice", &keys.bob, &bobs).await;
    assert_eq!(refused.err(), Some(VoteError::WrongKey));
    let daves = statement_for(&payments, &id, &keys.dave).await?;
    let refused = vote(&payments, &id, "dave", &keys.dave, &daves).await;
    assert_eq!(refused.err(), Some(VoteError::NotEligible));
    let refused = vote(&payments, &id, "mallory", &keys.dave, &daves).await;
    assert_eq!(refused.err(), Some(VoteError::UnknownApprover));
    let mut forged = keys
        .alice
        .sign(&statement_for(&payments, &id, &keys.alice).await?)?;
    forged.signature = keys
        .carol
        .sign(&statement_for(&payments, &id, &keys.carol).await?)?
        .signature;
    let refused = payments.vote(&id, "alice", forged, None).await;
    assert_eq!(refused.err(), Some(VoteError::BadSignature));

    // One approval is not enough; the same approver again does not count.
    let alices = statement_for(&payments, &id, &keys.alice).await?;
    let counted = vote(&payments, &id, "alice", &keys.alice, &alices).await?;
    assert_eq!(counted["approval"]["approvals"], 1);
    assert_eq!(counted["state"], "awaiting_approval");
    let again = statement_for(&payments, &id, &keys.alice).await?;
    let refused = vote(&payments, &id, "alice", &keys.alice, &again).await;
    assert_eq!(refused.err(), Some(VoteError::Duplicate));

    // The second approver releases it; concurrent callers cannot make it pay twice.
    let carols = statement_for(&payments, &id, &keys.carol).await?;
    vote(&payments, &id, "carol", &keys.carol, &carols).await?;
    let mut racing = Vec::new();
    for _ in 0..8 {
        let payments = payments.clone();
        let id = id.clone();
        racing.push(tokio::spawn(async move {
            let session = payments.store().session(&id).await;
            if let Ok(Some(session)) = session {
                let _ = payments.execute_approved(session).await;
            }
        }));
    }
    for task in racing {
        task.await?;
    }
    if let Err(e) = wait_finalized(&stack.services, id.as_str()).await {
        let session = payments.store().session(&id).await?;
        return Err(format!(
            "{e}: {session:?} {:?}",
            session.as_ref().map(|s| &s.failure)
        )
        .into());
    }
    let after = balance(&stack.services, Asset::Usdc).await?;
    assert_eq!(before - after, 1_500_000_000);
    let audit = stack.services.store.audit_for_session(&id).await?;
    let grants = audit.iter().filter(|r| r.event == "grant.issued").count();
    let signed = audit.iter().filter(|r| r.event == "signer.signed").count();
    assert_eq!((grants, signed), (1, 1));

    stack.stop().await;
    Ok(())
}
