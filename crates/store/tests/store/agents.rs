//! Agents and the hashes of their API keys.

use clawfirst_core::{AgentId, KeyId};
use clawfirst_store::{AgentStatus, NewApiKey, StoreError};
use sha2::{Digest, Sha256};

use crate::support::*;

#[tokio::test]
async fn agents_are_created_listed_and_suspended_with_an_audit_record() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let bob = add_agent(&store, "bob").await?;
    let alice = add_agent(&store, "alice").await?;

    let duplicate = store
        .create_agent(
            &bob,
            &KeyId::new("wallet-2")?,
            operator_event("agent.created", T0),
        )
        .await;
    assert!(
        matches!(duplicate, Err(StoreError::AgentExists(ref id)) if *id == bob),
        "{duplicate:?}"
    );

    let listed: Vec<_> = store
        .list_agents()
        .await?
        .into_iter()
        .map(|a| a.agent_id)
        .collect();
    assert_eq!(listed, [alice.clone(), bob.clone()]);
    let record = store.agent(&bob).await?.ok_or("agent missing")?;
    assert_eq!(
        (record.status, record.key_id.as_str(), record.created_at_ms),
        (AgentStatus::Active, "wallet-1", T0)
    );

    let suspended = store
        .set_agent_status(
            &bob,
            AgentStatus::Suspended,
            operator_event("agent.suspended", T0 + 5),
        )
        .await?;
    assert_eq!(
        (suspended.status, suspended.updated_at_ms),
        (AgentStatus::Suspended, T0 + 5)
    );
    assert_eq!(
        store.agent(&bob).await?.map(|a| a.status),
        Some(AgentStatus::Suspended)
    );
    assert_eq!(
        store.audit_tail(1).await?.first().map(|r| r.event.clone()),
        Some("agent.suspended".into())
    );

    let ghost = agent_id("ghost")?;
    let refused = store
        .set_agent_status(
            &ghost,
            AgentStatus::Revoked,
            operator_event("agent.revoked", T0),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::AgentNotFound(_))),
        "{refused:?}"
    );
    assert!(store.agent(&ghost).await?.is_none());
    Ok(())
}

#[tokio::test]
async fn api_keys_are_stored_as_hashes_and_revoked_together() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let hash: [u8; 32] = Sha256::digest(b"cf_live_k1.secret-part").into();
    for key_id in ["cf_live_k1", "cf_live_k2"] {
        let key = NewApiKey {
            key_id_public: key_id.into(),
            agent_id: agent.clone(),
            hash,
        };
        store
            .add_api_key(key, operator_event("api_key.created", T0 + 1))
            .await?;
    }

    let found = store.api_key("cf_live_k1").await?.ok_or("key missing")?;
    assert_eq!(
        (found.hash, found.created_at_ms, found.is_usable()),
        (hash, T0 + 1, true)
    );
    assert!(store.api_key("cf_live_unknown").await?.is_none());
    assert!(store.api_key("bad id\n").await?.is_none());

    let revoked = store
        .revoke_api_keys(&agent, operator_event("api_key.revoked", T0 + 2))
        .await?;
    assert_eq!(revoked, 2);
    let found = store.api_key("cf_live_k2").await?.ok_or("key missing")?;
    assert_eq!(found.revoked_at_ms, Some(T0 + 2));
    assert!(!found.is_usable());
    assert_eq!(
        store
            .revoke_api_keys(&agent, operator_event("api_key.revoked", T0 + 3))
            .await?,
        0
    );
    Ok(())
}

#[tokio::test]
async fn bad_or_duplicate_api_keys_are_refused() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let key = |id: &str, agent| NewApiKey {
        key_id_public: id.into(),
        agent_id: agent,
        hash: [1; 32],
    };
    store
        .add_api_key(
            key("cf_live_k1", agent.clone()),
            operator_event("api_key.created", T0),
        )
        .await?;
    let audit_before = store.audit_len().await?;

    let duplicate = store
        .add_api_key(
            key("cf_live_k1", agent.clone()),
            operator_event("api_key.created", T0),
        )
        .await;
    let hostile = store
        .add_api_key(
            key("k1'; DROP TABLE x", agent.clone()),
            operator_event("api_key.created", T0),
        )
        .await;
    let orphan = store
        .add_api_key(
            key("cf_live_k9", agent_id("ghost")?),
            operator_event("api_key.created", T0),
        )
        .await;

    assert!(
        matches!(duplicate, Err(StoreError::ApiKeyExists(_))),
        "{duplicate:?}"
    );
    assert!(
        matches!(hostile, Err(StoreError::InvalidKeyIdPublic)),
        "{hostile:?}"
    );
    assert!(
        matches!(orphan, Err(StoreError::AgentNotFound(_))),
        "{orphan:?}"
    );
    assert_eq!(store.audit_len().await?, audit_before);
    Ok(())
}

/// Rotation revokes every key at once, stores the new one and moves the credential generation
/// on; token revocation is recorded by id and idempotent.
#[tokio::test]
async fn rotation_replaces_every_credential_at_once() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    for id in ["aaaaaaaaaaaa", "bbbbbbbbbbbb"] {
        let key = NewApiKey {
            key_id_public: id.to_owned(),
            agent_id: agent.clone(),
            hash: [1; 32],
        };
        store
            .add_api_key(key, operator_event("agent.key_issued", T0))
            .await?;
    }
    let before = store.agent(&agent).await?.ok_or("no agent")?;
    assert_eq!(before.credential_generation, 0);

    let new = NewApiKey {
        key_id_public: "cccccccccccc".to_owned(),
        agent_id: agent.clone(),
        hash: [2; 32],
    };
    let (after, revoked) = store
        .rotate_credentials(new, None, operator_event("agent.rotated", T0 + 1))
        .await?;
    assert_eq!((after.credential_generation, revoked), (1, 2));
    assert_eq!(after.certificate_sha256, None);
    for id in ["aaaaaaaaaaaa", "bbbbbbbbbbbb"] {
        let old = store.api_key(id).await?.ok_or("key vanished")?;
        assert_eq!(old.revoked_at_ms, Some(T0 + 1));
    }
    let fresh = store
        .api_key("cccccccccccc")
        .await?
        .ok_or("new key missing")?;
    assert_eq!(fresh.revoked_at_ms, None);

    assert!(!store.token_revoked("tid-1").await?);
    for _ in 0..2 {
        store
            .revoke_token("tid-1", &agent, operator_event("token.revoked", T0 + 2))
            .await?;
    }
    assert!(store.token_revoked("tid-1").await?);

    // The combined reads authentication uses agree with the single ones.
    let (key, owner) = store
        .api_key_and_agent("cccccccccccc")
        .await?
        .ok_or("new key missing")?;
    assert_eq!(key, fresh);
    assert_eq!(owner, Some(after.clone()));
    assert_eq!(store.api_key_and_agent("zzzzzzzzzzzz").await?, None);
    assert_eq!(
        store.agent_and_token_revoked(&agent, "tid-1").await?,
        (Some(after.clone()), true)
    );
    assert_eq!(
        store.agent_and_token_revoked(&agent, "tid-2").await?,
        (Some(after), false)
    );
    let stranger = AgentId::new("nobody")?;
    assert_eq!(
        store.agent_and_token_revoked(&stranger, "tid-1").await?,
        (None, true)
    );
    Ok(())
}

/// A certificate pin is set, replaced by a rotation in the same transaction as the key
/// revocation, lifted, and survives a reopen; an unknown agent cannot be pinned.
#[tokio::test]
async fn certificate_pins_are_set_rotated_and_lifted() -> TestResult {
    let db = TestDb::new()?;
    let store = db.open().await?;
    let agent = add_agent(&store, "agent-1").await?;
    let pinned = store
        .pin_certificate(&agent, Some([7; 32]), operator_event("agent.pinned", T0))
        .await?;
    assert_eq!(pinned.certificate_sha256, Some([7; 32]));

    let new = NewApiKey {
        key_id_public: "dddddddddddd".to_owned(),
        agent_id: agent.clone(),
        hash: [3; 32],
    };
    let (rotated, _) = store
        .rotate_credentials(new, Some([8; 32]), operator_event("agent.rotated", T0 + 1))
        .await?;
    assert_eq!(rotated.certificate_sha256, Some([8; 32]));
    assert_eq!(rotated.credential_generation, 1);
    drop(store);

    let store = db.open().await?;
    let reopened = store.agent(&agent).await?.ok_or("no agent")?;
    assert_eq!(reopened.certificate_sha256, Some([8; 32]));
    let lifted = store
        .pin_certificate(&agent, None, operator_event("agent.pinned", T0 + 2))
        .await?;
    assert_eq!(lifted.certificate_sha256, None);

    let stranger = AgentId::new("nobody")?;
    assert!(matches!(
        store
            .pin_certificate(&stranger, Some([1; 32]), operator_event("agent.pinned", T0))
            .await,
        Err(StoreError::AgentNotFound(_))
    ));
    Ok(())
}
