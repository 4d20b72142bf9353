use proptest::prelude::*;

use super::*;
use crate::asset::Asset;
use crate::grant::GrantBody;
use crate::ids::GrantId;
use crate::secret::SecretBytes;

const NOW: u64 = 1_800_000_000_000;

fn usdc(amount: u64) -> Transfer {
    Transfer {
        asset: Asset::Usdc,
        mint: Some(Address::new([1; 32])),
        amount,
        recipient: Address::new([2; 32]),
        payer: Address::new([3; 32]),
    }
}

fn statement(key: &ApproverKey) -> Result<ApprovalStatement, crate::ids::IdError> {
    Ok(ApprovalStatement {
        approver: key.public_key(),
        decision: ApprovalDecision::Approve,
        decided_at_ms: NOW,
        session_id: SessionId::new("ps_0123456789abcdef")?,
        agent_id: AgentId::new("agent-1")?,
        key_id: KeyId::new("default")?,
        transfer: usdc(2_500_000),
    })
}

fn grant_for(s: &ApprovalStatement) -> GrantBody {
    GrantBody {
        grant_id: GrantId::random(),
        issued_at_ms: NOW,
        expires_at_ms: NOW + 60_000,
        agent_id: s.agent_id.clone(),
        session_id: s.session_id.clone(),
        key_id: s.key_id.clone(),
        message_sha256: GrantBody::hash_message(b"message"),
        transfer: s.transfer,
    }
}

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn a_signed_approval_verifies_and_matches_its_payment() -> TestResult {
    let key = ApproverKey::generate();
    let s = statement(&key)?;
    let verified = key.sign(&s)?.verify()?;
    assert_eq!(verified.statement(), &s);
    assert_eq!(verified.approver(), key.public_key());
    assert!(verified.matches_grant(&grant_for(&s)));
    Ok(())
}

#[test]
fn an_approval_does_not_match_another_payment() -> TestResult {
    let key = ApproverKey::generate();
    let s = statement(&key)?;
    let verified = key.sign(&s)?.verify()?;
    let mut other_session = grant_for(&s);
    other_session.session_id = SessionId::new("ps_other")?;
    let mut other_agent = grant_for(&s);
    other_agent.agent_id = AgentId::new("agent-2")?;
    let mut other_key = grant_for(&s);
    other_key.key_id = KeyId::new("treasury")?;
    let mut other_amount = grant_for(&s);
    other_amount.transfer.amount += 1;
    let mut other_recipient = grant_for(&s);
    other_recipient.transfer.recipient = Address::new([9; 32]);
    for grant in [
        other_session,
        other_agent,
        other_key,
        other_amount,
        other_recipient,
    ] {
        assert!(!verified.matches_grant(&grant), "{grant:?}");
    }
    Ok(())
}

#[test]
fn a_key_refuses_to_sign_for_another_approver() -> TestResult {
    let key = ApproverKey::generate();
    let s = statement(&ApproverKey::generate())?;
    assert_eq!(key.sign(&s), Err(ApprovalError::ApproverMismatch));
    Ok(())
}

#[test]
fn a_signature_by_another_key_is_refused() -> TestResult {
    let alice = ApproverKey::generate();
    let mallory = ApproverKey::generate();
    let mut forged = alice.sign(&statement(&alice)?)?;
    // Mallory signs the very bytes that name Alice.
    let bytes = B64.decode(&forged.statement)?;
    let signature = ed25519_dalek::Signer::sign(
        &ed25519_dalek::SigningKey::from_bytes(&mallory.seed().expose().try_into()?),
        &bytes,
    );
    forged.signature = B64.encode(signature.to_bytes());
    assert_eq!(forged.verify(), Err(ApprovalError::BadSignature));
    Ok(())
}

#[test]
fn decode_refuses_trailing_truncated_and_foreign_bytes() -> TestResult {
    let bytes = statement(&ApproverKey::generate())?.encode();
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        ApprovalStatement::decode(&longer),
        Err(ApprovalDecodeError::TrailingBytes)
    );
    assert!(matches!(
        ApprovalStatement::decode(&bytes[..bytes.len() - 1]),
        Err(ApprovalDecodeError::Truncated(_))
    ));
    let mut decision = bytes.clone();
    decision[40] = 2;
    assert_eq!(
        ApprovalStatement::decode(&decision),
        Err(ApprovalDecodeError::Decision)
    );
    assert_eq!(
        ApprovalStatement::decode(b"CFGRANT1"),
        Err(ApprovalDecodeError::Magic)
    );
    Ok(())
}

#[test]
fn an_oversized_statement_is_refused_before_decoding() {
    let approval = SignedApproval {
        statement: "A".repeat(MAX_STATEMENT_BASE64 + 4),
        signature: String::new(),
    };
    assert_eq!(
        approval.verify(),
        Err(ApprovalError::Malformed(ApprovalDecodeError::TooLong))
    );
}

#[test]
fn the_key_file_round_trips_and_is_strict() -> TestResult {
    let key = ApproverKey::generate();
    let text = key.to_file_text();
    assert!(text.expose().starts_with("clawfirst-approver-key-v1\n"));
    assert!(text.expose().ends_with('\n'));
    let loaded = ApproverKey::from_file_text(text.expose())?;
    assert_eq!(loaded.public_key(), key.public_key());
    let without_final_newline = text.expose().trim_end_matches('\n');
    assert!(ApproverKey::from_file_text(without_final_newline).is_ok());

    let seed = B64.encode(key.seed().expose());
    for bad in [
        String::new(),
        format!("{seed}\n"),
        format!("clawfirst-approver-key-v2\n{seed}\n"),
        format!("clawfirst-approver-key-v1\n{seed}\n\n"),
        format!("clawfirst-approver-key-v1\n {seed}\n"),
        "clawfirst-approver-key-v1\nAAAA\n".to_owned(),
    ] {
        assert!(ApproverKey::from_file_text(&bad).is_err(), "{bad:?}");
    }
    let error = ApproverKey::from_file_text(&format!("x\n{seed}\n"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(!error.contains(&seed), "{error}");
    Ok(())
}

#[test]
fn debug_never_shows_the_seed_or_the_payload() -> TestResult {
    let key = ApproverKey::generate();
    let seed_b64 = B64.encode(key.seed().expose());
    let seed_hex = hex::encode(key.seed().expose());
    let approval = key.sign(&statement(&key)?)?;
    let printed = format!("{key:?} {key:#?} {approval:?} {:?}", key.to_file_text());
    assert!(!printed.contains(&seed_b64), "{printed}");
    assert!(!printed.contains(&seed_hex), "{printed}");
    assert!(!printed.contains(&approval.statement), "{printed}");
    assert!(!printed.contains(&approval.signature), "{printed}");
    Ok(())
}

#[test]
fn from_seed_round_trips_and_refuses_other_lengths() -> TestResult {
    let key = ApproverKey::generate();
    assert_eq!(
        ApproverKey::from_seed(&key.seed())?.public_key(),
        key.public_key()
    );
    assert!(matches!(
        ApproverKey::from_seed(&SecretBytes::new(vec![1; 31])),
        Err(ApproverKeyError::SeedLength)
    ));
    Ok(())
}

fn arbitrary_statement() -> impl Strategy<Value = (ApprovalStatement, [u8; 32])> {
    (
        any::<[u8; 32]>(),
        any::<bool>(),
        any::<u64>(),
        "[A-Za-z0-9._-]{1,64}",
        "[A-Za-z0-9._-]{1,64}",
        "[A-Za-z0-9._-]{1,64}",
        1u64..,
        any::<bool>(),
        any::<[u8; 32]>(),
    )
        .prop_filter_map(
            "valid identifiers",
            |(seed, approve, at, session, agent, key, amount, sol, recipient)| {
                let signer = ApproverKey::from_seed(&SecretBytes::new(seed.to_vec())).ok()?;
                let mut transfer = usdc(amount);
                transfer.recipient = Address::new(recipient);
                if sol {
                    transfer.asset = Asset::Sol;
                    transfer.mint = None;
                }
                let statement = ApprovalStatement {
                    approver: signer.public_key(),
                    decision: match approve {
                        true => ApprovalDecision::Approve,
                        false => ApprovalDecision::Reject,
                    },
                    decided_at_ms: at,
                    session_id: SessionId::new(session).ok()?,
                    agent_id: AgentId::new(agent).ok()?,
                    key_id: KeyId::new(key).ok()?,
                    transfer,
                };
                Some((statement, seed))
            },
        )
}

fn key_of(seed: [u8; 32]) -> Result<ApproverKey, TestCaseError> {
    ApproverKey::from_seed(&SecretBytes::new(seed.to_vec()))
        .map_err(|e| TestCaseError::fail(e.to_string()))
}

proptest! {
    #[test]
    fn encode_decode_round_trips((s, _seed) in arbitrary_statement()) {
        prop_assert_eq!(ApprovalStatement::decode(&s.encode()), Ok(s));
    }

    #[test]
    fn sign_verify_round_trips((s, seed) in arbitrary_statement()) {
        let signed = key_of(seed)?.sign(&s).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(signed.verify().map(|v| v.statement().clone()), Ok(s));
    }

    #[test]
    fn any_single_byte_change_fails_verification(
        (s, seed) in arbitrary_statement(),
        index in any::<usize>(),
        flip in 1u8..,
        in_signature in any::<bool>(),
    ) {
        let signed = key_of(seed)?.sign(&s).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut statement = B64.decode(&signed.statement).unwrap_or_default();
        let mut signature = B64.decode(&signed.signature).unwrap_or_default();
        let target = match in_signature {
            true => &mut signature,
            false => &mut statement,
        };
        let i = index % target.len();
        target[i] ^= flip;
        let tampered = SignedApproval {
            statement: B64.encode(&statement),
            signature: B64.encode(&signature),
        };
        prop_assert!(tampered.verify().is_err());
    }

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = ApprovalStatement::decode(&bytes);
    }

    #[test]
    fn verify_never_panics(statement in ".{0,1200}", signature in ".{0,120}") {
        let _ = SignedApproval { statement, signature }.verify();
    }
}
