use std::path::Path;

use clawfirst_core::grant::GrantSigner;
use proptest::prelude::*;

use super::ClientIdentity;
use crate::config::{Config, ConfigError};

fn config_text(socket: bool, tls: &str) -> String {
    let socket = match socket {
        true => "socket = \"signer.sock\"\n",
        false => "",
    };
    format!(
        "{socket}database = \"d\"\ngrant_public_key = \"{}\"\ndangerous_no_floor = true\n\n\
         [[keys]]\nid = \"default\"\nbackend = \"dangerous_dev_keyfile\"\npath = \"k\"\n\
         passphrase_env = \"P\"\n{tls}",
        GrantSigner::generate().public_key()
    )
}

const TLS: &str = "[tls]\nlisten = \"127.0.0.1:7443\"\ncert_file = \"signer.pem\"\n\
                   key_file = \"/keys/signer.key\"\nclient_ca_file = \"ca.pem\"\n\
                   allowed_client = \"urn:clawfirst:server\"\n";

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/clawfirst"))
}

#[test]
fn a_tls_section_parses_with_paths_resolved() -> Result<(), ConfigError> {
    let config = parse(&config_text(false, TLS))?;
    assert_eq!(config.socket, None);
    let Some(tls) = config.tls else {
        panic!("the [tls] section was dropped");
    };
    assert_eq!(tls.listen.to_string(), "127.0.0.1:7443");
    assert_eq!(tls.cert_file, Path::new("/etc/clawfirst/signer.pem"));
    assert_eq!(tls.key_file, Path::new("/keys/signer.key"));
    assert_eq!(tls.client_ca_file, Path::new("/etc/clawfirst/ca.pem"));
    assert_eq!(
        tls.allowed_client,
        ClientIdentity::Uri("urn:clawfirst:server".to_owned())
    );
    Ok(())
}

#[test]
fn a_signer_needs_a_socket_or_tls() {
    let e = parse(&config_text(false, "")).map(|_| ());
    assert!(
        matches!(&e, Err(ConfigError::Invalid { field, .. }) if field == "socket"),
        "{e:?}"
    );
}

#[test]
fn tls_fields_are_checked_and_named() {
    let cases = [
        (
            TLS.replace("127.0.0.1:7443", "localhost:7443"),
            "tls.listen",
        ),
        (
            TLS.replace("urn:clawfirst:server", "*.example.org"),
            "tls.allowed_client",
        ),
        (
            TLS.replace("urn:clawfirst:server", "urn: x"),
            "tls.allowed_client",
        ),
        (TLS.replace("ca.pem", ""), "tls.client_ca_file"),
    ];
    for (tls, field) in cases {
        let e = parse(&config_text(true, &tls)).map(|_| ());
        assert!(
            matches!(&e, Err(ConfigError::Invalid { field: f, .. }) if f == field),
            "{field}: {e:?}"
        );
    }
    let unknown = parse(&config_text(true, &format!("{TLS}plaintext = true\n")));
    assert!(matches!(unknown, Err(ConfigError::Parse { .. })));
    let missing = parse(&config_text(true, &TLS.replace("allowed_client", "#")));
    assert!(matches!(missing, Err(ConfigError::Parse { .. })));
}

#[test]
fn identities_are_uris_or_dns_names() {
    assert_eq!(
        ClientIdentity::parse("spiffe://example.org/server"),
        Ok(ClientIdentity::Uri(
            "spiffe://example.org/server".to_owned()
        ))
    );
    assert_eq!(
        ClientIdentity::parse("Server.Example.ORG"),
        Ok(ClientIdentity::Dns("server.example.org".to_owned()))
    );
    for bad in [
        "",
        ":x",
        "1urn:x",
        "urn:",
        "a b",
        "*.example.org",
        "-bad-.example",
    ] {
        assert!(ClientIdentity::parse(bad).is_err(), "{bad:?} was accepted");
    }
}

#[test]
fn matching_is_exact_for_uris_and_case_blind_for_dns() {
    let uri = ClientIdentity::Uri("urn:clawfirst:server".to_owned());
    assert!(uri.matches(&["urn:other", "urn:clawfirst:server"], &[]));
    assert!(!uri.matches(&["URN:clawfirst:server", "urn:clawfirst:server2"], &[]));
    assert!(!uri.matches(&[], &["urn:clawfirst:server"]));
    let dns = ClientIdentity::Dns("server.example.org".to_owned());
    assert!(dns.matches(&[], &["SERVER.example.org"]));
    assert!(!dns.matches(&["server.example.org"], &["*.example.org"]));
}

proptest! {
    #[test]
    fn parsing_never_panics_and_an_identity_matches_itself(text in "\\PC{0,80}") {
        if let Ok(identity) = ClientIdentity::parse(&text) {
            let matched = match &identity {
                ClientIdentity::Uri(uri) => identity.matches(&[uri], &[]),
                ClientIdentity::Dns(name) => identity.matches(&[], &[name]),
            };
            prop_assert!(matched);
        }
    }
}
