use proptest::prelude::*;

use super::*;
use crate::amount::Amount;
use crate::asset::Asset;

fn body(now: u64) -> GrantBody {
    let amount = Amount::from_base_units(Asset::Usdc, 2_500_000);
    let transfer = amount
        .map_err(|_| ())
        .and_then(|a| {
            Transfer::new(
                a,
                Some(Address::new([1; 32])),
                Address::new([2; 32]),
                Address::new([3; 32]),
            )
            .map_err(|_| ())
        })
        .unwrap_or(Transfer {
            asset: Asset::Sol,
            mint: None,
            amount: 1,
            recipient: Address::new([2; 32]),
            payer: Address::new([3; 32]),
        });
    GrantBody {
        grant_id: GrantId::random(),
        issued_at_ms: now,
        expires_at_ms: now + 60_000,
        agent_id: AgentId::new("agent-1").unwrap_or_else(|_| unreachable!()),
        session_id: SessionId::random(),
        key_id: KeyId::new("default").unwrap_or_else(|_| unreachable!()),
        message_sha256: GrantBody::hash_message(b"message"),
        transfer,
    }
}

const NOW: u64 = 1_800_000_000_000;

#[test]
fn a_signed_grant_verifies() {
    let signer = GrantSigner::generate();
    let verifier = GrantVerifier::new(signer.public_key()).unwrap_or_else(|_| unreachable!());
    let b = body(NOW);
    let verified = verifier.verify(&signer.sign(&b), NOW + 1);
    assert_eq!(verified.map(|v| v.body().clone()), Ok(b));
}

#[test]
fn a_grant_from_another_key_is_refused() {
    let signer = GrantSigner::generate();
    let other =
        GrantVerifier::new(GrantSigner::generate().public_key()).unwrap_or_else(|_| unreachable!());
    assert_eq!(
        other.verify(&signer.sign(&body(NOW)), NOW),
        Err(GrantError::BadSignature)
    );
}

#[test]
fn an_edited_body_is_refused() {
    let signer = GrantSigner::generate();
    let verifier = GrantVerifier::new(signer.public_key()).unwrap_or_else(|_| unreachable!());
    let mut grant = signer.sign(&body(NOW));
    let mut bytes = B64.decode(&grant.body).unwrap_or_default();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    grant.body = B64.encode(bytes);
    assert_eq!(verifier.verify(&grant, NOW), Err(GrantError::BadSignature));
}

#[test]
fn validity_window_is_enforced() {
    let signer = GrantSigner::generate();
    let verifier = GrantVerifier::new(signer.public_key()).unwrap_or_else(|_| unreachable!());
    let b = body(NOW);
    assert_eq!(
        verifier.verify(&signer.sign(&b), b.expires_at_ms),
        Err(GrantError::Expired)
    );
    assert_eq!(
        verifier.verify(&signer.sign(&b), NOW - 60_000),
        Err(GrantError::NotYetValid)
    );
    let mut long = body(NOW);
    long.expires_at_ms = NOW + MAX_GRANT_LIFETIME_MS + 1;
    assert_eq!(
        verifier.verify(&signer.sign(&long), NOW),
        Err(GrantError::LifetimeTooLong)
    );
}

#[test]
fn decode_refuses_trailing_and_truncated_bytes() {
    let bytes = body(NOW).encode();
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        GrantBody::decode(&longer),
        Err(GrantDecodeError::TrailingBytes)
    );
    assert!(matches!(
        GrantBody::decode(&bytes[..bytes.len() - 1]),
        Err(GrantDecodeError::Truncated(_))
    ));
    assert_eq!(GrantBody::decode(b"CFGRANT2"), Err(GrantDecodeError::Magic));
}

proptest! {
    #[test]
    fn encode_decode_round_trips(
        amount in 1u64..,
        now in 0u64..u64::MAX / 2,
        sol in any::<bool>(),
    ) {
        let mut b = body(now);
        b.transfer.amount = amount;
        if sol {
            b.transfer.asset = Asset::Sol;
            b.transfer.mint = None;
        }
        prop_assert_eq!(GrantBody::decode(&b.encode()), Ok(b));
    }

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = GrantBody::decode(&bytes);
    }

    #[test]
    fn decode_of_mutated_valid_body_never_panics(index in 0usize..200, value in any::<u8>()) {
        let mut bytes = body(NOW).encode();
        let i = index % bytes.len();
        bytes[i] = value;
        let _ = GrantBody::decode(&bytes);
    }
}
