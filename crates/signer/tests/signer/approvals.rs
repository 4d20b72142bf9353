//! Human approvals above the floor, per backend (see `main.rs`): grants signed by the real
//! grant key, approvals by real approver keys, against the real binary.

use clawfirst_core::approval::{ApprovalDecision, ApprovalStatement, ApproverKey, SignedApproval};
use clawfirst_core::signer_proto::{SignerErrorCode, SignerRequest, SignerResponse};
use clawfirst_core::{SessionId, now_ms};

use crate::fixtures::*;
use crate::harness::{Backend, Error, Setup, Signer, TestResult};

/// USDC only: 3 USDC per transaction, 10 USDC a day; two approvals above, at most an hour old.
const FLOOR_AND_APPROVALS: &str = "[floor.per_transaction]\nUSDC = \"3 USDC\"\n\n\
     [floor.daily]\nUSDC = \"10 USDC\"\n\n\
     [approvals]\napprovers_file = \"approvers.toml\"\nrequired = 2\nmax_age = \"1h\"\n";

/// 50 USDC: far above the floor.
const BIG: u64 = 50_000_000;

const HOUR_MS: u64 = 60 * 60 * 1000;

/// The approvers of a test: alice and bob are listed at start, carol is not.
struct Approvers {
    pub alice: ApproverKey,
    pub bob: ApproverKey,
    pub carol: ApproverKey,
}

fn start(backend: Backend) -> Result<(Signer, Approvers), Error> {
    let approvers = Approvers {
        alice: ApproverKey::generate(),
        bob: ApproverKey::generate(),
        carol: ApproverKey::generate(),
    };
    let setup = Setup::with_floor(backend, FLOOR_AND_APPROVALS)?;
    write_approvers(
        &setup,
        &[("alice", &approvers.alice), ("bob", &approvers.bob)],
    )?;
    Ok((setup.start()?, approvers))
}

fn write_approvers(setup: &Setup, listed: &[(&str, &ApproverKey)]) -> TestResult {
    let text: String = listed
        .iter()
        .map(|(name, key)| {
            format!(
                "[[approver]]\nname = \"{name}\"\npublic_key = \"{}\"\n\n",
                key.public_key()
            )
        })
        .collect();
    std::fs::write(setup.dir.path().join("approvers.toml"), text)?;
    Ok(())
}

/// The statement an approver would sign for `granted`'s payment, decided now.
fn statement_for(key: &ApproverKey, granted: &Granted) -> ApprovalStatement {
    ApprovalStatement {
        approver: key.public_key(),
        decision: ApprovalDecision::Approve,
        decided_at_ms: now_ms(),
        session_id: granted.body.session_id.clone(),
        agent_id: granted.body.agent_id.clone(),
        key_id: granted.body.key_id.clone(),
        transfer: granted.body.transfer,
    }
}

fn approve(key: &ApproverKey, granted: &Granted) -> Result<SignedApproval, Error> {
    Ok(key.sign(&statement_for(key, granted))?)
}

fn with_approvals(granted: &Granted, approvals: Vec<SignedApproval>) -> SignerRequest {
    let mut request = granted.request.clone();
    if let SignerRequest::Sign { approvals: a, .. } = &mut request {
        *a = approvals;
    }
    request
}

fn big_payment(signer: &Signer) -> Result<Granted, Error> {
    let mut transfer = usdc_transfer(signer.wallet);
    transfer.amount = BIG;
    granted(&signer.grants, &signer.key_id, &transfer)
}

/// Another grant of the same session and payment, with a new message and grant id.
fn regranted(signer: &Signer, first: &Granted) -> Result<Granted, Error> {
    let message = message_for(&first.body.transfer)?;
    let mut body = body_for(&signer.key_id, &first.body.transfer, &message)?;
    body.session_id = first.body.session_id.clone();
    let request = sign_request(&signer.key_id, &message, signer.grants.sign(&body));
    Ok(Granted {
        message,
        body,
        request,
    })
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

pub fn refuses_above_the_floor_without_enough_approvals(backend: Backend) -> TestResult {
    let (signer, a) = start(backend)?;
    let mut client = signer.connect()?;
    let big = big_payment(&signer)?;
    assert_refused(
        &client.request(&big.request)?,
        SignerErrorCode::ApprovalRequired,
    );
    let one = with_approvals(&big, vec![approve(&a.alice, &big)?]);
    assert_refused(&client.request(&one)?, SignerErrorCode::ApprovalRequired);
    assert_unused(&signer, &big)?;
    // The refusal used nothing: the same grant with both approvals passes.
    let two = with_approvals(&big, vec![approve(&a.alice, &big)?, approve(&a.bob, &big)?]);
    assert!(is_signed(&client.request(&two)?));
    Ok(())
}

pub fn refuses_every_kind_of_invalid_approval(backend: Backend) -> TestResult {
    let (signer, a) = start(backend)?;
    let mut client = signer.connect()?;
    let big = big_payment(&signer)?;
    let bob = approve(&a.bob, &big)?;
    let edited = |edit: &dyn Fn(&mut ApprovalStatement)| -> Result<SignedApproval, Error> {
        let mut statement = statement_for(&a.alice, &big);
        edit(&mut statement);
        Ok(a.alice.sign(&statement)?)
    };

    // Mallory signs a statement that names alice: valid format, wrong key.
    let mut forged = approve(&a.alice, &big)?;
    forged.signature = approve(&a.carol, &big)?.signature;

    let cases: Vec<(&str, SignedApproval)> = vec![
        ("the same approver twice", approve(&a.bob, &big)?),
        ("a forged signature", forged),
        ("an approver not listed", approve(&a.carol, &big)?),
        (
            "another session",
            edited(&|s| s.session_id = SessionId::random())?,
        ),
        ("another amount", edited(&|s| s.transfer.amount = BIG - 1)?),
        (
            "another recipient",
            edited(&|s| s.transfer.recipient = random_address())?,
        ),
        (
            "a rejection",
            edited(&|s| s.decision = ApprovalDecision::Reject)?,
        ),
        (
            "too old",
            edited(&|s| s.decided_at_ms = now_ms() - 2 * HOUR_MS)?,
        ),
        (
            "from the future",
            edited(&|s| s.decided_at_ms = now_ms() + HOUR_MS)?,
        ),
    ];
    for (case, second) in cases {
        let request = with_approvals(&big, vec![bob.clone(), second]);
        let response = client.request(&request)?;
        assert!(
            matches!(
                response,
                SignerResponse::Error {
                    code: SignerErrorCode::ApprovalInvalid,
                    ..
                }
            ),
            "{case}: {response:?}"
        );
    }
    assert_unused(&signer, &big)?;

    // Fail closed: a valid pair plus one bad approval is refused.
    let three = with_approvals(
        &big,
        vec![bob, approve(&a.alice, &big)?, approve(&a.carol, &big)?],
    );
    assert_refused(&client.request(&three)?, SignerErrorCode::ApprovalInvalid);
    let log = signer.stderr();
    assert!(log.contains("is not in the signer's list"), "{log}");
    assert!(log.contains("older than approvals.max_age"), "{log}");
    Ok(())
}

pub fn signs_with_two_approvals_outside_the_daily_floor(backend: Backend) -> TestResult {
    let (signer, a) = start(backend)?;
    let mut client = signer.connect()?;
    let big = big_payment(&signer)?;
    let approvals = vec![approve(&a.alice, &big)?, approve(&a.bob, &big)?];
    let response = client.request(&with_approvals(&big, approvals.clone()))?;
    assert!(is_signed(&response), "{response:?}");

    // The approved 50 USDC did not use the 10 USDC daily floor: four 2.5 USDC grants pass.
    for _ in 0..4 {
        let small = granted(
            &signer.grants,
            &signer.key_id,
            &usdc_transfer(signer.wallet),
        )?;
        assert!(is_signed(&client.request(&small.request)?));
    }
    let fifth = granted(
        &signer.grants,
        &signer.key_id,
        &usdc_transfer(signer.wallet),
    )?;
    assert_refused(
        &client.request(&fifth.request)?,
        SignerErrorCode::ApprovalRequired,
    );

    // The request log names the approvers and keys, never their signatures.
    let conn = rusqlite::Connection::open(&signer.database)?;
    let recorded: String = conn.query_row(
        "SELECT approvers FROM requests WHERE outcome = 'signed' AND approvers IS NOT NULL",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(
        recorded,
        format!("alice={},bob={}", a.alice.public_key(), a.bob.public_key())
    );
    let everything = format!("{}{recorded}", signer.stderr());
    for approval in &approvals {
        assert!(!everything.contains(&approval.signature));
        assert!(!everything.contains(&approval.statement));
    }
    Ok(())
}

pub fn refuses_a_second_grant_for_an_approved_session(backend: Backend) -> TestResult {
    let (signer, a) = start(backend)?;
    let mut client = signer.connect()?;
    let big = big_payment(&signer)?;
    let approvals = vec![approve(&a.alice, &big)?, approve(&a.bob, &big)?];
    assert!(is_signed(
        &client.request(&with_approvals(&big, approvals.clone()))?
    ));
    let again = regranted(&signer, &big)?;
    assert_refused(
        &client.request(&with_approvals(&again, approvals))?,
        SignerErrorCode::ApprovalReplayed,
    );
    assert_unused(&signer, &again)
}

pub fn signs_exactly_one_of_concurrent_grants_for_an_approved_session(
    backend: Backend,
) -> TestResult {
    const RACERS: usize = 8;
    let (signer, a) = start(backend)?;
    let first = big_payment(&signer)?;
    let approvals = vec![approve(&a.alice, &first)?, approve(&a.bob, &first)?];
    let mut requests = vec![with_approvals(&first, approvals.clone())];
    for _ in 1..RACERS {
        requests.push(with_approvals(
            &regranted(&signer, &first)?,
            approvals.clone(),
        ));
    }
    let mut clients = (0..RACERS)
        .map(|_| signer.connect())
        .collect::<Result<Vec<_>, _>>()?;
    let barrier = std::sync::Barrier::new(RACERS);
    let responses = std::thread::scope(|scope| {
        let handles: Vec<_> = clients
            .iter_mut()
            .zip(&requests)
            .map(|(client, request)| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    client.request(request).map_err(|e| e.to_string())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| "racer panicked".to_owned())?)
            .collect::<Result<Vec<_>, _>>()
    })?;
    let signed = responses.iter().filter(|r| is_signed(r)).count();
    let replayed = responses
        .iter()
        .filter(|r| {
            matches!(
                r,
                SignerResponse::Error {
                    code: SignerErrorCode::ApprovalReplayed,
                    ..
                }
            )
        })
        .count();
    assert_eq!((signed, replayed), (1, RACERS - 1), "{responses:?}");
    Ok(())
}

pub fn reloads_the_approvers_file_and_keeps_the_last_good_list(backend: Backend) -> TestResult {
    let (signer, a) = start(backend)?;
    let mut client = signer.connect()?;

    // Carol is not listed yet.
    let first = big_payment(&signer)?;
    let alice_carol = |g: &Granted| -> Result<Vec<SignedApproval>, Error> {
        Ok(vec![approve(&a.alice, g)?, approve(&a.carol, g)?])
    };
    assert_refused(
        &client.request(&with_approvals(&first, alice_carol(&first)?))?,
        SignerErrorCode::ApprovalInvalid,
    );

    // Listed while the signer runs: accepted at the next request.
    write_approvers(
        &signer.setup,
        &[("alice", &a.alice), ("bob", &a.bob), ("carol", &a.carol)],
    )?;
    let response = client.request(&with_approvals(&first, alice_carol(&first)?))?;
    assert!(is_signed(&response), "{response:?}");
    assert!(signer.stderr().contains("approvers file reloaded"));

    // A broken file is refused and the last good list stays in force.
    std::fs::write(
        signer.dir.path().join("approvers.toml"),
        "[[approver]]\nname = \"mallory\"\n",
    )?;
    let second = big_payment(&signer)?;
    let response = client.request(&with_approvals(&second, alice_carol(&second)?))?;
    assert!(is_signed(&response), "{response:?}");
    assert!(
        signer.stderr().contains("approvers file refused"),
        "{}",
        signer.stderr()
    );
    Ok(())
}

/// Without an `[approvals]` section the floor is the limit (`floor_exceeded`), and any approval
/// is refused: the signer knows no approver.
#[test]
fn without_approvers_the_floor_is_final() -> TestResult {
    let floor = FLOOR_AND_APPROVALS
        .split("[approvals]")
        .next()
        .unwrap_or_default();
    let signer = Setup::with_floor(Backend::Keyfile, floor)?.start()?;
    let mut client = signer.connect()?;
    let big = big_payment(&signer)?;
    assert_refused(
        &client.request(&big.request)?,
        SignerErrorCode::FloorExceeded,
    );
    let key = ApproverKey::generate();
    let approved = with_approvals(&big, vec![approve(&key, &big)?]);
    assert_refused(
        &client.request(&approved)?,
        SignerErrorCode::ApprovalInvalid,
    );
    Ok(())
}

/// A missing approvers file stops the signer at start with exit code 3.
#[test]
fn a_missing_approvers_file_stops_the_signer() -> TestResult {
    let setup = Setup::with_floor(Backend::Keyfile, FLOOR_AND_APPROVALS)?;
    let output = setup
        .command()
        .arg("--config")
        .arg(&setup.config)
        .output()?;
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("approvers file"), "{stderr}");
    Ok(())
}
