//! The signer's configuration: a TOML file parsed once into validated types.
//!
//! Two layers: `RawConfig` mirrors the file and refuses unknown fields; [`Config`] is what the
//! rest of the crate uses, with every path absolute, every identifier and key checked, and every
//! backend's fields complete and consistent. The field reference, with defaults and security
//! consequences, is in the crate documentation and in `docs/signer-protocol.md`.
//!
//! Secrets (passphrases, PINs) are not read here: the configuration names where they come from
//! ([`SecretSource`]) and the backend reads them when it opens the key. [`SecretSource::read`] is
//! the one place where this crate reads the process environment.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use clawfirst_core::secret::SecretString;
use clawfirst_core::{Address, Asset, KeyId};

mod approvals;
mod raw;
#[cfg(test)]
mod tests;
mod tls;

pub use approvals::{ApprovalsConfig, Approver, ApproverList, MAX_APPROVALS_PER_REQUEST};
use raw::{RawConfig, invalid};
pub use tls::{ClientIdentity, TlsConfig};

/// Configuration files larger than this are refused before parsing.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Secret files larger than this are refused: a passphrase or PIN is short.
const MAX_SECRET_BYTES: u64 = 4096;

/// Why the configuration (or a secret it points to) could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema (unknown or missing field, wrong type).
    #[error("cannot parse config file {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's account, naming the field and line.
        #[source]
        source: toml::de::Error,
    },
    /// A field holds a value the signer cannot use.
    #[error("config field {field}: {reason}")]
    Invalid {
        /// The field, e.g. `keys[1].module`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A secret file could not be read.
    #[error("cannot read secret file {path}")]
    SecretFile {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// A secret is missing, empty, oversized or exposed; the reason says which.
    #[error("secret from {origin} is unusable: {reason}")]
    SecretUnusable {
        /// `file PATH` or `environment variable NAME`.
        origin: String,
        /// What is wrong; never the secret itself.
        reason: &'static str,
    },
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The Unix socket to listen on (created with mode 0600); `None` only with `tls`.
    pub socket: Option<PathBuf>,
    /// A TCP listener with mutual TLS, besides or instead of the socket.
    pub tls: Option<TlsConfig>,
    /// The signer's own SQLite database of grants, signatures and requests.
    pub database: PathBuf,
    /// The approval layer's grant public key.
    pub grant_public_key: Address,
    /// The wallet keys, at least one, with distinct ids.
    pub keys: Vec<KeyConfig>,
    /// The signer's own floor limits; `None` only when `dangerous_no_floor = true`.
    pub floor: Option<FloorLimits>,
    /// Human approvals above the floor; `None` refuses everything above the floor.
    pub approvals: Option<ApprovalsConfig>,
}

/// The signer's floor limits, in base units, independent of the server's caps: a server
/// whose grant key is stolen can move at most these amounts. An asset without a limit is
/// refused (fail closed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FloorLimits {
    /// The most one grant may move, per asset.
    pub per_transaction: AssetLimits,
    /// The most one agent may move in any rolling 24 hours, per asset, counting every grant
    /// used.
    pub daily: AssetLimits,
}

/// One optional limit per asset, in base units; `None` admits nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AssetLimits([Option<u64>; Asset::ALL.len()]);

impl AssetLimits {
    /// The limit for `asset`, if one is configured.
    pub fn get(&self, asset: Asset) -> Option<u64> {
        self.0.get(usize::from(asset.tag())).copied().flatten()
    }

    /// Sets the limit for `asset`.
    pub fn set(&mut self, asset: Asset, base_units: u64) {
        if let Some(slot) = self.0.get_mut(usize::from(asset.tag())) {
            *slot = Some(base_units);
        }
    }
}

/// One wallet key.
#[derive(Debug, Clone)]
pub struct KeyConfig {
    /// The id requests name.
    pub id: KeyId,
    /// Where the key lives.
    pub backend: BackendConfig,
}

/// A key backend and its settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum BackendConfig {
    /// An Ed25519 seed in a passphrase-encrypted file. Development only.
    DangerousDevKeyfile {
        /// The key file.
        path: PathBuf,
        /// Where the passphrase comes from.
        passphrase: SecretSource,
    },
    /// A key in a PKCS#11 token (an HSM).
    Pkcs11(Pkcs11Config),
}

impl BackendConfig {
    /// The backend's name as written in the configuration.
    pub fn kind(&self) -> &'static str {
        match self {
            BackendConfig::DangerousDevKeyfile { .. } => "dangerous_dev_keyfile",
            BackendConfig::Pkcs11(_) => "pkcs11",
        }
    }
}

/// Where a PKCS#11 key lives and how to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs11Config {
    /// The PKCS#11 module (shared library) to load.
    pub module: PathBuf,
    /// The label of the token holding the key.
    pub token_label: String,
    /// The label (`CKA_LABEL`) of the key pair.
    pub key_label: String,
    /// Where the user PIN comes from.
    pub pin: SecretSource,
}

/// Where a secret (passphrase or PIN) is read from.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file readable only by its owner; one trailing newline is ignored.
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretSource({self})")
    }
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::File(path) => write!(f, "file {}", path.display()),
            SecretSource::Env(name) => write!(f, "environment variable {name}"),
        }
    }
}

impl SecretSource {
    /// Reads the secret.
    ///
    /// # Security
    /// A secret file must not be readable or writable by group or others (like an SSH key); it is
    /// read whole, at most 4 KiB, and one trailing `\n` or `\r\n` is dropped. An empty secret is
    /// refused. This is the only place the crate reads the environment.
    ///
    /// # Errors
    /// [`ConfigError::SecretFile`] or [`ConfigError::SecretUnusable`].
    pub fn read(&self) -> Result<SecretString, ConfigError> {
        let unusable = |reason| ConfigError::SecretUnusable {
            origin: self.to_string(),
            reason,
        };
        let mut text = match self {
            SecretSource::File(path) => read_secret_file(path).map_err(|e| match e {
                SecretFileError::Io(source) => ConfigError::SecretFile {
                    path: path.clone(),
                    source,
                },
                SecretFileError::Unusable(reason) => unusable(reason),
            })?,
            SecretSource::Env(name) => match std::env::var(name) {
                Ok(value) => SecretString::new(value),
                Err(std::env::VarError::NotPresent) => return Err(unusable("it is not set")),
                Err(std::env::VarError::NotUnicode(_)) => return Err(unusable("it is not UTF-8")),
            },
        };
        text = strip_one_newline(text);
        if text.expose().is_empty() {
            return Err(unusable("it is empty"));
        }
        Ok(text)
    }
}

enum SecretFileError {
    Io(std::io::Error),
    Unusable(&'static str),
}

fn read_secret_file(path: &Path) -> Result<SecretString, SecretFileError> {
    let meta = std::fs::metadata(path).map_err(SecretFileError::Io)?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(SecretFileError::Unusable(
            "group or others may access it; restrict it with chmod 600",
        ));
    }
    if meta.len() > MAX_SECRET_BYTES {
        return Err(SecretFileError::Unusable("it is larger than 4 KiB"));
    }
    let bytes = std::fs::read(path).map_err(SecretFileError::Io)?;
    String::from_utf8(bytes)
        .map(SecretString::new)
        .map_err(|_| SecretFileError::Unusable("it is not UTF-8"))
}

fn strip_one_newline(text: SecretString) -> SecretString {
    let exposed = text.expose();
    let trimmed = exposed
        .strip_suffix("\r\n")
        .or_else(|| exposed.strip_suffix('\n'))
        .unwrap_or(exposed);
    if trimmed.len() == exposed.len() {
        return text;
    }
    SecretString::new(trimmed.to_owned())
}

impl Config {
    /// Reads, parses and validates a configuration file. Relative paths in it are resolved
    /// against the file's directory.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file or the field.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let read_error = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read_error)?;
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(invalid("(file)", "the config file is larger than 1 MiB"));
        }
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        let base = std::path::absolute(path)
            .map_err(read_error)?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        Config::parse(&text, &base).map_err(|e| match e {
            ConfigError::Parse { source, .. } => ConfigError::Parse {
                path: path.to_owned(),
                source,
            },
            other => other,
        })
    }

    /// Parses and validates configuration text, resolving relative paths against `base_dir`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the field.
    pub fn parse(text: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: PathBuf::new(),
            source,
        })?;
        raw.validate(base_dir)
    }
}
