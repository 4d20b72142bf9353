//! The operator's certificate authority for agent client certificates and TLS servers.
//!
//! An [`OperatorCa`] is an ECDSA P-256 root that may sign end-entity certificates only (path
//! length 0). Client certificates carry the agent id twice: as a SAN URI with
//! [`DEFAULT_SAN_URI_PREFIX`] (what [`CertIdentity::default`] reads) and as the subject CN.
//! Server certificates carry DNS names and IP addresses for a TLS server, such as the signer's
//! mTLS listener; a deployment may use one CA for both or a separate one per link.
//!
//! # Security
//!
//! Private keys leave this module only as [`SecretString`] PEM. `Debug` shows the CA
//! certificate's fingerprint, never the key. [`OperatorCa::from_pem`] refuses a key that does
//! not belong to the certificate and a certificate that is not a CA.
//!
//! [`CertIdentity::default`]: crate::cert::CertIdentity

use std::fmt;
use std::net::IpAddr;

use clawfirst_core::AgentId;
use clawfirst_core::secret::SecretString;
use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::pem::PemObject;
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::FromDer;

use crate::cert::{DEFAULT_SAN_URI_PREFIX, certificate_sha256};
use crate::error::SetupError;

/// The lifetime of a generated CA, in days (ten years).
pub const CA_LIFETIME_DAYS: u32 = 3650;
/// The longest lifetime of an issued certificate, in days.
pub const MAX_CERTIFICATE_DAYS: u32 = 3650;

/// A certificate and its new private key.
#[derive(Debug)]
pub struct IssuedCertificate {
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// The certificate, DER (what rustls presents, and what [`certificate_sha256`] hashes).
    pub certificate_der: Vec<u8>,
    /// The private key, PKCS#8 PEM.
    pub private_key_pem: SecretString,
}

/// The operator's certificate authority.
pub struct OperatorCa {
    certificate_pem: String,
    certificate_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for OperatorCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OperatorCa(sha256 {})",
            hex::encode(certificate_sha256(&self.certificate_der))
        )
    }
}

impl OperatorCa {
    /// A new CA whose subject CN is `name`, valid for [`CA_LIFETIME_DAYS`].
    ///
    /// # Errors
    /// [`SetupError::Certificate`] when the key or certificate cannot be generated.
    pub fn generate(name: &str) -> Result<Self, SetupError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(SetupError::Certificate)?;
        let mut params = base_params(name, CA_LIFETIME_DAYS)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let certificate = params.self_signed(&key).map_err(SetupError::Certificate)?;
        Ok(Self {
            certificate_pem: certificate.pem(),
            certificate_der: certificate.der().to_vec(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA from its certificate and private key PEM.
    ///
    /// # Errors
    /// [`SetupError::Pem`] when either PEM cannot be read, the certificate is not a CA, or the
    /// key is not the certificate's.
    pub fn from_pem(
        certificate_pem: &str,
        private_key_pem: &SecretString,
    ) -> Result<Self, SetupError> {
        let key = KeyPair::from_pem(private_key_pem.expose()).map_err(|_| SetupError::Pem)?;
        let der = rustls_pki_types::CertificateDer::from_pem_slice(certificate_pem.as_bytes())
            .map_err(|_| SetupError::Pem)?;
        let (_, parsed) = x509_parser::certificate::X509Certificate::from_der(&der)
            .map_err(|_| SetupError::Pem)?;
        if !parsed.is_ca()
            || parsed.public_key().subject_public_key.data.as_ref() != key.public_key_raw()
        {
            return Err(SetupError::Pem);
        }
        let issuer = Issuer::from_ca_cert_der(&der, key).map_err(|_| SetupError::Pem)?;
        Ok(Self {
            certificate_pem: certificate_pem.to_owned(),
            certificate_der: der.to_vec(),
            issuer,
        })
    }

    /// The CA certificate and its private key, PEM, for storing the CA.
    pub fn to_pem(&self) -> (String, SecretString) {
        (
            self.certificate_pem.clone(),
            SecretString::new(self.issuer.key().serialize_pem()),
        )
    }

    /// The CA certificate, PEM: the trust anchor of whoever verifies what it issues.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// The CA certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// A client certificate for `agent_id`, valid for `days`, with a new P-256 key.
    ///
    /// # Errors
    /// [`SetupError::CertificateLifetime`] outside 1 to [`MAX_CERTIFICATE_DAYS`];
    /// [`SetupError::Certificate`] when rcgen fails.
    pub fn issue_client_certificate(
        &self,
        agent_id: &AgentId,
        days: u32,
    ) -> Result<IssuedCertificate, SetupError> {
        let mut params = base_params(agent_id.as_str(), days)?;
        let uri = format!("{DEFAULT_SAN_URI_PREFIX}{agent_id}");
        params.subject_alt_names = vec![SanType::URI(
            uri.try_into().map_err(SetupError::Certificate)?,
        )];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    /// A TLS server certificate for these DNS names and IP addresses, valid for `days`.
    ///
    /// # Errors
    /// [`SetupError::NoServerNames`] without any name; [`SetupError::CertificateLifetime`]
    /// outside 1 to [`MAX_CERTIFICATE_DAYS`]; [`SetupError::Certificate`] for a DNS name that
    /// is not ASCII or when rcgen fails.
    pub fn issue_server_certificate(
        &self,
        dns_names: &[String],
        ip_addresses: &[IpAddr],
        days: u32,
    ) -> Result<IssuedCertificate, SetupError> {
        let first = dns_names
            .first()
            .cloned()
            .or_else(|| ip_addresses.first().map(IpAddr::to_string))
            .ok_or(SetupError::NoServerNames)?;
        let mut params = base_params(&first, days)?;
        for name in dns_names {
            let name = name.clone().try_into().map_err(SetupError::Certificate)?;
            params.subject_alt_names.push(SanType::DnsName(name));
        }
        for ip in ip_addresses {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> Result<IssuedCertificate, SetupError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(SetupError::Certificate)?;
        let certificate = params
            .signed_by(&key, &self.issuer)
            .map_err(SetupError::Certificate)?;
        Ok(IssuedCertificate {
            certificate_pem: certificate.pem(),
            certificate_der: certificate.der().to_vec(),
            private_key_pem: SecretString::new(key.serialize_pem()),
        })
    }
}

/// Subject CN, a random positive serial, and validity from an hour ago (clock skew) for `days`.
fn base_params(common_name: &str, days: u32) -> Result<CertificateParams, SetupError> {
    if !(1..=MAX_CERTIFICATE_DAYS).contains(&days) {
        return Err(SetupError::CertificateLifetime(days));
    }
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    params.distinguished_name = name;

    let mut serial = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut serial);
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));

    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(i64::from(days));
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}
