//! Many tasks paying at once through one shared ledger.

use std::sync::Arc;

use clawfirst_core::Asset;
use clawfirst_solana::{Ledger, PaymentPlan};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_payments_each_land_exactly_once() -> TestResult {
    let temp = TempLedger::new()?;
    let ledger = Arc::new(temp.open()?);
    let recipient = Wallet::new().address;
    let payers: Vec<Wallet> = (0..8).map(|_| Wallet::new()).collect();
    for payer in &payers {
        ledger.fund(&payer.address, SOL, 10_000_000, 0)?;
    }

    // Every payer submits its own payment twice, all at the same time.
    let mut tasks = Vec::new();
    for payer in payers {
        let plan = PaymentPlan::new(transfer(&ledger, Asset::Usdc, 1_000_000, &payer, recipient));
        let wire = signed(&ledger, &payer, &plan).await?;
        for _ in 0..2 {
            let (ledger, wire) = (Arc::clone(&ledger), wire.clone());
            tasks.push(tokio::spawn(async move { ledger.submit(&wire).await }));
        }
    }
    let mut signatures = Vec::new();
    for task in tasks {
        signatures.push(task.await??);
    }
    signatures.sort();
    signatures.dedup();
    assert_eq!(signatures.len(), 8);
    assert_eq!(balance(&ledger, &recipient, Asset::Usdc).await?, 8_000_000);
    Ok(())
}

#[test]
fn submit_works_outside_a_tokio_runtime() -> TestResult {
    let temp = TempLedger::new()?;
    let ledger = temp.open()?;
    let payer = Wallet::new();
    ledger.fund(&payer.address, 2 * SOL, 0, 0)?;
    let recipient = Wallet::new().address;
    let plan = PaymentPlan::new(transfer(&ledger, Asset::Sol, SOL, &payer, recipient));

    futures::executor::block_on(async {
        pay(&ledger, &payer, &plan).await??;
        assert_eq!(balance(&ledger, &recipient, Asset::Sol).await?, SOL);
        Ok(())
    })
}
