//! Client-certificate identities and the operator CA, checked with rustls' own verifiers.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use clawfirst_auth::ca::OperatorCa;
use clawfirst_auth::cert::{CertIdentity, agent_from_certificate};
use clawfirst_auth::{AuthError, AuthMethod, SetupError};
use clawfirst_core::AgentId;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::support::TestResult;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn client_verifier(
    ca: &OperatorCa,
) -> Result<Arc<dyn ClientCertVerifier>, Box<dyn std::error::Error>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca.certificate_der().to_vec()))?;
    Ok(WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider()).build()?)
}

fn accepts(verifier: &dyn ClientCertVerifier, der: &[u8]) -> bool {
    verifier
        .verify_client_cert(&CertificateDer::from(der.to_vec()), &[], UnixTime::now())
        .is_ok()
}

/// A self-signed certificate with exactly these subject names, for the mapping cases.
fn custom(common_names: &[&str], san_uris: &[&str]) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    for cn in common_names {
        dn.push(DnType::CommonName, *cn);
    }
    params.distinguished_name = dn;
    for uri in san_uris {
        params
            .subject_alt_names
            .push(SanType::URI((*uri).try_into()?));
    }
    let key = KeyPair::generate()?;
    Ok(params.self_signed(&key)?.der().to_vec())
}

#[test]
fn an_issued_client_certificate_maps_to_its_agent_both_ways() -> TestResult {
    let ca = OperatorCa::generate("ClawFirst test CA")?;
    let agent = AgentId::new("agent-7")?;
    let issued = ca.issue_client_certificate(&agent, 30)?;
    let der = &issued.certificate_der;
    assert_eq!(
        agent_from_certificate(der, &CertIdentity::default())?,
        agent
    );
    assert_eq!(
        agent_from_certificate(der, &CertIdentity::SubjectCommonName)?,
        agent
    );
    Ok(())
}

#[test]
fn certificate_mappings_refuse_with_their_reason() -> TestResult {
    let ca = OperatorCa::generate("ca")?;
    let server = ca.issue_server_certificate(&["signer.internal".to_owned()], &[], 30)?;
    let issued = ca.issue_client_certificate(&AgentId::new("agent-7")?, 30)?;
    let mut trailing = issued.certificate_der.clone();
    trailing.push(0);
    let san = CertIdentity::default();
    let other_prefix = CertIdentity::SanUri {
        prefix: "urn:example:agent:".to_owned(),
    };
    let cn = CertIdentity::SubjectCommonName;

    let cases: Vec<(&str, Vec<u8>, &CertIdentity, &str)> = vec![
        (
            "garbage",
            b"not a certificate".to_vec(),
            &san,
            "cert_malformed",
        ),
        ("empty", Vec::new(), &san, "cert_malformed"),
        ("trailing bytes", trailing, &san, "cert_malformed"),
        (
            "server certificate, SAN URI mapping",
            server.certificate_der,
            &san,
            "cert_no_identity",
        ),
        (
            "another prefix",
            issued.certificate_der,
            &other_prefix,
            "cert_no_identity",
        ),
        ("no CN", custom(&[], &[])?, &cn, "cert_no_identity"),
        (
            "URI of another scheme only",
            custom(&[], &["https://agent-7.example"])?,
            &san,
            "cert_no_identity",
        ),
        (
            "bad agent id in the URI",
            custom(&[], &["urn:clawfirst:agent:a/b"])?,
            &san,
            "cert_bad_agent_id",
        ),
        (
            "bad agent id in the CN",
            custom(&["agent 7"], &[])?,
            &cn,
            "cert_bad_agent_id",
        ),
        (
            "empty agent id",
            custom(&[], &["urn:clawfirst:agent:"])?,
            &san,
            "cert_bad_agent_id",
        ),
        (
            "two agents in SAN URIs",
            custom(&[], &["urn:clawfirst:agent:a", "urn:clawfirst:agent:b"])?,
            &san,
            "cert_ambiguous_identity",
        ),
        (
            "two agents in CNs",
            std::fs::read(crate::support::fixture("two_common_names.der"))?,
            &cn,
            "cert_ambiguous_identity",
        ),
    ];
    for (name, der, mapping, reason) in cases {
        let error = agent_from_certificate(&der, mapping).err();
        assert_eq!(
            error.as_ref().map(AuthError::reason),
            Some(reason),
            "{name}"
        );
        assert_eq!(error.map(|e| e.method()), Some(AuthMethod::Mtls), "{name}");
    }

    let twice = custom(&[], &["urn:clawfirst:agent:a", "urn:clawfirst:agent:a"])?;
    assert_eq!(agent_from_certificate(&twice, &san)?.as_str(), "a");
    Ok(())
}

#[test]
fn rustls_accepts_client_certificates_of_the_ca_and_refuses_others() -> TestResult {
    let ca = OperatorCa::generate("ca")?;
    let other_ca = OperatorCa::generate("another ca")?;
    let verifier = client_verifier(&ca)?;
    let agent = AgentId::new("agent-7")?;

    let ours = ca.issue_client_certificate(&agent, 1)?;
    let theirs = other_ca.issue_client_certificate(&agent, 1)?;
    let server = ca.issue_server_certificate(&["agent-7".to_owned()], &[], 1)?;
    assert!(accepts(verifier.as_ref(), &ours.certificate_der));
    assert!(
        !accepts(verifier.as_ref(), &theirs.certificate_der),
        "another CA"
    );
    assert!(
        !accepts(verifier.as_ref(), &server.certificate_der),
        "a server certificate"
    );
    assert!(
        !accepts(verifier.as_ref(), ca.certificate_der()),
        "the CA itself"
    );
    Ok(())
}

#[test]
fn server_certificates_verify_for_their_names_only() -> TestResult {
    let ca = OperatorCa::generate("ca")?;
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let issued = ca.issue_server_certificate(&["signer.internal".to_owned()], &[ip], 30)?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca.certificate_der().to_vec()))?;
    let verifier =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider()).build()?;
    let leaf = CertificateDer::from(issued.certificate_der.clone());
    let check = |name: ServerName<'static>| {
        verifier
            .verify_server_cert(&leaf, &[], &name, &[], UnixTime::now())
            .is_ok()
    };
    assert!(check(ServerName::try_from("signer.internal")?));
    assert!(check(ServerName::IpAddress(ip.into())));
    assert!(!check(ServerName::try_from("other.internal")?));
    Ok(())
}

#[test]
fn a_ca_survives_a_pem_round_trip_and_refuses_foreign_keys() -> TestResult {
    let ca = OperatorCa::generate("ca")?;
    let (cert_pem, key_pem) = ca.to_pem();
    let restored = OperatorCa::from_pem(&cert_pem, &key_pem)?;
    assert_eq!(restored.certificate_der(), ca.certificate_der());
    let issued = restored.issue_client_certificate(&AgentId::new("agent-8")?, 1)?;
    assert!(accepts(
        client_verifier(&ca)?.as_ref(),
        &issued.certificate_der
    ));

    let (_, foreign_key) = OperatorCa::generate("other")?.to_pem();
    assert!(matches!(
        OperatorCa::from_pem(&cert_pem, &foreign_key),
        Err(SetupError::Pem)
    ));
    let leaf = ca.issue_client_certificate(&AgentId::new("agent-8")?, 1)?;
    assert!(matches!(
        OperatorCa::from_pem(&leaf.certificate_pem, &leaf.private_key_pem),
        Err(SetupError::Pem)
    ));
    let garbage = clawfirst_core::secret::SecretString::new("garbage".to_owned());
    assert!(matches!(
        OperatorCa::from_pem(&cert_pem, &garbage),
        Err(SetupError::Pem)
    ));
    Ok(())
}

#[test]
fn lifetimes_and_names_are_checked() -> TestResult {
    let ca = OperatorCa::generate("ca")?;
    let agent = AgentId::new("agent-7")?;
    for days in [0, 3651] {
        let result = ca.issue_client_certificate(&agent, days);
        assert!(matches!(result, Err(SetupError::CertificateLifetime(d)) if d == days));
    }
    assert!(matches!(
        ca.issue_server_certificate(&[], &[], 30),
        Err(SetupError::NoServerNames)
    ));
    Ok(())
}

#[test]
fn debug_output_never_shows_private_keys() -> TestResult {
    let ca = OperatorCa::generate("ca")?;
    let (_, ca_key) = ca.to_pem();
    let issued = ca.issue_client_certificate(&AgentId::new("agent-7")?, 1)?;
    let printed = format!("{ca:?} {issued:?}");
    for key in [ca_key.expose(), issued.private_key_pem.expose()] {
        let body = key.lines().nth(1).ok_or("empty pem")?;
        assert!(!printed.contains(body), "{printed}");
    }
    Ok(())
}
