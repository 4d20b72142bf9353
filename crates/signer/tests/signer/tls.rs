//! The TCP listener with mutual TLS, against the real binary on 127.0.0.1: the allowed client
//! is served exactly as over the socket; every other client is refused during the handshake,
//! logged, and leaves no row in the request log.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clawfirst_core::signer_proto::{SignerRequest, SignerResponse};
use ed25519_dalek::{Signature, VerifyingKey};

use crate::fixtures::{granted, sol_transfer};
use crate::harness::{Backend, Error, Setup, Signer, TestResult};

mod pki;

use pki::{Ca, Leaf, SERVER_IDENTITY, TlsClient, Validity, free_port, health_over_tls};

/// A signer serving its socket and TLS, and the CA it trusts for clients.
struct TlsSigner {
    signer: Signer,
    port: u16,
    ca: Ca,
}

impl TlsSigner {
    fn start() -> Result<TlsSigner, Error> {
        let setup = Setup::new(Backend::Keyfile)?;
        let ca = Ca::new("clawfirst test signer CA")?;
        let port = configure_tls(&setup, &ca)?;
        Ok(TlsSigner {
            signer: setup.start()?,
            port,
            ca,
        })
    }

    /// A client configuration presenting a certificate issued by `issuer` for `leaf`.
    fn client(&self, issuer: &Ca, leaf: Leaf<'_>) -> Result<Arc<rustls::ClientConfig>, Error> {
        pki::client_config(&self.ca.pem, Some(&issuer.issue(leaf)?))
    }

    /// Expects the client to be refused, the refusal logged with `log`, and no request row.
    fn assert_refused(&self, config: Arc<rustls::ClientConfig>, log: &str) -> TestResult {
        let rows_before = self.signer.request_log()?.len();
        let outcome = health_over_tls(self.port, config);
        assert!(outcome.is_err(), "a refused client was served: {outcome:?}");
        wait_for_log(&self.signer, log)?;
        assert_eq!(
            self.signer.request_log()?.len(),
            rows_before,
            "a refused client must not reach the request handler"
        );
        Ok(())
    }
}

/// Writes the signer's certificate, trusts `ca` for clients, and appends a `[tls]` section.
fn configure_tls(setup: &Setup, ca: &Ca) -> Result<u16, Error> {
    let dir = setup.dir.path();
    let server = ca.issue(Leaf {
        purpose: pki::Purpose::Server,
        validity: Validity::Current,
    })?;
    pki::write_pair(dir, "signer", &server)?;
    std::fs::write(dir.join("clients-ca.pem"), &ca.pem)?;
    let port = free_port()?;
    let mut config = std::fs::OpenOptions::new()
        .append(true)
        .open(&setup.config)?;
    write!(
        config,
        "\n[tls]\nlisten = \"127.0.0.1:{port}\"\ncert_file = \"signer.pem\"\n\
         key_file = \"signer.key\"\nclient_ca_file = \"clients-ca.pem\"\n\
         allowed_client = \"{SERVER_IDENTITY}\"\n"
    )?;
    Ok(port)
}

fn wait_for_log(signer: &Signer, text: &str) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !signer.stderr().contains(text) {
        if Instant::now() > deadline {
            return Err(format!("the signer never logged {text:?}: {}", signer.stderr()).into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

#[test]
fn the_allowed_client_gets_health_and_a_verifiable_signature() -> TestResult {
    let s = TlsSigner::start()?;
    let config = s.client(&s.ca, Leaf::client(SERVER_IDENTITY))?;
    let mut client = TlsClient::connect(s.port, config)?;

    let health = client.request(&SignerRequest::Health {})?;
    assert!(
        matches!(health, SignerResponse::Health { .. }),
        "{health:?}"
    );

    let g = granted(
        &s.signer.grants,
        &s.signer.key_id,
        &sol_transfer(s.signer.wallet),
    )?;
    let response = client.request(&g.request)?;
    let SignerResponse::Signed {
        signature,
        public_key,
    } = response
    else {
        panic!("expected a signature, got {response:?}");
    };
    assert_eq!(public_key, s.signer.wallet);
    let bytes: [u8; 64] = bs58::decode(&signature).into_vec()?.as_slice().try_into()?;
    VerifyingKey::from_bytes(s.signer.wallet.as_bytes())?
        .verify_strict(&g.message, &Signature::from_bytes(&bytes))?;

    // The same grant again, over the socket this time: one database, one burn.
    let again = s.signer.connect()?.request(&g.request)?;
    assert!(
        matches!(again, SignerResponse::Error { .. }),
        "a grant used over TLS must be burned for the socket too: {again:?}"
    );
    let log = s.signer.request_log()?;
    assert!(
        log.contains(&("sign".to_owned(), "signed".to_owned())),
        "{log:?}"
    );
    Ok(())
}

#[test]
fn a_client_without_a_certificate_is_refused() -> TestResult {
    let s = TlsSigner::start()?;
    let config = pki::client_config(&s.ca.pem, None)?;
    s.assert_refused(config, "reason=peer sent no certificates")
}

#[test]
fn a_certificate_from_another_ca_is_refused() -> TestResult {
    let s = TlsSigner::start()?;
    let other = Ca::new("someone else's CA")?;
    let config = s.client(&other, Leaf::client(SERVER_IDENTITY))?;
    s.assert_refused(config, "client refused: certificate not accepted")?;
    assert!(
        s.signer.stderr().contains("UnknownIssuer"),
        "{}",
        s.signer.stderr()
    );
    Ok(())
}

#[test]
fn a_certificate_from_the_ca_for_another_identity_is_refused() -> TestResult {
    let s = TlsSigner::start()?;
    for identity in [
        "urn:clawfirst:agent",
        "urn:clawfirst:server:x",
        "server.example",
    ] {
        let config = s.client(&s.ca, Leaf::client(identity))?;
        s.assert_refused(
            config,
            "client refused: certificate is not the allowed client",
        )?;
    }
    Ok(())
}

#[test]
fn an_expired_certificate_is_refused() -> TestResult {
    let s = TlsSigner::start()?;
    let leaf = Leaf {
        purpose: pki::Purpose::Client(SERVER_IDENTITY),
        validity: Validity::Expired,
    };
    let config = s.client(&s.ca, leaf)?;
    s.assert_refused(config, "client refused: certificate not accepted")?;
    assert!(
        s.signer.stderr().contains("certificate expired"),
        "{}",
        s.signer.stderr()
    );
    Ok(())
}

#[test]
fn plaintext_tcp_gets_no_answer() -> TestResult {
    let s = TlsSigner::start()?;
    let rows_before = s.signer.request_log()?.len();
    let mut tcp = TcpStream::connect(("127.0.0.1", s.port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(15)))?;
    tcp.write_all(b"{\"op\":\"health\"}\n")?;
    let mut answer = Vec::new();
    // The signer answers a non-TLS record with at most an alert, then closes.
    let _ = tcp.read_to_end(&mut answer);
    assert!(
        !String::from_utf8_lossy(&answer).contains("result"),
        "plaintext got a protocol answer: {answer:?}"
    );
    wait_for_log(&s.signer, "connection refused: tls handshake failed")?;
    assert_eq!(s.signer.request_log()?.len(), rows_before);
    Ok(())
}

#[test]
fn a_private_key_readable_by_others_stops_the_start() -> TestResult {
    let setup = Setup::new(Backend::Keyfile)?;
    let ca = Ca::new("clawfirst test signer CA")?;
    configure_tls(&setup, &ca)?;
    let key = setup.dir.path().join("signer.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644))?;
    let output = setup
        .command()
        .arg("--config")
        .arg(&setup.config)
        .output()?;
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("chmod 600"), "{stderr}");
    assert!(!setup.socket.exists(), "no socket is left behind");
    Ok(())
}

#[test]
fn the_dev_setup_command_writes_files_a_tls_only_signer_accepts() -> TestResult {
    let setup = Setup::new(Backend::Keyfile)?;
    let tls_dir = setup.dir.path().join("tls");
    let output = setup
        .command()
        .args(["dangerous-dev-tls-setup", "--dir"])
        .arg(&tls_dir)
        .output()?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for (name, mode) in [
        ("signer-ca.pem", 0o644),
        ("signer.pem", 0o644),
        ("signer.key", 0o600),
        ("server-client.pem", 0o644),
        ("server-client.key", 0o600),
    ] {
        let actual = std::fs::metadata(tls_dir.join(name))?.permissions().mode() & 0o777;
        assert_eq!(actual & mode, actual, "{name} has mode {actual:o}");
    }
    let again = setup
        .command()
        .args(["dangerous-dev-tls-setup", "--dir"])
        .arg(&tls_dir)
        .output()?;
    assert_eq!(
        again.status.code(),
        Some(1),
        "existing files must never be replaced"
    );

    // A signer with TLS only, from the printed configuration.
    let port = free_port()?;
    let printed = String::from_utf8(output.stdout)?;
    let signer_part = printed
        .split("# clawfirst (server) configuration")
        .next()
        .unwrap_or_default()
        .replace("127.0.0.1:7443", &format!("127.0.0.1:{port}"));
    let text = std::fs::read_to_string(&setup.config)?.replace("socket = \"signer.sock\"\n", "");
    std::fs::write(&setup.config, format!("{text}\n{signer_part}"))?;
    let stderr = setup.dir.path().join("signer.stderr");
    let mut child = setup.spawn(&stderr)?;

    let read = |name: &str| std::fs::read_to_string(tls_dir.join(name));
    let client = (read("server-client.pem")?, read("server-client.key")?);
    let config = pki::client_config(&read("signer-ca.pem")?, Some(&client))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let outcome = loop {
        match health_over_tls(port, Arc::clone(&config)) {
            Ok(response) => break Ok(response),
            Err(e) if Instant::now() > deadline => break Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(&stderr)?;
    assert!(
        matches!(outcome, Ok(SignerResponse::Health { .. })),
        "{outcome:?}: {log}"
    );
    assert!(!setup.socket.exists(), "a TLS-only signer makes no socket");
    Ok(())
}
