//! Verification of agent credentials: the trust boundary in front of ClawFirst's server.
#![forbid(unsafe_code)]

pub mod error;
mod json;
pub mod jwt;

pub use error::{AuthError, AuthMethod, SetupError};
