//! JWT bearer tokens: every refusal reason, and what is accepted.

use clawfirst_auth::jwt::{JwkSet, JwtAlgorithm, JwtSettings, JwtVerifier};
use clawfirst_auth::{AuthError, AuthMethod};
use serde_json::{Value, json};

use crate::support::*;

struct Fixture {
    ed: TestKey,
    es: TestKey,
    rs: TestKey,
    jwks_json: String,
}

impl Fixture {
    fn new() -> Result<Self, Box<dyn std::error::Error>> {
        let ed = TestKey::ed25519(7);
        let es = TestKey::p256()?;
        let rs = TestKey::rsa2048()?;
        let jwks_json =
            json!({"keys": [ed.jwk("ed-1"), es.jwk("es-1"), rs.jwk("rs-1")]}).to_string();
        Ok(Self {
            ed,
            es,
            rs,
            jwks_json,
        })
    }

    fn verifier(&self, settings: JwtSettings) -> Result<JwtVerifier, Box<dyn std::error::Error>> {
        Ok(JwtVerifier::new(
            settings,
            JwkSet::from_json(&self.jwks_json)?,
        )?)
    }
}

fn settings() -> JwtSettings {
    JwtSettings::new(vec![ISSUER.to_owned()], AUDIENCE)
}

fn with(claims: &Value, key: &str, value: Value) -> Value {
    let mut claims = claims.clone();
    claims[key] = value;
    claims
}

fn without(claims: &Value, key: &str) -> Value {
    let mut claims = claims.clone();
    if let Some(map) = claims.as_object_mut() {
        map.remove(key);
    }
    claims
}

#[test]
fn each_algorithm_verifies_its_own_key_type() -> TestResult {
    let f = Fixture::new()?;
    let verifier = f.verifier(settings())?;
    for (key, kid) in [(&f.ed, "ed-1"), (&f.es, "es-1"), (&f.rs, "rs-1")] {
        let t = token(key, &header(key.alg(), kid), &good_claims());
        let identity = verifier.verify(&t, NOW)?;
        assert_eq!(identity.agent_id.as_str(), "agent-7");
        assert_eq!(identity.key_id, kid);
        assert_eq!(identity.expires_at_s, NOW + 600);
    }
    Ok(())
}

#[test]
fn hostile_tokens_are_refused_with_their_reason() -> TestResult {
    let f = Fixture::new()?;
    let verifier = f.verifier(settings())?;
    let ed_only = f.verifier(JwtSettings {
        algorithms: vec![JwtAlgorithm::EdDsa],
        ..settings()
    })?;
    let claims = good_claims();
    let ed = |h: &Value, c: &Value| token(&f.ed, h, c);
    let good = ed(&header("EdDSA", "ed-1"), &claims);
    let ed_public =
        f.ed.jwk("x")
            .get("x")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();

    let mut tampered_payload: Vec<&str> = good.split('.').collect();
    let evil_claims = b64(with(&claims, "sub", json!("agent-evil"))
        .to_string()
        .as_bytes());
    tampered_payload[1] = &evil_claims;
    let tampered_payload = tampered_payload.join(".");
    let mut tampered_signature = good.clone().into_bytes();
    let last = tampered_signature.len() - 3;
    tampered_signature[last] = if tampered_signature[last] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let tampered_signature = String::from_utf8(tampered_signature)?;

    let unsigned = format!(
        "{}.",
        signing_input(&json!({"alg": "none", "kid": "ed-1"}), &claims)
    );
    let cases: Vec<(&str, String, &str)> = vec![
        ("empty", String::new(), "jwt_malformed"),
        ("garbage", "not a token".to_owned(), "jwt_malformed"),
        ("two segments", "a.b".to_owned(), "jwt_malformed"),
        ("four segments", format!("{good}.x"), "jwt_malformed"),
        (
            "padded base64",
            good.replacen('.', "=.", 1),
            "jwt_malformed",
        ),
        ("alg none", unsigned, "jwt_alg_not_allowed"),
        (
            "alg none with a signature",
            ed(&json!({"alg": "none", "kid": "ed-1"}), &claims),
            "jwt_alg_not_allowed",
        ),
        (
            "alg missing",
            ed(&json!({"kid": "ed-1"}), &claims),
            "jwt_alg_not_allowed",
        ),
        (
            "alg lower case",
            ed(&header("eddsa", "ed-1"), &claims),
            "jwt_alg_not_allowed",
        ),
        (
            "HS256 with the Ed25519 public key as secret",
            hs256_token(ed_public.as_bytes(), &header("HS256", "ed-1"), &claims),
            "jwt_alg_not_allowed",
        ),
        (
            "HS256 with the JWKS document as secret",
            hs256_token(f.jwks_json.as_bytes(), &header("HS256", "rs-1"), &claims),
            "jwt_alg_not_allowed",
        ),
        (
            "RS256 against an EdDSA-only configuration",
            token(&f.rs, &header("RS256", "rs-1"), &claims),
            "jwt_alg_not_allowed",
        ),
        (
            "ES256 header on the Ed25519 key",
            ed(&header("ES256", "ed-1"), &claims),
            "jwt_alg_key_mismatch",
        ),
        (
            "missing kid",
            ed(&json!({"alg": "EdDSA"}), &claims),
            "jwt_missing_kid",
        ),
        (
            "unknown kid",
            ed(&header("EdDSA", "ed-9"), &claims),
            "jwt_unknown_kid",
        ),
        (
            "crit header",
            ed(
                &json!({"alg": "EdDSA", "kid": "ed-1", "crit": ["b64"], "b64": false}),
                &claims,
            ),
            "jwt_unsupported_header",
        ),
        ("tampered payload", tampered_payload, "jwt_bad_signature"),
        (
            "tampered signature",
            tampered_signature,
            "jwt_bad_signature",
        ),
        (
            "signed by another Ed25519 key",
            token(&TestKey::ed25519(8), &header("EdDSA", "ed-1"), &claims),
            "jwt_bad_signature",
        ),
        (
            "expired beyond leeway",
            ed(
                &header("EdDSA", "ed-1"),
                &with(&claims, "exp", json!(NOW - 30)),
            ),
            "jwt_expired",
        ),
        (
            "exp missing",
            ed(&header("EdDSA", "ed-1"), &without(&claims, "exp")),
            "jwt_missing_claim",
        ),
        (
            "exp as a string",
            ed(
                &header("EdDSA", "ed-1"),
                &with(&claims, "exp", json!("9999999999")),
            ),
            "jwt_bad_claim",
        ),
        (
            "nbf beyond leeway",
            ed(
                &header("EdDSA", "ed-1"),
                &with(&claims, "nbf", json!(NOW + 31)),
            ),
            "jwt_not_yet_valid",
        ),
        (
            "wrong aud",
            ed(
                &header("EdDSA", "ed-1"),
                &with(&claims, "aud", json!("other")),
            ),
            "jwt_wrong_audience",
        ),
        (
            "aud array without ours",
            ed(
                &header("EdDSA", "ed-1"),
                &with(&claims, "aud", json!(["a", "b"])),
            ),
            "jwt_wrong_audience",
        ),
        (
            "aud missing",
            ed(&header("EdDSA", "ed-1"), &without(&claims, "aud")),
            "jwt_missing_claim",
        ),
        (
            "wrong iss",
            ed(
                &header("EdDSA", "ed-1"),
                &with(&claims, "iss", json!("https://evil")),
            ),
            "jwt_wrong_issuer",
        ),
        (
            "iss missing",
            ed(&header("EdDSA", "ed-1"), &without(&claims, "iss")),
            "jwt_missing_claim",
        ),
        (
            "agent claim missing",
            ed(&header("EdDSA", "ed-1"), &without(&claims, "sub")),
            "jwt_missing_claim",
        ),
        (
            "agent claim not an agent id",
            ed(
                &header("EdDSA", "ed-1"),
                &with(&claims, "sub", json!("../admin")),
            ),
            "jwt_bad_agent_claim",
        ),
        (
            "agent claim not a string",
            ed(&header("EdDSA", "ed-1"), &with(&claims, "sub", json!(7))),
            "jwt_bad_agent_claim",
        ),
        (
            "oversize",
            format!("{good}{}", "A".repeat(9000)),
            "jwt_too_large",
        ),
    ];

    for (name, t, reason) in cases {
        let v = if name.contains("EdDSA-only") {
            &ed_only
        } else {
            &verifier
        };
        let error = v.verify(&t, NOW).err();
        assert_eq!(
            error.as_ref().map(AuthError::reason),
            Some(reason),
            "{name}"
        );
        assert_eq!(error.map(|e| e.method()), Some(AuthMethod::Jwt), "{name}");
    }
    Ok(())
}

#[test]
fn duplicate_claims_are_malformed_even_when_signed() -> TestResult {
    let f = Fixture::new()?;
    let verifier = f.verifier(settings())?;
    let good = good_claims().to_string();
    let duplicated = format!("{},\"sub\":\"agent-evil\"}}", &good[..good.len() - 1]);
    let input = format!(
        "{}.{}",
        b64(header("EdDSA", "ed-1").to_string().as_bytes()),
        b64(duplicated.as_bytes())
    );
    let t = format!("{input}.{}", f.ed.sign(input.as_bytes()));
    assert_eq!(verifier.verify(&t, NOW), Err(AuthError::JwtMalformed));
    Ok(())
}

#[test]
fn leeway_bounds_are_exact() -> TestResult {
    let f = Fixture::new()?;
    let verifier = f.verifier(settings())?;
    let h = header("EdDSA", "ed-1");
    let claims = good_claims();

    let within_nbf = token(&f.ed, &h, &with(&claims, "nbf", json!(NOW + 30)));
    assert!(verifier.verify(&within_nbf, NOW).is_ok());
    let within_exp = token(&f.ed, &h, &with(&claims, "exp", json!(NOW - 29)));
    assert!(verifier.verify(&within_exp, NOW).is_ok());

    let strict = f.verifier(JwtSettings {
        leeway_seconds: 0,
        ..settings()
    })?;
    let at_exp = token(&f.ed, &h, &with(&claims, "exp", json!(NOW)));
    assert_eq!(strict.verify(&at_exp, NOW), Err(AuthError::JwtExpired));
    Ok(())
}

#[test]
fn audience_arrays_and_custom_agent_claims_are_accepted() -> TestResult {
    let f = Fixture::new()?;
    let verifier = f.verifier(JwtSettings {
        agent_claim: "agent_id".to_owned(),
        issuers: vec!["https://other".to_owned(), ISSUER.to_owned()],
        ..settings()
    })?;
    let claims = with(
        &with(&good_claims(), "aud", json!(["x", AUDIENCE])),
        "agent_id",
        json!("agent-9"),
    );
    let t = token(&f.es, &header("ES256", "es-1"), &claims);
    assert_eq!(verifier.verify(&t, NOW)?.agent_id.as_str(), "agent-9");
    Ok(())
}

#[test]
fn settings_out_of_range_are_refused() {
    let too_much_leeway = JwtSettings {
        leeway_seconds: 301,
        ..settings()
    };
    let no_algorithms = JwtSettings {
        algorithms: vec![],
        ..settings()
    };
    let no_issuers = JwtSettings {
        issuers: vec![],
        ..settings()
    };
    let no_audience = JwtSettings::new(vec![ISSUER.to_owned()], "");
    for s in [too_much_leeway, no_algorithms, no_issuers, no_audience] {
        assert!(
            JwtVerifier::new(s.clone(), JwkSet::default()).is_err(),
            "{s:?}"
        );
    }
    assert!(
        JwtVerifier::new(
            JwtSettings {
                leeway_seconds: 300,
                ..settings()
            },
            JwkSet::default()
        )
        .is_ok()
    );
}

#[test]
fn settings_deserialize_with_defaults_and_refuse_unknown_algorithms() -> TestResult {
    let s: JwtSettings = serde_json::from_str(r#"{"issuers":["i"],"audience":"a"}"#)?;
    assert_eq!(s.leeway_seconds, 30);
    assert_eq!(s.agent_claim, "sub");
    assert_eq!(s.algorithms.len(), 3);
    let hs = serde_json::from_str::<JwtSettings>(
        r#"{"issuers":["i"],"audience":"a","algorithms":["HS256"]}"#,
    );
    assert!(hs.is_err());
    Ok(())
}

#[test]
fn errors_never_echo_the_token() -> TestResult {
    let f = Fixture::new()?;
    let verifier = f.verifier(settings())?;
    let t = token(
        &f.ed,
        &header("EdDSA", "ed-1"),
        &with(&good_claims(), "exp", json!(1)),
    );
    let error = verifier.verify(&t, NOW).err().ok_or("accepted")?;
    let printed = format!("{error} {error:?}");
    for part in t.split('.') {
        assert!(!printed.contains(part), "{printed}");
    }
    Ok(())
}

/// A verifier remembers tokens it accepted; the same token on a later request must still be
/// refused once expired or before its `nbf`, and a token differing in any byte is checked anew.
#[test]
fn a_remembered_token_is_still_checked_for_time_and_exact_bytes() -> TestResult {
    let f = Fixture::new()?;
    let verifier = f.verifier(JwtSettings {
        leeway_seconds: 0,
        ..settings()
    })?;
    let h = header("EdDSA", "ed-1");
    let claims = with(&good_claims(), "nbf", json!(NOW - 5));
    let t = token(&f.ed, &h, &claims);
    let first = verifier.verify(&t, NOW)?;
    assert_eq!(verifier.verify(&t, NOW + 1)?, first);
    assert_eq!(verifier.verify(&t, NOW + 600), Err(AuthError::JwtExpired));
    assert_eq!(verifier.verify(&t, NOW - 6), Err(AuthError::JwtNotYetValid));

    // The remembered token with its signature's last character changed.
    let mut tampered = t.clone();
    let last = tampered.pop().ok_or("empty token")?;
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert!(matches!(
        verifier.verify(&tampered, NOW),
        Err(AuthError::JwtBadSignature | AuthError::JwtMalformed)
    ));

    // A verifier over a key set without the key does not know the token at all.
    let other = JwtVerifier::new(
        settings(),
        JwkSet::from_json(&json!({"keys": [f.es.jwk("es-1")]}).to_string())?,
    )?;
    assert_eq!(other.verify(&t, NOW), Err(AuthError::JwtUnknownKid));
    Ok(())
}
