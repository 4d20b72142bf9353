//! Property tests of the request handler, in process: whatever arrives on a line, the handler
//! answers with one protocol response and never panics, and nothing but an exact payment is
//! signed.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use clawfirst_core::grant::{GrantSigner, GrantVerifier};
use clawfirst_core::secret::SecretString;
use clawfirst_core::signer_proto::{SignerErrorCode, SignerResponse};
use clawfirst_core::{Address, KeyId};
use clawfirst_signer::backend::dangerous_dev_keyfile::{DevKeyfileBackend, encrypt};
use clawfirst_signer::backend::{KeyBackend, Keys};
use clawfirst_signer::{Service, Store};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::fixtures::{body_for, message_for, sign_request, sol_transfer, usdc_transfer};
use crate::harness::{Error, TEST_KDF, TestResult};

struct InProcess {
    _dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    service: Arc<Service>,
    grants: GrantSigner,
    key_id: KeyId,
    wallet: Address,
}

impl InProcess {
    fn new() -> Result<InProcess, Error> {
        let dir = tempfile::tempdir()?;
        let seed: [u8; 32] = rand::random();
        let wallet = Address::new(SigningKey::from_bytes(&seed).verifying_key().to_bytes());
        let passphrase = SecretString::new("in-process".to_owned());
        let sealed = encrypt(&seed, &wallet, &passphrase, TEST_KDF)?;
        let backend: Arc<dyn KeyBackend> =
            Arc::new(DevKeyfileBackend::decrypt(&sealed, &passphrase)?);
        let key_id = KeyId::new("default")?;
        let grants = GrantSigner::generate();
        let service = Service::new(
            Keys::from_backends([(key_id.clone(), backend)]),
            GrantVerifier::new(grants.public_key())?,
            Store::open(&dir.path().join("signer.sqlite"))?,
            None,
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(InProcess {
            _dir: dir,
            runtime,
            service: Arc::new(service),
            grants,
            key_id,
            wallet,
        })
    }

    fn handle(&self, line: &[u8]) -> SignerResponse {
        self.runtime.block_on(self.service.handle_line(line))
    }
}

/// Request-shaped lines: protocol keys and values mixed with arbitrary text.
fn request_like() -> impl Strategy<Value = Vec<u8>> {
    let op = prop_oneof![
        Just("sign".to_owned()),
        Just("health".to_owned()),
        Just("public_key".to_owned()),
        Just("grant_status".to_owned()),
        any::<String>(),
    ];
    let field = prop_oneof![
        Just("key_id".to_owned()),
        Just("message".to_owned()),
        Just("grant".to_owned()),
        Just("grant_id".to_owned()),
        any::<String>(),
    ];
    let value = prop_oneof![
        any::<String>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        Just(serde_json::json!({"body": "Q0ZHUkFOVDE=", "signature": ""})),
        Just(serde_json::Value::Null),
    ];
    (op, prop::collection::vec((field, value), 0..4)).prop_map(|(op, fields)| {
        let mut object = serde_json::Map::new();
        object.insert("op".to_owned(), serde_json::Value::from(op));
        object.extend(fields);
        serde_json::to_vec(&object).unwrap_or_default()
    })
}

#[test]
fn no_line_panics_the_handler_or_breaks_the_framing() -> TestResult {
    let signer = InProcess::new()?;
    let lines = prop_oneof![prop::collection::vec(any::<u8>(), 0..1024), request_like()];
    let mut runner = TestRunner::new(Config {
        cases: 1024,
        ..Config::default()
    });
    runner
        .run(&lines, |line| {
            let response = signer.handle(&line);
            let encoded =
                serde_json::to_string(&response).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(!encoded.contains('\n'), "a response must stay on one line");
            prop_assert!(
                !matches!(response, SignerResponse::Signed { .. }),
                "signed {line:?}"
            );
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[test]
fn a_grant_over_mutated_bytes_is_signed_only_when_they_still_pay_exactly_the_grant() -> TestResult {
    let signer = InProcess::new()?;
    let sol = sol_transfer(signer.wallet);
    let usdc = usdc_transfer(signer.wallet);
    let messages = [(sol, message_for(&sol)?), (usdc, message_for(&usdc)?)];
    let mutation = (0..2usize, any::<prop::sample::Index>(), 1..=255u8);
    let mut runner = TestRunner::new(Config {
        cases: 512,
        ..Config::default()
    });
    runner
        .run(&mutation, |(which, index, xor)| {
            let (transfer, original) = &messages[which];
            let mut message = original.clone();
            let at = index.index(message.len());
            message[at] ^= xor;

            // The approval layer is compromised: it grants exactly these mutated bytes.
            let body = body_for(&signer.key_id, transfer, &message)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let request = sign_request(&signer.key_id, &message, signer.grants.sign(&body));
            let line =
                serde_json::to_vec(&request).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let still_exact = clawfirst_solana::decode_payment(&message)
                .is_ok_and(|decoded| clawfirst_solana::check_matches(&decoded, transfer).is_ok());
            match signer.handle(&line) {
                SignerResponse::Signed { .. } => {
                    prop_assert!(still_exact, "signed byte {at} ^ {xor}")
                }
                SignerResponse::Error {
                    code: SignerErrorCode::MessageMismatch,
                    ..
                } => {
                    prop_assert!(!still_exact, "refused an exact payment");
                }
                other => prop_assert!(false, "unexpected {other:?}"),
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[test]
fn the_request_message_must_be_base64() -> TestResult {
    let signer = InProcess::new()?;
    let transfer = sol_transfer(signer.wallet);
    let message = message_for(&transfer)?;
    let body = body_for(&signer.key_id, &transfer, &message)?;
    let mut request = serde_json::to_value(sign_request(
        &signer.key_id,
        &message,
        signer.grants.sign(&body),
    ))?;
    request["message"] = serde_json::Value::from(format!("{}!", B64.encode(&message)));
    let response = signer.handle(&serde_json::to_vec(&request)?);
    crate::fixtures::assert_refused(&response, SignerErrorCode::BadRequest);
    Ok(())
}
