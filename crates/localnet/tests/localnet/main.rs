//! End-to-end tests of the embedded localnet: messages built by `clawfirst-solana`, signed by
//! a key created in the test, assembled and submitted to a real LiteSVM runtime.

mod commitment;
mod common;
mod concurrency;
mod payments;
mod persistence;
