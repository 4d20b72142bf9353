//! The data directory of `clawfirst up` and `clawfirst stdio`: created once with embedded
//! defaults, then reused, so a second start resumes the same state.
//!
//! | file | mode | holds |
//! |---|---|---|
//! | `clawfirst.toml` | 0600 | the server configuration |
//! | `signer.toml` | 0600 | the signer configuration |
//! | `signer-approvers.toml` | 0600 | the approvers the signer trusts above its floor |
//! | `policy.toml` | 0600 | the approval policy |
//! | `delegation.key` | 0600 | signs the delegation tokens issued to agents |
//! | `approvers/NAME.key` | 0600 | approver keys made by `clawfirst approvers add` |
//! | `grant.key` | 0600 | the approval layer's grant key (hex seed) |
//! | `wallet.key`, `wallet.pass` | 0600 | development wallet key file and passphrase (signer) |
//! | `admin.token` | 0600 | the admin API token |
//! | `up.json` | 0600 | MCP URL, demo agent, its API key, admin endpoint |
//! | `clawfirst.sqlite`, `ledger.sqlite`, `signer.sqlite` | 0600 | server, ledger, signer state |
//!
//! # Security
//!
//! `wallet.key` is a development key file: the server process never reads it; only the
//! separately started `clawfirst-signer` does. Production deployments use an HSM or KMS.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clawfirst_auth::delegation::DelegationKey;
use clawfirst_core::grant::GrantSigner;
use clawfirst_core::secret::{SecretBytes, SecretString};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::signer_process;

/// The default data directory: `$CLAWFIRST_DATA_DIR`, else `$XDG_DATA_HOME/clawfirst`, else
/// `~/.local/share/clawfirst`.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CLAWFIRST_DATA_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(dir).join("clawfirst");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/clawfirst")
}

/// Paths inside a data directory.
#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The data directory at `root` (absolute).
    pub fn new(root: &Path) -> Result<Self> {
        let root = if root.is_absolute() {
            root.to_owned()
        } else {
            std::env::current_dir()
                .context("cannot read the current directory")?
                .join(root)
        };
        Ok(Self { root })
    }

    /// A file in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the directory was set up before.
    pub fn is_initialized(&self) -> bool {
        self.path("clawfirst.toml").exists()
    }

    /// Creates the directory and every file a first start needs. Refuses to touch a directory
    /// that is half set up, so nothing is overwritten.
    ///
    /// # Errors
    /// I/O failures, or the signer's key generation failing.
    pub fn initialize(&self, listen: &str) -> Result<()> {
        fs::create_dir_all(&self.root)
            .with_context(|| format!("cannot create data directory {}", self.root.display()))?;
        fs::set_permissions(&self.root, fs::Permissions::from_mode(0o700))?;
        for name in ["grant.key", "wallet.key", "signer.toml", "policy.toml"] {
            if self.path(name).exists() {
                bail!(
                    "{} exists but clawfirst.toml does not: the data directory is incomplete; \
                     move it away or finish its configuration by hand",
                    self.path(name).display()
                );
            }
        }

        // 1. The approval layer's grant key.
        let grant = GrantSigner::generate();
        write_secret(
            &self.path("grant.key"),
            hex::encode(grant.seed().expose()).as_bytes(),
        )?;

        // 2. The development wallet, created by the signer binary so the key never passes
        //    through this process.
        let passphrase = random_token(32);
        write_secret(&self.path("wallet.pass"), passphrase.expose().as_bytes())?;
        let wallet = signer_process::dangerous_dev_keygen(
            &self.path("wallet.key"),
            &self.path("wallet.pass"),
        )?;

        // 3. The signer's configuration. The floor comes before [[keys]], so that replacing the
        //    key section (as the PKCS#11 stack test does) keeps it.
        let signer_toml = format!(
            "# clawfirst-signer configuration, written by `clawfirst up`.\n\
             socket = \"signer.sock\"\n\
             database = \"signer.sqlite\"\n\
             grant_public_key = \"{grant_pub}\"\n\n\
             # The floor is the signer's own limit, independent of the server's caps: a\n\
             # server whose grant key is stolen can move at most this much. It equals the\n\
             # server's default caps; raise both together.\n\
             [floor.per_transaction]\n\
             SOL = \"10 SOL\"\n\
             USDC = \"1000 USDC\"\n\
             BONK = \"10000000 BONK\"\n\n\
             # Rolling 24 hours, per agent and asset, counting every grant used.\n\
             [floor.daily]\n\
             SOL = \"50 SOL\"\n\
             USDC = \"5000 USDC\"\n\
             BONK = \"100000000 BONK\"\n\n\
             # Above the floor a grant needs this many distinct approvals by the approvers\n\
             # listed in signer-approvers.toml (`clawfirst approvers add` appends to it; the\n\
             # signer rereads it when it changes). Raise `required` to the smallest quorum\n\
             # your policy asks for above the floor.\n\
             [approvals]\n\
             approvers_file = \"signer-approvers.toml\"\n\
             required = 1\n\n\
             [[keys]]\n\
             id = \"default\"\n\
             backend = \"dangerous_dev_keyfile\"\n\
             path = \"wallet.key\"\n\
             passphrase_file = \"wallet.pass\"\n",
            grant_pub = grant.public_key(),
        );
        write_secret(&self.path("signer.toml"), signer_toml.as_bytes())?;
        write_secret(
            &self.path("signer-approvers.toml"),
            b"# Approvers the signer trusts; `clawfirst approvers add` appends here.\n",
        )?;
        write_secret(&self.path("policy.toml"), DEFAULT_POLICY.as_bytes())?;
        ensure_delegation_key(&self.path("delegation.key"))?;

        // 4. The admin token and a demo payee.
        let admin = random_token(32);
        write_secret(&self.path("admin.token"), admin.expose().as_bytes())?;
        let admin_hash = hex::encode(Sha256::digest(admin.expose().as_bytes()));
        let payee = GrantSigner::generate().public_key();

        // 5. The server's configuration, last: its presence marks the directory complete.
        let config = default_config(listen, &admin_hash, &payee.to_string(), &wallet);
        write_secret(&self.path("clawfirst.toml"), config.as_bytes())?;
        Ok(())
    }

    /// Reads the admin token.
    pub fn admin_token(&self) -> Result<SecretString> {
        let text =
            fs::read_to_string(self.path("admin.token")).context("cannot read admin.token")?;
        Ok(SecretString::new(text.trim().to_owned()))
    }
}

/// A random URL-safe token of `bytes` bytes of entropy.
pub fn random_token(bytes: usize) -> SecretString {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    SecretString::new(URL_SAFE_NO_PAD.encode(&buf))
}

/// Writes a file readable by its owner only, refusing to overwrite.
pub fn write_secret(path: &Path, contents: &[u8]) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}

/// Replaces a file readable by its owner only.
pub fn replace_secret(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    write_secret(&tmp, contents)?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Reads a file that holds a secret, refusing one that other users can read.
///
/// # Errors
/// When the file is unreadable or readable by group or others.
pub fn read_private(path: &Path) -> Result<String> {
    let meta = fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        bail!(
            "{} is readable by other users; run chmod 600 on it",
            path.display()
        );
    }
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Loads the grant key, refusing a file others can read.
pub fn load_grant_key(path: &Path) -> Result<GrantSigner> {
    let text = read_private(path)?;
    let seed = hex::decode(text.trim())
        .map(SecretBytes::new)
        .map_err(|_| anyhow::anyhow!("{} is not a hex grant key", path.display()))?;
    GrantSigner::from_seed(&seed).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Loads the key that signs delegation tokens (a hex Ed25519 seed), refusing a file others
/// can read.
///
/// # Errors
/// When the file is unreadable, readable by others, or not a 32-byte hex seed.
pub fn load_delegation_key(path: &Path) -> Result<DelegationKey> {
    let text = read_private(path)?;
    let seed = hex::decode(text.trim())
        .map(SecretBytes::new)
        .map_err(|_| anyhow::anyhow!("{} is not a hex delegation key", path.display()))?;
    DelegationKey::from_seed(&seed).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Writes a new delegation key to `path` (mode 0600) unless one is there.
///
/// # Errors
/// When the file cannot be written.
pub fn ensure_delegation_key(path: &Path) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    let key = DelegationKey::generate();
    write_secret(path, hex::encode(key.seed().expose()).as_bytes())
}

/// Reads the webhook's HMAC key: a file of mode 0600 holding at least 32 bytes.
///
/// # Errors
/// When the file is unreadable, readable by others, or too short.
pub fn read_webhook_secret(path: &Path) -> Result<SecretBytes> {
    let text = read_private(path)?;
    let secret = text.trim().as_bytes().to_vec();
    if secret.len() < 32 {
        bail!("{} must hold at least 32 bytes of secret", path.display());
    }
    Ok(SecretBytes::new(secret))
}

fn default_config(listen: &str, admin_hash: &str, payee: &str, wallet: &str) -> String {
    format!(
        r#"# ClawFirst server configuration, written by `clawfirst up`.
# Relative paths are resolved against this file's directory.
# The demo wallet (signer key "default") is {wallet}.

network = "localnet"

[server]
listen = "{listen}"
tool_naming = "dotted"          # or "underscore" for clients that refuse dots in tool names
admin_token_sha256 = "{admin_hash}"

[rate_limits]                   # per agent; [rate_limits.agents."id"] overrides
tool_calls_per_minute = 6000
payments_per_minute = 600
open_sessions = 1000

[storage]
sqlite = "clawfirst.sqlite"
synchronous = "full"

[signer]
socket = "signer.sock"
grant_key_file = "grant.key"
default_key_id = "default"

[sessions]
ttl_seconds = 900

[fees]
compute_unit_price_micro_lamports = 1000

[localnet]
state = "ledger.sqlite"
slot_interval_ms = 100

[policy]
file = "policy.toml"            # reloaded when it changes; `clawfirst policy check` first

[approvals]
# webhook_url = "https://hooks.example.com/clawfirst"
# webhook_secret_file = "webhook.secret"

[payees]
"merchant@example.com" = "{payee}"

[stdio]
agent_id = "demo-agent"
"#
    )
}

/// The policy of a new data directory: the caps of a cautious start, every payment within them
/// allowed. The commented tiers show how to require human approval.
const DEFAULT_POLICY: &str = r#"# ClawFirst approval policy, written by `clawfirst up`.
# Check a change with `clawfirst policy check policy.toml`; the server reloads this file when
# it changes and keeps the previous policy if the new one does not load.

[defaults]
per_transaction = { SOL = "10", USDC = "1000", BONK = "10000000" }
daily = { SOL = "50", USDC = "5000", BONK = "100000000" }

# Human approval for larger payments (register approvers with `clawfirst approvers add`):
#
# [groups]
# finance = ["alice", "bob", "carol"]
#
# [[defaults.tiers]]
# name = "small"
# up_to = { USDC = "100", SOL = "1", BONK = "1000000" }
# action = "allow"
#
# [[defaults.tiers]]
# name = "large"
# action = "approve"
# group = "finance"
# approvals = 2
# timeout = "1h"
"#;
