//! The atomic budget step, under contention from tasks, from two connections and from two
//! operating-system processes sharing one file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clawfirst_core::{AgentId, Asset, SessionId};
use clawfirst_store::{
    CapExceeded, Measure, ReservationState, SessionPatch, SessionState, Store, StoreError,
};

use crate::support::*;

const CAP: u64 = 10;

/// Tries to reserve one unit for each session in parallel; returns how many succeeded.
/// Any outcome other than success or `CapExceeded` fails the test.
async fn reserve_all(stores: &[Store], sessions: Vec<SessionId>) -> TestResult<u64> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, id) in sessions.into_iter().enumerate() {
        let store = stores[i % stores.len()].clone();
        tasks.spawn(async move { reserve(&store, &id, APPROVE, daily_cap(CAP), T0 + 1).await });
    }
    let mut reserved = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined? {
            Ok(Ok(_)) => reserved += 1,
            Ok(Err(CapExceeded {
                cap: CAP,
                requested: 1,
                ..
            })) => {}
            Ok(Err(other)) => return Err(format!("unexpected cap report {other:?}").into()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(reserved)
}

/// Creates `count` one-unit sessions named `{prefix}-{i}` for `agent`.
async fn one_unit_sessions(
    store: &Store,
    agent: &AgentId,
    prefix: &str,
    count: usize,
) -> TestResult<Vec<SessionId>> {
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        ids.push(create(store, new_session(agent, &format!("{prefix}-{i}"), 1)?).await?);
    }
    Ok(ids)
}

async fn approved_count(store: &Store, agent: &AgentId) -> TestResult<usize> {
    let sessions = store.list_sessions(Some(agent), 10_000).await?;
    Ok(sessions
        .iter()
        .filter(|s| s.state == SessionState::Approved)
        .count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_tasks_never_reserve_more_than_the_cap() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open_fast().await?;

    for round in 0..20 {
        let agent = add_agent(&store, &format!("agent-{round}")).await?;
        let sessions = one_unit_sessions(&store, &agent, &format!("ps_r{round}"), 64).await?;

        let reserved = reserve_all(std::slice::from_ref(&store), sessions).await?;

        assert_eq!(reserved, CAP, "round {round}");
        assert_eq!(
            store.budget_usage(&agent, Asset::Sol, 0).await?,
            CAP,
            "round {round}"
        );
        assert_eq!(approved_count(&store, &agent).await?, 10, "round {round}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_connections_to_one_file_never_reserve_more_than_the_cap() -> TestResult {
    let db = TestDb::new()?;
    let stores = [db.open_fast().await?, db.open_fast().await?];

    for round in 0..10 {
        let agent = add_agent(&stores[0], &format!("agent-{round}")).await?;
        let sessions = one_unit_sessions(&stores[1], &agent, &format!("ps_r{round}"), 64).await?;

        let reserved = reserve_all(&stores, sessions).await?;

        assert_eq!(reserved, CAP, "round {round}");
        assert_eq!(
            stores[1].budget_usage(&agent, Asset::Sol, 0).await?,
            CAP,
            "round {round}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_refused_reservation_writes_nothing() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let first = create(&store, new_session(&agent, "ps_first", 8)?).await?;
    let second = create(&store, new_session(&agent, "ps_second", 3)?).await?;
    reserve(&store, &first, APPROVE, daily_cap(CAP), T0 + 1).await??;
    let audit_before = store.audit_len().await?;

    let refused = reserve(&store, &second, APPROVE, daily_cap(CAP), T0 + 2).await?;

    assert_eq!(
        refused,
        Err(CapExceeded {
            name: "daily_cap".into(),
            cap: CAP,
            used: 8,
            requested: 3,
            measure: Measure::BaseUnits,
        })
    );
    assert_eq!(
        store.session(&second).await?.map(|s| s.state),
        Some(SessionState::Initialized)
    );
    assert_eq!(store.reservation_state(&second).await?, None);
    assert_eq!(store.audit_len().await?, audit_before);
    Ok(())
}

#[tokio::test]
async fn the_first_exceeded_window_is_named_and_assets_are_separate() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let mut usdc = new_session(&agent, "ps_usdc", 9)?;
    usdc.asset = Asset::Usdc;
    let usdc = create(&store, usdc).await?;
    let sol = create(&store, new_session(&agent, "ps_sol", 9)?).await?;
    let more_sol = create(&store, new_session(&agent, "ps_more", 2)?).await?;
    let caps = || daily_cap(100).window("hourly_cap", HOUR, 10);

    for id in [&usdc, &sol] {
        reserve(&store, id, APPROVE, caps(), T0 + 1).await??;
    }
    let refused = reserve(&store, &more_sol, APPROVE, caps(), T0 + 2).await?;

    assert_eq!(
        refused.map_err(|e| (e.name, e.used)),
        Err(("hourly_cap".to_owned(), 9))
    );
    assert_eq!(store.budget_usage(&agent, Asset::Usdc, 0).await?, 9);
    assert_eq!(store.budget_usage(&agent, Asset::Sol, 0).await?, 9);
    assert_eq!(store.budget_usage(&agent, Asset::Bonk, 0).await?, 0);
    Ok(())
}

#[tokio::test]
async fn a_session_reserves_once_and_never_into_a_terminal_state() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let id = create(&store, new_session(&agent, "ps_1", 1)?).await?;

    let refused = reserve(
        &store,
        &id,
        (SessionState::Initialized, SessionState::Cancelled),
        daily_cap(CAP),
        T0,
    )
    .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::ReservationIntoTerminal {
                to: SessionState::Cancelled
            })
        ),
        "{refused:?}"
    );

    reserve(
        &store,
        &id,
        (SessionState::Initialized, SessionState::AwaitingApproval),
        daily_cap(CAP),
        T0,
    )
    .await??;
    let twice = store
        .reserve_and_transition(
            &id,
            SessionState::AwaitingApproval,
            SessionState::Approved,
            daily_cap(CAP),
            SessionPatch::none(),
            operator_event("approval.granted", T0),
        )
        .await;
    assert!(
        matches!(twice, Err(StoreError::AlreadyReserved(_))),
        "{twice:?}"
    );
    assert_eq!(
        store.session(&id).await?.map(|s| s.state),
        Some(SessionState::AwaitingApproval)
    );
    assert_eq!(
        store.reservation_state(&id).await?,
        Some(ReservationState::Reserved)
    );
    assert_eq!(store.budget_usage(&agent, Asset::Sol, 0).await?, 1);
    Ok(())
}

// Two processes. The test binary runs itself twice in child mode (`two_process_child`, selected
// by environment variables); the children start together on a signal file and race for the
// same caps.

const CHILD_DB: &str = "CLAWFIRST_STORE_TEST_CHILD_DB";
const CHILD_INDEX: &str = "CLAWFIRST_STORE_TEST_CHILD_INDEX";
const AGENTS: usize = 6;
const PER_CHILD: usize = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_never_reserve_more_than_the_cap() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open_fast().await?;
    let mut agents = Vec::new();
    for a in 0..AGENTS {
        let agent = add_agent(&store, &format!("agent-{a}")).await?;
        for child in 0..2 {
            one_unit_sessions(&store, &agent, &format!("ps_a{a}_c{child}"), PER_CHILD).await?;
        }
        agents.push(agent);
    }

    let mut children = Vec::new();
    for child in 0..2 {
        let command = tokio::process::Command::new(std::env::current_exe()?)
            .args([
                "budgets::two_process_child",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env(CHILD_DB, db.path())
            .env(CHILD_INDEX, child.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        children.push(command);
    }
    wait_for(&[ready_file(&db.dir(), 0), ready_file(&db.dir(), 1)]).await?;
    std::fs::write(go_file(&db.dir()), b"go")?;

    let mut per_child = Vec::new();
    for (child, process) in children.into_iter().enumerate() {
        let output = process.wait_with_output().await?;
        if !output.status.success() {
            return Err(format!(
                "child {child} failed: {}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        per_child.push(read_counts(&result_file(&db.dir(), child))?);
    }

    for (a, agent) in agents.iter().enumerate() {
        let total: u64 = per_child.iter().map(|counts| counts[a]).sum();
        assert_eq!(
            total, CAP,
            "agent {a}: reservations reported by the two processes"
        );
        assert_eq!(
            store.budget_usage(agent, Asset::Sol, 0).await?,
            CAP,
            "agent {a}"
        );
        assert_eq!(approved_count(&store, agent).await?, 10, "agent {a}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "child mode of two_processes_never_reserve_more_than_the_cap"]
async fn two_process_child() -> TestResult {
    let (Ok(path), Ok(index)) = (std::env::var(CHILD_DB), std::env::var(CHILD_INDEX)) else {
        // Run directly (with --ignored) there is nothing to do.
        return Ok(());
    };
    let index: usize = index.parse()?;
    let path = PathBuf::from(path);
    let dir = path
        .parent()
        .ok_or("database path has no parent")?
        .to_path_buf();
    let store = Store::open_sqlite(&path, fast_options()).await?;

    std::fs::write(ready_file(&dir, index), b"ready")?;
    wait_for(&[go_file(&dir)]).await?;

    // Every agent's sessions at once, so the two processes contend on every cap together.
    let mut rounds = tokio::task::JoinSet::new();
    for a in 0..AGENTS {
        let store = store.clone();
        let sessions: Vec<SessionId> = (0..PER_CHILD)
            .map(|i| session_id(&format!("ps_a{a}_c{index}-{i}")))
            .collect::<TestResult<_>>()?;
        rounds.spawn(async move { (a, reserve_all(&[store], sessions).await) });
    }
    let mut counts = [0; AGENTS];
    while let Some(joined) = rounds.join_next().await {
        let (a, reserved) = joined?;
        counts[a] = reserved?;
    }

    let text: Vec<String> = counts.iter().map(u64::to_string).collect();
    std::fs::write(result_file(&dir, index), text.join("\n"))?;
    Ok(())
}

fn ready_file(dir: &Path, child: usize) -> PathBuf {
    dir.join(format!("ready-{child}"))
}

fn go_file(dir: &Path) -> PathBuf {
    dir.join("go")
}

fn result_file(dir: &Path, child: usize) -> PathBuf {
    dir.join(format!("result-{child}"))
}

fn read_counts(path: &Path) -> TestResult<Vec<u64>> {
    let text = std::fs::read_to_string(path)?;
    let counts = text
        .lines()
        .map(str::parse)
        .collect::<Result<Vec<u64>, _>>()?;
    if counts.len() != AGENTS {
        return Err(format!("{} counts in {}", counts.len(), path.display()).into());
    }
    Ok(counts)
}

async fn wait_for(files: &[PathBuf]) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !files.iter().all(|f| f.exists()) {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {files:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}
