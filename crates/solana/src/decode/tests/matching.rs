//! `check_matches` against transfers that differ, and the builder's own refusals.

use super::*;

#[test]
fn check_matches_names_each_difference() -> TestResult {
    let token = decode_payment(&build_message(&PaymentPlan::new(usdc()), BLOCKHASH)?)?;
    let lamports = decode_payment(&build_message(&PaymentPlan::new(sol()), BLOCKHASH)?)?;

    assert_eq!(
        check_matches(&token, &sol()),
        Err(MismatchError::Asset {
            expected: Asset::Sol
        })
    );
    assert_eq!(
        check_matches(&lamports, &usdc()),
        Err(MismatchError::Asset {
            expected: Asset::Usdc
        })
    );

    let other_mint = Transfer {
        mint: Some(addr(7)),
        ..usdc()
    };
    assert_eq!(
        check_matches(&token, &other_mint),
        Err(MismatchError::Mint { found: mint() })
    );

    let bonk = Transfer {
        asset: Asset::Bonk,
        ..usdc()
    };
    assert_eq!(
        check_matches(&token, &bonk),
        Err(MismatchError::Decimals {
            expected: 5,
            found: 6
        })
    );

    let more = Transfer {
        amount: 2_500_001,
        ..usdc()
    };
    assert_eq!(
        check_matches(&token, &more),
        Err(MismatchError::Amount {
            expected: 2_500_001,
            found: 2_500_000
        })
    );
    let less = Transfer {
        amount: 1_499,
        ..sol()
    };
    assert_eq!(
        check_matches(&lamports, &less),
        Err(MismatchError::Amount {
            expected: 1_499,
            found: 1_500
        })
    );

    let elsewhere = Transfer {
        recipient: addr(7),
        ..usdc()
    };
    assert_eq!(
        check_matches(&token, &elsewhere),
        Err(MismatchError::Recipient { found: recipient() })
    );
    let elsewhere = Transfer {
        recipient: addr(7),
        ..sol()
    };
    assert_eq!(
        check_matches(&lamports, &elsewhere),
        Err(MismatchError::Recipient { found: recipient() })
    );

    let other_payer = Transfer {
        payer: addr(7),
        ..sol()
    };
    assert_eq!(
        check_matches(&lamports, &other_payer),
        Err(MismatchError::Payer { found: payer() })
    );

    let zero = Transfer { amount: 0, ..sol() };
    assert!(matches!(
        check_matches(&lamports, &zero),
        Err(MismatchError::InvalidTransfer(_))
    ));
    Ok(())
}

#[test]
fn build_refuses_what_decode_would_refuse() {
    let mut plan = PaymentPlan::new(sol());
    plan.compute_unit_limit = 0;
    assert_eq!(
        build_message(&plan, BLOCKHASH),
        Err(BuildError::ComputeUnitLimit(0))
    );
    plan.compute_unit_limit = 1_400_001;
    assert_eq!(
        build_message(&plan, BLOCKHASH),
        Err(BuildError::ComputeUnitLimit(1_400_001))
    );

    let mut plan = PaymentPlan::new(sol());
    plan.compute_unit_price_micro_lamports = 5_000_001;
    assert_eq!(
        build_message(&plan, BLOCKHASH),
        Err(BuildError::ComputeUnitPrice(5_000_001))
    );

    let mut plan = PaymentPlan::new(sol());
    plan.memo = Some("x".repeat(257));
    assert_eq!(
        build_message(&plan, BLOCKHASH),
        Err(BuildError::MemoTooLong(257))
    );

    let plan = PaymentPlan::new(Transfer {
        mint: None,
        ..usdc()
    });
    assert!(matches!(
        build_message(&plan, BLOCKHASH),
        Err(BuildError::InvalidTransfer(_))
    ));
}
