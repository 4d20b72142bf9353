//! The three-measure rounds of `caps`, raced by two operating-system processes sharing one
//! database file. The test binary runs itself twice in child mode (`caps_processes::child`,
//! selected by environment variables); each child takes half of every round's tasks, and the
//! two start each round together on signal files, so every round's caps are contended across
//! processes. The parent then checks each round as the in-process test does.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clawfirst_store::Store;

use crate::caps::{
    Outcome, ROUNDS, TASKS, check_every_measure_refused, check_round, create_round, run_task,
};
use crate::support::*;

const CHILD_DB: &str = "CLAWFIRST_STORE_TEST_CAPS_DB";
const CHILD_INDEX: &str = "CLAWFIRST_STORE_TEST_CAPS_CHILD";
const CHILDREN: usize = 2;

/// The tasks of a round that child `child` runs.
fn tasks_of(child: usize) -> impl Iterator<Item = usize> {
    (0..TASKS).filter(move |i| i % CHILDREN == child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_keep_three_measures_within_their_caps() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open_fast().await?;
    let mut agents = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let agent = add_agent(&store, &format!("agent-{round}")).await?;
        create_round(&store, &agent, round, 0..TASKS).await?;
        agents.push(agent);
    }

    let mut children = Vec::new();
    for child in 0..CHILDREN {
        let process = tokio::process::Command::new(std::env::current_exe()?)
            .args([
                "caps_processes::child",
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
        children.push(process);
    }
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
    }

    let mut all_outcomes = Vec::new();
    for (round, agent) in agents.iter().enumerate() {
        let mut outcomes = Vec::with_capacity(TASKS);
        for child in 0..CHILDREN {
            outcomes.extend(read_outcomes(&result_file(&db.dir(), round, child))?);
        }
        check_round(&store, agent, round, &outcomes).await?;
        all_outcomes.extend(outcomes);
    }
    check_every_measure_refused(&all_outcomes);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "child mode of two_processes_keep_three_measures_within_their_caps"]
async fn child() -> TestResult {
    let (Ok(path), Ok(child)) = (std::env::var(CHILD_DB), std::env::var(CHILD_INDEX)) else {
        // Run directly (with --ignored) there is nothing to do.
        return Ok(());
    };
    let child: usize = child.parse()?;
    let path = PathBuf::from(path);
    let dir = path
        .parent()
        .ok_or("database path has no parent")?
        .to_path_buf();
    let store = Store::open_sqlite(&path, fast_options()).await?;

    for round in 0..ROUNDS {
        // Both processes start the round together.
        std::fs::write(ready_file(&dir, round, child), b"ready")?;
        let everyone: Vec<PathBuf> = (0..CHILDREN).map(|c| ready_file(&dir, round, c)).collect();
        wait_for(&everyone).await?;

        let mut tasks = tokio::task::JoinSet::new();
        for index in tasks_of(child) {
            let store = store.clone();
            tasks.spawn(async move { (index, run_task(&store, round, index).await) });
        }
        let mut lines = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let (index, outcome) = joined?;
            lines.push(format!("{index} {}", outcome?.to_text()));
        }
        std::fs::write(result_file(&dir, round, child), lines.join("\n"))?;
    }
    Ok(())
}

fn ready_file(dir: &Path, round: usize, child: usize) -> PathBuf {
    dir.join(format!("caps-ready-{round}-{child}"))
}

fn result_file(dir: &Path, round: usize, child: usize) -> PathBuf {
    dir.join(format!("caps-result-{round}-{child}"))
}

fn read_outcomes(path: &Path) -> TestResult<Vec<(usize, Outcome)>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .map(|line| {
            let (index, outcome) = line.split_once(' ').ok_or("malformed result line")?;
            Ok((index.parse()?, Outcome::parse(outcome)?))
        })
        .collect()
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
