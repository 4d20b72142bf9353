//! Verification of agent credentials: the trust boundary in front of ClawFirst's server.
//!
//! The server must know which agent calls it and let no one else in. This crate turns a
//! presented credential into an authenticated [`AgentId`](clawfirst_core::AgentId), or into a
//! precise [`AuthError`] refusal. It is a library with no HTTP serving and no database: the
//! server extracts the credential from the request, calls here, and then checks what only the
//! store knows (revocation, rotation, suspension).
//!
//! - [`jwt`]: JWT bearer tokens from the operator's identity provider (EdDSA, ES256, RS256),
//!   against a JSON Web Key Set from a file or an https URL, cached by [`jwt::JwksCache`].
//! - [`delegation`]: short-lived `cfdt_` tokens ClawFirst issues to an agent, signed with
//!   Ed25519, optionally with lower spending limits and bound to the agent's client
//!   certificate.
//! - [`cert`]: the agent named by a client certificate that rustls has verified.
//! - [`ca`]: the operator's certificate authority, issuing agent client certificates and TLS
//!   server certificates.
//!
//! API keys stay in the server (`clawfirst_server::api_key`).
//!
//! # Security
//!
//! - Every verifier is synchronous and pure over (credential, current time, key material); the
//!   only I/O is the JWKS fetch, kept in [`jwt::JwksCache`].
//! - Size limits apply before any parsing; JSON from a credential refuses duplicate keys; each
//!   signature is checked before the claims it covers are trusted (for delegation tokens,
//!   before their payload is even parsed).
//! - Algorithm confusion is impossible by construction: there is no `none` or HMAC algorithm,
//!   and a JWT key's type fixes the one algorithm it verifies.
//! - Credentials, key seeds and private keys are never logged and never appear in errors or
//!   `Debug` output (secrets are [`SecretString`](clawfirst_core::secret::SecretString) /
//!   [`SecretBytes`](clawfirst_core::secret::SecretBytes)). Refusals are logged at info with
//!   `auth.method` and `auth.reason`; acceptances at debug with `agent.id`.
//! - Callers should show an agent only a vague `UNAUTHORIZED` and keep [`AuthError::reason`]
//!   for logs, metrics and the audit trail.
//! - Every rustls and reqwest configuration here names the aws-lc-rs provider explicitly, so
//!   nothing depends on a process-wide default provider.

#![forbid(unsafe_code)]

pub mod ca;
pub mod cert;
pub mod delegation;
pub mod error;
mod json;
pub mod jwt;
mod memo;

pub use error::{AuthError, AuthMethod, SetupError};
