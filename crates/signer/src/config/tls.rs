//! The `[tls]` section: a TCP listener with mutual TLS, for a signer on its own host.
//!
//! ```toml
//! [tls]
//! listen = "10.0.7.2:7443"
//! cert_file = "signer.pem"
//! key_file = "signer.key"
//! client_ca_file = "signer-ca.pem"
//! allowed_client = "urn:clawfirst:server"
//! ```
//!
//! Only the shape of each field is checked here; the files are read and checked (key mode,
//! PEM contents, a certificate that matches the key) when the listener is built, see
//! [`crate::tls`].

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;
use super::raw::{invalid, resolve};

/// The `[tls]` section as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    listen: String,
    cert_file: PathBuf,
    key_file: PathBuf,
    client_ca_file: PathBuf,
    allowed_client: String,
}

/// The validated `[tls]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// The TCP address to listen on.
    pub listen: SocketAddr,
    /// The signer's certificate chain (PEM), leaf first.
    pub cert_file: PathBuf,
    /// The signer's private key (PEM, PKCS#8, SEC1 or PKCS#1); mode 0600 or stricter.
    pub key_file: PathBuf,
    /// The CA certificates (PEM) that client certificates must chain to.
    pub client_ca_file: PathBuf,
    /// The one client identity served.
    pub allowed_client: ClientIdentity,
}

/// The identity a client certificate must carry as a subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientIdentity {
    /// A URI name, such as `urn:clawfirst:server` or `spiffe://example.org/server`; compared
    /// exactly.
    Uri(String),
    /// A DNS name; compared without regard to ASCII case. Wildcard certificates do not match.
    Dns(String),
}

impl ClientIdentity {
    /// Reads an identity: text with a `:` is a URI (DNS names cannot hold one), anything else a
    /// DNS name.
    ///
    /// # Errors
    /// A reason when the text is neither a URI with a scheme nor a valid DNS name.
    pub fn parse(text: &str) -> Result<ClientIdentity, &'static str> {
        if text.len() > 255 || text.is_empty() {
            return Err("must be 1 to 255 characters");
        }
        if let Some((scheme, rest)) = text.split_once(':') {
            let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
            let rest_ok = !rest.is_empty() && text.bytes().all(|b| b.is_ascii_graphic());
            return match scheme_ok && rest_ok {
                true => Ok(ClientIdentity::Uri(text.to_owned())),
                false => Err("a URI needs a scheme and visible ASCII only (urn:clawfirst:server)"),
            };
        }
        if text.starts_with('*') {
            return Err("a wildcard cannot name one client");
        }
        rustls_pki_types::DnsName::try_from(text)
            .map(|_| ClientIdentity::Dns(text.to_ascii_lowercase()))
            .map_err(|_| "not a valid DNS name or URI")
    }

    /// Whether a certificate's subject alternative names include this identity.
    pub fn matches(&self, uris: &[&str], dns_names: &[&str]) -> bool {
        match self {
            ClientIdentity::Uri(uri) => uris.iter().any(|u| u == uri),
            ClientIdentity::Dns(name) => dns_names.iter().any(|d| d.eq_ignore_ascii_case(name)),
        }
    }
}

impl fmt::Display for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientIdentity::Uri(uri) => write!(f, "URI {uri}"),
            ClientIdentity::Dns(name) => write!(f, "DNS {name}"),
        }
    }
}

impl RawTls {
    pub(super) fn validate(self, base: &Path) -> Result<TlsConfig, ConfigError> {
        let listen: SocketAddr = self
            .listen
            .parse()
            .map_err(|_| invalid("tls.listen", "must be an IP:port address"))?;
        let allowed_client = ClientIdentity::parse(&self.allowed_client)
            .map_err(|reason| invalid("tls.allowed_client", reason))?;
        Ok(TlsConfig {
            listen,
            cert_file: resolve("tls.cert_file", base, self.cert_file)?,
            key_file: resolve("tls.key_file", base, self.key_file)?,
            client_ca_file: resolve("tls.client_ca_file", base, self.client_ca_file)?,
            allowed_client,
        })
    }
}

#[cfg(test)]
mod tests;
