//! A test PKI made with rcgen: certificate authorities, the signer's certificate, client
//! certificates of any identity and validity, and rustls clients that present them.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clawfirst_core::signer_proto::{SignerRequest, SignerResponse};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use time::{Duration as Span, OffsetDateTime};

use crate::harness::{Error, write_secret};

/// The identity the signer serves in these tests.
pub const SERVER_IDENTITY: &str = "urn:clawfirst:server";

/// A certificate authority that keeps its key, so tests can issue anything.
pub struct Ca {
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    pub fn new(name: &str) -> Result<Ca, Error> {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let key = KeyPair::generate()?;
        let pem = params.self_signed(&key)?.pem();
        Ok(Ca {
            pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// A leaf certificate and its key, both PEM.
    pub fn issue(&self, leaf: Leaf<'_>) -> Result<(String, String), Error> {
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "test leaf");
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        let (not_before, not_after) = match leaf.validity {
            Validity::Current => (now - Span::hours(1), now + Span::days(1)),
            Validity::Expired => (now - Span::days(2), now - Span::days(1)),
        };
        params.not_before = not_before;
        params.not_after = not_after;
        match leaf.purpose {
            Purpose::Server => {
                params.subject_alt_names = vec![
                    SanType::DnsName("localhost".try_into()?),
                    SanType::IpAddress([127, 0, 0, 1].into()),
                ];
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            }
            Purpose::Client(identity) => {
                params.subject_alt_names = vec![match identity.contains(':') {
                    true => SanType::URI(identity.try_into()?),
                    false => SanType::DnsName(identity.try_into()?),
                }];
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            }
        }
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

pub enum Purpose<'a> {
    Server,
    Client(&'a str),
}

pub enum Validity {
    Current,
    Expired,
}

pub struct Leaf<'a> {
    pub purpose: Purpose<'a>,
    pub validity: Validity,
}

impl<'a> Leaf<'a> {
    pub fn client(identity: &'a str) -> Leaf<'a> {
        Leaf {
            purpose: Purpose::Client(identity),
            validity: Validity::Current,
        }
    }
}

/// Writes a certificate and its key (mode 0600) as `NAME.pem` and `NAME.key` in `dir`.
pub fn write_pair(
    dir: &Path,
    name: &str,
    pair: &(String, String),
) -> Result<(PathBuf, PathBuf), Error> {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, &pair.0)?;
    write_secret(&key, &pair.1)?;
    Ok((cert, key))
}

/// A free TCP port on loopback (released again before the signer binds it).
pub fn free_port() -> Result<u16, Error> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A rustls client configuration trusting `ca_pem`, presenting `client` if given.
pub fn client_config(
    ca_pem: &str,
    client: Option<&(String, String)>,
) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(clawfirst_signer::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder.with_client_auth_cert(
            vec![CertificateDer::from_pem_slice(cert.as_bytes())?],
            PrivateKeyDer::from_pem_slice(key.as_bytes())?,
        )?,
    };
    Ok(Arc::new(config))
}

/// One TLS connection to the signer, speaking the line protocol.
pub struct TlsClient {
    stream: BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>,
}

impl TlsClient {
    pub fn connect(port: u16, config: Arc<rustls::ClientConfig>) -> Result<TlsClient, Error> {
        let tcp = TcpStream::connect(("127.0.0.1", port))?;
        tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
        let name = ServerName::try_from("localhost")?;
        let mut connection = rustls::ClientConnection::new(config, name)?;
        let mut tcp = tcp;
        while connection.is_handshaking() {
            connection.complete_io(&mut tcp)?;
        }
        Ok(TlsClient {
            stream: BufReader::new(rustls::StreamOwned::new(connection, tcp)),
        })
    }

    pub fn request(&mut self, request: &SignerRequest) -> Result<SignerResponse, Error> {
        let mut line = serde_json::to_vec(request)?;
        line.push(b'\n');
        self.stream.get_mut().write_all(&line)?;
        self.stream.get_mut().flush()?;
        let mut answer = String::new();
        if self.stream.read_line(&mut answer)? == 0 {
            return Err("the signer closed the connection without answering".into());
        }
        Ok(serde_json::from_str(&answer)?)
    }
}

/// Connects and asks for `health`; the error when the signer does not answer.
pub fn health_over_tls(
    port: u16,
    config: Arc<rustls::ClientConfig>,
) -> Result<SignerResponse, Error> {
    TlsClient::connect(port, config)?.request(&SignerRequest::Health {})
}
