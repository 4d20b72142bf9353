//! Property tests holding the builder and the strict decoder together, and the decoder's
//! robustness against hostile bytes.

use clawfirst_core::{Address, Asset, Transfer};
use clawfirst_solana::payment::{
    MAX_COMPUTE_UNIT_LIMIT, MAX_COMPUTE_UNIT_PRICE_MICRO_LAMPORTS, MAX_MEMO_LEN,
};
use clawfirst_solana::{PaymentPlan, build_message, check_matches, decode_payment};
use proptest::prelude::*;

fn address() -> impl Strategy<Value = Address> {
    any::<[u8; 32]>().prop_map(Address::new)
}

fn transfer() -> impl Strategy<Value = Transfer> {
    (
        proptest::sample::select(Asset::ALL.to_vec()),
        address(),
        1..=u64::MAX,
        address(),
        address(),
    )
        .prop_map(|(asset, mint, amount, recipient, payer)| Transfer {
            asset,
            mint: asset.is_token().then_some(mint),
            amount,
            recipient,
            payer,
        })
}

/// Any text, cut at a character boundary to fit the memo limit.
fn memo() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(
        proptest::collection::vec(any::<char>(), 0..80).prop_map(|chars| {
            let mut memo = String::new();
            for c in chars {
                if memo.len() + c.len_utf8() > MAX_MEMO_LEN {
                    break;
                }
                memo.push(c);
            }
            memo
        }),
    )
}

fn plan() -> impl Strategy<Value = PaymentPlan> {
    (
        transfer(),
        1..=MAX_COMPUTE_UNIT_LIMIT,
        0..=MAX_COMPUTE_UNIT_PRICE_MICRO_LAMPORTS,
        memo(),
    )
        .prop_map(
            |(transfer, compute_unit_limit, compute_unit_price_micro_lamports, memo)| PaymentPlan {
                transfer,
                compute_unit_limit,
                compute_unit_price_micro_lamports,
                memo,
            },
        )
}

/// Turns a build error into a property-test failure.
fn fail(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

proptest! {
    #[test]
    fn built_messages_decode_to_their_plan(plan in plan(), blockhash in any::<[u8; 32]>()) {
        let message = build_message(&plan, blockhash).map_err(fail)?;
        let decoded = decode_payment(&message).map_err(fail)?;

        prop_assert_eq!(check_matches(&decoded, &plan.transfer), Ok(()));
        prop_assert_eq!(decoded.fee_payer, plan.transfer.payer);
        prop_assert_eq!(decoded.recent_blockhash, blockhash);
        prop_assert_eq!(decoded.compute_unit_limit, Some(plan.compute_unit_limit));
        let price = plan.compute_unit_price_micro_lamports;
        prop_assert_eq!(decoded.compute_unit_price_micro_lamports, Some(price));
        prop_assert_eq!(decoded.creates_recipient_account, plan.transfer.asset.is_token());
        prop_assert_eq!(decoded.memo, plan.memo.map(String::into_bytes));
    }

    #[test]
    fn a_message_matches_no_other_transfer(a in transfer(), b in transfer(), pick in 0..5usize) {
        // Make `b` differ from `a` in one chosen respect, or in everything.
        let other = match pick {
            0 => Transfer { amount: b.amount, ..a },
            1 => Transfer { recipient: b.recipient, ..a },
            2 => Transfer { payer: b.payer, ..a },
            3 => Transfer { asset: b.asset, mint: b.mint, ..a },
            _ => b,
        };
        prop_assume!(other != a);
        let message = build_message(&PaymentPlan::new(a), [1; 32]).map_err(fail)?;
        let decoded = decode_payment(&message).map_err(fail)?;
        prop_assert!(check_matches(&decoded, &other).is_err(), "{:?} matched {:?}", a, other);
    }

    #[test]
    fn a_mutated_message_never_panics_and_never_matches_another_movement(
        plan in plan(),
        index in any::<proptest::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let message = build_message(&plan, [1; 32]).map_err(fail)?;
        let original = decode_payment(&message).map_err(fail)?;
        let mut mutated = message.clone();
        let at = index.index(mutated.len());
        mutated[at] = byte;

        // Whatever still decodes and matches the approved transfer moves exactly that value:
        // only the blockhash, compute budget, memo or creation flavour can have changed.
        if let Ok(decoded) = decode_payment(&mutated)
            && check_matches(&decoded, &plan.transfer).is_ok()
        {
            prop_assert_eq!(decoded.transfer, original.transfer);
            prop_assert_eq!(decoded.fee_payer, original.fee_payer);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1_400)) {
        let _ = decode_payment(&bytes);
        let _ = clawfirst_solana::transaction_signature(&bytes);
        let _ = clawfirst_solana::assemble_transaction(&bytes, &[0; 64]);
    }

    #[test]
    fn no_strict_prefix_decodes(plan in plan(), cut in any::<proptest::sample::Index>()) {
        let message = build_message(&plan, [1; 32]).map_err(fail)?;
        let cut = cut.index(message.len());
        prop_assert!(decode_payment(&message[..cut]).is_err());
    }
}
