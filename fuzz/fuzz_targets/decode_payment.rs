//! Decoding arbitrary bytes as a payment message must never panic, and whatever decodes must
//! keep the decoder's own promises.

#![no_main]

use clawfirst_solana::decode::{DecodedTransfer, decode_payment};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(payment) = decode_payment(data) else {
        return;
    };
    // The decoder only accepts value that leaves the fee payer, and memos within the limit.
    match payment.transfer {
        DecodedTransfer::Sol { from, .. } => assert_eq!(from, payment.fee_payer),
        DecodedTransfer::Token { owner, .. } => assert_eq!(owner, payment.fee_payer),
    }
    if let Some(memo) = &payment.memo {
        assert!(memo.len() <= clawfirst_solana::payment::MAX_MEMO_LEN);
        assert!(std::str::from_utf8(memo).is_ok());
    }
});
