//! The integration suite of `clawfirst-auth`, one module per credential kind.

mod cert;
mod delegation;
mod jwks_cache;
mod jwt;
mod props;
mod support;
