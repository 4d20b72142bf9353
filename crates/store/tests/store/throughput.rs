//! Write throughput under concurrency: 64 tasks each appending audit events and moving
//! sessions, with both durability settings.
//!
//! Ignored by default because its numbers mean something only in a release build, on a real
//! disk (the database goes to a temporary directory under `$CLAWFIRST_BENCH_DIR` if set):
//!
//! ```sh
//! cargo test -p clawfirst-store --release --test store -- --ignored --nocapture throughput
//! ```

use std::time::{Duration, Instant};

use clawfirst_store::{SessionPatch, SessionState, SqliteOptions, Store, Synchronous};
use tempfile::TempDir;

use crate::support::*;

const TASKS: usize = 64;
/// Sessions moved; each also gets one audit append, so twice as many writes are timed.
const SESSIONS: usize = 10_000;

async fn measure(synchronous: Synchronous) -> TestResult {
    let dir = match std::env::var_os("CLAWFIRST_BENCH_DIR") {
        Some(base) => tempfile::tempdir_in(base)?,
        None => TempDir::new()?,
    };
    let path = dir.path().join("bench.db");

    // Setup, untimed and not fully durable: an agent and its sessions, created concurrently.
    let ids = {
        let store = Store::open_sqlite(&path, fast_options()).await?;
        let agent = add_agent(&store, "agent-bench").await?;
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..TASKS {
            let (store, agent) = (store.clone(), agent.clone());
            tasks.spawn(async move {
                let mut ids = Vec::new();
                for i in (t..SESSIONS).step_by(TASKS) {
                    ids.push(create(&store, new_session(&agent, &format!("ps_{i}"), 1)?).await?);
                }
                TestResult::Ok(ids)
            });
        }
        let mut ids = Vec::with_capacity(SESSIONS);
        while let Some(joined) = tasks.join_next().await {
            ids.extend(joined??);
        }
        ids
    };

    let options = SqliteOptions {
        synchronous,
        busy_timeout: Duration::from_secs(30),
        ..SqliteOptions::default()
    };
    let store = Store::open_sqlite(&path, options).await?;
    let audit_before = store.audit_len().await?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let store = store.clone();
        let mine: Vec<_> = ids.iter().skip(t).step_by(TASKS).cloned().collect();
        tasks.spawn(async move {
            for id in mine {
                store
                    .append_audit(operator_event("bench.tick", T0 + 1).session(&id))
                    .await?;
                let event = operator_event("session.transition", T0 + 2);
                store
                    .transition(
                        &id,
                        SessionState::Initialized,
                        SessionState::AwaitingApproval,
                        SessionPatch::none(),
                        event,
                    )
                    .await?;
            }
            TestResult::Ok(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    let elapsed = started.elapsed();

    let writes = 2 * SESSIONS;
    assert_eq!(store.audit_len().await?, audit_before + writes as u64);
    let per_second = writes as u128 * 1_000_000 / elapsed.as_micros().max(1);
    println!(
        "synchronous={synchronous:?}: {writes} writes by {TASKS} tasks in {} ms = \
         {per_second} writes/s",
        elapsed.as_millis()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement: run in release with --ignored"]
async fn throughput_synchronous_normal() -> TestResult {
    measure(Synchronous::Normal).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement: run in release with --ignored"]
async fn throughput_synchronous_full() -> TestResult {
    measure(Synchronous::Full).await
}
