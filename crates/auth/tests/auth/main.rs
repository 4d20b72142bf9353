//! The integration suite of `clawfirst-auth`, one module per credential kind.

mod cert;
mod delegation;
mod jwks;
mod jwks_cache;
mod jwt;
mod logs;
mod props;
mod support;
