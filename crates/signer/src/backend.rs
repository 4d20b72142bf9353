//! Key backends: where wallet keys live and how they sign.
//!
//! Every backend implements [`KeyBackend`]: it reports its public key and produces a plain
//! Ed25519 signature over the exact message bytes. [`Keys`] opens every configured key once, at
//! start, and checks each with a test signature, so a wrong passphrase, a missing HSM key or a
//! mismatched key pair stops the signer before it accepts a request.
//!
//! # Security
//!
//! No backend ever returns or logs key material. Every signature a backend produces is verified
//! against its public key before it leaves the backend, so a faulty HSM or a corrupted key can
//! never hand out a signature that does not verify.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use clawfirst_core::{Address, KeyId};
use ed25519_dalek::{Signature, VerifyingKey};

use crate::config::{BackendConfig, KeyConfig};

pub mod dangerous_dev_keyfile;
pub mod pkcs11;

/// A wallet key that can sign.
pub trait KeyBackend: Send + Sync + fmt::Debug {
    /// The key's public key, which is also its Solana address.
    fn public_key(&self) -> Address;

    /// The backend's configuration name, e.g. `pkcs11`.
    fn kind(&self) -> &'static str;

    /// Signs `message` with plain Ed25519 (no prehash, no context).
    ///
    /// Blocking: a hardware module may take milliseconds. Callers on an async runtime run it on
    /// a blocking thread.
    ///
    /// # Errors
    /// [`BackendError`] when the backend fails or its signature does not verify.
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], BackendError>;
}

/// Why a key could not be opened or could not sign.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The development key file could not be opened.
    #[error("cannot open the key file")]
    Keyfile(#[source] dangerous_dev_keyfile::KeyfileError),
    /// A PKCS#11 call failed.
    #[error("pkcs11 {operation} failed")]
    Pkcs11 {
        /// What was being done, e.g. `login`.
        operation: &'static str,
        /// The module's error.
        #[source]
        source: cryptoki::error::Error,
    },
    /// The PKCS#11 token or key was not found, or is ambiguous.
    #[error("pkcs11 {0}")]
    Pkcs11Lookup(String),
    /// The public key the backend reports is not a valid Ed25519 point.
    #[error("the backend's public key is not a valid Ed25519 key")]
    InvalidPublicKey,
    /// The backend produced a signature that does not verify under its public key.
    #[error("the backend produced a signature that does not verify")]
    SignatureDoesNotVerify,
}

/// Why a configured key could not be opened at start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyOpenError {
    /// Its passphrase or PIN could not be read.
    #[error("cannot read the secret of key {key_id}")]
    Secret {
        /// The key.
        key_id: KeyId,
        /// Why.
        #[source]
        source: Box<crate::config::ConfigError>,
    },
    /// The backend could not open the key, or the key failed its self-test signature.
    #[error("cannot open key {key_id}")]
    Backend {
        /// The key.
        key_id: KeyId,
        /// Why.
        #[source]
        source: BackendError,
    },
}

/// Checks that `signature` is a valid Ed25519 signature of `message` under `public_key`.
///
/// # Errors
/// [`BackendError::InvalidPublicKey`] or [`BackendError::SignatureDoesNotVerify`].
pub fn verify_own_signature(
    public_key: &Address,
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), BackendError> {
    let key = VerifyingKey::from_bytes(public_key.as_bytes())
        .map_err(|_| BackendError::InvalidPublicKey)?;
    key.verify_strict(message, &Signature::from_bytes(signature))
        .map_err(|_| BackendError::SignatureDoesNotVerify)
}

/// The configured wallet keys, opened and self-tested.
#[derive(Debug, Clone)]
pub struct Keys {
    by_id: BTreeMap<KeyId, Arc<dyn KeyBackend>>,
}

/// The fixed message every key signs once at start, to prove it works before serving.
const SELF_TEST_MESSAGE: &[u8] = b"clawfirst-signer self-test: this is not a transaction";

impl Keys {
    /// Opens every configured key: reads its secret, unlocks or logs in, and signs a fixed
    /// self-test message whose signature must verify.
    ///
    /// # Errors
    /// A [`KeyOpenError`] naming the first key that failed.
    pub fn open(configs: &[KeyConfig]) -> Result<Keys, KeyOpenError> {
        let mut modules = pkcs11::Modules::default();
        let mut by_id = BTreeMap::new();
        for config in configs {
            let wrap = |source| KeyOpenError::Backend {
                key_id: config.id.clone(),
                source,
            };
            let secret_error = |source| KeyOpenError::Secret {
                key_id: config.id.clone(),
                source: Box::new(source),
            };
            let backend: Arc<dyn KeyBackend> = match &config.backend {
                BackendConfig::DangerousDevKeyfile { path, passphrase } => {
                    let secret = passphrase.read().map_err(secret_error)?;
                    let key = dangerous_dev_keyfile::DevKeyfileBackend::open(path, &secret)
                        .map_err(|e| wrap(BackendError::Keyfile(e)))?;
                    Arc::new(key)
                }
                BackendConfig::Pkcs11(p11) => {
                    let pin = p11.pin.read().map_err(secret_error)?;
                    Arc::new(modules.open_key(p11, &pin).map_err(wrap)?)
                }
            };
            backend.sign(SELF_TEST_MESSAGE).map_err(wrap)?;
            by_id.insert(config.id.clone(), backend);
        }
        Ok(Keys { by_id })
    }

    /// Wraps backends that are already open (tests and embedding).
    pub fn from_backends(backends: impl IntoIterator<Item = (KeyId, Arc<dyn KeyBackend>)>) -> Keys {
        Keys {
            by_id: backends.into_iter().collect(),
        }
    }

    /// The backend of a key id, if configured.
    pub fn get(&self, key_id: &KeyId) -> Option<&Arc<dyn KeyBackend>> {
        self.by_id.get(key_id)
    }

    /// The configured key ids, in order.
    pub fn ids(&self) -> Vec<KeyId> {
        self.by_id.keys().cloned().collect()
    }

    /// The distinct backend kinds, sorted and joined with commas.
    pub fn kinds(&self) -> String {
        let mut kinds: Vec<&str> = self.by_id.values().map(|b| b.kind()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        kinds.join(",")
    }
}
