//! Parsing arbitrary text as a recipient (a Solana address or a payee e-mail) must never
//! panic; an accepted address must print back to the same text.

#![no_main]

use clawfirst_core::recipient::Recipient;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Recipient::parse(text) {
        Ok(Recipient::Address(address)) => assert_eq!(address.to_string(), text),
        Ok(Recipient::Email(email)) => assert_eq!(email, text.to_ascii_lowercase()),
        _ => {}
    }
});
