//! Throughput of the real binary: many connections signing distinct grants at once.
//!
//! Ignored by default because its number means something only in a release build:
//!
//! ```sh
//! cargo test -p clawfirst-signer --release --test signer -- --ignored --nocapture throughput
//! ```

use std::time::Instant;

use clawfirst_core::signer_proto::{SignerRequest, SignerResponse};

use crate::fixtures::{granted, sol_transfer, usdc_transfer};
use crate::harness::{Backend, Error, Setup, TestResult};

const CONNECTIONS: usize = 32;
const PER_CONNECTION: usize = 250;

fn measure(backend: Backend) -> TestResult {
    let signer = Setup::new(backend)?.start_logging("info")?;
    let batches: Vec<Vec<SignerRequest>> = (0..CONNECTIONS)
        .map(|c| {
            (0..PER_CONNECTION)
                .map(|i| {
                    let transfer = match (c + i) % 2 {
                        0 => sol_transfer(signer.wallet),
                        _ => usdc_transfer(signer.wallet),
                    };
                    Ok(granted(&signer.grants, &signer.key_id, &transfer)?.request)
                })
                .collect::<Result<_, Error>>()
        })
        .collect::<Result<_, Error>>()?;
    let mut clients = (0..CONNECTIONS)
        .map(|_| signer.connect())
        .collect::<Result<Vec<_>, _>>()?;

    let started = Instant::now();
    let signed: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = clients
            .iter_mut()
            .zip(&batches)
            .map(|(client, batch)| {
                scope.spawn(move || {
                    batch
                        .iter()
                        .filter(|request| {
                            matches!(client.request(request), Ok(SignerResponse::Signed { .. }))
                        })
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    let elapsed = started.elapsed();

    assert_eq!(
        signed,
        CONNECTIONS * PER_CONNECTION,
        "every distinct grant must be signed"
    );
    let per_second = u128::try_from(signed)? * 1000 / elapsed.as_millis().max(1);
    println!("{backend:?}: {signed} signatures in {elapsed:?}: {per_second} per second");
    let recorded = signer
        .request_log()?
        .iter()
        .filter(|(op, _)| op == "sign")
        .count();
    assert_eq!(recorded, signed, "one record per sign request");
    Ok(())
}

#[test]
#[ignore = "a measurement: run in release with --ignored"]
fn throughput_keyfile() -> TestResult {
    measure(Backend::Keyfile)
}

#[test]
#[ignore = "a measurement: run in release with --ignored"]
fn throughput_pkcs11() -> TestResult {
    measure(Backend::Pkcs11)
}
