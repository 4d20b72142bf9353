//! The `[tls]` section: HTTPS for the MCP endpoint and the admin API, and agents identified by
//! client certificates from the operator's CA (mutual TLS).
//!
//! ```toml
//! [tls]
//! cert_file = "tls/server.pem"          # the server's certificate chain, leaf first (PEM)
//! key_file = "tls/server.key"           # its private key (PEM, mode 0600 or stricter)
//! client_ca_file = "ca/operator-ca.pem" # optional: agents' client certificates chain to it
//! client_auth = "required"              # or "optional"; only with client_ca_file
//! client_identity = "san_uri"           # or "subject_cn": where the agent id is
//! san_uri_prefix = "urn:clawfirst:agent:"
//! handshake_timeout_seconds = 10
//! ```
//!
//! | key | default | security consequence |
//! |---|---|---|
//! | `cert_file`, `key_file` | none (plain HTTP) | set both to serve HTTPS (TLS 1.3 only) |
//! | `client_ca_file` | none | every certificate it issued admits the agent it names |
//! | `client_auth` | `required` | `optional` admits certificate-less clients (bearer only) |
//! | `client_identity` | `san_uri` | `subject_cn` trusts the CA never to reuse an agent's id |
//! | `san_uri_prefix` | `urn:clawfirst:agent:` | compared exactly; `agents add --mtls` uses it |
//! | `handshake_timeout_seconds` | 10 | a handshake not finished in time is dropped |
//!
//! Only TLS 1.3 is offered: every current TLS stack speaks it, and under TLS 1.2 the client
//! certificate crosses the network in clear text, so an observer would learn which agent
//! connects. Files are read when the server starts, not when the configuration is parsed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clawfirst_auth::cert::{CertIdentity, DEFAULT_SAN_URI_PREFIX};
use serde::Deserialize;

use super::{ConfigError, invalid};

/// The section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_ca_file: Option<PathBuf>,
    client_auth: Option<String>,
    client_identity: Option<String>,
    san_uri_prefix: Option<String>,
    handshake_timeout_seconds: Option<u64>,
}

/// Whether a client must present a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// The handshake fails without a certificate chaining to the client CA.
    Required,
    /// Clients without a certificate connect and authenticate by bearer credential; a
    /// certificate, when presented, must still chain to the client CA.
    Optional,
}

/// Client certificates: who may present them and what they say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCertificates {
    /// The CA certificates (PEM) a client certificate must chain to.
    pub ca_file: PathBuf,
    /// Required or optional.
    pub auth: ClientAuth,
    /// Where the agent id is.
    pub identity: CertIdentity,
}

/// The checked `[tls]` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// The server's certificate chain (PEM, leaf first).
    pub cert_file: PathBuf,
    /// Its private key (PEM, mode 0600 or stricter).
    pub key_file: PathBuf,
    /// Mutual TLS, when configured.
    pub clients: Option<ClientCertificates>,
    /// How long a client may take to complete the handshake.
    pub handshake_timeout: Duration,
}

/// Checks the section, resolving paths against `base`. `None` when the section sets no file:
/// the server then speaks plain HTTP.
pub(super) fn build(raw: RawTls, base: &Path) -> Result<Option<TlsConfig>, ConfigError> {
    let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
    let (cert_file, key_file) = match (raw.cert_file, raw.key_file) {
        (Some(cert), Some(key)) => (resolve(cert), resolve(key)),
        (None, None) => {
            let stray = [
                ("tls.client_ca_file", raw.client_ca_file.is_some()),
                ("tls.client_auth", raw.client_auth.is_some()),
                ("tls.client_identity", raw.client_identity.is_some()),
                ("tls.san_uri_prefix", raw.san_uri_prefix.is_some()),
                (
                    "tls.handshake_timeout_seconds",
                    raw.handshake_timeout_seconds.is_some(),
                ),
            ];
            return match stray.into_iter().find(|(_, set)| *set) {
                Some((key, _)) => Err(invalid(key, "needs tls.cert_file and tls.key_file")),
                None => Ok(None),
            };
        }
        (Some(_), None) => return Err(invalid("tls.key_file", "required with tls.cert_file")),
        (None, Some(_)) => return Err(invalid("tls.cert_file", "required with tls.key_file")),
    };

    let seconds = raw.handshake_timeout_seconds.unwrap_or(10);
    if !(1..=120).contains(&seconds) {
        return Err(invalid(
            "tls.handshake_timeout_seconds",
            "must be between 1 and 120",
        ));
    }

    let clients = match raw.client_ca_file {
        None => {
            let stray = [
                ("tls.client_auth", raw.client_auth.is_some()),
                ("tls.client_identity", raw.client_identity.is_some()),
                ("tls.san_uri_prefix", raw.san_uri_prefix.is_some()),
            ];
            if let Some((key, _)) = stray.into_iter().find(|(_, set)| *set) {
                return Err(invalid(key, "needs tls.client_ca_file"));
            }
            None
        }
        Some(ca_file) => Some(ClientCertificates {
            ca_file: resolve(ca_file),
            auth: client_auth(raw.client_auth.as_deref())?,
            identity: client_identity(raw.client_identity.as_deref(), raw.san_uri_prefix)?,
        }),
    };

    Ok(Some(TlsConfig {
        cert_file,
        key_file,
        clients,
        handshake_timeout: Duration::from_secs(seconds),
    }))
}

fn client_auth(raw: Option<&str>) -> Result<ClientAuth, ConfigError> {
    match raw {
        None | Some("required") => Ok(ClientAuth::Required),
        Some("optional") => Ok(ClientAuth::Optional),
        Some(_) => Err(invalid("tls.client_auth", "must be required or optional")),
    }
}

fn client_identity(raw: Option<&str>, prefix: Option<String>) -> Result<CertIdentity, ConfigError> {
    match raw {
        None | Some("san_uri") => {
            let prefix = prefix.unwrap_or_else(|| DEFAULT_SAN_URI_PREFIX.to_owned());
            if prefix.is_empty() || prefix.chars().any(char::is_whitespace) {
                return Err(invalid(
                    "tls.san_uri_prefix",
                    "must be non-empty without spaces",
                ));
            }
            Ok(CertIdentity::SanUri { prefix })
        }
        Some("subject_cn") if prefix.is_some() => Err(invalid(
            "tls.san_uri_prefix",
            "only applies with client_identity = \"san_uri\"",
        )),
        Some("subject_cn") => Ok(CertIdentity::SubjectCommonName),
        Some(_) => Err(invalid(
            "tls.client_identity",
            "must be san_uri or subject_cn",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<TlsConfig>, ConfigError> {
        #[derive(Deserialize)]
        struct Wrapper {
            tls: RawTls,
        }
        let raw: Wrapper = toml::from_str(text).map_err(|e| invalid("tls", e))?;
        build(raw.tls, Path::new("/data"))
    }

    fn error_key(text: &str) -> String {
        match parse(text) {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => format!("no key error: {other:?}"),
        }
    }

    #[test]
    fn an_empty_section_means_plain_http() -> Result<(), ConfigError> {
        assert_eq!(parse("[tls]\n")?, None);
        Ok(())
    }

    #[test]
    fn defaults_require_a_san_uri_certificate_once_a_client_ca_is_set() -> Result<(), ConfigError> {
        let tls = parse(
            "[tls]\ncert_file = \"s.pem\"\nkey_file = \"/k/s.key\"\nclient_ca_file = \"ca.pem\"\n",
        )?;
        let expected = TlsConfig {
            cert_file: PathBuf::from("/data/s.pem"),
            key_file: PathBuf::from("/k/s.key"),
            clients: Some(ClientCertificates {
                ca_file: PathBuf::from("/data/ca.pem"),
                auth: ClientAuth::Required,
                identity: CertIdentity::default(),
            }),
            handshake_timeout: Duration::from_secs(10),
        };
        assert_eq!(tls, Some(expected));
        Ok(())
    }

    #[test]
    fn optional_client_auth_and_common_name_identity_are_read() -> Result<(), ConfigError> {
        let tls = parse(
            "[tls]\ncert_file = \"s.pem\"\nkey_file = \"s.key\"\nclient_ca_file = \"ca.pem\"\n\
             client_auth = \"optional\"\nclient_identity = \"subject_cn\"\n",
        )?;
        let clients = tls.and_then(|t| t.clients);
        assert_eq!(
            clients.map(|c| (c.auth, c.identity)),
            Some((ClientAuth::Optional, CertIdentity::SubjectCommonName))
        );
        Ok(())
    }

    #[test]
    fn each_mistake_names_its_key() {
        let both = "[tls]\ncert_file = \"s.pem\"\nkey_file = \"s.key\"\n";
        let cases = [
            ("[tls]\ncert_file = \"s.pem\"\n".to_owned(), "tls.key_file"),
            ("[tls]\nkey_file = \"s.key\"\n".to_owned(), "tls.cert_file"),
            (
                "[tls]\nclient_ca_file = \"ca.pem\"\n".to_owned(),
                "tls.client_ca_file",
            ),
            (
                format!("{both}client_auth = \"optional\"\n"),
                "tls.client_auth",
            ),
            (
                format!("{both}client_ca_file = \"c\"\nclient_auth = \"maybe\"\n"),
                "tls.client_auth",
            ),
            (
                format!("{both}client_ca_file = \"c\"\nclient_identity = \"email\"\n"),
                "tls.client_identity",
            ),
            (
                format!(
                    "{both}client_ca_file = \"c\"\nclient_identity = \"subject_cn\"\n\
                     san_uri_prefix = \"x:\"\n"
                ),
                "tls.san_uri_prefix",
            ),
            (
                format!("{both}client_ca_file = \"c\"\nsan_uri_prefix = \"\"\n"),
                "tls.san_uri_prefix",
            ),
            (
                format!("{both}handshake_timeout_seconds = 0\n"),
                "tls.handshake_timeout_seconds",
            ),
        ];
        for (text, key) in cases {
            assert_eq!(error_key(&text), key, "{text}");
        }
    }
}
