//! Decoding arbitrary bytes as an approval statement must never panic, and a statement that
//! decodes must encode back to exactly the same bytes (the encoding is canonical). Verifying
//! arbitrary text as a signed approval must never panic either.

#![no_main]

use clawfirst_core::approval::{ApprovalStatement, SignedApproval};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(statement) = ApprovalStatement::decode(data) {
        assert_eq!(statement.encode(), data);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let (statement, signature) = text.split_once('\n').unwrap_or((text, ""));
        let signed = SignedApproval {
            statement: statement.to_owned(),
            signature: signature.to_owned(),
        };
        let _ = signed.verify();
    }
});
