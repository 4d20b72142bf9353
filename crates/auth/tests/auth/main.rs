//! The integration suite of `clawfirst-auth`, one module per credential kind.

mod jwks_cache;
mod jwt;
mod support;
