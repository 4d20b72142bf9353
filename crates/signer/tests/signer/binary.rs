//! The real binary as a process: socket, framing, shutdown, start-up refusals, key generation,
//! and logs.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use clawfirst_core::secret::SecretString;
use clawfirst_core::signer_proto::{
    MAX_FRAME_BYTES, SignerErrorCode, SignerRequest, SignerResponse,
};
use clawfirst_signer::backend::KeyBackend;
use clawfirst_signer::backend::dangerous_dev_keyfile::DevKeyfileBackend;

use crate::fixtures::{assert_refused, granted, sol_transfer};
use crate::harness::{BIN, Backend, Client, PASSPHRASE, Setup, Signer, TestResult, write_secret};

#[test]
fn the_socket_is_owner_only() -> TestResult {
    let signer = Signer::start(Backend::Keyfile)?;
    let mode = std::fs::metadata(&signer.socket)?.permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");
    Ok(())
}

#[test]
fn an_oversize_line_is_refused_and_the_connection_closed() -> TestResult {
    let signer = Signer::start(Backend::Keyfile)?;

    // Exactly at the limit: an ordinary bad request, and the connection stays usable.
    let mut client = signer.connect()?;
    let mut at_limit = vec![b' '; MAX_FRAME_BYTES];
    at_limit.push(b'\n');
    assert_refused(&client.send_raw(&at_limit)?, SignerErrorCode::BadRequest);
    assert!(matches!(
        client.request(&SignerRequest::Health {})?,
        SignerResponse::Health { .. }
    ));

    // One byte over: refused, then closed.
    let mut over = vec![b'a'; MAX_FRAME_BYTES + 1];
    over.push(b'\n');
    let response = client.send_raw(&over)?;
    let SignerResponse::Error { code, message } = &response else {
        panic!("expected a refusal, got {response:?}");
    };
    assert_eq!(*code, SignerErrorCode::BadRequest);
    assert!(message.contains("exceeds"), "{message}");
    assert!(
        client.is_closed()?,
        "the connection must close after an oversize line"
    );

    // The signer itself is unaffected.
    assert!(matches!(
        signer.connect()?.request(&SignerRequest::Health {})?,
        SignerResponse::Health { .. }
    ));
    Ok(())
}

#[test]
fn sigterm_closes_idle_connections_removes_the_socket_and_exits_zero() -> TestResult {
    let mut signer = Signer::start(Backend::Keyfile)?;
    let mut idle = signer.connect()?;
    let g = granted(&signer.grants, &signer.key_id, &sol_transfer(signer.wallet))?;
    assert!(matches!(
        idle.request(&g.request)?,
        SignerResponse::Signed { .. }
    ));

    let status = signer.terminate()?;
    assert_eq!(status.code(), Some(0), "{}", signer.stderr());
    assert!(!signer.socket.exists(), "the socket file must be removed");
    assert!(idle.is_closed()?, "idle connections are closed on shutdown");
    assert!(signer.stderr().contains("signer stopped"));
    Ok(())
}

#[test]
fn a_second_signer_on_a_live_socket_refuses_and_a_stale_socket_is_replaced() -> TestResult {
    let mut signer = Signer::start(Backend::Keyfile)?;
    let second = signer
        .command()
        .arg("--config")
        .arg(&signer.config)
        .output()?;
    assert_eq!(second.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("already listening"), "{stderr}");

    signer.kill_and_restart()?;
    assert!(matches!(
        signer.connect()?.request(&SignerRequest::Health {})?,
        SignerResponse::Health { .. }
    ));
    Ok(())
}

#[test]
fn an_invalid_config_refuses_to_start_and_names_the_field() -> TestResult {
    let setup = Setup::new(Backend::Keyfile)?;
    let text = std::fs::read_to_string(&setup.config)?.replace("path =", "pth =");
    std::fs::write(&setup.config, text)?;
    let output = setup
        .command()
        .arg("--config")
        .arg(&setup.config)
        .output()?;
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("pth"), "{stderr}");
    assert!(!setup.socket.exists());
    Ok(())
}

#[test]
fn a_config_without_a_floor_refuses_to_start() -> TestResult {
    let setup = Setup::with_floor(Backend::Keyfile, "")?;
    let output = setup
        .command()
        .arg("--config")
        .arg(&setup.config)
        .output()?;
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("floor"), "{stderr}");
    assert!(!setup.socket.exists());
    Ok(())
}

#[test]
fn a_wrong_passphrase_refuses_to_start_without_echoing_it() -> TestResult {
    let setup = Setup::new(Backend::Keyfile)?;
    let wrong = "wrong-passphrase-that-must-not-be-printed";
    write_secret(&setup.dir.path().join("wallet.pass"), wrong)?;
    let output = setup
        .command()
        .arg("--config")
        .arg(&setup.config)
        .output()?;
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("wrong passphrase"), "{stderr}");
    assert!(
        !stderr.contains(wrong) && !stderr.contains(PASSPHRASE),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn a_wrong_pin_refuses_to_start_without_echoing_it() -> TestResult {
    let setup = Setup::new(Backend::Pkcs11)?;
    let wrong = "13579024";
    write_secret(&setup.dir.path().join("token.pin"), wrong)?;
    let output = setup
        .command()
        .arg("--config")
        .arg(&setup.config)
        .output()?;
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("login"), "{stderr}");
    assert!(!stderr.contains(wrong), "{stderr}");
    Ok(())
}

#[test]
fn pkcs11_keygen_refuses_a_label_already_on_the_token() -> TestResult {
    let setup = Setup::new(Backend::Pkcs11)?;
    let output = setup
        .command()
        .arg("pkcs11-keygen")
        .arg("--module")
        .arg(crate::harness::softhsm_module())
        .args([
            "--token-label",
            crate::harness::TOKEN_LABEL,
            "--key-label",
            crate::harness::KEY_LABEL,
        ])
        .arg("--pin-file")
        .arg(setup.dir.path().join("token.pin"))
        .output()?;
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("already holds"), "{stderr}");
    Ok(())
}

#[test]
fn dangerous_dev_keygen_writes_an_owner_only_key_and_never_overwrites() -> TestResult {
    let dir = tempfile::tempdir()?;
    let pass = dir.path().join("pass");
    write_secret(&pass, &format!("{PASSPHRASE}\n"))?;
    let key = dir.path().join("wallet.key");
    let output = Command::new(BIN)
        .arg("dangerous-dev-keygen")
        .arg("--out")
        .arg(&key)
        .arg("--passphrase-file")
        .arg(&pass)
        .arg("--json")
        .output()?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let public_key = printed["public_key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(std::fs::metadata(&key)?.permissions().mode() & 0o777, 0o600);

    // The file opens with the passphrase (the trailing newline of the file is not part of it)
    // and holds the key that was printed.
    let backend = DevKeyfileBackend::open(&key, &SecretString::new(PASSPHRASE.to_owned()))?;
    assert_eq!(backend.public_key().to_string(), public_key);

    let before = std::fs::read(&key)?;
    let again = Command::new(BIN)
        .arg("dangerous-dev-keygen")
        .arg("--out")
        .arg(&key)
        .arg("--passphrase-file")
        .arg(&pass)
        .output()?;
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(
        std::fs::read(&key)?,
        before,
        "an existing key file must be left untouched"
    );
    Ok(())
}

#[test]
fn without_a_config_it_explains_what_to_do() -> TestResult {
    let output = Command::new(BIN).output()?;
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--config"));
    let usage = Command::new(BIN).arg("--no-such-flag").output()?;
    assert_eq!(usage.status.code(), Some(2));
    Ok(())
}

#[test]
fn logs_name_refusals_and_grants_but_never_message_bytes_or_secrets() -> TestResult {
    let signer = Signer::start(Backend::Keyfile)?;
    let g = granted(&signer.grants, &signer.key_id, &sol_transfer(signer.wallet))?;
    let mut client: Client = signer.connect()?;
    assert!(matches!(
        client.request(&g.request)?,
        SignerResponse::Signed { .. }
    ));
    assert_refused(&client.request(&g.request)?, SignerErrorCode::GrantReplayed);

    // A client cannot forge a log line through text the parser echoes.
    let forged = client.send_raw(b"{\"op\":\"x\\nFORGED INFO grant accepted\"}\n")?;
    assert_refused(&forged, SignerErrorCode::BadRequest);

    let logs = signer.stderr();
    assert!(
        logs.lines().all(|line| !line.starts_with("FORGED")),
        "{logs}"
    );
    assert!(
        logs.contains("FORGED"),
        "the refusal reason should quote the input, escaped"
    );
    let refusal = logs
        .lines()
        .find(|line| line.contains("sign refused"))
        .ok_or_else(|| format!("no refusal logged: {logs}"))?;
    assert!(refusal.contains(" INFO "), "{refusal}");
    assert!(refusal.contains("grant_replayed"), "{refusal}");
    assert!(
        refusal.contains(&format!("grant.id={}", g.body.grant_id)),
        "{refusal}"
    );
    assert!(refusal.contains("agent.id=agent-7"), "{refusal}");
    assert!(
        refusal.contains(&format!("session.id={}", g.body.session_id)),
        "{refusal}"
    );
    let allowed = logs
        .lines()
        .find(|line| line.contains("sign allowed"))
        .unwrap_or_default();
    assert!(allowed.contains("DEBUG"), "{logs}");

    let SignerRequest::Sign { message, grant, .. } = &g.request else {
        unreachable!()
    };
    assert!(
        !logs.contains(message.as_str()),
        "message bytes leaked into the log"
    );
    assert!(
        !logs.contains(&grant.signature),
        "grant leaked into the log"
    );
    assert!(!logs.contains(PASSPHRASE), "passphrase leaked into the log");
    Ok(())
}

#[test]
fn hostile_or_mistaken_arguments_fail_with_a_reason_and_no_panic() -> TestResult {
    let dir = tempfile::tempdir()?;
    let pass = dir.path().join("pass");
    write_secret(&pass, PASSPHRASE)?;
    let run = |args: &[&std::ffi::OsStr]| Command::new(BIN).args(args).output();
    let cases: Vec<(Vec<std::ffi::OsString>, i32, &str)> = vec![
        (
            vec!["--config".into(), "/".into()],
            3,
            "cannot read config file /",
        ),
        (
            vec!["--config".into(), "no\nsuch\u{7}file".into()],
            3,
            "cannot read config file",
        ),
        (
            vec![
                "dangerous-dev-keygen".into(),
                "--out".into(),
                dir.path().join("missing-dir/key").into(),
                "--passphrase-file".into(),
                pass.clone().into(),
            ],
            1,
            "cannot access key file",
        ),
        (
            vec![
                "dangerous-dev-keygen".into(),
                "--out".into(),
                dir.path().join("key").into(),
                "--passphrase-file".into(),
                dir.path().join("absent").into(),
            ],
            1,
            "cannot read secret file",
        ),
        (
            vec![
                "pkcs11-keygen".into(),
                "--module".into(),
                "/nonexistent/module.so".into(),
                "--token-label".into(),
                "t".into(),
                "--key-label".into(),
                "k".into(),
                "--pin-env".into(),
                "HOME".into(),
            ],
            1,
            "pkcs11 load module failed",
        ),
        (vec!["serve".into()], 2, "--config"),
        (vec!["--config".into(), "a".into(), "serve".into()], 2, ""),
    ];
    for (args, code, expected) in cases {
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let output = run(&refs)?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }

    let help = Command::new(BIN).arg("--help").output()?;
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for command in ["serve", "dangerous-dev-keygen", "pkcs11-keygen", "--config"] {
        assert!(text.contains(command), "{text}");
    }
    assert!(
        !dir.path().join("key").exists(),
        "a failed keygen leaves no file"
    );
    Ok(())
}
