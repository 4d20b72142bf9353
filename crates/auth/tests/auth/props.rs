//! Property tests: the parsers of untrusted input never panic, and issued tokens round-trip.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clawfirst_auth::cert::{CertIdentity, agent_from_certificate};
use clawfirst_auth::delegation::{DelegationKey, DelegationRequest, DelegationVerifier};
use clawfirst_auth::jwt::{JwkSet, JwtSettings, JwtVerifier};
use clawfirst_core::{AgentId, Asset};
use proptest::prelude::*;
use serde_json::json;

use crate::support::{AUDIENCE, ISSUER, NOW, TestKey};

fn jwt_verifier() -> Option<JwtVerifier> {
    let jwks = json!({"keys": [TestKey::ed25519(5).jwk("k")]}).to_string();
    let keys = JwkSet::from_json(&jwks).ok()?;
    JwtVerifier::new(JwtSettings::new(vec![ISSUER.to_owned()], AUDIENCE), keys).ok()
}

fn delegation_verifier() -> Option<DelegationVerifier> {
    DelegationVerifier::new(&DelegationKey::generate().public_key()).ok()
}

/// Three base64url segments of JSON-ish text: reaches the header and claims parsers.
fn jwt_shaped() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        "\\PC{0,64}".prop_map(|s| URL_SAFE_NO_PAD.encode(s)),
        Just(URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","kid":"k"}"#)),
        "[A-Za-z0-9_-]{0,90}",
    ];
    (segment.clone(), segment.clone(), segment).prop_map(|(a, b, c)| format!("{a}.{b}.{c}"))
}

proptest! {
    #[test]
    fn jwt_verification_never_panics(token in "\\PC{0,300}", shaped in jwt_shaped()) {
        let verifier = jwt_verifier().ok_or_else(|| TestCaseError::fail("setup"))?;
        prop_assert!(verifier.verify(&token, NOW).is_err());
        prop_assert!(verifier.verify(&shaped, NOW).is_err());
    }

    #[test]
    fn delegation_verification_never_panics(
        token in "\\PC{0,300}",
        payload in "[A-Za-z0-9_-]{0,200}",
        signature in "[A-Za-z0-9_-]{0,100}",
    ) {
        let verifier = delegation_verifier().ok_or_else(|| TestCaseError::fail("setup"))?;
        prop_assert!(verifier.verify(&token, NOW, None).is_err());
        let shaped = format!("cfdt_{payload}.{signature}");
        prop_assert!(verifier.verify(&shaped, NOW, Some(b"cert")).is_err());
    }

    #[test]
    fn jwks_parsing_never_panics(text in "\\PC{0,300}", x in "[A-Za-z0-9_-]{0,60}") {
        let _ = JwkSet::from_json(&text);
        let doc = json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "a"},
            {"kty": "EC", "crv": "P-256", "x": x, "y": x, "kid": "b"},
            {"kty": "RSA", "n": x, "e": x, "kid": "c"},
        ]});
        let _ = JwkSet::from_json(&doc.to_string());
    }

    #[test]
    fn certificate_mapping_never_panics(der in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = agent_from_certificate(&der, &CertIdentity::default());
        let _ = agent_from_certificate(&der, &CertIdentity::SubjectCommonName);
    }

    #[test]
    fn issued_delegation_tokens_round_trip(
        agent in "[A-Za-z0-9._-]{1,64}",
        ttl in 1u64..=86_400,
        usdc in proptest::option::of(any::<u64>()),
        generation in any::<u32>(),
        bound in proptest::option::of(any::<[u8; 32]>()),
    ) {
        let key = DelegationKey::generate();
        let verifier = DelegationVerifier::new(&key.public_key())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let max_amounts: BTreeMap<Asset, u64> =
            usdc.map(|u| (Asset::Usdc, u)).into_iter().collect();
        let request = DelegationRequest {
            agent_id: AgentId::new(agent).map_err(|e| TestCaseError::fail(e.to_string()))?,
            ttl_seconds: ttl,
            max_amounts,
            bound_certificate_sha256: bound,
            generation,
        };
        let issued = key.issue(request, NOW).map_err(|e| TestCaseError::fail(e.to_string()))?;
        // A bound token needs the matching certificate, which the property cannot build from a
        // hash; an unbound one is checked fully.
        let result = verifier.verify(issued.token.expose(), NOW, None);
        if bound.is_some() {
            prop_assert_eq!(result.err().map(|e| e.reason()), Some("token_needs_certificate"));
        } else {
            prop_assert_eq!(result.ok(), Some(issued.claims));
        }
    }
}
