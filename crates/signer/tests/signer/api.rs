//! The API suite: every case runs against each key backend (see `main.rs`). The grant and
//! protocol cases are here, the message cases in `message`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use clawfirst_core::grant::{GrantBody, GrantSigner, MAX_GRANT_LIFETIME_MS, SignedGrant};
use clawfirst_core::signer_proto::{SignerErrorCode, SignerRequest, SignerResponse};
use clawfirst_core::{KeyId, now_ms};
use ed25519_dalek::{Signature, VerifyingKey};

use crate::fixtures::*;
use crate::harness::{Signer, TestResult};

mod message;

pub use message::*;

/// Asks for the grant's status and expects it unused: a refusal before step 5 burns nothing.
fn assert_not_burned(signer: &Signer, body: &GrantBody) -> TestResult {
    let status = signer.connect()?.request(&SignerRequest::GrantStatus {
        grant_id: body.grant_id.to_string(),
    })?;
    assert_eq!(
        status,
        SignerResponse::GrantStatus {
            used: false,
            signature: None
        }
    );
    Ok(())
}

/// Sends `request` and expects the refusal `code`; the grant must stay unused.
pub(super) fn expect_refusal(
    signer: &Signer,
    request: &SignerRequest,
    body: &GrantBody,
    code: SignerErrorCode,
) -> TestResult {
    let response = signer.connect()?.request(request)?;
    assert_refused(&response, code);
    assert_not_burned(signer, body)
}

/// Expects `signed`, verifies the signature over `message` with ed25519-dalek, and checks that
/// `grant_status` reports the same signature afterwards.
fn expect_signed(signer: &Signer, granted: &Granted) -> TestResult {
    let mut client = signer.connect()?;
    let response = client.request(&granted.request)?;
    let SignerResponse::Signed {
        signature,
        public_key,
    } = response
    else {
        panic!("expected a signature, got {response:?}");
    };
    assert_eq!(public_key, signer.wallet);
    let bytes: [u8; 64] = bs58::decode(&signature).into_vec()?.as_slice().try_into()?;
    VerifyingKey::from_bytes(signer.wallet.as_bytes())?
        .verify_strict(&granted.message, &Signature::from_bytes(&bytes))?;

    let status = client.request(&SignerRequest::GrantStatus {
        grant_id: granted.body.grant_id.to_string(),
    })?;
    assert_eq!(
        status,
        SignerResponse::GrantStatus {
            used: true,
            signature: Some(signature)
        }
    );
    Ok(())
}

pub fn signs_a_sol_payment_with_a_verifiable_signature(signer: &Signer) -> TestResult {
    let granted = granted(&signer.grants, &signer.key_id, &sol_transfer(signer.wallet))?;
    expect_signed(signer, &granted)
}

pub fn signs_a_usdc_payment_with_a_verifiable_signature(signer: &Signer) -> TestResult {
    let granted = granted(
        &signer.grants,
        &signer.key_id,
        &usdc_transfer(signer.wallet),
    )?;
    expect_signed(signer, &granted)
}

pub fn answers_health_and_public_key(signer: &Signer) -> TestResult {
    let mut client = signer.connect()?;
    let health = client.request(&SignerRequest::Health {})?;
    let kind = match signer.backend {
        crate::harness::Backend::Keyfile => "dangerous_dev_keyfile",
        crate::harness::Backend::Pkcs11 => "pkcs11",
    };
    assert_eq!(
        health,
        SignerResponse::Health {
            keys: vec![signer.key_id.clone()],
            backend: kind.to_owned()
        }
    );
    let key = client.request(&SignerRequest::PublicKey {
        key_id: signer.key_id.clone(),
    })?;
    assert_eq!(
        key,
        SignerResponse::PublicKey {
            key_id: signer.key_id.clone(),
            public_key: signer.wallet
        }
    );
    let unknown = client.request(&SignerRequest::PublicKey {
        key_id: KeyId::new("ghost")?,
    })?;
    assert_refused(&unknown, SignerErrorCode::UnknownKey);
    Ok(())
}

pub fn refuses_a_grant_signed_by_another_key(signer: &Signer) -> TestResult {
    let g = granted(&signer.grants, &signer.key_id, &sol_transfer(signer.wallet))?;
    let forged = GrantSigner::generate().sign(&g.body);
    let request = sign_request(&signer.key_id, &g.message, forged);
    expect_refusal(
        signer,
        &request,
        &g.body,
        SignerErrorCode::GrantBadSignature,
    )
}

pub fn refuses_an_edited_grant_body(signer: &Signer) -> TestResult {
    let g = granted(&signer.grants, &signer.key_id, &sol_transfer(signer.wallet))?;
    let signed = signer.grants.sign(&g.body);
    // Raise the amount inside the signed body (the 8 bytes before recipient and payer).
    let mut bytes = B64.decode(&signed.body)?;
    let amount_at = bytes.len() - 64 - 8;
    bytes[amount_at] ^= 0x01;
    let edited = SignedGrant {
        body: B64.encode(&bytes),
        signature: signed.signature,
    };
    let request = sign_request(&signer.key_id, &g.message, edited);
    expect_refusal(
        signer,
        &request,
        &g.body,
        SignerErrorCode::GrantBadSignature,
    )
}

pub fn refuses_a_malformed_grant(signer: &Signer) -> TestResult {
    let g = granted(&signer.grants, &signer.key_id, &sol_transfer(signer.wallet))?;
    let signed = signer.grants.sign(&g.body);
    let garbled = SignedGrant {
        body: "%%% not base64 %%%".to_owned(),
        ..signed
    };
    let request = sign_request(&signer.key_id, &g.message, garbled);
    expect_refusal(signer, &request, &g.body, SignerErrorCode::GrantMalformed)
}

pub fn refuses_an_expired_grant(signer: &Signer) -> TestResult {
    let transfer = sol_transfer(signer.wallet);
    let message = message_for(&transfer)?;
    let mut body = body_for(&signer.key_id, &transfer, &message)?;
    body.issued_at_ms = now_ms() - 120_000;
    body.expires_at_ms = now_ms() - 60_000;
    let request = sign_request(&signer.key_id, &message, signer.grants.sign(&body));
    expect_refusal(signer, &request, &body, SignerErrorCode::GrantExpired)
}

pub fn refuses_a_grant_with_too_long_a_lifetime(signer: &Signer) -> TestResult {
    let transfer = sol_transfer(signer.wallet);
    let message = message_for(&transfer)?;
    let mut body = body_for(&signer.key_id, &transfer, &message)?;
    body.expires_at_ms = body.issued_at_ms + MAX_GRANT_LIFETIME_MS + 1;
    let request = sign_request(&signer.key_id, &message, signer.grants.sign(&body));
    expect_refusal(signer, &request, &body, SignerErrorCode::GrantExpired)
}

pub fn refuses_a_replayed_grant(signer: &Signer) -> TestResult {
    let g = granted(&signer.grants, &signer.key_id, &sol_transfer(signer.wallet))?;
    expect_signed(signer, &g)?;
    let again = signer.connect()?.request(&g.request)?;
    assert_refused(&again, SignerErrorCode::GrantReplayed);
    Ok(())
}

pub fn admits_exactly_one_of_concurrent_requests_with_one_grant(signer: &Signer) -> TestResult {
    const RACERS: usize = 8;
    let g = granted(
        &signer.grants,
        &signer.key_id,
        &usdc_transfer(signer.wallet),
    )?;
    let mut clients = (0..RACERS)
        .map(|_| signer.connect())
        .collect::<Result<Vec<_>, _>>()?;
    let barrier = std::sync::Barrier::new(RACERS);
    let responses = std::thread::scope(|scope| {
        let handles: Vec<_> = clients
            .iter_mut()
            .map(|client| {
                let (barrier, request) = (&barrier, &g.request);
                scope.spawn(move || {
                    barrier.wait();
                    client.request(request).map_err(|e| e.to_string())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| "racer panicked".to_owned())?)
            .collect::<Result<Vec<_>, _>>()
    })?;
    let signed = responses
        .iter()
        .filter(|r| matches!(r, SignerResponse::Signed { .. }))
        .count();
    let replayed = responses
        .iter()
        .filter(|r| {
            matches!(
                r,
                SignerResponse::Error {
                    code: SignerErrorCode::GrantReplayed,
                    ..
                }
            )
        })
        .count();
    assert_eq!((signed, replayed), (1, RACERS - 1), "{responses:?}");
    Ok(())
}

pub fn refuses_a_grant_for_another_key_id(signer: &Signer) -> TestResult {
    let transfer = sol_transfer(signer.wallet);
    let message = message_for(&transfer)?;
    let body = body_for(&KeyId::new("other")?, &transfer, &message)?;
    let request = sign_request(&signer.key_id, &message, signer.grants.sign(&body));
    expect_refusal(signer, &request, &body, SignerErrorCode::GrantMismatch)
}

pub fn refuses_a_key_id_that_is_not_configured(signer: &Signer) -> TestResult {
    let ghost = KeyId::new("ghost")?;
    let g = granted(&signer.grants, &ghost, &sol_transfer(signer.wallet))?;
    expect_refusal(signer, &g.request, &g.body, SignerErrorCode::UnknownKey)
}

pub fn refuses_a_message_whose_hash_differs_from_the_grant(signer: &Signer) -> TestResult {
    let transfer = sol_transfer(signer.wallet);
    let g = granted(&signer.grants, &signer.key_id, &transfer)?;
    // The same transfer under another blockhash: a different message the grant does not name.
    let other = message_for(&transfer)?;
    let request = sign_request(&signer.key_id, &other, signer.grants.sign(&g.body));
    expect_refusal(signer, &request, &g.body, SignerErrorCode::GrantMismatch)
}

pub fn refuses_bad_requests_and_keeps_the_connection(signer: &Signer) -> TestResult {
    let mut client = signer.connect()?;
    for line in [
        &b"not json\n"[..],
        b"{}\n",
        b"{\"op\":\"public_key\",\"key_id\":\"default\",\"extra\":1}\n",
        b"{\"op\":\"public_key\",\"key_id\":\"bad id\"}\n",
        b"{\"op\":\"launch\"}\n",
        b"{\"op\":\"grant_status\",\"grant_id\":\"xyz\"}\n",
        b"\n",
        b"\xff\xfe\n",
    ] {
        assert_refused(&client.send_raw(line)?, SignerErrorCode::BadRequest);
    }
    let g = granted(&signer.grants, &signer.key_id, &sol_transfer(signer.wallet))?;
    let SignerRequest::Sign { key_id, grant, .. } = g.request else {
        unreachable!()
    };
    let bad_message = SignerRequest::Sign {
        key_id,
        message: "***".to_owned(),
        grant,
        approvals: Vec::new(),
    };
    assert_refused(&client.request(&bad_message)?, SignerErrorCode::BadRequest);
    assert!(matches!(
        client.request(&SignerRequest::Health {})?,
        SignerResponse::Health { .. }
    ));
    Ok(())
}

pub fn records_every_request_in_the_database(signer: &Signer) -> TestResult {
    let before = signer.request_log()?.len();
    let g = granted(&signer.grants, &signer.key_id, &sol_transfer(signer.wallet))?;
    let mut client = signer.connect()?;
    client.request(&g.request)?;
    client.request(&g.request)?;
    client.send_raw(b"nonsense\n")?;
    let log = signer.request_log()?;
    let recent: Vec<(&str, &str)> = log[before..]
        .iter()
        .map(|(op, outcome)| (op.as_str(), outcome.as_str()))
        .collect();
    assert_eq!(
        recent,
        [
            ("sign", "signed"),
            ("sign", "grant_replayed"),
            ("invalid", "bad_request")
        ]
    );
    Ok(())
}
