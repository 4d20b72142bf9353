//! A payment signed by an Ed25519 key inside SoftHSM2, through PKCS#11, settles on the ledger.
//!
//! The signer's configuration is switched from the development key file to a SoftHSM2 token
//! before the stack starts; the server is unchanged, since it never sees the backend.

use std::path::{Path, PathBuf};
use std::process::Command;

use clawfirst_core::{Address, Asset};
use clawfirst_server::config::Config;
use clawfirst_server::datadir::DataDir;
use clawfirst_server::runtime::Services;
use clawfirst_server::signer_process::{SignerProcess, signer_binary};
use clawfirst_server::up::ensure_demo_agent;

use super::support::{TestResult, balance, demo, initialize, wait_finalized};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "246810";

/// Creates a SoftHSM2 token and an Ed25519 key on it; returns the SOFTHSM2_CONF path and the
/// wallet address.
fn softhsm_wallet(dir: &Path) -> Result<(PathBuf, Address), Box<dyn std::error::Error>> {
    if !Path::new(MODULE).exists() {
        return Err(
            format!("{MODULE} is missing: run scripts/test, which installs softhsm2").into(),
        );
    }
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens)?;
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\n",
            tokens.display()
        ),
    )?;
    let init = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args([
            "--init-token",
            "--free",
            "--label",
            "clawfirst",
            "--pin",
            PIN,
            "--so-pin",
            "13579246",
        ])
        .output()?;
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let pin_file = dir.join("token.pin");
    clawfirst_server::datadir::write_secret(&pin_file, PIN.as_bytes())?;
    let keygen = Command::new(signer_binary())
        .env("SOFTHSM2_CONF", &conf)
        .args([
            "pkcs11-keygen",
            "--module",
            MODULE,
            "--token-label",
            "clawfirst",
            "--key-label",
            "wallet",
            "--json",
            "--pin-file",
        ])
        .arg(&pin_file)
        .output()?;
    assert!(
        keygen.status.success(),
        "{}",
        String::from_utf8_lossy(&keygen.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&keygen.stdout)?;
    Ok((
        conf,
        Address::parse(printed["public_key"].as_str().unwrap_or_default())?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_signed_inside_softhsm2_settles() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let data = DataDir::new(&tmp.path().join("data"))?;
    data.initialize("127.0.0.1:0")?;
    let (conf, wallet) = softhsm_wallet(tmp.path())?;

    // The signer now holds its "default" key in the token.
    let signer_toml = std::fs::read_to_string(data.path("signer.toml"))?;
    let keys_at = signer_toml.find("[[keys]]").ok_or("no keys section")?;
    let pkcs11 = format!(
        "[[keys]]\nid = \"default\"\nbackend = \"pkcs11\"\nmodule = \"{MODULE}\"\n\
         token_label = \"clawfirst\"\n\
         key_label = \"wallet\"\npin_file = \"{}\"\n",
        tmp.path().join("token.pin").display()
    );
    std::fs::write(
        data.path("signer.toml"),
        format!("{}{pkcs11}", &signer_toml[..keys_at]),
    )?;

    let config = Config::load(&data.path("clawfirst.toml"))?;
    let env = [("SOFTHSM2_CONF".to_owned(), conf.display().to_string())];
    let mut signer = SignerProcess::start_with_env(
        &data.path("signer.toml"),
        &data.path("signer.log"),
        &config.signer_socket,
        &env,
    )
    .await?;
    let mut services = Services::start(&config, None).await?;
    assert_eq!(
        services.payments.wallet_address(&config.default_key_id),
        Some(wallet)
    );
    services
        .localnet
        .fund(&wallet, 10_000_000_000, 100_000_000, 0)?;
    ensure_demo_agent(&services.store, &config).await?;

    let before = balance(&services, Asset::Usdc).await?;
    let session = initialize(&services, "7 USDC").await?;
    let id = clawfirst_core::SessionId::new(session.as_str())?;
    let authorized = services
        .payments
        .authorize_transaction(&demo(), &id)
        .await?;
    assert_eq!(authorized["payer"], wallet.to_string());
    wait_finalized(&services, &session).await?;
    assert_eq!(before - balance(&services, Asset::Usdc).await?, 7_000_000);

    services.stop().await;
    signer.stop().await;
    Ok(())
}
