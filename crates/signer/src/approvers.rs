//! The approvers the signer trusts, as currently listed in the approvers file.
//!
//! The file is read at start (a missing or invalid file stops the signer) and re-read when it
//! changes: [`Approvers::current`] compares the file's modification time, change time, size and
//! inode with those of the last read, one `metadata()` call per sign request that carries
//! approvals. A changed file that does not validate is refused with an error log and the
//! previous list stays in force; it is not read again until it changes again. A file that
//! disappears leaves the previous list in force, with an error log.
//!
//! # Security
//!
//! Removing an approver from the file takes effect at the next sign request that carries
//! approvals; approvals already consumed are not affected. The file must not be writable by
//! group or others (see [`ApproverList::load`]).

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use crate::config::{ApprovalsConfig, ApproverList, ConfigError};

/// What identifies one version of the file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    mtime_ns: i128,
    ctime_ns: i128,
    len: u64,
    ino: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        let ns = |secs: i64, nsec: i64| i128::from(secs) * 1_000_000_000 + i128::from(nsec);
        Stamp {
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
            len: meta.len(),
            ino: meta.ino(),
        }
    }
}

#[derive(Debug)]
struct Loaded {
    /// The version last read, whether or not it was valid.
    stamp: Option<Stamp>,
    /// The list in force.
    list: Arc<ApproverList>,
}

/// The `[approvals]` settings and the live approver list.
#[derive(Debug)]
pub struct Approvers {
    path: PathBuf,
    required: usize,
    max_age_ms: u64,
    loaded: Mutex<Loaded>,
}

impl Approvers {
    /// Reads the approvers file for the first time.
    ///
    /// # Errors
    /// A [`ConfigError`] when the file is missing or invalid.
    pub fn open(config: &ApprovalsConfig) -> Result<Approvers, ConfigError> {
        let stamp = std::fs::metadata(&config.approvers_file)
            .map(|m| Stamp::of(&m))
            .ok();
        let list = ApproverList::load(&config.approvers_file)?;
        Ok(Approvers {
            path: config.approvers_file.clone(),
            required: config.required,
            max_age_ms: config.max_age_ms,
            loaded: Mutex::new(Loaded {
                stamp,
                list: Arc::new(list),
            }),
        })
    }

    /// Distinct valid approvals needed above the floor.
    pub fn required(&self) -> usize {
        self.required
    }

    /// The oldest an approval may be, in milliseconds.
    pub fn max_age_ms(&self) -> u64 {
        self.max_age_ms
    }

    /// The list in force, after re-reading the file if it changed since the last read.
    pub fn current(&self) -> Arc<ApproverList> {
        // A panic while holding the lock cannot leave `Loaded` half-updated: both fields are
        // assigned only after the new list validated.
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        let stamp = match std::fs::metadata(&self.path) {
            Ok(meta) => Stamp::of(&meta),
            Err(e) => {
                tracing::error!(
                    approvers.file = %self.path.display(),
                    error = %e,
                    "cannot read the approvers file; the previous list stays in force"
                );
                return Arc::clone(&loaded.list);
            }
        };
        if loaded.stamp == Some(stamp) {
            return Arc::clone(&loaded.list);
        }
        loaded.stamp = Some(stamp);
        match ApproverList::load(&self.path) {
            Ok(list) => {
                tracing::info!(
                    approvers.file = %self.path.display(),
                    approvers.count = list.len(),
                    "approvers file reloaded"
                );
                loaded.list = Arc::new(list);
            }
            Err(e) => tracing::error!(
                approvers.file = %self.path.display(),
                error = %crate::error_chain(&e),
                "approvers file refused; the previous list stays in force"
            ),
        }
        Arc::clone(&loaded.list)
    }
}
