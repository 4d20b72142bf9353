//! Parsing arbitrary text as an approver's `Authorization` header must never panic, and a
//! header that parses must verify or be refused cleanly, whatever the request it is checked
//! against.

#![no_main]

use clawfirst_core::Address;
use clawfirst_core::approval::request::ApproverAuthorization;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(auth) = ApproverAuthorization::parse(text) {
        let key = Address::new([7; 32]);
        let _ = auth.verify(&key, "GET", "/admin/v1/approvals", auth.at_ms);
    }
});
