//! Tests of compact lengths, message encoding and transaction assembly.

use clawfirst_core::{Address, Asset, Transfer};

use super::*;
use crate::payment::{PaymentPlan, build_message};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn read_len(bytes: &[u8]) -> Result<usize, WireError> {
    let mut reader = Reader::new(bytes);
    let len = reader.compact_len("length")?;
    if !reader.is_empty() {
        return Err(WireError::Truncated("end"));
    }
    Ok(len)
}

#[test]
fn compact_lengths_round_trip_in_their_shortest_form() -> TestResult {
    for len in 0..=usize::from(u16::MAX) {
        let mut out = Vec::new();
        push_compact_len(&mut out, len)?;
        let expected_width = match len {
            0..=0x7f => 1,
            0x80..=0x3fff => 2,
            _ => 3,
        };
        assert_eq!(out.len(), expected_width, "width of {len}");
        assert_eq!(read_len(&out)?, len);
    }
    assert_eq!(
        push_compact_len(&mut Vec::new(), 65_536),
        Err(WireError::NonCanonicalLength)
    );
    Ok(())
}

#[test]
fn compact_lengths_refuse_aliases_and_overflow() {
    // 0 spelled in two bytes, 5 spelled in three.
    assert_eq!(read_len(&[0x80, 0x00]), Err(WireError::NonCanonicalLength));
    assert_eq!(
        read_len(&[0x85, 0x80, 0x00]),
        Err(WireError::NonCanonicalLength)
    );
    // 0x1_0000 and beyond do not fit a u16.
    assert_eq!(
        read_len(&[0x80, 0x80, 0x04]),
        Err(WireError::NonCanonicalLength)
    );
    // A fourth byte is never allowed.
    assert_eq!(
        read_len(&[0xff, 0xff, 0x83, 0x01]),
        Err(WireError::NonCanonicalLength)
    );
    assert_eq!(read_len(&[0x80]), Err(WireError::Truncated("length")));
}

fn sample_plan(asset: Asset) -> PaymentPlan {
    let mint = asset.is_token().then(|| Address::new([3; 32]));
    let transfer = Transfer {
        asset,
        mint,
        amount: 42,
        recipient: Address::new([2; 32]),
        payer: Address::new([1; 32]),
    };
    PaymentPlan {
        transfer,
        compute_unit_limit: 50_000,
        compute_unit_price_micro_lamports: 1_234,
        memo: Some("order 7".to_owned()),
    }
}

#[test]
fn encoding_matches_the_sdk_serializer() -> TestResult {
    for asset in Asset::ALL {
        let plan = sample_plan(asset);
        let ours = build_message(&plan, [8; 32])?;
        // The SDK's decoder takes our bytes whole, and its encoder gives them back unchanged.
        let parsed: solana_message::VersionedMessage = wincode::deserialize_exact(&ours)?;
        let solana_message::VersionedMessage::Legacy(message) = parsed else {
            return Err(format!("{asset}: not decoded as a legacy message").into());
        };
        assert_eq!(message.serialize(), ours, "{asset}");
        assert_eq!(
            message.account_keys.first(),
            Some(&crate::programs::to_sdk(plan.transfer.payer))
        );
        assert_eq!(message.recent_blockhash.to_bytes(), [8; 32]);
    }
    Ok(())
}

#[test]
fn assembles_one_signature_then_the_message() -> TestResult {
    let message = build_message(&sample_plan(Asset::Usdc), [8; 32])?;
    let signature = [0xab; 64];
    let wire = assemble_transaction(&message, &signature)?;
    assert_eq!(wire.first(), Some(&1));
    assert_eq!(wire.get(1..65), Some(&signature[..]));
    assert_eq!(wire.get(65..), Some(&message[..]));
    assert_eq!(transaction_signature(&wire)?, signature_text(&signature));

    let mut v0 = vec![0x80];
    v0.extend_from_slice(&message);
    v0.push(0);
    assert!(assemble_transaction(&v0, &signature).is_ok());

    let mut two_signers = message.clone();
    two_signers[0] = 2;
    assert_eq!(
        assemble_transaction(&two_signers, &signature),
        Err(WireError::SignerCount(2))
    );
    assert_eq!(
        assemble_transaction(&[0x82, 1], &signature),
        Err(WireError::UnsupportedVersion(2))
    );
    assert_eq!(
        assemble_transaction(&[], &signature),
        Err(WireError::Truncated("message header"))
    );
    let huge = [&[1u8][..], &[0; MAX_MESSAGE_LEN]].concat();
    assert_eq!(
        assemble_transaction(&huge, &signature),
        Err(WireError::TooLarge(MAX_TRANSACTION_LEN + 1))
    );
    Ok(())
}

#[test]
fn signature_text_round_trips_and_refuses_garbage() -> TestResult {
    let signature = [7u8; 64];
    let text = signature_text(&signature);
    assert_eq!(parse_signature_text(&text)?, signature);
    assert_eq!(parse_signature_text("0OIl"), Err(WireError::SignatureText));
    assert_eq!(parse_signature_text("abc"), Err(WireError::SignatureText));
    assert_eq!(
        parse_signature_text(&"z".repeat(89)),
        Err(WireError::SignatureText)
    );
    assert_eq!(transaction_signature(&[0]), Err(WireError::NoSignature));
    assert_eq!(
        transaction_signature(&[1, 2, 3]),
        Err(WireError::Truncated("signature"))
    );
    Ok(())
}
