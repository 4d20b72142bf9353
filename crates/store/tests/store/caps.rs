//! Caps in three measures at once under contention: base units per asset, micro-US-dollars and
//! payments over every asset. Each round races 64 reservations of random amounts for a fresh
//! agent while some of the winners cancel or settle at the same time; after each round the
//! store's sums must equal what the winners hold and stay within every cap.
//!
//! The plan of each round is a pure function of the round and task number, so the two-process
//! version (`caps_processes`) can check what its children did without being told the amounts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clawfirst_core::{AgentId, Asset, SessionId};
use clawfirst_store::{
    BudgetWindow, CapExceeded, Measure, Reservation, SessionState, Store, StoreError,
};

use crate::support::*;

/// Reservations raced per round.
pub const TASKS: usize = 64;
/// Rounds, each with a fresh agent.
pub const ROUNDS: usize = 20;
/// The daily cap per asset, in base units; amounts are 1 to 100.
pub const BASE_CAP: u64 = 600;
/// The daily cap in micro-US-dollars; values are 1 to 1,000,000.
pub const USD_CAP: u64 = 15_000_000;
/// The daily cap in payments.
pub const COUNT_CAP: u64 = 30;

/// What a task does once its reservation succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Then {
    /// Leaves it reserved.
    Keep,
    /// Cancels the session, releasing the reservation while others still race.
    Cancel,
    /// Settles the payment, committing the reservation.
    Settle,
}

/// One task's payment.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub asset: Asset,
    pub amount: u64,
    pub usd_micros: u64,
    pub then: Then,
}

/// How a task ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Reserved and still counting (kept or settled).
    Counted,
    /// Reserved, then cancelled: no longer counts.
    Released,
    /// Refused by the cap counting this measure.
    Refused(Measure),
}

impl Outcome {
    pub fn to_text(self) -> String {
        match self {
            Outcome::Counted => "counted".to_owned(),
            Outcome::Released => "released".to_owned(),
            Outcome::Refused(measure) => format!("refused:{measure}"),
        }
    }

    pub fn parse(text: &str) -> TestResult<Self> {
        match text.split_once(':') {
            None if text == "counted" => Ok(Outcome::Counted),
            None if text == "released" => Ok(Outcome::Released),
            Some(("refused", measure)) => Ok(Outcome::Refused(measure.parse()?)),
            _ => Err(format!("unknown outcome {text:?}").into()),
        }
    }
}

/// splitmix64: a fixed, well-mixed sequence, so every run checks the same plans.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The payment of task `index` in `round`.
pub fn plan(round: usize, index: usize) -> Plan {
    let seed = mix(((round as u64) << 32) | index as u64);
    let asset = Asset::ALL[(seed % 3) as usize];
    let amount = 1 + mix(seed) % 100;
    let usd_micros = 1 + mix(seed ^ 1) % 1_000_000;
    let then = match index % 4 {
        0 => Then::Cancel,
        1 => Then::Settle,
        _ => Then::Keep,
    };
    Plan {
        asset,
        amount,
        usd_micros,
        then,
    }
}

/// The three caps, every reservation checked against all of them; the order (which decides
/// the cap reported when several are exceeded) turns with the task.
pub fn caps(plan: &Plan, index: usize) -> Reservation {
    let mut windows = vec![
        BudgetWindow::measured("daily_base", 24 * HOUR, BASE_CAP, Measure::BaseUnits),
        BudgetWindow::measured("daily_usd", 24 * HOUR, USD_CAP, Measure::UsdMicros),
        BudgetWindow::measured("daily_count", 24 * HOUR, COUNT_CAP, Measure::Count),
    ];
    windows.rotate_left(index % 3);
    Reservation::new(windows).usd_micros(plan.usd_micros)
}

pub fn round_session(round: usize, index: usize) -> TestResult<SessionId> {
    session_id(&format!("ps_r{round}_t{index}"))
}

/// Creates the round's sessions for `agent` (the tasks `indices`).
pub async fn create_round(
    store: &Store,
    agent: &AgentId,
    round: usize,
    indices: impl Iterator<Item = usize>,
) -> TestResult {
    let mut creates = tokio::task::JoinSet::new();
    for index in indices {
        let plan = plan(round, index);
        let mut new = new_session(agent, &format!("ps_r{round}_t{index}"), plan.amount)?;
        new.asset = plan.asset;
        let store = store.clone();
        creates.spawn(async move { create(&store, new).await });
    }
    while let Some(created) = creates.join_next().await {
        created??;
    }
    Ok(())
}

/// Reserves task `index`'s payment, then cancels or settles it as planned.
pub async fn run_task(store: &Store, round: usize, index: usize) -> TestResult<Outcome> {
    let plan = plan(round, index);
    let id = round_session(round, index)?;
    match reserve(store, &id, APPROVE, caps(&plan, index), T0 + 1).await? {
        Ok(_) => {}
        Err(exceeded) => {
            check_refusal(&plan, &exceeded)?;
            return Ok(Outcome::Refused(exceeded.measure));
        }
    }
    match plan.then {
        Then::Keep => Ok(Outcome::Counted),
        Then::Cancel => {
            advance(store, &id, APPROVE.1, SessionState::Cancelled, T0 + 2).await?;
            Ok(Outcome::Released)
        }
        Then::Settle => {
            advance(store, &id, APPROVE.1, SessionState::Signed, T0 + 2).await?;
            advance(
                store,
                &id,
                SessionState::Signed,
                SessionState::Finalized,
                T0 + 3,
            )
            .await?;
            Ok(Outcome::Counted)
        }
    }
}

/// A refusal names one of the caps, in its measure, and is justified by its own numbers.
fn check_refusal(plan: &Plan, exceeded: &CapExceeded) -> TestResult {
    let (cap, requested) = match (exceeded.name.as_str(), exceeded.measure) {
        ("daily_base", Measure::BaseUnits) => (BASE_CAP, plan.amount),
        ("daily_usd", Measure::UsdMicros) => (USD_CAP, plan.usd_micros),
        ("daily_count", Measure::Count) => (COUNT_CAP, 1),
        _ => return Err(format!("unexpected refusal {exceeded:?}").into()),
    };
    let justified = exceeded.cap == cap
        && exceeded.requested == requested
        && exceeded.used + requested > cap
        && exceeded.used <= cap;
    if !justified {
        return Err(format!("unjustified refusal {exceeded:?} of {plan:?}").into());
    }
    Ok(())
}

/// What the winners of a round hold, per measure (base units per asset, in `Asset::ALL`
/// order).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub base: [u64; 3],
    pub usd: u64,
    pub count: u64,
}

pub fn expected_totals(round: usize, outcomes: &[(usize, Outcome)]) -> Totals {
    let mut totals = Totals::default();
    for (index, outcome) in outcomes {
        if *outcome != Outcome::Counted {
            continue;
        }
        let plan = plan(round, *index);
        let slot = Asset::ALL
            .iter()
            .position(|a| *a == plan.asset)
            .unwrap_or(0);
        totals.base[slot] += plan.amount;
        totals.usd += plan.usd_micros;
        totals.count += 1;
    }
    totals
}

/// The agent's sums as the store reports them.
pub async fn store_totals(store: &Store, agent: &AgentId) -> Result<Totals, StoreError> {
    let mut totals = Totals::default();
    for (slot, asset) in Asset::ALL.into_iter().enumerate() {
        totals.base[slot] = store
            .budget_usage_measured(agent, asset, Measure::BaseUnits, 0)
            .await?;
    }
    totals.usd = store
        .budget_usage_measured(agent, Asset::Sol, Measure::UsdMicros, 0)
        .await?;
    totals.count = store
        .budget_usage_measured(agent, Asset::Sol, Measure::Count, 0)
        .await?;
    Ok(totals)
}

pub fn within_caps(totals: &Totals) -> bool {
    totals.base.iter().all(|b| *b <= BASE_CAP) && totals.usd <= USD_CAP && totals.count <= COUNT_CAP
}

/// Checks that over all rounds every measure's cap was the one that refused at least once, so
/// each measure was contended rather than left idle by the others.
pub fn check_every_measure_refused(outcomes: &[(usize, Outcome)]) {
    for measure in [Measure::BaseUnits, Measure::UsdMicros, Measure::Count] {
        assert!(
            outcomes
                .iter()
                .any(|(_, o)| *o == Outcome::Refused(measure)),
            "no refusal by the {measure} cap"
        );
    }
}

/// Checks a finished round: the store's sums are exactly the winners', within every cap, and
/// some reservations were refused (the caps were contended, not idle).
pub async fn check_round(
    store: &Store,
    agent: &AgentId,
    round: usize,
    outcomes: &[(usize, Outcome)],
) -> TestResult {
    let expected = expected_totals(round, outcomes);
    let found = store_totals(store, agent).await?;
    assert_eq!(found, expected, "round {round}");
    assert!(within_caps(&found), "round {round}: {found:?}");
    let refused = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Refused(_)))
        .count();
    assert!(refused > 0, "round {round}: no cap was reached");
    let mut indices: Vec<usize> = outcomes.iter().map(|(i, _)| *i).collect();
    indices.sort_unstable();
    assert_eq!(indices, (0..TASKS).collect::<Vec<_>>(), "round {round}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_tasks_keep_three_measures_within_their_caps() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open_fast().await?;
    let mut all_outcomes = Vec::new();

    for round in 0..ROUNDS {
        let agent = add_agent(&store, &format!("agent-{round}")).await?;
        create_round(&store, &agent, round, 0..TASKS).await?;

        // A reader samples the sums while the round runs: every committed state is in caps.
        let running = Arc::new(AtomicBool::new(true));
        let monitor = {
            let (store, agent, running) = (store.clone(), agent.clone(), Arc::clone(&running));
            tokio::spawn(async move {
                let mut samples = 0_u32;
                while running.load(Ordering::Relaxed) {
                    let totals = store_totals(&store, &agent)
                        .await
                        .map_err(|e| e.to_string())?;
                    if !within_caps(&totals) {
                        return Err(format!("over a cap mid-round: {totals:?}"));
                    }
                    samples += 1;
                }
                Ok(samples)
            })
        };

        let mut tasks = tokio::task::JoinSet::new();
        for index in 0..TASKS {
            let store = store.clone();
            tasks.spawn(async move { (index, run_task(&store, round, index).await) });
        }
        let mut outcomes = Vec::with_capacity(TASKS);
        while let Some(joined) = tasks.join_next().await {
            let (index, outcome) = joined?;
            outcomes.push((index, outcome?));
        }
        running.store(false, Ordering::Relaxed);
        let samples = monitor.await??;

        check_round(&store, &agent, round, &outcomes).await?;
        assert!(samples > 0, "round {round}: the monitor never sampled");
        all_outcomes.extend(outcomes);
    }
    check_every_measure_refused(&all_outcomes);
    Ok(())
}

#[tokio::test]
async fn usd_and_count_windows_span_assets_and_base_units_do_not() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let mut ids = Vec::new();
    for (name, asset, amount) in [("ps_sol", Asset::Sol, 5), ("ps_usdc", Asset::Usdc, 7)] {
        let mut new = new_session(&agent, name, amount)?;
        new.asset = asset;
        ids.push(create(&store, new).await?);
    }
    let usd =
        |cap| Reservation::default().measured_window("daily_usd", HOUR, cap, Measure::UsdMicros);
    reserve(
        &store,
        &ids[0],
        APPROVE,
        usd(3_000_000).usd_micros(2_000_000),
        T0,
    )
    .await??;

    let refused = reserve(
        &store,
        &ids[1],
        APPROVE,
        usd(3_000_000).usd_micros(1_500_000),
        T0,
    )
    .await?;
    assert_eq!(
        refused,
        Err(CapExceeded {
            name: "daily_usd".into(),
            cap: 3_000_000,
            used: 2_000_000,
            requested: 1_500_000,
            measure: Measure::UsdMicros,
        })
    );
    let count = Reservation::default()
        .measured_window("daily_count", HOUR, 1, Measure::Count)
        .window("daily_base", HOUR, 7);
    let refused = reserve(&store, &ids[1], APPROVE, count, T0).await?;
    assert_eq!(
        refused.map_err(|e| (e.name, e.used)),
        Err(("daily_count".into(), 1))
    );

    // Base units count the session's own asset only: the SOL reservation leaves USDC free.
    let base = Reservation::default()
        .window("daily_base", HOUR, 7)
        .usd_micros(1_000_000);
    reserve(&store, &ids[1], APPROVE, base, T0).await??;

    let usage = |measure, asset| store.budget_usage_measured(&agent, asset, measure, 0);
    assert_eq!(usage(Measure::BaseUnits, Asset::Sol).await?, 5);
    assert_eq!(usage(Measure::BaseUnits, Asset::Usdc).await?, 7);
    assert_eq!(usage(Measure::UsdMicros, Asset::Bonk).await?, 3_000_000);
    assert_eq!(usage(Measure::Count, Asset::Bonk).await?, 2);

    advance(&store, &ids[0], APPROVE.1, SessionState::Cancelled, T0 + 1).await?;
    assert_eq!(usage(Measure::UsdMicros, Asset::Sol).await?, 1_000_000);
    assert_eq!(usage(Measure::Count, Asset::Sol).await?, 1);
    assert_eq!(store.budget_usage(&agent, Asset::Sol, 0).await?, 0);
    Ok(())
}

#[tokio::test]
async fn a_usd_window_without_a_usd_value_is_refused_and_writes_nothing() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let id = create(&store, new_session(&agent, "ps_1", 5)?).await?;
    let audit_before = store.audit_len().await?;
    let caps = daily_cap(10).measured_window("daily_usd", HOUR, 10, Measure::UsdMicros);

    let refused = reserve(&store, &id, APPROVE, caps, T0 + 1).await;

    assert!(
        matches!(refused, Err(StoreError::MissingUsdValue)),
        "{refused:?}"
    );
    let session = store.session(&id).await?.ok_or("session lost")?;
    assert_eq!(session.state, SessionState::Initialized);
    assert_eq!(store.reservation_state(&id).await?, None);
    assert_eq!(store.audit_len().await?, audit_before);
    Ok(())
}

#[tokio::test]
async fn usd_sums_past_64_bits_are_exact() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let huge = i64::MAX as u64;
    let mut ids = Vec::new();
    for name in ["ps_1", "ps_2", "ps_3"] {
        ids.push(create(&store, new_session(&agent, name, 1)?).await?);
    }
    let usd = |value| {
        Reservation::default()
            .measured_window("daily_usd", HOUR, u64::MAX, Measure::UsdMicros)
            .usd_micros(value)
    };
    let too_big = reserve(&store, &ids[0], APPROVE, usd(huge + 1), T0).await;
    assert!(
        matches!(
            too_big,
            Err(StoreError::OutOfRange {
                field: "usd_micros",
                ..
            })
        ),
        "{too_big:?}"
    );
    assert_eq!(store.reservation_state(&ids[0]).await?, None);

    reserve(&store, &ids[0], APPROVE, usd(huge), T0).await??;
    reserve(&store, &ids[1], APPROVE, usd(huge), T0).await??;

    let refused = reserve(&store, &ids[2], APPROVE, usd(u64::MAX - 2 * huge + 1), T0).await?;
    assert_eq!(refused.map_err(|e| e.used), Err(2 * huge));
    reserve(&store, &ids[2], APPROVE, usd(1), T0).await??;
    let usage = store
        .budget_usage_measured(&agent, Asset::Sol, Measure::UsdMicros, 0)
        .await?;
    assert_eq!(usage, 2 * huge + 1);
    Ok(())
}
