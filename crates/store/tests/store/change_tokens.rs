//! Change tokens: equal while nothing is committed, different after every kind of credential
//! change, whether made through the same handle, another handle, or another operating-system
//! process (the test binary re-run in child mode, selected by environment variables).

use clawfirst_core::AgentId;
use clawfirst_store::{AgentStatus, NewApiKey, Store};

use crate::support::*;

const CHILD_DB: &str = "CLAWFIRST_STORE_TEST_CHANGE_DB";
const CHILD_ROUND: &str = "CLAWFIRST_STORE_TEST_CHANGE_ROUND";

fn key(id: &str, agent: &AgentId) -> NewApiKey {
    NewApiKey {
        key_id_public: id.to_owned(),
        agent_id: agent.clone(),
        hash: [5; 32],
    }
}

#[tokio::test]
async fn tokens_hold_until_a_commit_and_move_with_every_credential_change() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let before = store.change_token().ok_or("no token")?;
    for _ in 0..100 {
        store.agent(&agent).await?;
        assert_eq!(store.change_token(), Some(before), "a read moved the token");
    }

    let mut last = before;
    let mut moved = |store: &Store, what: &str| -> TestResult {
        let now = store.change_token().ok_or("no token")?;
        assert_ne!(now, last, "{what} did not move the token");
        last = now;
        Ok(())
    };
    store
        .add_api_key(key("aaaaaaaaaaaa", &agent), operator_event("key", T0))
        .await?;
    moved(&store, "a new API key")?;
    store
        .rotate_credentials(key("bbbbbbbbbbbb", &agent), None, operator_event("rot", T0))
        .await?;
    moved(&store, "a rotation")?;
    store
        .revoke_token("tid-1", &agent, operator_event("tok", T0))
        .await?;
    moved(&store, "a revoked token")?;
    store
        .pin_certificate(&agent, Some([1; 32]), operator_event("pin", T0))
        .await?;
    moved(&store, "a certificate pin")?;
    store
        .set_agent_status(&agent, AgentStatus::Suspended, operator_event("st", T0))
        .await?;
    moved(&store, "a suspension")?;
    store
        .revoke_api_keys(&agent, operator_event("revoke", T0))
        .await?;
    moved(&store, "revoked keys")?;

    // Another handle on the same file: its commits move this handle's token too.
    let other = db.open().await?;
    let seen = store.change_token().ok_or("no token")?;
    other
        .set_agent_status(&agent, AgentStatus::Active, operator_event("st", T0))
        .await?;
    assert_ne!(store.change_token(), Some(seen));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_committing_moves_the_token() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    for round in 0..5 {
        let before = store.change_token().ok_or("no token")?;
        let output = tokio::process::Command::new(std::env::current_exe()?)
            .args([
                "change_tokens::child",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env(CHILD_DB, db.path())
            .env(CHILD_ROUND, round.to_string())
            .output()
            .await?;
        if !output.status.success() {
            return Err(format!(
                "child failed in round {round}: {}",
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        let after = store.change_token().ok_or("no token")?;
        assert_ne!(
            before, after,
            "round {round}: the child's commit went unnoticed"
        );
        assert!(store.token_revoked(&format!("child-{round}")).await?);
    }
    assert_eq!(store.agent(&agent).await?.map(|a| a.agent_id), Some(agent));
    Ok(())
}

/// Child mode of `another_process_committing_moves_the_token`: one credential change.
#[tokio::test]
#[ignore = "run by another_process_committing_moves_the_token"]
async fn child() -> TestResult {
    let (Ok(path), Ok(round)) = (std::env::var(CHILD_DB), std::env::var(CHILD_ROUND)) else {
        return Ok(());
    };
    let store = Store::open_sqlite(std::path::Path::new(&path), fast_options()).await?;
    let agent = AgentId::new("agent-1")?;
    store
        .revoke_token(&format!("child-{round}"), &agent, operator_event("tok", T0))
        .await?;
    Ok(())
}
