//! Starting and stopping the `clawfirst-signer` binary as a separate process.
//!
//! The server never links the signer's key backends; it runs the signer binary, found beside
//! its own executable or on `PATH`, and talks to it over its socket.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};
use tracing::{info, warn};

use crate::signer_client::SignerClient;

const SIGNER_BIN: &str = "clawfirst-signer";

/// The signer binary: `$CLAWFIRST_SIGNER_BIN`, else beside this executable, else `PATH`.
pub fn signer_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("CLAWFIRST_SIGNER_BIN") {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        let beside = dir.join(SIGNER_BIN);
        if beside.exists() {
            return beside;
        }
        // `cargo test` binaries live one level below the target profile directory.
        if let Some(parent) = dir.parent() {
            let up = parent.join(SIGNER_BIN);
            if up.exists() {
                return up;
            }
        }
    }
    PathBuf::from(SIGNER_BIN)
}

/// Creates a development key file with the signer binary and returns its public key.
///
/// # Errors
/// When the signer binary is missing or fails.
pub fn dangerous_dev_keygen(out: &Path, passphrase_file: &Path) -> Result<String> {
    let bin = signer_binary();
    let output = std::process::Command::new(&bin)
        .arg("dangerous-dev-keygen")
        .arg("--out")
        .arg(out)
        .arg("--passphrase-file")
        .arg(passphrase_file)
        .arg("--json")
        .output()
        .with_context(|| {
            format!(
                "cannot run {}; build it with `cargo build --release`",
                bin.display()
            )
        })?;
    if !output.status.success() {
        bail!(
            "{} dangerous-dev-keygen failed: {}",
            bin.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let parsed: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("the signer's keygen output is not JSON")?;
    parsed["public_key"]
        .as_str()
        .map(str::to_owned)
        .context("the signer's keygen output has no public_key")
}

/// A running signer child process.
#[derive(Debug)]
pub struct SignerProcess {
    child: Child,
}

impl SignerProcess {
    /// Starts the signer with `config`, logging to `log`, and waits until it answers on
    /// `socket`.
    ///
    /// # Errors
    /// When it cannot start or does not become healthy within 20 seconds.
    pub async fn start(config: &Path, log: &Path, socket: &Path) -> Result<Self> {
        Self::start_with_env(config, log, socket, &[]).await
    }

    /// As [`SignerProcess::start`], with extra environment variables for the signer (for
    /// example `SOFTHSM2_CONF` for a PKCS#11 module).
    ///
    /// # Errors
    /// When it cannot start or does not become healthy within 20 seconds.
    pub async fn start_with_env(
        config: &Path,
        log: &Path,
        socket: &Path,
        env: &[(String, String)],
    ) -> Result<Self> {
        let bin = signer_binary();
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot open {}", log.display()))?;
        let child = Command::new(&bin)
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .envs(env.iter().cloned())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let mut process = Self { child };
        let client = SignerClient::new(socket.to_owned());
        for _ in 0..200 {
            if client.health().await.is_ok() {
                info!(signer.pid = process.child.id(), "signer is up");
                return Ok(process);
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                bail!("the signer exited with {status}; see {}", log.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        process.stop().await;
        bail!(
            "the signer did not answer within 20 seconds; see {}",
            log.display()
        )
    }

    /// Asks the signer to stop (SIGTERM), then kills it if it has not exited in 5 seconds.
    pub async fn stop(&mut self) {
        let pid = self
            .child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            // SIGTERM lets the signer finish in-flight requests and remove its socket.
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
                .await
                .is_ok()
            {
                return;
            }
            warn!("the signer did not stop in time; killing it");
        }
        let _ = self.child.kill().await;
    }
}
