//! The client certificate check: the CA chain (rustls's WebPKI verifier), then the identity.
//!
//! The chain check covers the signature chain to a configured CA, the validity period at the
//! time of the handshake, and the client-authentication purpose. Only a certificate that passed
//! it is parsed for its subject alternative names, and it is served only when one of them is the
//! configured [`ClientIdentity`]. Any other client is refused during the handshake with an
//! `access_denied` alert, and logged at `info` with the names it presented (certificate names
//! are public, never secret).

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::config::ClientIdentity;

/// Most names quoted in one log line.
const MAX_LOGGED_NAMES: usize = 8;

/// A client verifier that demands a CA-issued certificate carrying one identity.
#[derive(Debug)]
pub struct IdentityVerifier {
    chain: Arc<dyn ClientCertVerifier>,
    allowed: ClientIdentity,
}

impl IdentityVerifier {
    /// Wraps a chain verifier (which must demand a certificate) with the identity check.
    pub fn new(chain: Arc<dyn ClientCertVerifier>, allowed: ClientIdentity) -> IdentityVerifier {
        IdentityVerifier { chain, allowed }
    }
}

/// The URI and DNS names of a certificate's subject alternative name extension.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SubjectNames {
    /// `uniformResourceIdentifier` entries.
    pub uris: Vec<String>,
    /// `dNSName` entries.
    pub dns_names: Vec<String>,
}

impl SubjectNames {
    /// Reads the names of a DER certificate.
    ///
    /// `None` when the certificate or its extension does not parse, or the extension appears
    /// twice.
    pub fn of(certificate: &[u8]) -> Option<SubjectNames> {
        let (_, parsed) = X509Certificate::from_der(certificate).ok()?;
        let mut names = SubjectNames::default();
        let Some(extension) = parsed.subject_alternative_name().ok()? else {
            return Some(names);
        };
        for name in &extension.value.general_names {
            match name {
                GeneralName::URI(uri) => names.uris.push((*uri).to_owned()),
                GeneralName::DNSName(dns) => names.dns_names.push((*dns).to_owned()),
                _ => {}
            }
        }
        Some(names)
    }

    fn logged(&self) -> String {
        let all: Vec<&str> = self
            .uris
            .iter()
            .chain(&self.dns_names)
            .take(MAX_LOGGED_NAMES)
            .map(|name| name.get(..128).unwrap_or(name))
            .collect();
        all.join(",").escape_default().to_string()
    }
}

impl ClientCertVerifier for IdentityVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.chain.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // 1. The chain to the signer's CA, the validity period and the purpose.
        let verified = self
            .chain
            .verify_client_cert(end_entity, intermediates, now)
            .inspect_err(|e| {
                tracing::info!(reason = %e, "client refused: certificate not accepted");
            })?;

        // 2. The identity, read only from a certificate the CA vouched for.
        let Some(names) = SubjectNames::of(end_entity) else {
            tracing::info!("client refused: certificate names do not parse");
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::BadEncoding,
            ));
        };
        let uris: Vec<&str> = names.uris.iter().map(String::as_str).collect();
        let dns_names: Vec<&str> = names.dns_names.iter().map(String::as_str).collect();
        if !self.allowed.matches(&uris, &dns_names) {
            tracing::info!(
                tls.client_names = %names.logged(),
                tls.allowed_client = %self.allowed,
                "client refused: certificate is not the allowed client"
            );
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        }
        tracing::debug!(tls.client_names = %names.logged(), "client certificate accepted");
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}
