//! The raw layer: the file as written, and its validation into [`Config`].

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use clawfirst_core::{Address, Amount, Asset, KeyId};
use serde::Deserialize;

use super::approvals::RawApprovals;
use super::tls::RawTls;
use super::{
    AssetLimits, BackendConfig, Config, ConfigError, FloorLimits, KeyConfig, Pkcs11Config,
    SecretSource,
};

/// The configuration file as written, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    socket: Option<PathBuf>,
    database: PathBuf,
    grant_public_key: String,
    #[serde(default)]
    keys: Vec<RawKey>,
    floor: Option<RawFloor>,
    #[serde(default)]
    dangerous_no_floor: bool,
    approvals: Option<RawApprovals>,
    tls: Option<RawTls>,
}

/// The `[floor]` section as written: asset symbol to amount string, per rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFloor {
    #[serde(default)]
    per_transaction: BTreeMap<String, String>,
    #[serde(default)]
    daily: BTreeMap<String, String>,
}

/// One `[[keys]]` entry as written. Fields of other backends are refused during validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    id: String,
    backend: String,
    path: Option<PathBuf>,
    passphrase_file: Option<PathBuf>,
    passphrase_env: Option<String>,
    module: Option<PathBuf>,
    token_label: Option<String>,
    key_label: Option<String>,
    pin_file: Option<PathBuf>,
    pin_env: Option<String>,
}

impl RawConfig {
    pub(super) fn validate(self, base: &Path) -> Result<Config, ConfigError> {
        let grant_public_key = Address::parse(&self.grant_public_key)
            .map_err(|e| invalid("grant_public_key", e.to_string()))?;
        clawfirst_core::grant::GrantVerifier::new(grant_public_key)
            .map_err(|e| invalid("grant_public_key", e.to_string()))?;

        if self.keys.is_empty() {
            return Err(invalid("keys", "at least one [[keys]] entry is required"));
        }
        let mut keys: Vec<KeyConfig> = Vec::with_capacity(self.keys.len());
        for (index, raw) in self.keys.into_iter().enumerate() {
            let key = raw.validate(index, base)?;
            if keys.iter().any(|k| k.id == key.id) {
                return Err(invalid(format!("keys[{index}].id"), "duplicate key id"));
            }
            keys.push(key);
        }

        let floor = match (self.floor, self.dangerous_no_floor) {
            (Some(floor), false) => Some(floor.validate()?),
            (None, true) => None,
            (Some(_), true) => {
                return Err(invalid(
                    "dangerous_no_floor",
                    "must not be set together with a [floor] section",
                ));
            }
            (None, false) => {
                return Err(invalid(
                    "floor",
                    "a [floor] section is required (or dangerous_no_floor = true, which lets \
                     a stolen grant key move any amount)",
                ));
            }
        };

        let approvals = self
            .approvals
            .map(|approvals| approvals.validate(base))
            .transpose()?;

        let tls = self.tls.map(|tls| tls.validate(base)).transpose()?;
        let socket = self
            .socket
            .map(|socket| resolve("socket", base, socket))
            .transpose()?;
        if socket.is_none() && tls.is_none() {
            return Err(invalid(
                "socket",
                "required unless a [tls] section makes the signer listen on TCP",
            ));
        }

        Ok(Config {
            socket,
            tls,
            database: resolve("database", base, self.database)?,
            grant_public_key,
            keys,
            floor,
            approvals,
        })
    }
}

impl RawFloor {
    fn validate(self) -> Result<FloorLimits, ConfigError> {
        Ok(FloorLimits {
            per_transaction: limits("floor.per_transaction", self.per_transaction)?,
            daily: limits("floor.daily", self.daily)?,
        })
    }
}

/// Parses `SYMBOL = "AMOUNT SYMBOL"` entries; the amount's asset must be the key's.
fn limits(table: &str, entries: BTreeMap<String, String>) -> Result<AssetLimits, ConfigError> {
    let mut limits = AssetLimits::default();
    for (symbol, text) in entries {
        let field = format!("{table}.{symbol}");
        let asset: Asset = symbol
            .parse()
            .map_err(|e: clawfirst_core::asset::UnknownAsset| invalid(&field, e.to_string()))?;
        let amount = Amount::parse(&text).map_err(|e| invalid(&field, e.to_string()))?;
        if amount.asset() != asset {
            return Err(invalid(
                &field,
                format!("the amount is in {}, not {asset}", amount.asset()),
            ));
        }
        limits.set(asset, amount.base_units());
    }
    Ok(limits)
}

impl RawKey {
    fn validate(self, index: usize, base: &Path) -> Result<KeyConfig, ConfigError> {
        let field = |name: &str| format!("keys[{index}].{name}");
        let id = KeyId::new(self.id).map_err(|e| invalid(field("id"), e.to_string()))?;

        let backend = match self.backend.as_str() {
            "dangerous_dev_keyfile" => {
                refuse_present(&field, "module", self.module.is_some())?;
                refuse_present(&field, "token_label", self.token_label.is_some())?;
                refuse_present(&field, "key_label", self.key_label.is_some())?;
                refuse_present(&field, "pin_file", self.pin_file.is_some())?;
                refuse_present(&field, "pin_env", self.pin_env.is_some())?;
                let path = required(&field, "path", self.path)?;
                BackendConfig::DangerousDevKeyfile {
                    path: resolve(&field("path"), base, path)?,
                    passphrase: secret_source(
                        &field,
                        "passphrase",
                        self.passphrase_file,
                        self.passphrase_env,
                        base,
                    )?,
                }
            }
            "pkcs11" => {
                refuse_present(&field, "path", self.path.is_some())?;
                refuse_present(&field, "passphrase_file", self.passphrase_file.is_some())?;
                refuse_present(&field, "passphrase_env", self.passphrase_env.is_some())?;
                let module = required(&field, "module", self.module)?;
                BackendConfig::Pkcs11(Pkcs11Config {
                    module: resolve(&field("module"), base, module)?,
                    token_label: label(&field, "token_label", self.token_label)?,
                    key_label: label(&field, "key_label", self.key_label)?,
                    pin: secret_source(&field, "pin", self.pin_file, self.pin_env, base)?,
                })
            }
            _ => {
                return Err(invalid(
                    field("backend"),
                    "unknown backend: expected dangerous_dev_keyfile or pkcs11",
                ));
            }
        };
        Ok(KeyConfig { id, backend })
    }
}

pub(super) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

fn required<T>(field: &dyn Fn(&str) -> String, name: &str, v: Option<T>) -> Result<T, ConfigError> {
    v.ok_or_else(|| invalid(field(name), "required for this backend"))
}

fn refuse_present(
    field: &dyn Fn(&str) -> String,
    name: &str,
    present: bool,
) -> Result<(), ConfigError> {
    match present {
        true => Err(invalid(field(name), "does not apply to this backend")),
        false => Ok(()),
    }
}

fn label(
    field: &dyn Fn(&str) -> String,
    name: &str,
    value: Option<String>,
) -> Result<String, ConfigError> {
    let value = required(field, name, value)?;
    // PKCS#11 token labels are at most 32 bytes; key labels have no limit, but a short printable
    // label keeps log lines and error messages safe.
    if value.is_empty() || value.len() > 64 || value.chars().any(char::is_control) {
        return Err(invalid(field(name), "must be 1 to 64 printable characters"));
    }
    Ok(value)
}

fn secret_source(
    field: &dyn Fn(&str) -> String,
    stem: &str,
    file: Option<PathBuf>,
    env: Option<String>,
    base: &Path,
) -> Result<SecretSource, ConfigError> {
    let file_field = field(&format!("{stem}_file"));
    match (file, env) {
        (Some(path), None) => Ok(SecretSource::File(resolve(&file_field, base, path)?)),
        (None, Some(name)) if valid_env_name(&name) => Ok(SecretSource::Env(name)),
        (None, Some(_)) => Err(invalid(
            field(&format!("{stem}_env")),
            "must be an environment variable name (letters, digits, '_')",
        )),
        (Some(_), Some(_)) => Err(invalid(
            file_field,
            format!("set {stem}_file or {stem}_env, not both"),
        )),
        (None, None) => Err(invalid(
            file_field,
            format!("{stem}_file or {stem}_env is required"),
        )),
    }
}

fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

pub(super) fn resolve(field: &str, base: &Path, path: PathBuf) -> Result<PathBuf, ConfigError> {
    if path.as_os_str().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    Ok(match path.is_absolute() {
        true => path,
        false => base.join(path),
    })
}
