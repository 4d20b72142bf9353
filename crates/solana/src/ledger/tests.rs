//! Tests of the ledger value types and the fee arithmetic.

use clawfirst_core::{Address, Asset, Transfer};

use super::fees::priority_fee;
use super::*;
use crate::payment::PaymentPlan;

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn networks_have_their_cluster_names() -> TestResult {
    for (network, name) in [
        (Network::Localnet, "localnet"),
        (Network::Devnet, "devnet"),
        (Network::MainnetBeta, "mainnet-beta"),
    ] {
        assert_eq!(network.to_string(), name);
        assert_eq!(name.parse::<Network>()?, network);
        assert_eq!(serde_json::to_string(&network)?, format!("\"{name}\""));
    }
    assert_eq!("mainnet".parse::<Network>(), Err(UnknownNetwork));
    Ok(())
}

#[test]
fn commitments_order_and_serialize_in_lower_case() -> TestResult {
    assert!(Commitment::Processed < Commitment::Confirmed);
    assert!(Commitment::Confirmed < Commitment::Finalized);
    assert_eq!(
        serde_json::to_string(&Commitment::Finalized)?,
        "\"finalized\""
    );
    assert_eq!(
        serde_json::from_str::<Commitment>("\"confirmed\"")?,
        Commitment::Confirmed
    );
    assert!(serde_json::from_str::<Commitment>("\"Confirmed\"").is_err());
    assert_eq!(Commitment::Processed.to_string(), "processed");
    Ok(())
}

#[test]
fn known_mints_are_the_spec_addresses() {
    let text = |network, asset| known_mint(network, asset).map(|m: Address| m.to_string());
    assert_eq!(
        text(Network::MainnetBeta, Asset::Usdc).as_deref(),
        Some("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v")
    );
    assert_eq!(
        text(Network::MainnetBeta, Asset::Bonk).as_deref(),
        Some("DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263")
    );
    assert_eq!(
        text(Network::Devnet, Asset::Usdc).as_deref(),
        Some("4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU")
    );
    assert_eq!(known_mint(Network::Devnet, Asset::Bonk), None);
    assert_eq!(known_mint(Network::Localnet, Asset::Usdc), None);
    assert_eq!(known_mint(Network::MainnetBeta, Asset::Sol), None);
}

#[test]
fn priority_fee_rounds_up_to_whole_lamports() {
    assert_eq!(priority_fee(0, 5_000_000), 0);
    assert_eq!(priority_fee(200_000, 0), 0);
    assert_eq!(priority_fee(1, 1), 1);
    assert_eq!(priority_fee(1_000_000, 1), 1);
    assert_eq!(priority_fee(1_000_001, 1), 2);
    assert_eq!(priority_fee(200_000, 5), 1);
    assert_eq!(priority_fee(1_400_000, 5_000_000), 7_000_000);
    assert_eq!(priority_fee(u32::MAX, u64::MAX), u64::MAX);
}

fn plan(asset: Asset) -> PaymentPlan {
    let transfer = Transfer {
        asset,
        mint: asset.is_token().then(|| Address::new([3; 32])),
        amount: 1,
        recipient: Address::new([2; 32]),
        payer: Address::new([1; 32]),
    };
    PaymentPlan {
        transfer,
        compute_unit_limit: 80_000,
        compute_unit_price_micro_lamports: 10_001,
        memo: None,
    }
}

#[test]
fn fee_estimate_adds_base_priority_and_rent_for_new_token_accounts() {
    let schedule = FeeSchedule {
        lamports_per_signature: 5_000,
        token_account_rent_lamports: 2_039_280,
    };

    let new_account = estimate_fee(&plan(Asset::Usdc), &schedule, false);
    // 80_000 * 10_001 = 800_080_000 micro-lamports: 800.08 lamports, rounded up.
    assert_eq!(
        new_account,
        FeeEstimate {
            base_fee_lamports: 5_000,
            priority_fee_lamports: 801,
            rent_lamports: 2_039_280,
            total_lamports: 2_045_081,
        }
    );

    let existing = estimate_fee(&plan(Asset::Usdc), &schedule, true);
    assert_eq!(existing.rent_lamports, 0);
    assert_eq!(existing.total_lamports, 5_801);

    // SOL never pays token-account rent, whatever the recipient's state.
    assert_eq!(
        estimate_fee(&plan(Asset::Sol), &schedule, false).rent_lamports,
        0
    );

    let huge = FeeSchedule {
        lamports_per_signature: u64::MAX,
        token_account_rent_lamports: u64::MAX,
    };
    assert_eq!(
        estimate_fee(&plan(Asset::Bonk), &huge, false).total_lamports,
        u64::MAX
    );
}

#[test]
fn only_transient_failures_are_retryable() {
    assert!(LedgerError::Network("down".into()).is_retryable());
    assert!(
        LedgerError::Rpc {
            code: -32005,
            message: "busy".to_owned()
        }
        .is_retryable()
    );
    assert!(!LedgerError::BlockhashExpired.is_retryable());
    assert!(
        !LedgerError::InsufficientFunds {
            reason: "x".to_owned()
        }
        .is_retryable()
    );
    assert!(
        !LedgerError::Rejected {
            reason: "x".to_owned()
        }
        .is_retryable()
    );
}
