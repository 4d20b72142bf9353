//! What the crate logs: refusals at info with their reason, never the credential.

use std::io::Write;
use std::sync::{Arc, Mutex};

use clawfirst_auth::delegation::{DelegationKey, DelegationRequest, DelegationVerifier};
use clawfirst_auth::jwt::{JwkSet, JwtSettings, JwtVerifier};
use clawfirst_core::AgentId;
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;

use crate::support::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        self.0
            .lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Runs `f` with every event down to trace written to the returned buffer.
fn capture(f: impl FnOnce()) -> String {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    captured.text()
}

#[test]
fn a_refused_jwt_is_logged_with_its_reason_and_without_the_token() -> TestResult {
    let key = TestKey::ed25519(11);
    let keys = JwkSet::from_json(&json!({"keys": [key.jwk("k")]}).to_string())?;
    let verifier = JwtVerifier::new(JwtSettings::new(vec![ISSUER.to_owned()], AUDIENCE), keys)?;
    let mut claims = good_claims();
    claims["exp"] = json!(NOW - 100);
    let token = token(&key, &header("EdDSA", "k"), &claims);

    let logs = capture(|| {
        let _ = verifier.verify(&token, NOW);
    });
    assert!(logs.contains("INFO"), "{logs}");
    assert!(logs.contains("jwt_expired"), "{logs}");
    for part in token.split('.') {
        assert!(!logs.contains(part), "{logs}");
    }
    Ok(())
}

#[test]
fn an_accepted_delegation_token_is_logged_at_debug_without_the_token() -> TestResult {
    let key = DelegationKey::generate();
    let verifier = DelegationVerifier::new(&key.public_key())?;
    let issued = key.issue(
        DelegationRequest {
            agent_id: AgentId::new("agent-logged")?,
            ttl_seconds: 60,
            max_amounts: Default::default(),
            bound_certificate_sha256: None,
            generation: 0,
        },
        NOW,
    )?;

    let logs = capture(|| {
        let _ = verifier.verify(issued.token.expose(), NOW, None);
    });
    assert!(logs.contains("DEBUG"), "{logs}");
    assert!(logs.contains("agent-logged"), "{logs}");
    assert!(!logs.contains("INFO"), "{logs}");
    let (payload, signature) = issued.token.expose().split_once('.').ok_or("shape")?;
    assert!(
        !logs.contains(payload) && !logs.contains(signature),
        "{logs}"
    );
    Ok(())
}
