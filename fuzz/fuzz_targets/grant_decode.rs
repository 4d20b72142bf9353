//! Decoding arbitrary bytes as a grant body must never panic, and a body that decodes must
//! encode back to exactly the same bytes (the encoding is canonical).

#![no_main]

use clawfirst_core::grant::GrantBody;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = GrantBody::decode(data) {
        assert_eq!(body.encode(), data);
    }
});
