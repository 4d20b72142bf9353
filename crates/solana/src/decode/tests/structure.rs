//! Refusals of structurally defective messages the SDK would never produce.

use super::*;

/// A message assembled field by field, for structural errors the SDK never produces.
fn raw_message(
    header: (u8, u8, u8),
    keys: &[Address],
    instructions: Vec<(u8, Vec<u8>, Vec<u8>)>,
) -> Vec<u8> {
    let message = Message {
        header: MessageHeader {
            num_required_signatures: header.0,
            num_readonly_signed_accounts: header.1,
            num_readonly_unsigned_accounts: header.2,
        },
        account_keys: keys.iter().map(|k| to_sdk(*k)).collect(),
        recent_blockhash: Hash::new_from_array(BLOCKHASH),
        instructions: instructions
            .into_iter()
            .map(|(program_id_index, accounts, data)| {
                solana_message::compiled_instruction::CompiledInstruction {
                    program_id_index,
                    accounts,
                    data,
                }
            })
            .collect(),
    };
    encode_legacy_message(&message).unwrap_or_default()
}

#[test]
fn refuses_structural_defects() {
    let transfer_data = [2u32.to_le_bytes().as_slice(), &5u64.to_le_bytes()].concat();
    let keys = [payer(), recipient(), SYSTEM_PROGRAM];
    let ok = raw_message(
        (1, 0, 1),
        &keys,
        vec![(2, vec![0, 1], transfer_data.clone())],
    );
    assert!(decode_payment(&ok).is_ok());

    let readonly_payer = raw_message(
        (1, 1, 1),
        &keys,
        vec![(2, vec![0, 1], transfer_data.clone())],
    );
    assert_eq!(
        decode_payment(&readonly_payer),
        Err(DecodeError::FeePayerReadonly)
    );

    let bad_header = raw_message(
        (1, 0, 3),
        &keys,
        vec![(2, vec![0, 1], transfer_data.clone())],
    );
    assert_eq!(decode_payment(&bad_header), Err(DecodeError::InvalidHeader));

    let dup = raw_message(
        (1, 0, 1),
        &[payer(), recipient(), recipient(), SYSTEM_PROGRAM],
        vec![],
    );
    assert_eq!(decode_payment(&dup), Err(DecodeError::DuplicateAccount));

    let out_of_range = raw_message(
        (1, 0, 1),
        &keys,
        vec![(2, vec![0, 3], transfer_data.clone())],
    );
    assert_eq!(
        decode_payment(&out_of_range),
        Err(DecodeError::AccountIndexOutOfRange)
    );

    let program_out_of_range = raw_message(
        (1, 0, 1),
        &keys,
        vec![(9, vec![0, 1], transfer_data.clone())],
    );
    assert_eq!(
        decode_payment(&program_out_of_range),
        Err(DecodeError::AccountIndexOutOfRange)
    );

    let payer_as_program = raw_message(
        (1, 0, 1),
        &keys,
        vec![(0, vec![0, 1], transfer_data.clone())],
    );
    assert_eq!(
        decode_payment(&payer_as_program),
        Err(DecodeError::ProgramIsFeePayer)
    );

    let unused = raw_message(
        (1, 0, 1),
        &[payer(), recipient(), addr(7), SYSTEM_PROGRAM],
        vec![(3, vec![0, 1], transfer_data.clone())],
    );
    assert_eq!(decode_payment(&unused), Err(DecodeError::UnusedAccount));

    let many = raw_message((1, 0, 1), &keys, vec![(2, vec![0, 1], transfer_data); 6]);
    assert_eq!(
        decode_payment(&many),
        Err(DecodeError::TooManyInstructions(6))
    );
}

#[test]
fn refuses_non_canonical_lengths() -> TestResult {
    let bytes = build_message(&PaymentPlan::new(sol()), BLOCKHASH)?;
    // Byte 3 is the account-key count (a single byte here); spell it in two bytes.
    let count = bytes.get(3).copied().ok_or("short message")?;
    let mut aliased = bytes[..3].to_vec();
    aliased.extend_from_slice(&[count | 0x80, 0]);
    aliased.extend_from_slice(&bytes[4..]);
    assert_eq!(
        decode_payment(&aliased),
        Err(DecodeError::NonCanonicalLength)
    );
    Ok(())
}
