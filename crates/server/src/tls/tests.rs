//! The TLS listener against a real rustls client: which handshakes reach axum, with what
//! certificate, and which are refused, logged and audited.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use clawfirst_auth::ca::{IssuedCertificate, OperatorCa};
use clawfirst_auth::cert::agent_from_certificate;
use clawfirst_core::AgentId;
use clawfirst_store::SqliteOptions;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;

use super::*;
use crate::config::ClientCertificates;

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Fixture {
    _dir: tempfile::TempDir,
    ca: OperatorCa,
    store: Store,
    address: SocketAddr,
    accepted: mpsc::Receiver<TlsPeer>,
}

fn write(path: &Path, text: &str, mode: u32) -> std::io::Result<()> {
    std::fs::write(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// A listener on loopback with a server certificate and client CA from a new operator CA; each
/// connection that reaches axum is reported on `accepted` (and kept open, echoing one byte).
async fn fixture(
    auth: Option<ClientAuth>,
    timeout: Duration,
) -> Result<Fixture, Box<dyn std::error::Error>> {
    crate::install_crypto_provider();
    let dir = tempfile::tempdir()?;
    let ca = OperatorCa::generate("test operator CA")?;
    let server = ca.issue_server_certificate(&["localhost".into()], &[], 1)?;
    write(
        &dir.path().join("server.pem"),
        &server.certificate_pem,
        0o644,
    )?;
    write(
        &dir.path().join("server.key"),
        server.private_key_pem.expose(),
        0o600,
    )?;
    write(&dir.path().join("ca.pem"), ca.certificate_pem(), 0o644)?;
    let tls = TlsConfig {
        cert_file: dir.path().join("server.pem"),
        key_file: dir.path().join("server.key"),
        clients: auth.map(|auth| ClientCertificates {
            ca_file: dir.path().join("ca.pem"),
            auth,
            identity: CertIdentity::default(),
        }),
        handshake_timeout: timeout,
    };
    let store = Store::open_sqlite(&dir.path().join("db.sqlite"), SqliteOptions::default()).await?;
    let tcp = TcpListener::bind("127.0.0.1:0").await?;
    let address = tcp.local_addr()?;
    let mut listener = TlsListener::new(tcp, server_config(&tls)?, &tls, store.clone());
    let (sender, accepted) = mpsc::channel(8);
    tokio::spawn(async move {
        loop {
            let (mut stream, peer) = listener.accept().await;
            if sender.send(peer).await.is_err() {
                return;
            }
            tokio::spawn(async move {
                let mut byte = [0u8; 1];
                if stream.read_exact(&mut byte).await.is_ok() {
                    let _ = stream.write_all(&byte).await;
                }
            });
        }
    });
    Ok(Fixture {
        _dir: dir,
        ca,
        store,
        address,
        accepted,
    })
}

/// Connects with `client` (a certificate and key) and trusting `ca`; true when a byte sent over
/// the connection comes back, which needs the server to have accepted the handshake.
async fn round_trip(
    fixture: &Fixture,
    client: Option<&IssuedCertificate>,
) -> Result<bool, Box<dyn std::error::Error>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(fixture.ca.certificate_der().to_vec()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match client {
        Some(issued) => {
            let key = PrivateKeyDer::from_pem_slice(issued.private_key_pem.expose().as_bytes())?;
            let chain = vec![CertificateDer::from(issued.certificate_der.clone())];
            builder.with_client_auth_cert(chain, key)?
        }
        None => builder.with_no_client_auth(),
    };
    let tcp = TcpStream::connect(fixture.address).await?;
    let connector = TlsConnector::from(Arc::new(config));
    let Ok(mut stream) = connector
        .connect(ServerName::try_from("localhost")?, tcp)
        .await
    else {
        return Ok(false);
    };
    // Under TLS 1.3 the server judges the client certificate after the client's handshake has
    // finished: a refusal shows on the first read.
    if stream.write_all(b"x").await.is_err() {
        return Ok(false);
    }
    let mut byte = [0u8; 1];
    Ok(stream.read_exact(&mut byte).await.is_ok() && byte == *b"x")
}

fn agent(id: &str) -> Result<AgentId, Box<dyn std::error::Error>> {
    Ok(AgentId::new(id)?)
}

async fn audited_reasons(store: &Store) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    Ok(store
        .audit_tail(100)
        .await?
        .into_iter()
        .filter(|r| r.event == "auth.failed")
        .map(|r| r.details["reason"].as_str().unwrap_or_default().to_owned())
        .collect())
}

#[tokio::test]
async fn a_certificate_from_the_client_ca_reaches_the_request_with_its_agent() -> TestResult {
    let mut fixture = fixture(Some(ClientAuth::Required), Duration::from_secs(5)).await?;
    let issued = fixture.ca.issue_client_certificate(&agent("agent-7")?, 1)?;
    assert!(round_trip(&fixture, Some(&issued)).await?);
    let peer = fixture.accepted.recv().await.ok_or("no connection")?;
    let certificate = peer.certificate.ok_or("no certificate")?;
    assert_eq!(&*certificate.der, issued.certificate_der.as_slice());
    assert_eq!(
        agent_from_certificate(&certificate.der, &certificate.identity)?,
        agent("agent-7")?
    );
    Ok(())
}

#[tokio::test]
async fn required_client_auth_refuses_no_certificate_and_other_cas_and_audits_once() -> TestResult {
    let fixture = fixture(Some(ClientAuth::Required), Duration::from_secs(5)).await?;
    assert!(!round_trip(&fixture, None).await?);
    let other = OperatorCa::generate("someone else")?;
    let foreign = other.issue_client_certificate(&agent("agent-7")?, 1)?;
    assert!(!round_trip(&fixture, Some(&foreign)).await?);

    // Both refusals fall within one audit interval: one record, for the first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        audited_reasons(&fixture.store).await?,
        ["no_client_certificate"]
    );
    Ok(())
}

#[tokio::test]
async fn optional_client_auth_admits_clients_without_a_certificate_but_not_foreign_ones()
-> TestResult {
    let mut fixture = fixture(Some(ClientAuth::Optional), Duration::from_secs(5)).await?;
    assert!(round_trip(&fixture, None).await?);
    let peer = fixture.accepted.recv().await.ok_or("no connection")?;
    assert!(peer.certificate.is_none());

    let other = OperatorCa::generate("someone else")?;
    let foreign = other.issue_client_certificate(&agent("agent-7")?, 1)?;
    assert!(!round_trip(&fixture, Some(&foreign)).await?);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        audited_reasons(&fixture.store).await?,
        ["certificate_unknown_issuer"]
    );
    Ok(())
}

#[tokio::test]
async fn a_silent_client_neither_blocks_others_nor_stays_past_the_timeout() -> TestResult {
    let mut fixture = fixture(None, Duration::from_secs(1)).await?;
    let mut silent = TcpStream::connect(fixture.address).await?;
    assert!(round_trip(&fixture, None).await?);
    assert!(fixture.accepted.recv().await.is_some());

    // The server drops the silent connection after the handshake timeout.
    let mut buffer = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buffer)).await?;
    assert!(matches!(read, Ok(0) | Err(_)));
    Ok(())
}

#[test]
fn a_key_file_others_can_read_is_refused_naming_the_key() -> TestResult {
    let dir = tempfile::tempdir()?;
    let ca = OperatorCa::generate("test")?;
    let server = ca.issue_server_certificate(&["localhost".into()], &[], 1)?;
    write(&dir.path().join("s.pem"), &server.certificate_pem, 0o644)?;
    write(
        &dir.path().join("s.key"),
        server.private_key_pem.expose(),
        0o644,
    )?;
    let tls = TlsConfig {
        cert_file: dir.path().join("s.pem"),
        key_file: dir.path().join("s.key"),
        clients: None,
        handshake_timeout: Duration::from_secs(1),
    };
    let error = server_config(&tls).err().ok_or("accepted")?;
    assert!(error.to_string().contains("tls.key_file"), "{error}");

    std::fs::set_permissions(&tls.key_file, std::fs::Permissions::from_mode(0o600))?;
    let wrong = TlsConfig {
        cert_file: dir.path().join("missing.pem"),
        ..tls
    };
    let error = server_config(&wrong).err().ok_or("accepted")?;
    assert!(error.to_string().contains("tls.cert_file"), "{error}");
    Ok(())
}
