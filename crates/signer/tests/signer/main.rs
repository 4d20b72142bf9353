//! The signer's integration suite.
//!
//! - `api`: the protocol cases, run once per key backend against the real binary: the
//!   encrypted development key file, and PKCS#11 on a fresh SoftHSM2 token whose key is made
//!   by `clawfirst-signer pkcs11-keygen`. The PKCS#11 cases fail (never skip) when SoftHSM2 is
//!   not installed.
//! - `binary`: process behaviour: socket mode, framing limits, shutdown, start-up refusals,
//!   the key generation commands, and what the logs may and may not contain.
//! - `floor`: the signer's own floor limits, once per key backend.
//! - `approvals`: human approvals above the floor, once per key backend: missing, forged,
//!   unknown, mismatched, stale and duplicated approvals, replay across grants of one session,
//!   and reloading the approvers file.
//! - `keyfile`: the key file format: wrong passphrase, tampering, secrets in `Debug`.
//! - `handler`: property tests of the request handler in process.
//! - `tls`: the TCP listener with mutual TLS: the allowed client signs; no certificate, another
//!   CA, another identity, an expired certificate and plaintext are refused; the dev TLS setup.
//! - `throughput`: an ignored measurement of signatures per second, for release builds.

mod api;
mod approvals;
mod binary;
mod fixtures;
mod floor;
mod handler;
mod harness;
mod keyfile;
mod throughput;
mod tls;

/// Instantiates every API case for one backend, each case on its own signer process.
macro_rules! api_suite {
    ($module:ident, $backend:expr, [$($case:ident),* $(,)?]) => {
        mod $module {
            $(
                #[test]
                fn $case() -> crate::harness::TestResult {
                    let signer = crate::harness::Signer::start($backend)?;
                    crate::api::$case(&signer)
                }
            )*
        }
    };
}

/// The API cases, listed once and run for both backends.
macro_rules! api_suite_for_every_backend {
    ($($case:ident),* $(,)?) => {
        api_suite!(keyfile_backend, crate::harness::Backend::Keyfile, [$($case),*]);
        api_suite!(pkcs11_backend, crate::harness::Backend::Pkcs11, [$($case),*]);
    };
}

api_suite_for_every_backend!(
    signs_a_sol_payment_with_a_verifiable_signature,
    signs_a_usdc_payment_with_a_verifiable_signature,
    answers_health_and_public_key,
    refuses_a_grant_signed_by_another_key,
    refuses_an_edited_grant_body,
    refuses_a_malformed_grant,
    refuses_an_expired_grant,
    refuses_a_grant_with_too_long_a_lifetime,
    refuses_a_replayed_grant,
    admits_exactly_one_of_concurrent_requests_with_one_grant,
    refuses_a_grant_for_another_key_id,
    refuses_a_key_id_that_is_not_configured,
    refuses_a_message_whose_hash_differs_from_the_grant,
    refuses_a_message_paying_another_recipient,
    refuses_a_message_paying_another_amount,
    refuses_a_message_paying_another_mint,
    refuses_a_message_paying_another_asset,
    refuses_a_message_with_an_extra_instruction,
    refuses_a_payer_that_is_not_the_key,
    refuses_bad_requests_and_keeps_the_connection,
    records_every_request_in_the_database,
);

/// Instantiates cases that start their own signer (with their own configuration) per backend.
macro_rules! backend_cases {
    ($module:ident, $backend:expr, $cases:ident, [$($case:ident),* $(,)?]) => {
        mod $module {
            $(
                #[test]
                fn $case() -> crate::harness::TestResult {
                    crate::$cases::$case($backend)
                }
            )*
        }
    };
}

macro_rules! floor_suite_for_every_backend {
    ($($case:ident),* $(,)?) => {
        backend_cases!(
            floor_keyfile_backend,
            crate::harness::Backend::Keyfile,
            floor,
            [$($case),*]
        );
        backend_cases!(
            floor_pkcs11_backend,
            crate::harness::Backend::Pkcs11,
            floor,
            [$($case),*]
        );
    };
}

floor_suite_for_every_backend!(
    refuses_a_transfer_over_the_per_transaction_floor,
    refuses_an_asset_without_a_floor,
    signs_up_to_the_daily_floor_and_refuses_the_next,
    admits_exactly_the_daily_floor_of_concurrent_requests,
);

macro_rules! approvals_suite_for_every_backend {
    ($($case:ident),* $(,)?) => {
        backend_cases!(
            approvals_keyfile_backend,
            crate::harness::Backend::Keyfile,
            approvals,
            [$($case),*]
        );
        backend_cases!(
            approvals_pkcs11_backend,
            crate::harness::Backend::Pkcs11,
            approvals,
            [$($case),*]
        );
    };
}

approvals_suite_for_every_backend!(
    refuses_above_the_floor_without_enough_approvals,
    refuses_every_kind_of_invalid_approval,
    signs_with_two_approvals_outside_the_daily_floor,
    refuses_a_second_grant_for_an_approved_session,
    signs_exactly_one_of_concurrent_grants_for_an_approved_session,
    reloads_the_approvers_file_and_keeps_the_last_good_list,
);
