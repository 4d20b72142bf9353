//! API cases about the message: it must perform exactly the granted transfer, from the key.

use clawfirst_core::signer_proto::SignerErrorCode;
use clawfirst_core::{Asset, Transfer};

use super::expect_refusal;
use crate::fixtures::*;
use crate::harness::{Signer, TestResult};

/// A grant for `granted` whose hash names a message built for `actual`: the hash check
/// passes, the transaction check must not.
fn refuse_message_for(signer: &Signer, granted: Transfer, actual: Transfer) -> TestResult {
    let message = message_for(&actual)?;
    let body = body_for(&signer.key_id, &granted, &message)?;
    let request = sign_request(&signer.key_id, &message, signer.grants.sign(&body));
    expect_refusal(signer, &request, &body, SignerErrorCode::MessageMismatch)
}

pub fn refuses_a_message_paying_another_recipient(signer: &Signer) -> TestResult {
    let granted = usdc_transfer(signer.wallet);
    let actual = Transfer {
        recipient: random_address(),
        ..granted
    };
    refuse_message_for(signer, granted, actual)?;
    let granted = sol_transfer(signer.wallet);
    refuse_message_for(
        signer,
        granted,
        Transfer {
            recipient: random_address(),
            ..granted
        },
    )
}

pub fn refuses_a_message_paying_another_amount(signer: &Signer) -> TestResult {
    let granted = usdc_transfer(signer.wallet);
    refuse_message_for(
        signer,
        granted,
        Transfer {
            amount: granted.amount + 1,
            ..granted
        },
    )?;
    let granted = sol_transfer(signer.wallet);
    refuse_message_for(
        signer,
        granted,
        Transfer {
            amount: granted.amount * 10,
            ..granted
        },
    )
}

pub fn refuses_a_message_paying_another_mint(signer: &Signer) -> TestResult {
    let granted = usdc_transfer(signer.wallet);
    refuse_message_for(
        signer,
        granted,
        Transfer {
            mint: Some(random_address()),
            ..granted
        },
    )
}

pub fn refuses_a_message_paying_another_asset(signer: &Signer) -> TestResult {
    let granted = usdc_transfer(signer.wallet);
    let as_bonk = Transfer {
        asset: Asset::Bonk,
        mint: Some(clawfirst_solana::ledger::MAINNET_BONK_MINT),
        ..granted
    };
    refuse_message_for(signer, granted, as_bonk)?;
    let as_sol = Transfer {
        asset: Asset::Sol,
        mint: None,
        ..granted
    };
    refuse_message_for(signer, granted, as_sol)?;
    // The same mint, but the grant calls it BONK: the decimals no longer fit the asset.
    let relabelled = Transfer {
        asset: Asset::Bonk,
        ..granted
    };
    refuse_message_for(signer, relabelled, granted)
}

pub fn refuses_a_message_with_an_extra_instruction(signer: &Signer) -> TestResult {
    for transfer in [sol_transfer(signer.wallet), usdc_transfer(signer.wallet)] {
        let message = with_last_instruction_repeated(&message_for(&transfer)?)?;
        let body = body_for(&signer.key_id, &transfer, &message)?;
        let request = sign_request(&signer.key_id, &message, signer.grants.sign(&body));
        expect_refusal(signer, &request, &body, SignerErrorCode::MessageMismatch)?;
    }
    Ok(())
}

pub fn refuses_a_payer_that_is_not_the_key(signer: &Signer) -> TestResult {
    let stranger = random_address();
    // Grant and message agree with each other, but neither is paid by this key.
    let transfer = sol_transfer(stranger);
    let g = granted(&signer.grants, &signer.key_id, &transfer)?;
    expect_refusal(
        signer,
        &g.request,
        &g.body,
        SignerErrorCode::MessageMismatch,
    )?;
    let transfer = usdc_transfer(stranger);
    let g = granted(&signer.grants, &signer.key_id, &transfer)?;
    expect_refusal(
        signer,
        &g.request,
        &g.body,
        SignerErrorCode::MessageMismatch,
    )?;
    // The grant names this key as payer, the message is paid by someone else.
    let granted = sol_transfer(signer.wallet);
    refuse_message_for(
        signer,
        granted,
        Transfer {
            payer: stranger,
            ..granted
        },
    )
}
