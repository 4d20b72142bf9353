//! The key-set cache against a real local HTTP server and a real file.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use clawfirst_auth::ca::OperatorCa;
use clawfirst_auth::jwt::{JwksCache, JwksCacheSettings, JwksSource, JwtSettings};
use clawfirst_auth::{AuthError, SetupError};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

#[derive(Clone, Default)]
struct Served {
    body: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
}

impl Served {
    fn set(&self, body: String) {
        if let Ok(mut guard) = self.body.lock() {
            *guard = body;
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn jwks(State(served): State<Served>) -> String {
    served.hits.fetch_add(1, Ordering::SeqCst);
    served.body.lock().map(|b| b.clone()).unwrap_or_default()
}

async fn serve(served: Served) -> Result<String, Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/jwks.json", get(jwks))
        .with_state(served);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}/jwks.json"))
}

fn settings() -> JwtSettings {
    JwtSettings::new(vec![ISSUER.to_owned()], AUDIENCE)
}

fn test_cache(refresh: Duration, refetch: Duration) -> JwksCacheSettings {
    JwksCacheSettings {
        refresh_interval: refresh,
        unknown_kid_refetch_interval: refetch,
        fetch_timeout: Duration::from_secs(5),
        extra_root_certificates_pem: None,
        dangerous_allow_http: true,
    }
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_and_unknown_kids_are_rate_limited() -> TestResult {
    let old = TestKey::ed25519(1);
    let new = TestKey::ed25519(2);
    let served = Served::default();
    served.set(json!({"keys": [old.jwk("old")]}).to_string());
    let url = serve(served.clone()).await?;

    let long = Duration::from_secs(3600);
    let cache = JwksCache::load(settings(), JwksSource::Url(url), test_cache(long, long)).await?;
    assert_eq!(served.hits(), 1);
    let t_old = token(&old, &header("EdDSA", "old"), &good_claims());
    assert!(cache.verify(&t_old, NOW).await.is_ok());
    assert_eq!(served.hits(), 1, "a known kid needs no fetch");

    served.set(json!({"keys": [old.jwk("old"), new.jwk("new")]}).to_string());
    let t_new = token(&new, &header("EdDSA", "new"), &good_claims());
    assert_eq!(cache.verify(&t_new, NOW).await?.key_id, "new");
    assert_eq!(served.hits(), 2, "the unknown kid triggered one fetch");

    let t_made_up = token(&new, &header("EdDSA", "made-up"), &good_claims());
    for _ in 0..5 {
        assert_eq!(
            cache.verify(&t_made_up, NOW).await,
            Err(AuthError::JwtUnknownKid)
        );
    }
    assert_eq!(
        served.hits(),
        2,
        "unknown kids refetch at most once per interval"
    );
    Ok(())
}

#[tokio::test]
async fn a_stale_set_is_refreshed_and_a_failed_refresh_keeps_the_last_good_one() -> TestResult {
    let key = TestKey::ed25519(3);
    let served = Served::default();
    served.set(json!({"keys": [key.jwk("k")]}).to_string());
    let url = serve(served.clone()).await?;
    let cache = JwksCache::load(
        settings(),
        JwksSource::Url(url),
        test_cache(Duration::from_millis(50), Duration::from_secs(3600)),
    )
    .await?;
    let t = token(&key, &header("EdDSA", "k"), &good_claims());

    served.set("not json".to_owned());
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert!(
        cache.verify(&t, NOW).await.is_ok(),
        "the last good set stays in use"
    );
    assert_eq!(served.hits(), 2);

    served.set(json!({"keys": []}).to_string());
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(cache.verify(&t, NOW).await, Err(AuthError::JwtUnknownKid));
    Ok(())
}

#[tokio::test]
async fn plain_http_needs_the_dangerous_flag() -> TestResult {
    let served = Served::default();
    served.set(json!({"keys": []}).to_string());
    let url = serve(served).await?;
    let safe = JwksCacheSettings::default();
    let result = JwksCache::load(settings(), JwksSource::Url(url), safe).await;
    assert!(
        matches!(result, Err(SetupError::JwksInsecureUrl)),
        "{result:?}"
    );
    for bad in ["ftp://x/jwks", "not a url", "https://"] {
        let result = JwksCache::load(
            settings(),
            JwksSource::Url(bad.to_owned()),
            test_cache(Duration::from_secs(1), Duration::from_secs(1)),
        )
        .await;
        assert!(
            matches!(result, Err(SetupError::JwksInsecureUrl)),
            "{bad}: {result:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_file_source_loads_and_a_missing_file_fails_setup() -> TestResult {
    let key = TestKey::ed25519(4);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, json!({"keys": [key.jwk("f")]}).to_string())?;
    let cache = JwksCache::load(
        settings(),
        JwksSource::File(path),
        JwksCacheSettings::default(),
    )
    .await?;
    let t = token(&key, &header("EdDSA", "f"), &good_claims());
    assert_eq!(cache.verify(&t, NOW).await?.agent_id.as_str(), "agent-7");

    let missing = JwksCache::load(
        settings(),
        JwksSource::File(dir.path().join("absent.json")),
        JwksCacheSettings::default(),
    )
    .await;
    assert!(
        matches!(missing, Err(SetupError::JwksRead(_))),
        "{missing:?}"
    );
    Ok(())
}

/// Serves one fixed body over TLS with a certificate from `ca`, answering each connection once.
async fn serve_https(ca: &OperatorCa, body: String) -> Result<String, Box<dyn std::error::Error>> {
    let issued = ca.issue_server_certificate(&["localhost".to_owned()], &[], 1)?;
    let key = PrivateKeyDer::from_pem_slice(issued.private_key_pem.expose().as_bytes())?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(vec![CertificateDer::from(issued.certificate_der)], key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    concat!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n",
                        "content-length: {}\r\nconnection: close\r\n\r\n{}",
                    ),
                    body.len(),
                    body
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    Ok(format!("https://localhost:{port}/jwks.json"))
}

#[tokio::test]
async fn https_works_with_a_trusted_root_and_fails_without_it() -> TestResult {
    let key = TestKey::ed25519(6);
    let ca = OperatorCa::generate("idp test ca")?;
    let url = serve_https(&ca, json!({"keys": [key.jwk("tls")]}).to_string()).await?;

    let trusting = JwksCacheSettings {
        extra_root_certificates_pem: Some(ca.certificate_pem().to_owned()),
        ..JwksCacheSettings::default()
    };
    let cache = JwksCache::load(settings(), JwksSource::Url(url.clone()), trusting).await?;
    let t = token(&key, &header("EdDSA", "tls"), &good_claims());
    assert_eq!(cache.verify(&t, NOW).await?.key_id, "tls");

    let untrusting = JwksCache::load(
        settings(),
        JwksSource::Url(url),
        JwksCacheSettings::default(),
    )
    .await;
    assert!(
        matches!(untrusting, Err(SetupError::JwksFetch(_))),
        "{untrusting:?}"
    );

    let bad_roots = JwksCacheSettings {
        extra_root_certificates_pem: Some("not pem".to_owned()),
        ..JwksCacheSettings::default()
    };
    let result = JwksCache::load(
        settings(),
        JwksSource::Url("https://localhost/jwks.json".to_owned()),
        bad_roots,
    )
    .await;
    assert!(matches!(result, Err(SetupError::Pem)), "{result:?}");
    Ok(())
}
