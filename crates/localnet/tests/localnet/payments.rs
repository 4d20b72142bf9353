//! Payments on the runtime: exact amounts, exact fees, the failures a payer can meet.

use clawfirst_core::{Address, Asset};
use clawfirst_solana::{Ledger, LedgerError, PaymentPlan, estimate_fee, transaction_signature};

use crate::common::*;

/// Pays `amount` of `asset` and checks that the payer lost exactly the amount (for SOL) plus
/// the estimated fee, and the recipient gained exactly the amount.
async fn pay_and_check_exact_charges(
    ledger: &clawfirst_localnet::Localnet,
    payer: &Wallet,
    recipient: Address,
    asset: Asset,
    amount: u64,
) -> TestResult {
    let mut plan = PaymentPlan::new(transfer(ledger, asset, amount, payer, recipient));
    plan.compute_unit_price_micro_lamports = 12_345;
    plan.memo = Some(format!("pay {amount} {asset}"));

    let schedule = ledger.fee_schedule().await?;
    let recipient_account = match ledger.mint(asset) {
        Some(mint) => clawfirst_solana::associated_token_address(&recipient, &mint),
        None => recipient,
    };
    let exists = ledger.account_exists(&recipient_account).await?;
    let estimate = estimate_fee(&plan, &schedule, exists);

    let payer_sol = balance(ledger, &payer.address, Asset::Sol).await?;
    let payer_asset = balance(ledger, &payer.address, asset).await?;
    let recipient_asset = balance(ledger, &recipient, asset).await?;

    let wire = signed(ledger, payer, &plan).await?;
    let signature = ledger.submit(&wire).await?;
    assert_eq!(signature, transaction_signature(&wire)?);

    let sol_spent = payer_sol - balance(ledger, &payer.address, Asset::Sol).await?;
    let moved_sol = if asset == Asset::Sol { amount } else { 0 };
    assert_eq!(
        sol_spent,
        moved_sol + estimate.total_lamports,
        "{asset}: {estimate:?}"
    );
    assert_eq!(
        estimate.total_lamports,
        estimate.base_fee_lamports + estimate.priority_fee_lamports + estimate.rent_lamports
    );
    if asset.is_token() {
        assert_eq!(
            payer_asset - balance(ledger, &payer.address, asset).await?,
            amount
        );
    }
    assert_eq!(
        balance(ledger, &recipient, asset).await? - recipient_asset,
        amount
    );
    Ok(())
}

#[tokio::test]
async fn sol_transfer_moves_exact_lamports_and_charges_the_estimated_fee() -> TestResult {
    let temp = TempLedger::new()?;
    let ledger = temp.open()?;
    let payer = Wallet::new();
    ledger.fund(&payer.address, 10 * SOL, 0, 0)?;

    let recipient = Wallet::new().address;
    pay_and_check_exact_charges(&ledger, &payer, recipient, Asset::Sol, SOL).await?;
    assert_eq!(balance(&ledger, &recipient, Asset::Sol).await?, SOL);
    Ok(())
}

#[tokio::test]
async fn usdc_transfer_creates_the_recipient_account_and_moves_2_5_usdc() -> TestResult {
    let temp = TempLedger::new()?;
    let ledger = temp.open()?;
    let payer = Wallet::new();
    ledger.fund(&payer.address, SOL, 10_000_000, 0)?;
    let recipient = Wallet::new().address;
    let mint = ledger.mint(Asset::Usdc).ok_or("no USDC mint")?;
    let recipient_ata = clawfirst_solana::associated_token_address(&recipient, &mint);
    assert!(!ledger.account_exists(&recipient_ata).await?);

    // The first payment creates the account and the payer pays its rent...
    let schedule = ledger.fee_schedule().await?;
    let before = balance(&ledger, &payer.address, Asset::Sol).await?;
    pay_and_check_exact_charges(&ledger, &payer, recipient, Asset::Usdc, 2_500_000).await?;
    assert!(ledger.account_exists(&recipient_ata).await?);
    let spent = before - balance(&ledger, &payer.address, Asset::Sol).await?;
    assert!(spent > schedule.token_account_rent_lamports);
    assert_eq!(balance(&ledger, &recipient, Asset::Usdc).await?, 2_500_000);

    // ...the second does not. (It waits a slot: under the same blockhash the same payment
    // would be the very same transaction, which the ledger rightly refuses to run twice.)
    ledger.advance_slots(1)?;
    pay_and_check_exact_charges(&ledger, &payer, recipient, Asset::Usdc, 2_500_000).await?;
    assert_eq!(balance(&ledger, &recipient, Asset::Usdc).await?, 5_000_000);
    assert_eq!(
        balance(&ledger, &payer.address, Asset::Usdc).await?,
        5_000_000
    );
    Ok(())
}

#[tokio::test]
async fn bonk_transfer_moves_exact_base_units() -> TestResult {
    let temp = TempLedger::new()?;
    let ledger = temp.open()?;
    let payer = Wallet::new();
    ledger.fund(&payer.address, SOL, 0, 1_000_000_000)?;
    let recipient = Wallet::new().address;

    // 1234.5 BONK at 5 decimals.
    pay_and_check_exact_charges(&ledger, &payer, recipient, Asset::Bonk, 123_450_000).await?;
    assert_eq!(
        balance(&ledger, &recipient, Asset::Bonk).await?,
        123_450_000
    );
    Ok(())
}

#[tokio::test]
async fn default_compute_limits_fit_the_longest_memo() -> TestResult {
    let temp = TempLedger::new()?;
    let ledger = temp.open()?;
    let payer = Wallet::new();
    ledger.fund(&payer.address, 10 * SOL, 10_000_000, 10_000_000)?;

    for asset in Asset::ALL {
        let amount = if asset == Asset::Sol { SOL } else { 1_000 };
        let mut plan = PaymentPlan::new(transfer(
            &ledger,
            asset,
            amount,
            &payer,
            Wallet::new().address,
        ));
        plan.memo = Some("é".repeat(128));
        assert_eq!(plan.memo.as_ref().map(String::len), Some(256));
        let result = pay(&ledger, &payer, &plan).await?;
        assert!(result.is_ok(), "{asset}: {result:?}");
    }
    Ok(())
}

#[tokio::test]
async fn insufficient_balances_are_reported_as_such() -> TestResult {
    let temp = TempLedger::new()?;
    let ledger = temp.open()?;
    let payer = Wallet::new();
    ledger.fund(&payer.address, SOL / 100, 1_000_000, 0)?;
    let recipient = Wallet::new().address;

    // Not enough SOL: the transaction lands, fails, and its fee is charged.
    let plan = PaymentPlan::new(transfer(&ledger, Asset::Sol, SOL, &payer, recipient));
    let wire = signed(&ledger, &payer, &plan).await?;
    let result = ledger.submit(&wire).await;
    assert!(
        matches!(result, Err(LedgerError::InsufficientFunds { .. })),
        "{result:?}"
    );
    let status = ledger
        .status(&transaction_signature(&wire)?)
        .await?
        .ok_or("not recorded")?;
    assert!(status.error.is_some());
    assert!(balance(&ledger, &payer.address, Asset::Sol).await? < SOL / 100);
    assert_eq!(balance(&ledger, &recipient, Asset::Sol).await?, 0);

    // Not enough USDC.
    let plan = PaymentPlan::new(transfer(&ledger, Asset::Usdc, 2_500_000, &payer, recipient));
    let result = pay(&ledger, &payer, &plan).await?;
    assert!(
        matches!(result, Err(LedgerError::InsufficientFunds { .. })),
        "{result:?}"
    );
    assert_eq!(
        balance(&ledger, &payer.address, Asset::Usdc).await?,
        1_000_000
    );

    // No SOL at all for the fee: refused before it lands, nothing recorded.
    let broke = Wallet::new();
    let plan = PaymentPlan::new(transfer(&ledger, Asset::Sol, 1, &broke, recipient));
    let wire = signed(&ledger, &broke, &plan).await?;
    let result = ledger.submit(&wire).await;
    assert!(
        matches!(result, Err(LedgerError::InsufficientFunds { .. })),
        "{result:?}"
    );
    assert_eq!(ledger.status(&transaction_signature(&wire)?).await?, None);
    Ok(())
}

#[tokio::test]
async fn a_replayed_submission_does_not_pay_twice() -> TestResult {
    let temp = TempLedger::new()?;
    let ledger = temp.open()?;
    let payer = Wallet::new();
    ledger.fund(&payer.address, SOL, 10_000_000, 0)?;
    let recipient = Wallet::new().address;

    let plan = PaymentPlan::new(transfer(&ledger, Asset::Usdc, 2_500_000, &payer, recipient));
    let wire = signed(&ledger, &payer, &plan).await?;
    let first = ledger.submit(&wire).await?;
    let sol_after_first = balance(&ledger, &payer.address, Asset::Sol).await?;
    for _ in 0..3 {
        assert_eq!(ledger.submit(&wire).await?, first);
    }
    assert_eq!(balance(&ledger, &recipient, Asset::Usdc).await?, 2_500_000);
    assert_eq!(
        balance(&ledger, &payer.address, Asset::Sol).await?,
        sol_after_first
    );

    // A failed transaction replays as the same failure, without charging its fee again.
    let too_much = PaymentPlan::new(transfer(
        &ledger,
        Asset::Usdc,
        99_000_000,
        &payer,
        recipient,
    ));
    let wire = signed(&ledger, &payer, &too_much).await?;
    let first = ledger.submit(&wire).await;
    let sol_after_failure = balance(&ledger, &payer.address, Asset::Sol).await?;
    let again = ledger.submit(&wire).await;
    assert!(matches!(first, Err(LedgerError::InsufficientFunds { .. })));
    assert_eq!(format!("{first:?}"), format!("{again:?}"));
    assert_eq!(
        balance(&ledger, &payer.address, Asset::Sol).await?,
        sol_after_failure
    );
    Ok(())
}

#[tokio::test]
async fn v0_messages_land_like_legacy_ones() -> TestResult {
    let temp = TempLedger::new()?;
    let ledger = temp.open()?;
    let payer = Wallet::new();
    ledger.fund(&payer.address, 2 * SOL, 0, 0)?;
    let recipient = Wallet::new().address;

    let plan = PaymentPlan::new(transfer(&ledger, Asset::Sol, SOL, &payer, recipient));
    let legacy = clawfirst_solana::build_message(&plan, ledger.latest_blockhash().await?.hash)?;
    let v0 = [&[0x80][..], &legacy, &[0]].concat();
    assert!(clawfirst_solana::decode_payment(&v0).is_ok());
    ledger.submit(&payer.sign(&v0)?).await?;
    assert_eq!(balance(&ledger, &recipient, Asset::Sol).await?, SOL);
    Ok(())
}

#[tokio::test]
async fn malformed_and_forged_transactions_are_refused() -> TestResult {
    let temp = TempLedger::new()?;
    let ledger = temp.open()?;
    let payer = Wallet::new();
    ledger.fund(&payer.address, 2 * SOL, 0, 0)?;

    let result = ledger.submit(&[1, 2, 3]).await;
    assert!(
        matches!(result, Err(LedgerError::MalformedTransaction(_))),
        "{result:?}"
    );

    // A valid signature over other bytes: signature verification is on.
    let plan = PaymentPlan::new(transfer(
        &ledger,
        Asset::Sol,
        SOL,
        &payer,
        Wallet::new().address,
    ));
    let mut wire = signed(&ledger, &payer, &plan).await?;
    if let Some(last) = wire.last_mut() {
        *last ^= 1;
    }
    let result = ledger.submit(&wire).await;
    assert!(
        matches!(result, Err(LedgerError::Rejected { .. })),
        "{result:?}"
    );
    assert_eq!(balance(&ledger, &payer.address, Asset::Sol).await?, 2 * SOL);
    Ok(())
}
