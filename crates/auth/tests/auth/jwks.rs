//! JSON Web Key Sets: which keys are usable, and why the others are left out.

use clawfirst_auth::jwt::{JwkSet, JwtAlgorithm};
use serde_json::{Value, json};

use crate::support::*;

#[test]
fn unusable_keys_are_left_out_with_a_reason() -> TestResult {
    let ed = TestKey::ed25519(1);
    let small: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("rsa1024.public.json"))?)?;
    let mut small = small;
    small["kid"] = json!("rsa-small");
    // The base64 of the key's base64 text: decodes, but not to 32 bytes of a key.
    let garbage_x = b64(ed.jwk("a")["x"].as_str().unwrap_or("").as_bytes());
    let doc = json!({"keys": [
        ed.jwk("ok"),
        small,
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
        {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA", "kid": "p384"},
        {"kty": "OKP", "crv": "X25519", "x": b64(&[9; 32]), "kid": "x25519"},
        {"kty": "OKP", "crv": "Ed25519", "x": b64(&[1; 31]), "kid": "short"},
        {"kty": "OKP", "crv": "Ed25519", "x": garbage_x, "kid": "garbage"},
        {"kty": "OKP", "crv": "Ed25519", "x": ed.jwk("a")["x"], "use": "enc", "kid": "enc"},
        {"kty": "OKP", "crv": "Ed25519", "x": ed.jwk("a")["x"], "alg": "RS256", "kid": "mixed"},
        {"kty": "OKP", "crv": "Ed25519", "x": ed.jwk("a")["x"]},
        ed.jwk("twice"),
        ed.jwk("twice"),
        "not an object",
    ]});
    let set = JwkSet::from_json(&doc.to_string())?;
    assert_eq!(set.key_ids().collect::<Vec<_>>(), vec!["ok"]);
    assert_eq!(set.algorithm_of("ok"), Some(JwtAlgorithm::EdDsa));
    let reasons: Vec<(Option<&str>, &str)> = set
        .ignored()
        .iter()
        .map(|i| (i.key_id.as_deref(), i.reason))
        .collect();
    for expected in [
        (Some("rsa-small"), "rsa_key_too_small"),
        (Some("hmac"), "unsupported_key_type"),
        (Some("p384"), "unsupported_curve"),
        (Some("x25519"), "unsupported_curve"),
        (Some("short"), "bad_key_encoding"),
        (Some("garbage"), "bad_key_encoding"),
        (Some("enc"), "not_a_signing_key"),
        (Some("mixed"), "algorithm_mismatch"),
        (None, "missing_kid"),
        (Some("twice"), "duplicate_kid"),
        (None, "malformed_key"),
    ] {
        assert!(
            reasons.contains(&expected),
            "{expected:?} not in {reasons:?}"
        );
    }
    Ok(())
}

#[test]
fn malformed_documents_are_refused() {
    for doc in ["", "[]", "{}", r#"{"keys": {}}"#, "{\"keys\": []} trailing"] {
        assert!(JwkSet::from_json(doc).is_err(), "{doc}");
    }
    let many = json!({"keys": vec![json!({"kty": "oct"}); 65]}).to_string();
    assert!(JwkSet::from_json(&many).is_err());
}
