//! A request line from the signer's socket, as arbitrary bytes, must never panic the protocol
//! decoder, and a decoded request must survive a round trip.

#![no_main]

use clawfirst_core::signer_proto::SignerRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = serde_json::from_slice::<SignerRequest>(data) {
        let again = serde_json::to_vec(&request).unwrap_or_default();
        assert_eq!(serde_json::from_slice::<SignerRequest>(&again).ok(), Some(request));
    }
});
