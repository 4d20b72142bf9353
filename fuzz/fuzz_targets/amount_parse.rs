//! Parsing arbitrary text as an amount must never panic, and an accepted amount must format
//! back to text that parses to the same value (the formatter is lossless).

#![no_main]

use clawfirst_core::Amount;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(amount) = Amount::parse(text) {
        assert!(amount.base_units() > 0);
        assert_eq!(Amount::parse(&amount.to_string()), Ok(amount));
    }
});
