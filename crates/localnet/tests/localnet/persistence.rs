//! Reopening the same file resumes the same ledger.

use clawfirst_core::Asset;
use clawfirst_solana::{Commitment, Ledger, LedgerError, PaymentPlan};

use crate::common::*;

#[tokio::test]
async fn a_reopened_ledger_has_the_same_balances_statuses_and_blockhashes() -> TestResult {
    let temp = TempLedger::new()?;
    let payer = Wallet::new();
    let recipient = Wallet::new().address;

    let (wire, signature, slot, blockhash, balances) = {
        let ledger = temp.open()?;
        ledger.fund(&payer.address, 5 * SOL, 10_000_000, 500_000)?;
        let plan = PaymentPlan::new(transfer(&ledger, Asset::Usdc, 2_500_000, &payer, recipient));
        let wire = signed(&ledger, &payer, &plan).await?;
        let signature = ledger.submit(&wire).await?;
        // A payment that lands and fails still charges its fee, which must survive too.
        let too_much = PaymentPlan::new(transfer(&ledger, Asset::Bonk, 600_000, &payer, recipient));
        let failed = pay(&ledger, &payer, &too_much).await?;
        assert!(
            matches!(failed, Err(LedgerError::InsufficientFunds { .. })),
            "{failed:?}"
        );
        ledger.advance_slots(3)?;
        let blockhash = ledger.latest_blockhash().await?;
        let balances = (
            ledger.balances(&payer.address).await?,
            ledger.balances(&recipient).await?,
        );
        (wire, signature, ledger.slot(), blockhash, balances)
    };

    let ledger = temp.open()?;
    assert_eq!(ledger.slot(), slot);
    assert_eq!(ledger.latest_blockhash().await?, blockhash);
    assert_eq!(
        (
            ledger.balances(&payer.address).await?,
            ledger.balances(&recipient).await?
        ),
        balances
    );
    let status = ledger.status(&signature).await?.ok_or("status lost")?;
    assert_eq!(
        (status.slot, status.commitment),
        (slot - 3, Commitment::Confirmed)
    );

    // The same signed bytes replayed after the restart do not pay again.
    assert_eq!(ledger.submit(&wire).await?, signature);
    assert_eq!(balance(&ledger, &recipient, Asset::Usdc).await?, 2_500_000);

    // The restored runtime keeps working: the recipient's account exists, a new payment lands.
    let plan = PaymentPlan::new(transfer(&ledger, Asset::Usdc, 500_000, &payer, recipient));
    pay(&ledger, &payer, &plan).await??;
    assert_eq!(balance(&ledger, &recipient, Asset::Usdc).await?, 3_000_000);
    assert_eq!(
        balance(&ledger, &payer.address, Asset::Usdc).await?,
        7_000_000
    );
    Ok(())
}

#[tokio::test]
async fn funding_only_tops_up() -> TestResult {
    let temp = TempLedger::new()?;
    let wallet = Wallet::new();
    {
        let ledger = temp.open()?;
        ledger.fund(&wallet.address, 3 * SOL, 5_000_000, 0)?;
        // Lower amounts leave balances alone; zero creates no token account.
        ledger.fund(&wallet.address, SOL, 1_000_000, 0)?;
        assert_eq!(
            balance(&ledger, &wallet.address, Asset::Sol).await?,
            3 * SOL
        );
        assert_eq!(
            balance(&ledger, &wallet.address, Asset::Usdc).await?,
            5_000_000
        );
        let bonk = ledger.mint(Asset::Bonk).ok_or("no BONK mint")?;
        let bonk_account = clawfirst_solana::associated_token_address(&wallet.address, &bonk);
        assert!(!ledger.account_exists(&bonk_account).await?);
    }
    let ledger = temp.open()?;
    ledger.fund(&wallet.address, 4 * SOL, 5_000_000, 7)?;
    assert_eq!(
        balance(&ledger, &wallet.address, Asset::Sol).await?,
        4 * SOL
    );
    assert_eq!(
        balance(&ledger, &wallet.address, Asset::Usdc).await?,
        5_000_000
    );
    assert_eq!(balance(&ledger, &wallet.address, Asset::Bonk).await?, 7);
    Ok(())
}

#[tokio::test]
async fn mints_are_the_documented_ones_and_survive_a_restart() -> TestResult {
    let temp = TempLedger::new()?;
    let first = {
        let ledger = temp.open()?;
        (ledger.mint(Asset::Usdc), ledger.mint(Asset::Bonk))
    };
    let ledger = temp.open()?;
    assert_eq!((ledger.mint(Asset::Usdc), ledger.mint(Asset::Bonk)), first);
    assert_eq!(ledger.mint(Asset::Sol), None);
    assert_eq!(
        ledger.mint(Asset::Usdc).map(|m| m.to_string()).as_deref(),
        Some(clawfirst_localnet::USDC_MINT_TEXT)
    );
    assert_eq!(
        ledger.mint(Asset::Bonk).map(|m| m.to_string()).as_deref(),
        Some(clawfirst_localnet::BONK_MINT_TEXT)
    );
    for mint in [first.0, first.1].into_iter().flatten() {
        assert!(ledger.account_exists(&mint).await?);
    }
    assert_eq!(ledger.network(), clawfirst_solana::Network::Localnet);
    Ok(())
}
