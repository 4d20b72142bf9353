//! The policy in force, and its reload without a restart.
//!
//! [`PolicyHandle`] holds the current [`Policy`] behind a lock that is only taken to clone an
//! `Arc`, so evaluations never wait on a reload and each evaluation sees one whole policy.
//! A reload reads and checks the whole file first; a file that does not load is refused and
//! the policy in force stays, so a typo can never leave the server without limits or with
//! half a policy. Every reload, applied or refused, is audited with the old and new version
//! hashes.
//!
//! [`start_reloader`] watches the file's modification time and reloads when it changes; the
//! admin API can also ask for a reload.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use clawfirst_policy::{Policy, PolicyFileError};
use clawfirst_store::{AuditEvent, Store};
use serde_json::json;
use tracing::{info, warn};

use crate::periodic::Periodic;

/// The policy in force and where it comes from.
#[derive(Debug)]
pub struct PolicyHandle {
    current: RwLock<Arc<Policy>>,
    source: Option<PathBuf>,
    loaded_modified: Mutex<Option<SystemTime>>,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The file is the policy already in force.
    Unchanged {
        /// Its version.
        version: String,
    },
    /// A new policy is in force.
    Applied {
        /// The version replaced.
        previous: String,
        /// The version now in force.
        version: String,
        /// What `clawfirst policy check` would warn about.
        warnings: Vec<String>,
    },
}

impl PolicyHandle {
    /// A policy that is not read from a file (tests and embedded defaults).
    pub fn fixed(policy: Policy) -> Self {
        Self {
            current: RwLock::new(Arc::new(policy)),
            source: None,
            loaded_modified: Mutex::new(None),
        }
    }

    /// Loads the policy file; warnings are logged.
    ///
    /// # Errors
    /// The file's error, naming the field at fault.
    pub fn from_file(path: &Path) -> Result<Self, PolicyFileError> {
        let modified = modified(path);
        let loaded = Policy::load(path)?;
        for warning in &loaded.warnings {
            warn!(policy.file = %path.display(), warning = %warning, "policy warning");
        }
        info!(policy.version = %loaded.policy.version(), "policy loaded");
        Ok(Self {
            current: RwLock::new(Arc::new(loaded.policy)),
            source: Some(path.to_owned()),
            loaded_modified: Mutex::new(modified),
        })
    }

    /// The policy in force now.
    pub fn current(&self) -> Arc<Policy> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            // A panic while holding the lock cannot leave the Arc half-written.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The file the policy comes from, if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// Reads the file again and puts it in force if it loads; otherwise the current policy
    /// stays. Audited either way.
    ///
    /// # Errors
    /// The file's error; the policy in force is unchanged.
    pub async fn reload(&self, store: &Store, actor: AuditEvent) -> Result<ReloadOutcome, String> {
        let Some(path) = self.source.clone() else {
            return Err("the policy is not read from a file".to_owned());
        };
        let previous = self.current().version();
        let modified = modified(&path);
        let loaded = tokio::task::spawn_blocking(move || Policy::load(&path))
            .await
            .map_err(|e| format!("policy reload failed: {e}"))?;
        let loaded = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                let message = e.to_string();
                warn!(error = %message, "policy reload refused; the previous policy stays");
                let audit = actor.details(json!({
                    "outcome": "refused",
                    "version": previous.to_string(),
                    "error": message,
                }));
                if let Err(e) = store.append_audit(audit).await {
                    warn!(error = %e, "policy reload refusal not audited");
                }
                self.remember(modified);
                return Err(message);
            }
        };
        self.remember(modified);
        let version = loaded.policy.version();
        if version == previous {
            return Ok(ReloadOutcome::Unchanged {
                version: version.to_string(),
            });
        }
        let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
        let audit = actor.details(json!({
            "outcome": "applied",
            "previous": previous.to_string(),
            "version": version.to_string(),
            "warnings": warnings,
        }));
        // The change is recorded before it takes effect.
        store
            .append_audit(audit)
            .await
            .map_err(|e| format!("the reload could not be audited, so it was not applied: {e}"))?;
        match self.current.write() {
            Ok(mut guard) => *guard = Arc::new(loaded.policy),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(loaded.policy),
        }
        info!(policy.previous = %previous, policy.version = %version, "policy reloaded");
        Ok(ReloadOutcome::Applied {
            previous: previous.to_string(),
            version: version.to_string(),
            warnings,
        })
    }

    /// Whether the file changed since it was last read.
    fn changed_on_disk(&self) -> bool {
        let Some(path) = &self.source else {
            return false;
        };
        let now = modified(path);
        let seen = self.loaded_modified.lock().map(|g| *g).unwrap_or(None);
        now.is_some() && now != seen
    }

    fn remember(&self, modified: Option<SystemTime>) {
        if let Ok(mut guard) = self.loaded_modified.lock() {
            *guard = modified;
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reloads the policy every `interval` when its file has changed.
pub fn start_reloader(handle: Arc<PolicyHandle>, store: Store, interval: Duration) -> Periodic {
    Periodic::start(interval, move || {
        let handle = handle.clone();
        let store = store.clone();
        async move {
            if handle.changed_on_disk() {
                // Outcomes are logged and audited by `reload`.
                let _ = handle
                    .reload(&store, AuditEvent::system("policy.reload"))
                    .await;
            }
        }
    })
}
