//! Slots, commitment levels and the recent-blockhash window.

use std::time::{Duration, Instant};

use clawfirst_core::Asset;
use clawfirst_localnet::{BLOCKHASH_WINDOW, Localnet, LocalnetOptions};
use clawfirst_solana::{Commitment, Ledger, LedgerError, PaymentPlan, build_message};

use crate::common::*;

#[tokio::test]
async fn status_goes_processed_then_confirmed_then_finalized() -> TestResult {
    let temp = TempLedger::new()?;
    let ledger = temp.open()?;
    let payer = Wallet::new();
    ledger.fund(&payer.address, 2 * SOL, 0, 0)?;

    let plan = PaymentPlan::new(transfer(
        &ledger,
        Asset::Sol,
        SOL,
        &payer,
        Wallet::new().address,
    ));
    let signature = pay(&ledger, &payer, &plan).await??;
    let landed_in = ledger.slot();

    let status = ledger.status(&signature).await?.ok_or("not recorded")?;
    assert_eq!(
        (status.slot, status.commitment, status.error),
        (landed_in, Commitment::Processed, None)
    );

    ledger.advance_slots(1)?;
    let status = ledger.status(&signature).await?.ok_or("not recorded")?;
    assert_eq!(
        (status.slot, status.commitment),
        (landed_in, Commitment::Confirmed)
    );

    ledger.advance_slots(30)?;
    assert_eq!(
        ledger.status(&signature).await?.map(|s| s.commitment),
        Some(Commitment::Confirmed)
    );
    ledger.advance_slots(1)?;
    assert_eq!(
        ledger.status(&signature).await?.map(|s| s.commitment),
        Some(Commitment::Finalized)
    );

    // Unknown and malformed signatures.
    assert_eq!(
        ledger
            .status(&clawfirst_solana::signature_text(&[1; 64]))
            .await?,
        None
    );
    assert!(matches!(
        ledger.status("not base58 0OIl").await,
        Err(LedgerError::MalformedSignature)
    ));
    Ok(())
}

#[tokio::test]
async fn the_ticker_advances_slots_until_finality() -> TestResult {
    let temp = TempLedger::new()?;
    let options = LocalnetOptions {
        slot_interval: Duration::from_millis(5),
        finality_depth_slots: 8,
        confirmation_depth_slots: 2,
        ..LocalnetOptions::default()
    };
    let ledger = Localnet::open(&temp.path(), options)?;
    let payer = Wallet::new();
    ledger.fund(&payer.address, 2 * SOL, 0, 0)?;
    let plan = PaymentPlan::new(transfer(
        &ledger,
        Asset::Sol,
        SOL,
        &payer,
        Wallet::new().address,
    ));
    let signature = pay(&ledger, &payer, &plan).await??;

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        let commitment = ledger
            .status(&signature)
            .await?
            .ok_or("not recorded")?
            .commitment;
        if seen.last() != Some(&commitment) {
            seen.push(commitment);
        }
        if commitment == Commitment::Finalized {
            break;
        }
        assert!(Instant::now() < deadline, "not finalized in time: {seen:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Commitment only ever grows.
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    Ok(())
}

#[tokio::test]
async fn the_ticker_stops_when_the_localnet_is_dropped() -> TestResult {
    let temp = TempLedger::new()?;
    let ticking = LocalnetOptions {
        slot_interval: Duration::from_millis(2),
        ..LocalnetOptions::default()
    };
    let ledger = Localnet::open(&temp.path(), ticking)?;
    let start = ledger.slot();
    while ledger.slot() < start + 3 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    drop(ledger);

    let stopped_at = temp.open()?.slot();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        temp.open()?.slot(),
        stopped_at,
        "a slot was recorded after the drop"
    );
    assert!(stopped_at >= start + 3);
    Ok(())
}

#[tokio::test]
async fn recent_blockhashes_work_and_expired_ones_are_refused() -> TestResult {
    let temp = TempLedger::new()?;
    let ledger = temp.open()?;
    let payer = Wallet::new();
    ledger.fund(&payer.address, 10 * SOL, 0, 0)?;

    let old = ledger.latest_blockhash().await?;
    assert_eq!(old.last_valid_slot, ledger.slot() + BLOCKHASH_WINDOW);

    // A blockhash a few slots old is still accepted, as on a real cluster.
    ledger.advance_slots(10)?;
    assert_ne!(ledger.latest_blockhash().await?.hash, old.hash);
    assert!(ledger.is_blockhash_valid(&old.hash).await?);
    let plan = PaymentPlan::new(transfer(
        &ledger,
        Asset::Sol,
        SOL,
        &payer,
        Wallet::new().address,
    ));
    ledger
        .submit(&payer.sign(&build_message(&plan, old.hash)?)?)
        .await?;

    // Once it leaves the window, it is refused and nothing moves.
    ledger.advance_slots(BLOCKHASH_WINDOW - 10)?;
    assert_eq!(ledger.slot(), old.last_valid_slot);
    assert!(ledger.is_blockhash_valid(&old.hash).await?);
    ledger.advance_slots(1)?;
    assert!(!ledger.is_blockhash_valid(&old.hash).await?);

    let recipient = Wallet::new().address;
    let plan = PaymentPlan::new(transfer(&ledger, Asset::Sol, SOL, &payer, recipient));
    let result = ledger
        .submit(&payer.sign(&build_message(&plan, old.hash)?)?)
        .await;
    assert!(
        matches!(result, Err(LedgerError::BlockhashExpired)),
        "{result:?}"
    );
    assert_eq!(balance(&ledger, &recipient, Asset::Sol).await?, 0);
    assert!(!ledger.is_blockhash_valid(&[0; 32]).await?);
    Ok(())
}
