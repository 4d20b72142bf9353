//! The `[approvals]` section and the approvers file it points to.
//!
//! The approvers file lists the humans whose signatures the signer accepts above its floor:
//!
//! ```toml
//! [[approver]]
//! name = "alice"
//! public_key = "<base58 Ed25519 public key>"
//! ```
//!
//! Whoever can write this file can add an approver, so it is refused when group or others may
//! write it, like the configuration's secrets.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use clawfirst_core::Address;
use ed25519_dalek::VerifyingKey;
use serde::Deserialize;

use super::ConfigError;
use super::raw::invalid;

/// The most approvals one request may carry, and so the highest `required`.
pub const MAX_APPROVALS_PER_REQUEST: usize = 32;

/// The default of `max_age`: seven days.
const DEFAULT_MAX_AGE_MS: u64 = 7 * DAY_MS;

/// The longest `max_age` accepted: a year.
const MAX_MAX_AGE_MS: u64 = 366 * DAY_MS;

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Approvers files larger than this are refused before parsing.
const MAX_APPROVERS_BYTES: u64 = 1024 * 1024;

/// The validated `[approvals]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalsConfig {
    /// The approvers file, absolute; re-read when it changes.
    pub approvers_file: PathBuf,
    /// Distinct valid approvals needed above the floor, 1 to [`MAX_APPROVALS_PER_REQUEST`].
    pub required: usize,
    /// Approvals decided longer ago than this are refused, in milliseconds.
    pub max_age_ms: u64,
}

/// The `[approvals]` section as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApprovals {
    approvers_file: PathBuf,
    required: i64,
    max_age: Option<String>,
}

impl RawApprovals {
    pub(super) fn validate(self, base: &Path) -> Result<ApprovalsConfig, ConfigError> {
        if self.approvers_file.as_os_str().is_empty() {
            return Err(invalid("approvals.approvers_file", "must not be empty"));
        }
        let approvers_file = match self.approvers_file.is_absolute() {
            true => self.approvers_file,
            false => base.join(self.approvers_file),
        };
        let required = usize::try_from(self.required)
            .ok()
            .filter(|n| (1..=MAX_APPROVALS_PER_REQUEST).contains(n))
            .ok_or_else(|| invalid("approvals.required", "must be 1 to 32"))?;
        let max_age_ms = match self.max_age {
            None => DEFAULT_MAX_AGE_MS,
            Some(text) => parse_age(&text).ok_or_else(|| {
                invalid(
                    "approvals.max_age",
                    "must be a whole number and a unit (s, m, h, d), at most 366d, e.g. \"7d\"",
                )
            })?,
        };
        Ok(ApprovalsConfig {
            approvers_file,
            required,
            max_age_ms,
        })
    }
}

/// Parses `30s`, `15m`, `12h`, `7d`: digits without a sign or leading zero, then one unit.
fn parse_age(text: &str) -> Option<u64> {
    let split = text.len().checked_sub(1)?;
    let (digits, unit) = text.split_at_checked(split)?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let unit_ms: u64 = match unit {
        "s" => 1000,
        "m" => 60 * 1000,
        "h" => 60 * 60 * 1000,
        "d" => DAY_MS,
        _ => return None,
    };
    let ms = digits.parse::<u64>().ok()?.checked_mul(unit_ms)?;
    (ms <= MAX_MAX_AGE_MS).then_some(ms)
}

/// One approver the signer trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approver {
    /// The name operators know the approver by (letters, digits, `.`, `_`, `-`; at most 64).
    pub name: String,
    /// The approver's Ed25519 public key.
    pub public_key: Address,
}

/// The approvers file, validated: names and keys unique. An empty file is valid: then no
/// approval is accepted, and nothing above the floor can be signed until an approver is added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApproverList {
    approvers: Vec<Approver>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApproversFile {
    #[serde(default)]
    approver: Vec<RawApprover>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApprover {
    name: String,
    public_key: String,
}

impl ApproverList {
    /// The approver with this public key, if listed.
    pub fn find(&self, public_key: &Address) -> Option<&Approver> {
        self.approvers.iter().find(|a| a.public_key == *public_key)
    }

    /// How many approvers are listed.
    pub fn len(&self) -> usize {
        self.approvers.len()
    }

    /// Whether no approver is listed.
    pub fn is_empty(&self) -> bool {
        self.approvers.is_empty()
    }

    /// Reads and validates an approvers file.
    ///
    /// # Errors
    /// [`ConfigError::Read`] when it cannot be read, [`ConfigError::Parse`] when it is not
    /// valid TOML for this schema, [`ConfigError::Invalid`] naming the field otherwise
    /// (including a file that group or others may write).
    pub fn load(path: &Path) -> Result<ApproverList, ConfigError> {
        let read_error = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read_error)?;
        if meta.permissions().mode() & 0o022 != 0 {
            return Err(invalid(
                "approvals.approvers_file",
                "group or others may write it; restrict it with chmod 644 or stricter",
            ));
        }
        if meta.len() > MAX_APPROVERS_BYTES {
            return Err(invalid(
                "approvals.approvers_file",
                "the file is larger than 1 MiB",
            ));
        }
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        ApproverList::parse(&text).map_err(|e| match e {
            ConfigError::Parse { source, .. } => ConfigError::Parse {
                path: path.to_owned(),
                source,
            },
            other => other,
        })
    }

    /// Parses and validates the text of an approvers file.
    ///
    /// # Errors
    /// As [`ApproverList::load`], without the file errors.
    pub fn parse(text: &str) -> Result<ApproverList, ConfigError> {
        let raw: RawApproversFile = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: PathBuf::new(),
            source,
        })?;
        let mut approvers: Vec<Approver> = Vec::with_capacity(raw.approver.len());
        for (index, entry) in raw.approver.into_iter().enumerate() {
            let field = |name: &str| format!("approver[{index}].{name}");
            if !valid_name(&entry.name) {
                return Err(invalid(
                    field("name"),
                    "must be 1 to 64 letters, digits, '.', '_' or '-'",
                ));
            }
            let public_key = Address::parse(&entry.public_key)
                .map_err(|e| invalid(field("public_key"), e.to_string()))?;
            if VerifyingKey::from_bytes(public_key.as_bytes()).is_err() {
                return Err(invalid(
                    field("public_key"),
                    "is not a valid Ed25519 public key",
                ));
            }
            if approvers.iter().any(|a| a.name == entry.name) {
                return Err(invalid(field("name"), "duplicate approver name"));
            }
            if approvers.iter().any(|a| a.public_key == public_key) {
                return Err(invalid(field("public_key"), "duplicate approver key"));
            }
            approvers.push(Approver {
                name: entry.name,
                public_key,
            });
        }
        Ok(ApproverList { approvers })
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse_strictly() {
        assert_eq!(parse_age("7d"), Some(7 * DAY_MS));
        assert_eq!(parse_age("90m"), Some(90 * 60 * 1000));
        assert_eq!(parse_age("30s"), Some(30_000));
        assert_eq!(parse_age("366d"), Some(MAX_MAX_AGE_MS));
        for bad in [
            "", "d", "0d", "07d", "-1d", "+1d", "1.5d", "1w", "367d", "7 d", "7D",
        ] {
            assert_eq!(parse_age(bad), None, "{bad}");
        }
        assert_eq!(parse_age("99999999999999999999d"), None);
    }

    #[test]
    fn approver_lists_refuse_duplicates_and_bad_keys() {
        let alice = clawfirst_core::approval::ApproverKey::generate().public_key();
        let ok = format!("[[approver]]\nname = \"alice\"\npublic_key = \"{alice}\"\n");
        assert!(ApproverList::parse(&ok).is_ok_and(|l| l.len() == 1));
        // An empty file lists nobody: valid, and nothing above the floor can pass.
        assert!(ApproverList::parse("# no approvers yet\n").is_ok_and(|l| l.is_empty()));
        for bad in [
            format!("{ok}{ok}"),
            format!("{ok}[[approver]]\nname = \"bob\"\npublic_key = \"{alice}\"\n"),
            "[[approver]]\nname = \"a b\"\npublic_key = \"x\"\n".to_owned(),
            format!("[[approver]]\nname = \"alice\"\npublic_key = \"{alice}\"\nextra = 1\n"),
        ] {
            assert!(ApproverList::parse(&bad).is_err(), "{bad}");
        }
    }
}
