//! Tests of the decoder: acceptance of what the builder makes here, one test per refusal in
//! the submodules, on messages built by hand so that each breaks exactly one rule.

use clawfirst_core::{Address, Asset, Transfer};
use solana_hash::Hash;
use solana_instruction::{AccountMeta, Instruction};
use solana_message::{Message, MessageHeader};

use super::*;
use crate::payment::{BuildError, PaymentPlan, build_message};
use crate::programs::{ASSOCIATED_TOKEN_PROGRAM, COMPUTE_BUDGET_PROGRAM, MEMO_PROGRAM, to_sdk};
use crate::wire::encode_legacy_message;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const BLOCKHASH: [u8; 32] = [9; 32];

fn addr(n: u8) -> Address {
    Address::new([n; 32])
}

fn payer() -> Address {
    addr(1)
}

fn recipient() -> Address {
    addr(2)
}

fn mint() -> Address {
    addr(3)
}

fn sol() -> Transfer {
    Transfer {
        asset: Asset::Sol,
        mint: None,
        amount: 1_500,
        recipient: recipient(),
        payer: payer(),
    }
}

fn usdc() -> Transfer {
    Transfer {
        asset: Asset::Usdc,
        mint: Some(mint()),
        amount: 2_500_000,
        recipient: recipient(),
        payer: payer(),
    }
}

/// Compiles instructions as the SDK does, fee payer first.
fn compile(instructions: &[Instruction]) -> Result<Vec<u8>, crate::wire::WireError> {
    let payer = to_sdk(payer());
    let message =
        Message::new_with_blockhash(instructions, Some(&payer), &Hash::new_from_array(BLOCKHASH));
    encode_legacy_message(&message)
}

fn decode_instructions(instructions: &[Instruction]) -> Result<DecodedPayment, DecodeError> {
    let bytes = compile(instructions).map_err(|_| DecodeError::InvalidHeader)?;
    decode_payment(&bytes)
}

fn sol_transfer_ix(from: Address, to: Address, lamports: u64) -> Instruction {
    solana_system_interface::instruction::transfer(&to_sdk(from), &to_sdk(to), lamports)
}

fn limit_ix(units: u32) -> Instruction {
    solana_compute_budget_interface::ComputeBudgetInstruction::set_compute_unit_limit(units)
}

fn price_ix(micro_lamports: u64) -> Instruction {
    solana_compute_budget_interface::ComputeBudgetInstruction::set_compute_unit_price(
        micro_lamports,
    )
}

fn ata(owner: Address, mint: Address) -> Address {
    associated_token_address(&owner, &mint)
}

/// `TransferChecked` with the authority as signer or not.
fn transfer_checked_ix(
    source: Address,
    destination: Address,
    authority: Address,
    amount: u64,
) -> Instruction {
    let mut data = vec![12];
    data.extend_from_slice(&amount.to_le_bytes());
    data.push(6);
    Instruction {
        program_id: to_sdk(TOKEN_PROGRAM),
        accounts: vec![
            AccountMeta::new(to_sdk(source), false),
            AccountMeta::new_readonly(to_sdk(mint()), false),
            AccountMeta::new(to_sdk(destination), false),
            AccountMeta::new_readonly(to_sdk(authority), authority == payer()),
        ],
        data,
    }
}

fn create_ix(funding: Address, wallet: Address, mint: Address) -> Instruction {
    spl_associated_token_account_interface::instruction::create_associated_token_account_idempotent(
        &to_sdk(funding),
        &to_sdk(wallet),
        &to_sdk(mint),
        &to_sdk(TOKEN_PROGRAM),
    )
}

fn memo_ix(data: &[u8]) -> Instruction {
    Instruction {
        program_id: to_sdk(MEMO_PROGRAM),
        accounts: vec![],
        data: data.to_vec(),
    }
}

fn good_token_ixs() -> Vec<Instruction> {
    vec![
        create_ix(payer(), recipient(), mint()),
        transfer_checked_ix(
            ata(payer(), mint()),
            ata(recipient(), mint()),
            payer(),
            2_500_000,
        ),
    ]
}

mod instructions;
mod matching;
mod structure;

#[test]
fn decodes_a_built_sol_payment() -> TestResult {
    let plan = PaymentPlan {
        transfer: sol(),
        compute_unit_limit: 1_000,
        compute_unit_price_micro_lamports: 7,
        memo: Some("invoice 42".to_owned()),
    };
    let decoded = decode_payment(&build_message(&plan, BLOCKHASH)?)?;
    assert_eq!(decoded.fee_payer, payer());
    assert_eq!(decoded.recent_blockhash, BLOCKHASH);
    assert_eq!(
        decoded.transfer,
        DecodedTransfer::Sol {
            from: payer(),
            to: recipient(),
            lamports: 1_500
        }
    );
    assert_eq!(decoded.compute_unit_limit, Some(1_000));
    assert_eq!(decoded.compute_unit_price_micro_lamports, Some(7));
    assert!(!decoded.creates_recipient_account);
    assert_eq!(decoded.memo.as_deref(), Some(&b"invoice 42"[..]));
    check_matches(&decoded, &sol())?;
    Ok(())
}

#[test]
fn built_token_payment_has_the_documented_instruction_order() -> TestResult {
    let mut plan = PaymentPlan::new(usdc());
    plan.memo = Some("m".to_owned());
    let bytes = build_message(&plan, BLOCKHASH)?;
    let raw = parse::parse(&bytes)?;
    let programs: Vec<Address> = raw.instructions.iter().map(|ix| ix.program).collect();
    assert_eq!(
        programs,
        [
            COMPUTE_BUDGET_PROGRAM,
            COMPUTE_BUDGET_PROGRAM,
            ASSOCIATED_TOKEN_PROGRAM,
            TOKEN_PROGRAM,
            MEMO_PROGRAM
        ]
    );
    assert_eq!(
        raw.instructions.first().map(|ix| ix.data.first()),
        Some(Some(&2))
    );

    let decoded = decode_payment(&bytes)?;
    assert!(decoded.creates_recipient_account);
    assert_eq!(
        decoded.transfer,
        DecodedTransfer::Token {
            mint: mint(),
            decimals: 6,
            amount: 2_500_000,
            owner: payer(),
            destination: ata(recipient(), mint()),
            recipient: Some(recipient()),
        }
    );
    check_matches(&decoded, &usdc())?;
    Ok(())
}

#[test]
fn accepts_v0_without_lookups_and_refuses_lookups_and_other_versions() -> TestResult {
    let legacy = build_message(&PaymentPlan::new(sol()), BLOCKHASH)?;
    let mut v0 = vec![0x80];
    v0.extend_from_slice(&legacy);
    v0.push(0);
    assert_eq!(decode_payment(&v0)?, decode_payment(&legacy)?);

    let mut with_lookup = v0.clone();
    with_lookup.pop();
    with_lookup.extend_from_slice(&[1]);
    with_lookup.extend_from_slice(&[5; 32]);
    with_lookup.extend_from_slice(&[1, 0, 0]);
    assert_eq!(
        decode_payment(&with_lookup),
        Err(DecodeError::AddressTableLookups)
    );

    let mut v1 = v0.clone();
    v1[0] = 0x81;
    assert_eq!(decode_payment(&v1), Err(DecodeError::UnsupportedVersion(1)));
    Ok(())
}

#[test]
fn refuses_every_truncation_and_trailing_bytes() -> TestResult {
    let bytes = build_message(&PaymentPlan::new(usdc()), BLOCKHASH)?;
    for len in 0..bytes.len() {
        assert!(
            decode_payment(&bytes[..len]).is_err(),
            "prefix of {len} bytes decoded"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(decode_payment(&longer), Err(DecodeError::TrailingBytes));
    assert_eq!(
        decode_payment(&vec![0; 2_000]),
        Err(DecodeError::TooLarge(2_000))
    );
    Ok(())
}
