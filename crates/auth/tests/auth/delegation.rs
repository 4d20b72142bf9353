//! Delegation tokens: the round trip and every refusal reason.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clawfirst_auth::delegation::{
    CLOCK_SKEW_SECONDS, DelegationKey, DelegationRequest, DelegationVerifier, SIGNING_CONTEXT,
    TokenId,
};
use clawfirst_auth::{AuthError, AuthMethod, SetupError};
use clawfirst_core::secret::SecretBytes;
use clawfirst_core::{AgentId, Asset};
use ed25519_dalek::Signer as _;

use crate::support::{NOW, TestResult};

const SEED: [u8; 32] = [42; 32];
const CERT: &[u8] = b"the DER of the agent's client certificate";

fn key() -> Result<DelegationKey, SetupError> {
    DelegationKey::from_seed(&SecretBytes::new(SEED.to_vec()))
}

fn verifier() -> Result<DelegationVerifier, SetupError> {
    DelegationVerifier::new(&key()?.public_key())
}

fn request() -> Result<DelegationRequest, Box<dyn std::error::Error>> {
    Ok(DelegationRequest {
        agent_id: AgentId::new("agent-7")?,
        ttl_seconds: 900,
        max_amounts: BTreeMap::from([(Asset::Usdc, 5_000_000), (Asset::Sol, 1)]),
        bound_certificate_sha256: None,
        generation: 3,
    })
}

/// A token over any payload text, signed with the real delegation key's seed, as a buggy or
/// future issuer might produce.
fn signed(payload: &str) -> String {
    let signing = ed25519_dalek::SigningKey::from_bytes(&SEED);
    let mut message = SIGNING_CONTEXT.to_vec();
    message.extend_from_slice(payload.as_bytes());
    let signature = signing.sign(&message);
    format!(
        "cfdt_{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    )
}

const TID: &str = "00112233445566778899aabbccddeeff";

#[test]
fn issued_tokens_round_trip_with_limits_and_binding() -> TestResult {
    let bound = DelegationRequest {
        bound_certificate_sha256: Some(clawfirst_auth::cert::certificate_sha256(CERT)),
        ..request()?
    };
    let issued = key()?.issue(bound, NOW)?;
    let token = issued.token.expose();
    assert!(token.starts_with("cfdt_"));

    let claims = verifier()?.verify(token, NOW + 10, Some(CERT))?;
    assert_eq!(claims, issued.claims);
    assert_eq!(claims.agent_id.as_str(), "agent-7");
    assert_eq!(claims.expires_at_s, NOW + 900);
    assert_eq!(claims.generation, 3);
    assert_eq!(claims.max_amounts.get(&Asset::Usdc), Some(&5_000_000));

    let payload = token
        .strip_prefix("cfdt_")
        .and_then(|t| t.split_once('.'))
        .map(|(p, _)| URL_SAFE_NO_PAD.decode(p))
        .ok_or("shape")??;
    let expected = format!(
        concat!(
            r#"{{"v":1,"tid":"{}","agent":"agent-7","iat":{NOW},"exp":{},"gen":3,"#,
            r#""max":{{"SOL":"1","USDC":"5000000"}},"cnf":"{}"}}"#,
        ),
        claims.token_id,
        NOW + 900,
        hex::encode(clawfirst_auth::cert::certificate_sha256(CERT)),
        NOW = NOW,
    );
    assert_eq!(String::from_utf8(payload)?, expected);
    Ok(())
}

#[test]
fn every_token_has_its_own_id() -> TestResult {
    let a = key()?.issue(request()?, NOW)?;
    let b = key()?.issue(request()?, NOW)?;
    assert_ne!(a.claims.token_id, b.claims.token_id);
    assert_eq!(
        TokenId::parse_hex(&a.claims.token_id.to_string()),
        Some(a.claims.token_id)
    );
    Ok(())
}

#[test]
fn hostile_tokens_are_refused_with_their_reason() -> TestResult {
    let verifier = verifier()?;
    let good = key()?.issue(request()?, NOW)?.token.expose().to_owned();
    let bound = key()?
        .issue(
            DelegationRequest {
                bound_certificate_sha256: Some(clawfirst_auth::cert::certificate_sha256(CERT)),
                ..request()?
            },
            NOW,
        )?
        .token
        .expose()
        .to_owned();
    let other_key = DelegationKey::generate()
        .issue(request()?, NOW)?
        .token
        .expose()
        .to_owned();

    let (payload, signature) = good.split_once('.').ok_or("shape")?;
    let mut tampered = URL_SAFE_NO_PAD.decode(payload.trim_start_matches("cfdt_"))?;
    let position = tampered.len() - 20;
    tampered[position] ^= 1;
    let tampered_payload = format!("cfdt_{}.{signature}", URL_SAFE_NO_PAD.encode(&tampered));
    let mut flipped = URL_SAFE_NO_PAD.decode(signature)?;
    flipped[0] ^= 1;
    let tampered_signature = format!("{payload}.{}", URL_SAFE_NO_PAD.encode(&flipped));

    let canonical = format!(
        r#"{{"v":1,"tid":"{TID}","agent":"agent-7","iat":{NOW},"exp":{},"gen":0}}"#,
        NOW + 60
    );
    let with_extra = canonical.replace(r#""gen":0"#, r#""gen":0,"admin":true"#);
    let spaced = canonical.replace(',', ", ");
    let version_2 = canonical.replace(r#""v":1"#, r#""v":2"#);
    let leading_zero = canonical.replace(r#""gen":0"#, r#""gen":0,"max":{"USDC":"007"}"#);
    let plus_sign = canonical.replace(r#""gen":0"#, r#""gen":0,"max":{"USDC":"+7"}"#);
    let upper_tid = canonical.replace(TID, &TID.to_uppercase());
    let too_long = canonical.replace(&format!("{}", NOW + 60), &format!("{}", NOW + 86_401));
    let duplicate = canonical.replace(r#""gen":0"#, r#""gen":0,"gen":1"#);
    assert!(
        verifier.verify(&signed(&canonical), NOW, None).is_ok(),
        "the baseline is valid"
    );

    /// Name, token, presented certificate, time, expected reason.
    type Case<'a> = (&'a str, String, Option<&'a [u8]>, u64, &'a str);
    let cases: Vec<Case<'_>> = vec![
        ("empty", String::new(), None, NOW, "token_malformed"),
        (
            "garbage",
            "cfdt_???.???".to_owned(),
            None,
            NOW,
            "token_malformed",
        ),
        (
            "no prefix",
            good.trim_start_matches("cfdt_").to_owned(),
            None,
            NOW,
            "token_malformed",
        ),
        (
            "no signature",
            payload.to_owned(),
            None,
            NOW,
            "token_malformed",
        ),
        (
            "short signature",
            format!("{payload}.AAAA"),
            None,
            NOW,
            "token_malformed",
        ),
        (
            "oversize",
            format!("{good}{}", "A".repeat(3000)),
            None,
            NOW,
            "token_too_large",
        ),
        (
            "tampered payload",
            tampered_payload,
            None,
            NOW,
            "token_bad_signature",
        ),
        (
            "tampered signature",
            tampered_signature,
            None,
            NOW,
            "token_bad_signature",
        ),
        (
            "signed by another key",
            other_key,
            None,
            NOW,
            "token_bad_signature",
        ),
        (
            "expired",
            good.clone(),
            None,
            NOW + 900 + CLOCK_SKEW_SECONDS,
            "token_expired",
        ),
        (
            "issued in the future",
            good.clone(),
            None,
            NOW - 60,
            "token_not_yet_valid",
        ),
        (
            "bound without a certificate",
            bound.clone(),
            None,
            NOW,
            "token_needs_certificate",
        ),
        (
            "bound to another certificate",
            bound,
            Some(b"another certificate".as_slice()),
            NOW,
            "token_bound_to_other_certificate",
        ),
        (
            "unknown field",
            signed(&with_extra),
            None,
            NOW,
            "token_malformed",
        ),
        (
            "not canonical",
            signed(&spaced),
            None,
            NOW,
            "token_malformed",
        ),
        (
            "version 2",
            signed(&version_2),
            None,
            NOW,
            "token_unsupported_version",
        ),
        (
            "amount with a leading zero",
            signed(&leading_zero),
            None,
            NOW,
            "token_malformed",
        ),
        (
            "amount with a sign",
            signed(&plus_sign),
            None,
            NOW,
            "token_malformed",
        ),
        (
            "upper-case token id",
            signed(&upper_tid),
            None,
            NOW,
            "token_malformed",
        ),
        (
            "lifetime above a day",
            signed(&too_long),
            None,
            NOW,
            "token_malformed",
        ),
        (
            "duplicate member",
            signed(&duplicate),
            None,
            NOW,
            "token_malformed",
        ),
        ("not json", signed("not json"), None, NOW, "token_malformed"),
    ];
    for (name, token, certificate, now, reason) in cases {
        let error = verifier.verify(&token, now, certificate).err();
        assert_eq!(
            error.as_ref().map(AuthError::reason),
            Some(reason),
            "{name}"
        );
        assert_eq!(
            error.map(|e| e.method()),
            Some(AuthMethod::DelegationToken),
            "{name}"
        );
    }
    Ok(())
}

#[test]
fn expiry_is_exact_at_the_skew_boundary() -> TestResult {
    let token = key()?.issue(request()?, NOW)?.token;
    let last_second = NOW + 900 + CLOCK_SKEW_SECONDS - 1;
    assert!(
        verifier()?
            .verify(token.expose(), last_second, None)
            .is_ok()
    );
    assert_eq!(
        verifier()?.verify(token.expose(), last_second + 1, None),
        Err(AuthError::TokenExpired)
    );
    Ok(())
}

#[test]
fn an_unbound_token_accepts_any_or_no_certificate() -> TestResult {
    let token = key()?.issue(request()?, NOW)?.token;
    assert!(verifier()?.verify(token.expose(), NOW, None).is_ok());
    assert!(verifier()?.verify(token.expose(), NOW, Some(CERT)).is_ok());
    Ok(())
}

#[test]
fn lifetimes_outside_one_second_to_one_day_are_not_issued() -> TestResult {
    for ttl in [0, 86_401, u64::MAX] {
        let result = key()?.issue(
            DelegationRequest {
                ttl_seconds: ttl,
                ..request()?
            },
            NOW,
        );
        assert!(
            matches!(result, Err(SetupError::TokenLifetime(t)) if t == ttl),
            "{ttl}"
        );
    }
    assert!(
        key()?
            .issue(
                DelegationRequest {
                    ttl_seconds: 86_400,
                    ..request()?
                },
                NOW
            )
            .is_ok()
    );
    Ok(())
}

#[test]
fn keys_round_trip_through_their_seed_and_bad_keys_are_refused() -> TestResult {
    let original = DelegationKey::generate();
    let restored = DelegationKey::from_seed(&original.seed())?;
    assert_eq!(original.public_key(), restored.public_key());
    assert!(DelegationKey::from_seed(&SecretBytes::new(vec![1; 31])).is_err());

    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert!(DelegationVerifier::new(&identity).is_err(), "a weak key");
    Ok(())
}

#[test]
fn debug_output_never_shows_the_seed_or_the_token() -> TestResult {
    let key = key()?;
    let issued = key.issue(request()?, NOW)?;
    let printed = format!("{key:?} {issued:?} {:?}", verifier()?);
    assert!(!printed.contains(&hex::encode(SEED)), "{printed}");
    assert!(!printed.contains(issued.token.expose()), "{printed}");
    let (payload, signature) = issued.token.expose().split_once('.').ok_or("shape")?;
    assert!(
        !printed.contains(payload) && !printed.contains(signature),
        "{printed}"
    );
    Ok(())
}

/// A verifier remembers tokens whose signature it checked; the same token on a later request
/// must still be refused once expired and without the certificate it is bound to.
#[test]
fn a_remembered_token_is_still_checked_for_time_and_certificate() -> TestResult {
    let bound = DelegationRequest {
        bound_certificate_sha256: Some(clawfirst_auth::cert::certificate_sha256(CERT)),
        ..request()?
    };
    let token = key()?.issue(bound, NOW)?.token;
    let verifier = verifier()?;
    assert!(verifier.verify(token.expose(), NOW, Some(CERT)).is_ok());
    assert_eq!(
        verifier.verify(token.expose(), NOW, None),
        Err(AuthError::TokenNeedsCertificate)
    );
    assert_eq!(
        verifier.verify(token.expose(), NOW, Some(b"another certificate")),
        Err(AuthError::TokenBoundToOtherCertificate)
    );
    assert_eq!(
        verifier.verify(token.expose(), NOW + 900 + CLOCK_SKEW_SECONDS, Some(CERT)),
        Err(AuthError::TokenExpired)
    );
    assert!(verifier.verify(token.expose(), NOW + 1, Some(CERT)).is_ok());

    // Another key's verifier shares nothing with this one.
    let stranger = DelegationVerifier::new(
        &DelegationKey::from_seed(&SecretBytes::new([9; 32].to_vec()))?.public_key(),
    )?;
    assert_eq!(
        stranger.verify(token.expose(), NOW, Some(CERT)),
        Err(AuthError::TokenBadSignature)
    );
    Ok(())
}
