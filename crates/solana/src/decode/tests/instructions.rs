//! Refusals of instructions outside the allowlist or in the wrong shape.

use solana_instruction::{AccountMeta, Instruction};

use super::*;

#[test]
fn refuses_a_second_signer() {
    let other = addr(7);
    let ixs = [
        sol_transfer_ix(payer(), recipient(), 5),
        sol_transfer_ix(other, recipient(), 5),
    ];
    assert_eq!(decode_instructions(&ixs), Err(DecodeError::SignerCount(2)));
}

#[test]
fn refuses_programs_and_instructions_outside_the_allowlist() {
    let unknown = Instruction {
        program_id: to_sdk(addr(8)),
        accounts: vec![],
        data: vec![],
    };
    let ixs = [sol_transfer_ix(payer(), recipient(), 5), unknown];
    assert_eq!(
        decode_instructions(&ixs),
        Err(DecodeError::UnknownProgram(addr(8)))
    );

    let token_2022 = Address::parse("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb").ok();
    let mut ix = transfer_checked_ix(ata(payer(), mint()), ata(recipient(), mint()), payer(), 1);
    if let Some(id) = token_2022 {
        ix.program_id = to_sdk(id);
        assert_eq!(
            decode_instructions(&[ix]),
            Err(DecodeError::UnknownProgram(id))
        );
    }

    // A plain SPL Token `Transfer` (tag 3), which does not state the mint or decimals.
    let mut plain = transfer_checked_ix(ata(payer(), mint()), ata(recipient(), mint()), payer(), 1);
    plain.data = [&[3u8][..], &1u64.to_le_bytes()].concat();
    assert_eq!(
        decode_instructions(&[plain]),
        Err(DecodeError::UnsupportedInstruction("token"))
    );

    // System `Assign` (tag 1) is a System instruction, but not a transfer.
    let mut assign = sol_transfer_ix(payer(), recipient(), 5);
    assign.data = [1u32.to_le_bytes(), [0; 4]].concat();
    assert_eq!(
        decode_instructions(&[assign]),
        Err(DecodeError::UnsupportedInstruction("system"))
    );

    // `RequestHeapFrame` is a Compute Budget instruction payments do not use.
    let heap =
        solana_compute_budget_interface::ComputeBudgetInstruction::request_heap_frame(64 * 1024);
    let ixs = [heap, sol_transfer_ix(payer(), recipient(), 5)];
    assert_eq!(
        decode_instructions(&ixs),
        Err(DecodeError::UnsupportedInstruction("compute budget"))
    );
}

#[test]
fn refuses_duplicates_and_out_of_range_compute_budget() {
    let t = sol_transfer_ix(payer(), recipient(), 5);
    let ixs = [limit_ix(1), limit_ix(2), t.clone()];
    assert_eq!(
        decode_instructions(&ixs),
        Err(DecodeError::DuplicateInstruction("compute-unit limit"))
    );
    let ixs = [price_ix(1), price_ix(1), t.clone()];
    assert_eq!(
        decode_instructions(&ixs),
        Err(DecodeError::DuplicateInstruction("compute-unit price"))
    );
    let ixs = [limit_ix(1_400_001), t.clone()];
    assert_eq!(
        decode_instructions(&ixs),
        Err(DecodeError::ComputeUnitLimitTooHigh(1_400_001))
    );
    let ixs = [price_ix(5_000_001), t.clone()];
    assert_eq!(
        decode_instructions(&ixs),
        Err(DecodeError::ComputeUnitPriceTooHigh(5_000_001))
    );
    let ixs = [t.clone(), t];
    assert_eq!(
        decode_instructions(&ixs),
        Err(DecodeError::DuplicateInstruction("system transfer"))
    );
}

#[test]
fn requires_exactly_one_movement_of_value() {
    assert_eq!(
        decode_instructions(&[limit_ix(1)]),
        Err(DecodeError::NoTransfer)
    );
    let mut ixs = good_token_ixs();
    ixs.push(sol_transfer_ix(payer(), recipient(), 5));
    assert_eq!(
        decode_instructions(&ixs),
        Err(DecodeError::MultipleTransfers)
    );
}

#[test]
fn refuses_value_that_does_not_leave_the_fee_payer() {
    // The source is another account, not a signer: the payer only pays the fee.
    let mut ix = sol_transfer_ix(addr(7), recipient(), 5);
    if let Some(meta) = ix.accounts.first_mut() {
        meta.is_signer = false;
    }
    assert_eq!(
        decode_instructions(&[limit_ix(1), ix]),
        Err(DecodeError::FeePayerNotSource)
    );

    let ix = transfer_checked_ix(ata(addr(7), mint()), ata(recipient(), mint()), addr(7), 1);
    assert_eq!(
        decode_instructions(&[limit_ix(1), ix]),
        Err(DecodeError::FeePayerNotSource)
    );

    // The payer signs, but the source is not its associated token account.
    let ix = transfer_checked_ix(addr(7), ata(recipient(), mint()), payer(), 1);
    assert_eq!(
        decode_instructions(&[ix]),
        Err(DecodeError::SourceNotPayerAccount)
    );
}

#[test]
fn account_creation_must_create_the_destination_for_the_payer() {
    let transfer = transfer_checked_ix(ata(payer(), mint()), ata(recipient(), mint()), payer(), 1);

    let ixs = [create_ix(payer(), addr(7), mint()), transfer.clone()];
    assert_eq!(
        decode_instructions(&ixs),
        Err(DecodeError::DestinationMismatch)
    );

    let ixs = [create_ix(payer(), recipient(), addr(7)), transfer.clone()];
    assert_eq!(
        decode_instructions(&ixs),
        Err(DecodeError::CreationMismatch)
    );

    let mut not_derived = create_ix(payer(), recipient(), mint());
    if let Some(meta) = not_derived.accounts.get_mut(1) {
        meta.pubkey = to_sdk(addr(7));
    }
    assert_eq!(
        decode_instructions(&[not_derived, transfer.clone()]),
        Err(DecodeError::CreationMismatch)
    );

    let mut other_funder = create_ix(addr(7), recipient(), mint());
    if let Some(meta) = other_funder.accounts.first_mut() {
        meta.is_signer = false;
    }
    assert_eq!(
        decode_instructions(&[other_funder, transfer.clone()]),
        Err(DecodeError::CreationNotFundedByPayer)
    );

    let ixs = [
        create_ix(payer(), recipient(), mint()),
        sol_transfer_ix(payer(), recipient(), 5),
    ];
    assert_eq!(
        decode_instructions(&ixs),
        Err(DecodeError::CreationWithoutTokenTransfer)
    );

    let mut truncated = create_ix(payer(), recipient(), mint());
    truncated.accounts.pop();
    assert_eq!(
        decode_instructions(&[truncated, transfer]),
        Err(DecodeError::InstructionAccounts("token account creation"))
    );
}

#[test]
fn token_transfer_without_creation_leaves_the_recipient_to_check_matches() -> TestResult {
    let transfer = transfer_checked_ix(
        ata(payer(), mint()),
        ata(recipient(), mint()),
        payer(),
        2_500_000,
    );
    let decoded = decode_instructions(&[transfer])?;
    assert!(!decoded.creates_recipient_account);
    check_matches(&decoded, &usdc())?;

    let elsewhere = transfer_checked_ix(ata(payer(), mint()), addr(7), payer(), 2_500_000);
    let decoded = decode_instructions(&[elsewhere])?;
    assert_eq!(
        check_matches(&decoded, &usdc()),
        Err(MismatchError::Recipient { found: addr(7) })
    );
    Ok(())
}

#[test]
fn memo_must_be_short_utf8_without_accounts() {
    let t = sol_transfer_ix(payer(), recipient(), 5);
    assert_eq!(
        decode_instructions(&[t.clone(), memo_ix(&[b'a'; 257])]),
        Err(DecodeError::MemoTooLong(257))
    );
    assert_eq!(
        decode_instructions(&[t.clone(), memo_ix(&[0xff, 0xfe])]),
        Err(DecodeError::MemoNotUtf8)
    );
    let mut signed_memo = memo_ix(b"hi");
    signed_memo
        .accounts
        .push(AccountMeta::new_readonly(to_sdk(payer()), true));
    assert_eq!(
        decode_instructions(&[t.clone(), signed_memo]),
        Err(DecodeError::InstructionAccounts("memo"))
    );
    assert_eq!(
        decode_instructions(&[t, memo_ix(b"a"), memo_ix(b"b")]),
        Err(DecodeError::DuplicateInstruction("memo"))
    );
}
