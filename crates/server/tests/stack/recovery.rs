//! A crash between any two steps of a payment must never lead to signing or paying twice.
//!
//! Each test drives a payment by hand up to a step, as `authorize_transaction` would, then
//! stops the whole stack (server and signer process) as a crash would leave it, restarts it on
//! the same data directory and checks that recovery finishes the payment exactly once with
//! the one signature the signer made.

use clawfirst_core::grant::{GrantBody, SignedGrant};
use clawfirst_core::{Asset, GrantId, SessionId, Transfer, now_ms};
use clawfirst_server::datadir::load_grant_key;
use clawfirst_server::signer_client::{GrantUse, SignerClient};
use clawfirst_server::up::Stack;
use clawfirst_solana::{PaymentPlan, assemble_transaction, build_message};
use clawfirst_store::{AuditEvent, Reservation, SessionPatch, SessionState};

use super::support::{TestResult, balance, demo, initialize, start, wait_finalized};

const AMOUNT: &str = "1.25 USDC";
const UNITS: u64 = 1_250_000;

struct Approved {
    id: SessionId,
    message: Vec<u8>,
    grant: SignedGrant,
    grant_id: GrantId,
}

/// Steps 1 to 5 of authorization: the session is `approved` with its message and grant stored.
async fn approve(stack: &Stack, session_id: &str) -> Result<Approved, Box<dyn std::error::Error>> {
    let id = SessionId::new(session_id)?;
    let store = &stack.services.store;
    let session = store.session(&id).await?.ok_or("no session")?;
    let ledger = stack.services.payments.ledger();
    let transfer = Transfer {
        asset: session.asset,
        mint: ledger.mint(session.asset),
        amount: session.amount,
        recipient: session.recipient,
        payer: session.payer,
    };
    let mut plan = PaymentPlan::new(transfer);
    plan.memo = Some(session_id.to_owned());
    let blockhash = ledger.latest_blockhash().await?;
    let message = build_message(&plan, blockhash.hash)?;

    let grant_signer = load_grant_key(&stack.config.grant_key_file)?;
    let grant_id = GrantId::random();
    let now = now_ms();
    let grant = grant_signer.sign(&GrantBody {
        grant_id,
        issued_at_ms: now,
        expires_at_ms: now + 60_000,
        agent_id: session.agent_id.clone(),
        session_id: id.clone(),
        key_id: session.key_id.clone(),
        message_sha256: GrantBody::hash_message(&message),
        transfer,
    });
    let patch = SessionPatch {
        message: Some(message.clone()),
        grant_id: Some(grant_id),
        blockhash_last_valid_slot: Some(blockhash.last_valid_slot),
        ..SessionPatch::default()
    };
    let approved = store
        .reserve_and_transition(
            &id,
            SessionState::Initialized,
            SessionState::Approved,
            Reservation::new(Vec::new()),
            patch,
            AuditEvent::system("test.approved").session(&id),
        )
        .await?;
    assert!(approved.is_ok());
    Ok(Approved {
        id,
        message,
        grant,
        grant_id,
    })
}

async fn sign(stack: &Stack, a: &Approved) -> Result<[u8; 64], Box<dyn std::error::Error>> {
    let signer = SignerClient::new(stack.config.signer_socket.clone());
    let key_id = stack.config.default_key_id.clone();
    Ok(signer
        .sign(&key_id, &a.message, a.grant.clone(), Vec::new())
        .await?
        .signature)
}

async fn store_signed(
    stack: &Stack,
    a: &Approved,
    signature: &[u8; 64],
) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let transaction = assemble_transaction(&a.message, signature)?;
    let patch = SessionPatch {
        signature: Some(bs58::encode(signature).into_string()),
        signed_transaction: Some(transaction.clone()),
        ..SessionPatch::default()
    };
    stack
        .services
        .store
        .transition(
            &a.id,
            SessionState::Approved,
            SessionState::Signed,
            patch,
            AuditEvent::system("test.signed").session(&a.id),
        )
        .await?;
    Ok(transaction)
}

/// Restarts the stack, waits for the payment to finalize and checks it was made once, with the
/// signer's one signature, and that authorizing again changes nothing.
async fn restart_and_check(
    dir: &std::path::Path,
    a: &Approved,
    signature: [u8; 64],
    usdc_before: u64,
) -> TestResult {
    let stack = start(dir).await?;
    let view = wait_finalized(&stack.services, a.id.as_str()).await?;
    assert_eq!(view["signature"], bs58::encode(signature).into_string());
    assert_eq!(
        usdc_before - balance(&stack.services, Asset::Usdc).await?,
        UNITS
    );

    let again = stack
        .services
        .payments
        .authorize_transaction(&demo(), &a.id)
        .await?;
    assert_eq!(again["state"], "finalized");
    assert_eq!(
        usdc_before - balance(&stack.services, Asset::Usdc).await?,
        UNITS
    );

    let signer = SignerClient::new(stack.config.signer_socket.clone());
    assert_eq!(
        signer.grant_status(a.grant_id).await?,
        GrantUse::Signed(signature)
    );
    stack.stop().await;
    Ok(())
}

/// A stack with one session approved and signed by the signer, as far as a crash may leave it;
/// returns the stack, the USDC balance before the payment, the session and the signature.
async fn signed_payment(
    dir: &std::path::Path,
) -> Result<(Stack, u64, Approved, [u8; 64]), Box<dyn std::error::Error>> {
    let stack = start(dir).await?;
    let before = balance(&stack.services, Asset::Usdc).await?;
    let session = initialize(&stack.services, AMOUNT).await?;
    let approved = approve(&stack, &session).await?;
    let signature = sign(&stack, &approved).await?;
    Ok((stack, before, approved, signature))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_signer_signed_but_before_the_signature_was_stored() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (stack, before, approved, signature) = signed_payment(dir.path()).await?;
    stack.stop().await;

    restart_and_check(dir.path(), &approved, signature, before).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_signed_transaction_was_stored_but_before_it_was_sent() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (stack, before, approved, signature) = signed_payment(dir.path()).await?;
    store_signed(&stack, &approved, &signature).await?;
    stack.stop().await;

    restart_and_check(dir.path(), &approved, signature, before).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_sending_but_before_the_submission_was_recorded() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (stack, before, approved, signature) = signed_payment(dir.path()).await?;
    let transaction = store_signed(&stack, &approved, &signature).await?;
    stack
        .services
        .payments
        .ledger()
        .submit(&transaction)
        .await?;
    stack.stop().await;

    restart_and_check(dir.path(), &approved, signature, before).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_approval_waits_while_the_grant_can_still_be_presented() -> TestResult {
    let dir = tempfile::tempdir()?;
    let stack = start(dir.path()).await?;
    let session = initialize(&stack.services, AMOUNT).await?;
    let approved = approve(&stack, &session).await?;
    stack.stop().await;

    // Within the grant's lifetime the session waits: the grant could still be presented.
    let stack = start(dir.path()).await?;
    let state = stack
        .services
        .store
        .session(&approved.id)
        .await?
        .ok_or("no session")?
        .state;
    assert_eq!(state, SessionState::Approved);
    let signer = SignerClient::new(stack.config.signer_socket.clone());
    assert_eq!(
        signer.grant_status(approved.grant_id).await?,
        GrantUse::Unused
    );
    stack.stop().await;
    Ok(())
}
