//! `clawfirst-signer`: the separate process that holds ClawFirst's wallet keys and signs only
//! what the approval layer has granted.
//!
//! The server that agents talk to never sees a private key. When a payment is approved, the
//! approval layer sends this service the exact Solana message bytes and an approval grant (see
//! [`clawfirst_core::grant`]) over a Unix socket, or over TCP with mutual TLS when the signer
//! runs on its own host. The signer checks the grant's signature
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
//! - [`store`]: the signer's SQLite database (used grants, their signatures, sessions whose
//!   approvals were consumed, every request), written by one thread with group commit.
//! - [`approvers`]: the approvers file, re-read when it changes.
//! - [`service`] and `sign`: parsing a request line and answering it; the numbered sign sequence
//!   lives in one function that reads top to bottom.
//! - [`server`]: the listeners (Unix socket, TLS over TCP, or both), framing, peer checks and
//!   graceful shutdown.
//! - [`tls`]: the TLS listener's configuration and client certificate checks, and the
//!   `dangerous-dev-tls-setup` certificates.
//!
//! # Configuration
//!
//! A TOML file (`clawfirst-signer --config FILE`); the reference with an example is in
//! `docs/signer-protocol.md`. Each field, its default, and what it means for security:
//!
//! - `socket` (required unless `[tls]` is present): the Unix socket path. Created with mode
//!   0600; only the signer's own user (and root) is served. Whoever can connect can ask for
//!   signatures, though only with valid grants; put it in a directory only the two services
//!   can enter.
//! - `database` (required): the signer's SQLite file, created with mode 0600. Deleting it
//!   forgets which grants were used: grants still inside their window (at most 5 minutes)
//!   could then be replayed, each producing the same signature over the same bytes.
//! - `grant_public_key` (required): the approval layer's Ed25519 grant key, base58. Whoever holds
//!   its private half can authorize payments; change it only together with the approval layer.
//! - `[[keys]]` (at least one): the wallet keys.
//!   - `id` (required): the key id that grants and requests name (letters, digits, `.`, `_`,
//!     `-`; at most 64).
//!   - `backend` (required): `pkcs11` or `dangerous_dev_keyfile`.
//!   - `path` (`dangerous_dev_keyfile`, required): the encrypted key file; refused when group
//!     or others may access it.
//!   - `passphrase_file` or `passphrase_env` (`dangerous_dev_keyfile`, exactly one): where the
//!     passphrase comes from. A file must be mode 0600 or stricter; an environment variable is
//!     readable by the same user through `/proc`.
//!   - `module` (`pkcs11`, required): the PKCS#11 library. It runs inside the signer process,
//!     so it must be the vendor's, owned by root.
//!   - `token_label` (`pkcs11`, required): the token holding the key; exactly one token must
//!     carry the label.
//!   - `key_label` (`pkcs11`, required): the key pair's `CKA_LABEL`; exactly one Ed25519
//!     private key and one public key must carry it.
//!   - `pin_file` or `pin_env` (`pkcs11`, exactly one): the token's user PIN, as above.
//! - `[floor.per_transaction]`, `[floor.daily]` (required unless `dangerous_no_floor`): the
//!   signer's own limits per asset (`SOL = "10 SOL"`), independent of the server; daily is per
//!   agent and asset over any rolling 24 hours. A server whose grant key is stolen can move at
//!   most the floor. An asset missing from a present `[floor]` is refused.
//! - `dangerous_no_floor` (default `false`): `true` runs without any floor, so a stolen grant
//!   key can drain the wallet; without it and without `[floor]` the signer refuses to start.
//! - `[approvals]` (optional): human approvals above the floor. Without it, every transfer
//!   above the floor is refused (`floor_exceeded`) and any approval is refused as unknown.
//!   - `approvers_file` (required): the approvers the signer trusts (`[[approver]]` entries
//!     with `name` and base58 `public_key`); whoever can write it can add an approver, so it is
//!     refused when group or others may write it. Missing or invalid at start: the signer does
//!     not start. Re-read when it changes; a changed file that is invalid is refused with an
//!     error log and the previous list stays.
//!   - `required` (required, 1 to 32): distinct valid approvals needed above the floor. With
//!     stolen grant key, moving more than the floor also takes this many approvers' keys.
//!   - `max_age` (default `"7d"`; `s`, `m`, `h` or `d`, at most `366d`): approvals decided
//!     longer ago are refused. Longer windows leave stolen or forgotten approvals usable for
//!     longer (each still pays at most once: its session is consumed with the first grant).
//!
//! - `[tls]` (optional): also (or, without `socket`, only) listen on TCP with mutual TLS 1.3.
//!   There is no plaintext TCP. Every field is required; there are no defaults.
//!   - `listen`: `IP:port`. Whoever can reach it can attempt a handshake; only the allowed
//!     client gets further. Put it on the signer's own network segment.
//!   - `cert_file`: the signer's certificate chain (PEM, leaf first); the server checks it
//!     against the CA it was given and the name it expects.
//!   - `key_file`: the private key of that certificate (PEM); refused unless mode 0600 or
//!     stricter. Whoever holds it can impersonate the signer to the server (but cannot sign).
//!   - `client_ca_file`: the CA certificates (PEM) a client certificate must chain to. Use a
//!     CA of the signer's own, not a public one: anyone that CA certifies with the allowed
//!     identity is served.
//!   - `allowed_client`: the one identity served: a URI (text with a `:`, compared exactly) or
//!     a DNS name (case-blind; wildcard certificates never match) among the client
//!     certificate's subject alternative names. Clients with any other certificate are refused
//!     during the handshake.
//!
//! There are no other defaults. Unknown fields, and fields of another backend, are refused;
//! errors name the field. Relative paths are resolved against the file's directory.
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
//! - Every request, granted or refused, is recorded in the `requests` table, with the names and
//!   public keys of the approvers a sign request carried (never their signatures).
//! - Above the floor, a grant is signed only with enough valid approvals from distinct
//!   approvers in the signer's own list, about that exact payment; a session's approvals pay
//!   once. A server whose grant key is stolen can move at most the floor.
//! - Over TCP, a request is read only after a TLS 1.3 handshake in which the client proved a
//!   certificate from the signer's own CA with the allowed identity, inside its validity period.
//!   Refused handshakes are logged at `info` (with the names the certificate presented) and
//!   never reach the request log. No session resumption: every connection is authenticated.
//! - No `unsafe` code: PKCS#11 is reached through cryptoki's safe API; TLS is rustls with the
//!   aws-lc-rs provider.

#![forbid(unsafe_code)]

use std::sync::Arc;

use clawfirst_core::grant::GrantVerifier;

use crate::approvers::Approvers;

pub mod approvers;
pub mod backend;
pub mod config;
pub mod server;
pub mod service;
mod sign;
pub mod store;
pub mod tls;

pub use backend::{BackendError, KeyBackend, KeyOpenError, Keys};
pub use config::{Config, ConfigError};
pub use server::{Endpoints, ServeError, serve, serve_endpoints};
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
    /// The approvers file is missing or invalid.
    #[error("cannot load the approvers file")]
    Approvers(#[source] ConfigError),
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
    for id in keys.ids() {
        if let Some(backend) = keys.get(&id) {
            tracing::info!(
                key.id = %id,
                key.backend = backend.kind(),
                key.public_key = %backend.public_key(),
                "key opened and self-tested"
            );
        }
    }
    let approvers = config
        .approvals
        .as_ref()
        .map(Approvers::open)
        .transpose()
        .map_err(StartError::Approvers)?;
    let store = Store::open(&config.database).map_err(StartError::Store)?;
    if config.floor.is_none() {
        tracing::warn!("dangerous_no_floor: the signer enforces no floor limits of its own");
    }
    let service = Service::new(keys, verifier, store, config.floor.clone());
    let service = match approvers {
        None => service,
        Some(approvers) => {
            let listed = approvers.current().len();
            tracing::info!(
                approvers.count = listed,
                approvals.required = approvers.required(),
                "human approvals accepted above the floor"
            );
            if approvers.required() > listed {
                tracing::warn!(
                    approvers.count = listed,
                    approvals.required = approvers.required(),
                    "fewer approvers are listed than approvals are required: nothing above \
                     the floor can be approved"
                );
            }
            service.with_approvals(approvers)
        }
    };
    Ok(Arc::new(service))
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
