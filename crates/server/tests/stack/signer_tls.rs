//! The server's signer client over TCP with mutual TLS, against the real signer binary: the
//! configured client reaches it; a certificate from another CA or a wrong expected server name
//! is an error the caller sees as the signer being unreachable.

use std::io::Write;
use std::path::Path;

use clawfirst_core::KeyId;
use clawfirst_server::config::Config;
use clawfirst_server::datadir::DataDir;
use clawfirst_server::signer_client::{SignerClient, SignerClientError, SignerTls};
use clawfirst_server::signer_process::{SignerProcess, signer_binary};

use crate::support::TestResult;

/// Runs `clawfirst-signer dangerous-dev-tls-setup --dir DIR`.
fn dev_tls_setup(dir: &Path) -> TestResult {
    let output = std::process::Command::new(signer_binary())
        .arg("dangerous-dev-tls-setup")
        .arg("--dir")
        .arg(dir)
        .output()?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

fn tls_for(dir: &Path, port: u16, client_dir: &Path, server_name: &str) -> SignerTls {
    SignerTls {
        address: format!("127.0.0.1:{port}"),
        ca_file: dir.join("signer-ca.pem"),
        server_name: server_name.to_owned(),
        cert_file: client_dir.join("server-client.pem"),
        key_file: client_dir.join("server-client.key"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signer_client_reaches_a_real_signer_over_mutual_tls() -> TestResult {
    let root = tempfile::tempdir()?;
    let data = DataDir::new(&root.path().join("data"))?;
    data.initialize("127.0.0.1:0")?;
    let tls_dir = root.path().join("tls");
    let other_dir = root.path().join("other");
    dev_tls_setup(&tls_dir)?;
    dev_tls_setup(&other_dir)?;

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut signer_toml = std::fs::OpenOptions::new()
        .append(true)
        .open(data.path("signer.toml"))?;
    write!(
        signer_toml,
        "\n[tls]\nlisten = \"127.0.0.1:{port}\"\ncert_file = {:?}\nkey_file = {:?}\n\
         client_ca_file = {:?}\nallowed_client = \"urn:clawfirst:server\"\n",
        tls_dir.join("signer.pem"),
        tls_dir.join("signer.key"),
        tls_dir.join("signer-ca.pem"),
    )?;
    drop(signer_toml);
    let _signer = SignerProcess::start(
        &data.path("signer.toml"),
        &data.path("signer.log"),
        &data.path("signer.sock"),
    )
    .await?;

    // The `[signer]` keys, read by the configuration and chosen by `from_config`.
    let server_toml = root.path().join("clawfirst.toml");
    std::fs::write(
        &server_toml,
        format!(
            "[signer]\ntls_address = \"127.0.0.1:{port}\"\ntls_ca_file = \"tls/signer-ca.pem\"\n\
             tls_server_name = \"localhost\"\ntls_cert_file = \"tls/server-client.pem\"\n\
             tls_key_file = \"tls/server-client.key\"\n"
        ),
    )?;
    let config = Config::load(&server_toml)?;
    assert_eq!(
        config.signer_tls,
        Some(tls_for(&tls_dir, port, &tls_dir, "localhost"))
    );
    let over_tls = SignerClient::from_config(&config)?;
    assert_eq!(over_tls.endpoint(), format!("tls://127.0.0.1:{port}"));
    over_tls.health().await?;
    let key_id = KeyId::new("default")?;
    let over_socket = SignerClient::new(data.path("signer.sock"));
    assert_eq!(
        over_tls.public_key(&key_id).await?,
        over_socket.public_key(&key_id).await?
    );
    // The pool reuses the connection: many calls, no new handshakes needed.
    for _ in 0..20 {
        over_tls.health().await?;
    }

    // A client certificate from another CA: refused by the signer.
    let stranger = SignerClient::with_tls(&tls_for(&tls_dir, port, &other_dir, "localhost"))?;
    let refused = stranger.health().await;
    assert!(
        matches!(refused, Err(SignerClientError::Unreachable(_))),
        "{refused:?}"
    );

    // The right certificate, but the server expects another name: refused by the client.
    let misnamed = SignerClient::with_tls(&tls_for(&tls_dir, port, &tls_dir, "signer.example"))?;
    let refused = misnamed.health().await;
    assert!(
        matches!(refused, Err(SignerClientError::Unreachable(_))),
        "{refused:?}"
    );

    let log = std::fs::read_to_string(data.path("signer.log"))?;
    assert!(
        log.contains("client refused: certificate not accepted"),
        "{log}"
    );
    Ok(())
}

#[test]
fn tls_keys_are_all_or_none() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("clawfirst.toml");
    for (text, key) in [
        ("[signer]\ntls_ca_file = \"ca.pem\"\n", "signer.tls_ca_file"),
        (
            "[signer]\ntls_address = \"h:1\"\n",
            "signer.tls_server_name",
        ),
        ("[signer]\ntls_address = \"nope\"\n", "signer.tls_address"),
    ] {
        std::fs::write(&path, text)?;
        let error = Config::load(&path).map(|_| ()).map_err(|e| e.to_string());
        assert!(
            matches!(&error, Err(message) if message.contains(key)),
            "{text}: {error:?}"
        );
    }
    std::fs::write(&path, "[signer]\nsocket = \"s.sock\"\n")?;
    assert_eq!(Config::load(&path)?.signer_tls, None);
    Ok(())
}
