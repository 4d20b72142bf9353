//! The signer's own floor limits, per backend (see `main.rs`): per transaction, the rolling
//! daily total per agent and asset, concurrency against the daily total, and fail-closed
//! assets.

use clawfirst_core::AgentId;
use clawfirst_core::signer_proto::{SignerErrorCode, SignerRequest, SignerResponse};

use crate::fixtures::*;
use crate::harness::{Backend, Setup, Signer, TestResult};

/// USDC only: 3 USDC per transaction, 10 USDC a day. SOL and BONK have no floor.
const USDC_FLOOR: &str = "[floor.per_transaction]\nUSDC = \"3 USDC\"\n\n\
                          [floor.daily]\nUSDC = \"10 USDC\"\n";

/// `usdc_transfer` moves 2.5 USDC: the daily floor admits exactly this many.
const ADMITTED_PER_DAY: usize = 4;

fn start(backend: Backend) -> Result<Signer, crate::harness::Error> {
    Setup::with_floor(backend, USDC_FLOOR)?.start()
}

fn is_signed(response: &SignerResponse) -> bool {
    matches!(response, SignerResponse::Signed { .. })
}

fn assert_unused(signer: &Signer, granted: &Granted) -> TestResult {
    let status = signer.connect()?.request(&SignerRequest::GrantStatus {
        grant_id: granted.body.grant_id.to_string(),
    })?;
    assert_eq!(
        status,
        SignerResponse::GrantStatus {
            used: false,
            signature: None
        }
    );
    Ok(())
}

pub fn refuses_a_transfer_over_the_per_transaction_floor(backend: Backend) -> TestResult {
    let signer = start(backend)?;
    let mut transfer = usdc_transfer(signer.wallet);
    transfer.amount = 3_000_001;
    let over = granted(&signer.grants, &signer.key_id, &transfer)?;
    assert_refused(
        &signer.connect()?.request(&over.request)?,
        SignerErrorCode::FloorExceeded,
    );
    assert_unused(&signer, &over)?;
    assert!(
        signer.stderr().contains("per_transaction"),
        "the refusal names its rule: {}",
        signer.stderr()
    );

    // Exactly the floor is admitted.
    transfer.amount = 3_000_000;
    let at = granted(&signer.grants, &signer.key_id, &transfer)?;
    assert!(is_signed(&signer.connect()?.request(&at.request)?));
    Ok(())
}

pub fn refuses_an_asset_without_a_floor(backend: Backend) -> TestResult {
    let signer = start(backend)?;
    let sol = granted(&signer.grants, &signer.key_id, &sol_transfer(signer.wallet))?;
    assert_refused(
        &signer.connect()?.request(&sol.request)?,
        SignerErrorCode::FloorExceeded,
    );
    assert_unused(&signer, &sol)
}

pub fn signs_up_to_the_daily_floor_and_refuses_the_next(backend: Backend) -> TestResult {
    let signer = start(backend)?;
    let mut client = signer.connect()?;
    for _ in 0..ADMITTED_PER_DAY {
        let g = granted(
            &signer.grants,
            &signer.key_id,
            &usdc_transfer(signer.wallet),
        )?;
        let response = client.request(&g.request)?;
        assert!(is_signed(&response), "{response:?}");
    }
    let next = granted(
        &signer.grants,
        &signer.key_id,
        &usdc_transfer(signer.wallet),
    )?;
    assert_refused(
        &client.request(&next.request)?,
        SignerErrorCode::FloorExceeded,
    );
    assert_unused(&signer, &next)?;
    assert!(signer.stderr().contains("daily"), "{}", signer.stderr());

    // The total is per agent: another agent still has its whole day.
    let mut other = granted(
        &signer.grants,
        &signer.key_id,
        &usdc_transfer(signer.wallet),
    )?;
    other.body.agent_id = AgentId::new("agent-8")?;
    let request = sign_request(
        &signer.key_id,
        &other.message,
        signer.grants.sign(&other.body),
    );
    assert!(is_signed(&client.request(&request)?));
    Ok(())
}

pub fn admits_exactly_the_daily_floor_of_concurrent_requests(backend: Backend) -> TestResult {
    const RACERS: usize = 16;
    let signer = start(backend)?;
    let requests = (0..RACERS)
        .map(|_| {
            granted(
                &signer.grants,
                &signer.key_id,
                &usdc_transfer(signer.wallet),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut clients = (0..RACERS)
        .map(|_| signer.connect())
        .collect::<Result<Vec<_>, _>>()?;
    let barrier = std::sync::Barrier::new(RACERS);
    let responses = std::thread::scope(|scope| {
        let handles: Vec<_> = clients
            .iter_mut()
            .zip(&requests)
            .map(|(client, g)| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    client.request(&g.request).map_err(|e| e.to_string())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| "racer panicked".to_owned())?)
            .collect::<Result<Vec<_>, _>>()
    })?;
    let signed = responses.iter().filter(|r| is_signed(r)).count();
    let refused = responses
        .iter()
        .filter(|r| {
            matches!(
                r,
                SignerResponse::Error {
                    code: SignerErrorCode::FloorExceeded,
                    ..
                }
            )
        })
        .count();
    assert_eq!(
        (signed, refused),
        (ADMITTED_PER_DAY, RACERS - ADMITTED_PER_DAY),
        "{responses:?}"
    );
    for (g, response) in requests.iter().zip(&responses) {
        if !is_signed(response) {
            assert_unused(&signer, g)?;
        }
    }
    Ok(())
}
