//! Integration tests of the server against its real peers: the `clawfirst-signer` binary
//! (key file and SoftHSM2 backends), the embedded ledger and SQLite.
//!
//! - `recovery`: a crash between any two steps of a payment never signs or pays twice.
//! - `pkcs11`: a payment signed by an Ed25519 key inside SoftHSM2 settles on the ledger.
//! - `approvals`: only signed decisions over the exact payment count; a quorum pays once.
//! - `boundary`: the server's dependency tree holds no key backend.
//! - `signer_tls`: the signer client over TCP with mutual TLS to the real signer binary.
//!
//! The signer binary must be built (`cargo build --bins`, which `scripts/test` does first).

mod approvals;
mod boundary;
mod pkcs11;
mod recovery;
mod signer_tls;
mod support;
