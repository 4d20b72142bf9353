//! `clawfirst-signer`: the separate process that holds ClawFirst's wallet keys and signs only
//! what the approval layer has granted.
//!
//! The server that agents talk to never sees a private key. When a payment is approved, the
//! approval layer sends this service the exact Solana message bytes and an approval grant (see
//! [`clawfirst_core::grant`]) over a Unix socket. The signer checks the grant's signature
//! against its own copy of the grant public key, checks that the grant covers this key and these
//! exact bytes, decodes the message and checks that it performs exactly the granted transfer
//! and nothing else, burns the grant id in its own database, and only then signs. The wire
//! protocol is [`clawfirst_core::signer_proto`], documented with examples in
//! `docs/signer-protocol.md`.
//!
//! # Architecture
//!
//! - [`config`]: the TOML configuration, parsed once into validated types.
//! - [`backend`]: the [`backend::KeyBackend`] trait and its two implementations,
//!   [`backend::pkcs11`] (an HSM through PKCS#11) and [`backend::dangerous_dev_keyfile`] (an
//!   encrypted seed on disk, for development only).
//! - [`store`]: the signer's SQLite database (used grants, their signatures, every request),
//!   written by one thread with group commit.
//! - [`service`] and `sign`: parsing a request line and answering it; the numbered sign sequence
//!   lives in one function that reads top to bottom.
//! - [`server`]: the Unix socket, framing, peer checks and graceful shutdown.
//!
//! # Configuration
//!
//! | field | default | meaning and security consequence |
//! |---|---|---|
//! | `socket` | required | Unix socket path; created mode 0600, only the signer's own user (and root) is served. Whoever can connect can ask for signatures, but only with valid grants. Put it in a directory only the two services can enter. |
//! | `database` | required | the signer's SQLite file (mode 0600). Deleting it forgets which grants were used: grants still inside their window (at most 5 minutes) could be replayed once. |
//! | `grant_public_key` | required | base58 Ed25519 key of the approval layer. Whoever holds its private half can authorize payments; change it only together with the approval layer. |
//! | `keys` | required, at least one | the wallet keys, by id. |
//! | `keys[].id` | required | the key id grants and requests name (letters, digits, `.`, `_`, `-`; at most 64). |
//! | `keys[].backend` | required | `pkcs11` or `dangerous_dev_keyfile`. |
//! | `keys[].path` | required for `dangerous_dev_keyfile` | the encrypted key file; refused if group or others may access it. |
//! | `keys[].passphrase_file` / `passphrase_env` | one required for `dangerous_dev_keyfile` | where the passphrase comes from. A file must be mode 0600 or stricter; an environment variable is visible to the same user through `/proc`. |
//! | `keys[].module` | required for `pkcs11` | the PKCS#11 shared library; it runs inside the signer, so it must be the vendor's, owned by root. |
//! | `keys[].token_label` | required for `pkcs11` | the token holding the key; exactly one token must carry the label. |
//! | `keys[].key_label` | required for `pkcs11` | the key pair's `CKA_LABEL`; exactly one Ed25519 private and one public key must carry it. |
//! | `keys[].pin_file` / `pin_env` | one required for `pkcs11` | the token's user PIN, as for the passphrase. |
//!
//! Unknown fields are refused, fields of another backend are refused, and errors name the
//! field. Relative paths are resolved against the configuration file's directory.
//!
//! # Security
//!
//! - Keys: a signature is produced only after every check in the sign sequence passed and the
//!   grant id was durably recorded. Every backend verifies its own signature before returning
//!   it. Keys are opened and self-tested at start, so a misconfigured key stops the service
//!   instead of failing requests.
//! - Fail closed: a database failure before signing refuses the request; a backend failure after
//!   the grant was recorded leaves the grant burned; a signature whose record cannot be stored is
//!   not handed out.
//! - Never logged, never stored, never in an error or `Debug` output: private keys, seeds,
//!   passphrases, PINs. Message bytes appear only at `trace` level. Refusals are logged at
//!   `info` with their code and precise reason (grant id, agent, session once the grant is
//!   verified); allows at `debug`. Clients receive a fixed, general message per error code.
//! - Every request, granted or refused, is recorded in the `requests` table.
//! - No `unsafe` code: PKCS#11 is reached through cryptoki's safe API.

#![forbid(unsafe_code)]

use std::sync::Arc;

use clawfirst_core::grant::GrantVerifier;

pub mod backend;
pub mod config;
pub mod server;
pub mod service;
mod sign;
pub mod store;

pub use backend::{BackendError, KeyBackend, KeyOpenError, Keys};
pub use config::{Config, ConfigError};
pub use server::{ServeError, serve};
pub use service::Service;
pub use store::{Store, StoreError};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The grant public key is not a valid Ed25519 key.
    #[error("grant_public_key is not a valid Ed25519 public key")]
    GrantKey(#[source] clawfirst_core::grant::GrantKeyError),
    /// A wallet key could not be opened.
    #[error("cannot open the wallet keys")]
    Keys(#[source] backend::KeyOpenError),
    /// The database could not be opened.
    #[error("cannot open the signer database")]
    Store(#[source] StoreError),
}

/// Opens everything a configuration names: the grant verifier, every key (with a self-test
/// signature each) and the database.
///
/// Blocking: unlocking a key file runs Argon2id and an HSM login may take a while.
///
/// # Errors
/// A [`StartError`] naming what failed.
pub fn open(config: &Config) -> Result<Arc<Service>, StartError> {
    let verifier = GrantVerifier::new(config.grant_public_key).map_err(StartError::GrantKey)?;
    let keys = Keys::open(&config.keys).map_err(StartError::Keys)?;
    let store = Store::open(&config.database).map_err(StartError::Store)?;
    Ok(Arc::new(Service::new(keys, verifier, store)))
}

/// An error and its causes on one line, `a: b: c`, for logs and refusal details.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
