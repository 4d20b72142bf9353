//! The files an approver's commands touch on this machine: the approver's private key file
//! (mode 0600, never sent anywhere) and, on a `clawfirst up` data directory, the approvers file
//! of the signer it runs.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clawfirst_core::Address;
use clawfirst_core::approval::ApproverKey;

use crate::datadir::{read_private, replace_secret, write_secret};

pub(super) fn create_key_file(dir: &Path, name: &str, key: &ApproverKey) -> Result<PathBuf> {
    let folder = dir.join("approvers");
    fs::create_dir_all(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
    fs::set_permissions(&folder, fs::Permissions::from_mode(0o700))?;
    let path = folder.join(format!("{name}.key"));
    if path.exists() {
        bail!(
            "{} exists: pick another name, or register that key with --public-key",
            path.display()
        );
    }
    write_secret(&path, key.to_file_text().expose().as_bytes())?;
    Ok(path)
}

pub(super) fn read_key_file(path: &Path) -> Result<ApproverKey> {
    let text = read_private(path).context("cannot use the approver key; pass --key-file")?;
    ApproverKey::from_file_text(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Appends the approver to the signer's approvers file; the signer reloads it when it
/// changes.
pub(super) fn trust_in_signer(file: &Path, name: &str, public_key: &Address) -> Result<()> {
    let current =
        fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    if current.contains(&public_key.to_string()) {
        return Ok(());
    }
    let updated =
        format!("{current}\n[[approver]]\nname = \"{name}\"\npublic_key = \"{public_key}\"\n");
    replace_secret(file, updated.as_bytes())
}
