use std::sync::Arc;

use clawfirst_core::{Address, Asset};

use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn grant(id: GrantId, amount: u64) -> Result<GrantUse, Box<dyn std::error::Error>> {
    Ok(GrantUse {
        grant_id: id,
        key_id: KeyId::new("default")?,
        agent_id: AgentId::new("agent-1")?,
        session_id: SessionId::new("ps_1")?,
        message_sha256: [7; 32],
        transfer: Transfer {
            asset: Asset::Usdc,
            mint: Some(Address::new([1; 32])),
            amount,
            recipient: Address::new([2; 32]),
            payer: Address::new([3; 32]),
        },
        used_at_ms: 1_700_000_000_000,
    })
}

fn log(op: &'static str, outcome: &'static str) -> RequestLog {
    RequestLog {
        at_ms: 1,
        op,
        outcome,
        key_id: None,
        grant_id: None,
        agent_id: None,
        session_id: None,
        approvers: None,
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

#[test]
fn a_grant_burns_once_and_keeps_its_signature_across_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("signer.sqlite");
    let id = GrantId::random();
    runtime()?.block_on(async {
        let store = Store::open(&path)?;
        assert_eq!(store.status(id).await?, GrantState::Unused);
        store
            .burn(grant(id, 2_500_000)?, FloorCheck::Unlimited, None)
            .await?;
        assert_eq!(
            store.status(id).await?,
            GrantState::Used { signature: None }
        );
        assert!(matches!(
            store.burn(grant(id, 1)?, FloorCheck::Unlimited, None).await,
            Err(BurnError::Replayed)
        ));
        store.finish(id, [9; 64], log("sign", "signed")).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;

    runtime()?.block_on(async {
        let store = Store::open(&path)?;
        assert_eq!(
            store.status(id).await?,
            GrantState::Used {
                signature: Some([9; 64])
            }
        );
        assert!(matches!(
            store
                .burn(grant(id, 2_500_000)?, FloorCheck::Unlimited, None)
                .await,
            Err(BurnError::Replayed)
        ));
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;

    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path)?.permissions());
    assert_eq!(mode & 0o777, 0o600);
    Ok(())
}

#[test]
fn concurrent_burns_of_one_grant_admit_exactly_one() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(Store::open(&dir.path().join("signer.sqlite"))?);
    let id = GrantId::random();
    let results = runtime()?.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let store = Arc::clone(&store);
            let grant = grant(id, 5)?;
            tasks.push(tokio::spawn(async move {
                store.burn(grant, FloorCheck::Unlimited, None).await
            }));
        }
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await?);
        }
        Ok::<_, Box<dyn std::error::Error>>(results)
    })?;
    let admitted = results.iter().filter(|r| r.is_ok()).count();
    let replayed = results
        .iter()
        .filter(|r| matches!(r, Err(BurnError::Replayed)))
        .count();
    assert_eq!((admitted, replayed), (1, 31));
    Ok(())
}

#[test]
fn two_stores_on_one_file_share_replay_protection() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("signer.sqlite");
    let id = GrantId::random();
    runtime()?.block_on(async {
        let first = Store::open(&path)?;
        let second = Store::open(&path)?;
        first
            .burn(grant(id, 5)?, FloorCheck::Unlimited, None)
            .await?;
        assert!(matches!(
            second
                .burn(grant(id, 5)?, FloorCheck::Unlimited, None)
                .await,
            Err(BurnError::Replayed)
        ));
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}

#[test]
fn an_amount_beyond_the_accounting_range_is_not_recorded() -> TestResult {
    let dir = tempfile::tempdir()?;
    let id = GrantId::random();
    runtime()?.block_on(async {
        let store = Store::open(&dir.path().join("signer.sqlite"))?;
        let result = store
            .burn(grant(id, u64::MAX)?, FloorCheck::Unlimited, None)
            .await;
        assert!(matches!(
            result,
            Err(BurnError::Store(StoreError::AmountOutOfRange))
        ));
        assert_eq!(store.status(id).await?, GrantState::Unused);
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}

#[test]
fn the_request_log_records_every_call() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("signer.sqlite");
    runtime()?.block_on(async {
        let store = Store::open(&path)?;
        store.log(log("health", "ok")).await?;
        store.log(log("sign", "grant_expired")).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    let conn = rusqlite::Connection::open(&path)?;
    let rows: Vec<(String, String)> = conn
        .prepare("SELECT op, outcome FROM requests ORDER BY id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    assert_eq!(
        rows,
        [
            ("health".to_owned(), "ok".to_owned()),
            ("sign".to_owned(), "grant_expired".to_owned())
        ]
    );
    Ok(())
}

#[test]
fn a_database_from_a_newer_signer_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("signer.sqlite");
    rusqlite::Connection::open(&path)?.pragma_update(None, "user_version", 99)?;
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::NewerSchema(99))
    ));
    Ok(())
}

fn approvals() -> Option<ApprovalUse> {
    Some(ApprovalUse {
        approvers: "alice=A,bob=B".to_owned(),
    })
}

#[test]
fn approved_grants_leave_the_daily_total_alone_and_consume_their_session() -> TestResult {
    let dir = tempfile::tempdir()?;
    runtime()?.block_on(async {
        let store = Store::open(&dir.path().join("signer.sqlite"))?;
        let daily = |approvals_suffice| FloorCheck::Daily {
            limit: 10,
            approvals_suffice,
        };
        // Over the daily floor: refused without approvals, admitted as approved with them.
        assert!(matches!(
            store
                .burn(grant(GrantId::random(), 11)?, daily(false), None)
                .await,
            Err(BurnError::DailyFloorExceeded { used: 0, limit: 10 })
        ));
        let approved = store.burn(grant(GrantId::random(), 11)?, daily(true), approvals());
        assert_eq!(approved.await?, Admission::Approved);
        // The approved amount does not count: the whole floor is still available.
        let mut other = grant(GrantId::random(), 10)?;
        other.session_id = SessionId::new("ps_2")?;
        assert_eq!(
            store.burn(other, daily(false), None).await?,
            Admission::Floor
        );
        // The session's approvals were consumed, whatever the floor says.
        assert!(matches!(
            store
                .burn(
                    grant(GrantId::random(), 1)?,
                    FloorCheck::Approved,
                    approvals()
                )
                .await,
            Err(BurnError::ApprovalReplayed)
        ));
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}

#[test]
fn a_version_1_database_is_migrated_and_keeps_its_grants() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("signer.sqlite");
    let id = GrantId::random();
    {
        let conn = rusqlite::Connection::open(&path)?;
        conn.execute_batch(writer::SCHEMA_1)?;
        conn.execute(
            "INSERT INTO grants (grant_id, key_id, agent_id, session_id, message_sha256, asset, \
             amount, recipient, used_at_ms) VALUES (?1, 'default', 'agent-1', 'ps_1', x'00', \
             'USDC', 7, x'00', 1700000000000)",
            [id.to_bytes()],
        )?;
        conn.pragma_update(None, "user_version", 1)?;
    }
    runtime()?.block_on(async {
        let store = Store::open(&path)?;
        assert_eq!(
            store.status(id).await?,
            GrantState::Used { signature: None }
        );
        // The old grant counts against the floor: 7 used, 3 left.
        let daily = FloorCheck::Daily {
            limit: 10,
            approvals_suffice: false,
        };
        assert!(matches!(
            store.burn(grant(GrantId::random(), 4)?, daily, None).await,
            Err(BurnError::DailyFloorExceeded { used: 7, limit: 10 })
        ));
        store.log(log("health", "ok")).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
