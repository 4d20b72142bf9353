use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use clawfirst_core::grant::GrantSigner;

use super::*;

fn grant_key() -> String {
    GrantSigner::generate().public_key().to_string()
}

fn full_example(grant_key: &str) -> String {
    format!(
        r#"
socket = "run/signer.sock"
database = "/var/lib/clawfirst/signer.sqlite"
grant_public_key = "{grant_key}"

[[keys]]
id = "default"
backend = "dangerous_dev_keyfile"
path = "wallet.key"
passphrase_file = "wallet.pass"

[[keys]]
id = "hsm"
backend = "pkcs11"
module = "/usr/lib/softhsm/libsofthsm2.so"
token_label = "clawfirst"
key_label = "wallet"
pin_env = "CLAWFIRST_PIN"
{FLOOR}"#
    )
}

const FLOOR: &str = r#"
[floor.per_transaction]
SOL = "10 SOL"
USDC = "1000 USDC"
BONK = "10000000 BONK"

[floor.daily]
SOL = "50 SOL"
USDC = "5000 USDC"
BONK = "100000000 BONK"
"#;

/// The full example without its `[floor]` section.
fn without_floor(grant_key: &str) -> String {
    full_example(grant_key).replace(FLOOR, "")
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/clawfirst"))
}

fn error_text(e: &ConfigError) -> String {
    crate::error_chain(e)
}

#[test]
fn the_documented_example_parses_with_paths_resolved() -> Result<(), ConfigError> {
    let key = grant_key();
    let config = parse(&full_example(&key))?;
    assert_eq!(
        config.socket.as_deref(),
        Some(Path::new("/etc/clawfirst/run/signer.sock"))
    );
    assert_eq!(
        config.database,
        Path::new("/var/lib/clawfirst/signer.sqlite")
    );
    assert_eq!(config.grant_public_key.to_string(), key);
    assert_eq!(config.keys.len(), 2);
    match &config.keys[0].backend {
        BackendConfig::DangerousDevKeyfile { path, passphrase } => {
            assert_eq!(path, Path::new("/etc/clawfirst/wallet.key"));
            assert_eq!(
                passphrase,
                &SecretSource::File("/etc/clawfirst/wallet.pass".into())
            );
        }
        other => panic!("expected a key file backend, got {other:?}"),
    }
    match &config.keys[1].backend {
        BackendConfig::Pkcs11(p11) => {
            assert_eq!(p11.token_label, "clawfirst");
            assert_eq!(p11.key_label, "wallet");
            assert_eq!(p11.pin, SecretSource::Env("CLAWFIRST_PIN".to_owned()));
        }
        other => panic!("expected a pkcs11 backend, got {other:?}"),
    }
    Ok(())
}

#[test]
fn unknown_fields_are_refused_and_named() {
    let key = grant_key();
    let top = full_example(&key).replace("socket =", "sockett = \"x\"\nsocket =");
    let e = parse(&top)
        .err()
        .map(|e| error_text(&e))
        .unwrap_or_default();
    assert!(e.contains("sockett"), "{e}");

    let in_key = full_example(&key).replace("key_label =", "key_lable = \"x\"\nkey_label =");
    let e = parse(&in_key)
        .err()
        .map(|e| error_text(&e))
        .unwrap_or_default();
    assert!(e.contains("key_lable"), "{e}");
}

#[test]
fn invalid_values_name_their_field() {
    let key = grant_key();
    let cases = [
        (
            full_example(&key).replace(&key, "not-a-key"),
            "grant_public_key",
        ),
        (
            full_example(&key).replace("\"hsm\"", "\"h s m\""),
            "keys[1].id",
        ),
        (
            full_example(&key).replace("\"hsm\"", "\"default\""),
            "keys[1].id",
        ),
        (
            full_example(&key).replace("\"pkcs11\"", "\"vault\""),
            "keys[1].backend",
        ),
        (
            full_example(&key).replace("module = ", "path = \"x\"\nmodule = "),
            "keys[1].path",
        ),
        (
            full_example(&key).replace("pin_env = \"CLAWFIRST_PIN\"", ""),
            "keys[1].pin_file",
        ),
        (
            full_example(&key).replace(
                "pin_env = \"CLAWFIRST_PIN\"",
                "pin_env = \"A\"\npin_file = \"p\"",
            ),
            "keys[1].pin_file",
        ),
        (
            full_example(&key).replace("pin_env = \"CLAWFIRST_PIN\"", "pin_env = \"A-B\""),
            "keys[1].pin_env",
        ),
        (
            full_example(&key).replace("token_label = \"clawfirst\"", "token_label = \"\""),
            "keys[1].token_label",
        ),
        (
            full_example(&key).replace("path = \"wallet.key\"", ""),
            "keys[0].path",
        ),
        (
            full_example(&key)
                .replace("path = \"wallet.key\"", "path = \"w\"\ntoken_label = \"t\""),
            "keys[0].token_label",
        ),
    ];
    for (text, field) in cases {
        match parse(&text) {
            Err(ConfigError::Invalid { field: named, .. }) => assert_eq!(named, field, "{text}"),
            other => panic!("expected an invalid {field}, got {other:?}"),
        }
    }
}

#[test]
fn a_config_without_keys_is_refused() {
    let text = format!(
        "socket = \"s\"\ndatabase = \"d\"\ngrant_public_key = \"{}\"\n",
        grant_key()
    );
    assert!(matches!(parse(&text), Err(ConfigError::Invalid { field, .. }) if field == "keys"));
}

#[test]
fn load_resolves_relative_paths_against_the_file() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("signer.toml");
    std::fs::write(&file, full_example(&grant_key()))?;
    let config = Config::load(&file)?;
    assert_eq!(config.socket, Some(dir.path().join("run/signer.sock")));

    let missing = Config::load(&dir.path().join("absent.toml"));
    assert!(matches!(missing, Err(ConfigError::Read { .. })));
    Ok(())
}

#[test]
fn secret_files_are_read_strictly() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("secret");
    let write = |text: &str, mode: u32| -> std::io::Result<()> {
        std::fs::write(&path, text)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
    };
    let source = SecretSource::File(path.clone());

    write("hunter2\n", 0o600)?;
    assert_eq!(source.read()?.expose(), "hunter2");
    write("hunter2\r\n", 0o400)?;
    assert_eq!(source.read()?.expose(), "hunter2");
    write("two\n\n", 0o600)?;
    assert_eq!(
        source.read()?.expose(),
        "two\n",
        "only one newline is dropped"
    );

    write("hunter2\n", 0o640)?;
    let e = source
        .read()
        .err()
        .map(|e| error_text(&e))
        .unwrap_or_default();
    assert!(e.contains("chmod 600") && !e.contains("hunter2"), "{e}");

    write("\n", 0o600)?;
    assert!(matches!(
        source.read(),
        Err(ConfigError::SecretUnusable { .. })
    ));

    let unset = SecretSource::Env("CLAWFIRST_TEST_SURELY_UNSET_VARIABLE".to_owned());
    assert!(matches!(
        unset.read(),
        Err(ConfigError::SecretUnusable { .. })
    ));
    Ok(())
}

#[test]
fn debug_output_names_secret_sources_but_holds_no_secret() -> Result<(), ConfigError> {
    let config = parse(&full_example(&grant_key()))?;
    let printed = format!("{config:?}");
    assert!(
        printed.contains("environment variable CLAWFIRST_PIN"),
        "{printed}"
    );
    Ok(())
}

#[test]
fn the_floor_is_parsed_in_base_units() -> Result<(), ConfigError> {
    let config = parse(&full_example(&grant_key()))?;
    let floor = config
        .floor
        .ok_or_else(|| invalid("floor", "missing in test"))?;
    assert_eq!(floor.per_transaction.get(Asset::Sol), Some(10_000_000_000));
    assert_eq!(floor.per_transaction.get(Asset::Usdc), Some(1_000_000_000));
    assert_eq!(
        floor.per_transaction.get(Asset::Bonk),
        Some(1_000_000_000_000)
    );
    assert_eq!(floor.daily.get(Asset::Sol), Some(50_000_000_000));
    assert_eq!(floor.daily.get(Asset::Usdc), Some(5_000_000_000));
    assert_eq!(floor.daily.get(Asset::Bonk), Some(10_000_000_000_000));

    // An asset left out of a present [floor] has no limit: the signer refuses it.
    let partial = full_example(&grant_key()).replace("BONK = \"10000000 BONK\"\n", "");
    let floor = parse(&partial)?.floor;
    assert_eq!(
        floor.map(|f| f.per_transaction.get(Asset::Bonk)),
        Some(None)
    );
    Ok(())
}

#[test]
fn floor_errors_name_their_key() {
    let key = grant_key();
    let cases = [
        (
            "SOL = \"10 SOL\"",
            "SOL = \"10 USDC\"",
            "floor.per_transaction.SOL",
        ),
        (
            "SOL = \"10 SOL\"",
            "SOL = \"10\"",
            "floor.per_transaction.SOL",
        ),
        (
            "SOL = \"10 SOL\"",
            "SOL = \"1,0 SOL\"",
            "floor.per_transaction.SOL",
        ),
        (
            "USDC = \"5000 USDC\"",
            "USDC = \"0.0000001 USDC\"",
            "floor.daily.USDC",
        ),
        (
            "USDC = \"5000 USDC\"",
            "usdc = \"5000 USDC\"",
            "floor.daily.usdc",
        ),
        (
            "BONK = \"100000000 BONK\"",
            "DOGE = \"1 BONK\"",
            "floor.daily.DOGE",
        ),
    ];
    for (from, to, field) in cases {
        let text = full_example(&key).replacen(from, to, 1);
        match parse(&text) {
            Err(ConfigError::Invalid { field: named, .. }) => assert_eq!(named, field, "{text}"),
            other => panic!("expected an invalid {field}, got {other:?}"),
        }
    }

    let unknown = full_example(&key).replace("[floor.daily]", "[floor.weekly]");
    let e = parse(&unknown)
        .err()
        .map(|e| error_text(&e))
        .unwrap_or_default();
    assert!(e.contains("weekly"), "{e}");
    let wrong_type = full_example(&key).replace("SOL = \"10 SOL\"", "SOL = 10");
    assert!(matches!(parse(&wrong_type), Err(ConfigError::Parse { .. })));
}

#[test]
fn a_missing_floor_is_refused_unless_dangerously_waived() -> Result<(), ConfigError> {
    let key = grant_key();
    assert!(matches!(
        parse(&without_floor(&key)),
        Err(ConfigError::Invalid { field, .. }) if field == "floor"
    ));
    let waived = parse(&format!(
        "dangerous_no_floor = true\n{}",
        without_floor(&key)
    ))?;
    assert_eq!(waived.floor, None);
    let not_waived = format!("dangerous_no_floor = false\n{}", without_floor(&key));
    assert!(matches!(
        parse(&not_waived),
        Err(ConfigError::Invalid { field, .. }) if field == "floor"
    ));
    let both = format!("dangerous_no_floor = true\n{}", full_example(&key));
    assert!(matches!(
        parse(&both),
        Err(ConfigError::Invalid { field, .. }) if field == "dangerous_no_floor"
    ));
    Ok(())
}
