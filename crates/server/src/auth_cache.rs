//! The store reads of authentication, kept while the database has not changed.
//!
//! Every authenticated request asks the store whether its credential and agent are still good
//! (revocation, rotation, suspension must hold at once on every server sharing the database).
//! Asking costs a SQLite read transaction; most of the time the answer is the one given a
//! moment ago. So each answer is kept with the database's change token
//! ([`Store::change_token`]) read before it was fetched, and given again only while the token
//! is still the same, which means nothing at all was committed since, by this process or any
//! other.
//!
//! # Security
//!
//! - An answer is reused only under an unchanged token, and the token is read before the
//!   answer is fetched, so a reused answer is never older than the last commit: a revocation
//!   committed anywhere is seen by the next request everywhere, exactly as without the cache.
//! - When the token cannot be read, nothing is reused or kept.
//! - Store errors are never kept. The cache holds no secrets: API-key records carry only the
//!   key's hash, which is still compared with the presented key on every request.
//! - Memory is bounded: a table that reaches [`MAX_ENTRIES`] is emptied.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};

use clawfirst_core::AgentId;
use clawfirst_store::{AgentRecord, ApiKeyRecord, ChangeToken, Store, StoreError};

/// The most answers one table keeps.
pub const MAX_ENTRIES: usize = 10_000;

/// An API key's record and its agent, as [`Store::api_key_and_agent`] answers.
type KeyAnswer = Option<(ApiKeyRecord, Option<AgentRecord>)>;
/// An agent and whether one delegation token id is revoked.
type TokenAnswer = (Option<AgentRecord>, bool);

#[derive(Debug, Default)]
struct Tables {
    /// The token every kept answer was read under.
    token: Option<ChangeToken>,
    api_keys: HashMap<String, KeyAnswer>,
    agents: HashMap<AgentId, Option<AgentRecord>>,
    tokens: HashMap<(AgentId, String), TokenAnswer>,
}

impl Tables {
    /// Moves to `token`, forgetting everything read under another one.
    fn enter(&mut self, token: ChangeToken) {
        if self.token != Some(token) {
            self.api_keys.clear();
            self.agents.clear();
            self.tokens.clear();
            self.token = Some(token);
        }
    }
}

/// The authentication reads of one store, kept per change token.
#[derive(Debug)]
pub struct AuthReadCache {
    store: Store,
    tables: Mutex<Tables>,
    /// Answers given again, for tests.
    #[cfg(test)]
    hits: std::sync::atomic::AtomicUsize,
}

impl AuthReadCache {
    /// An empty cache over `store`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            tables: Mutex::new(Tables::default()),
            #[cfg(test)]
            hits: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// As [`Store::api_key_and_agent`].
    ///
    /// # Errors
    /// The store's.
    pub async fn api_key_and_agent(&self, lookup: &str) -> Result<KeyAnswer, StoreError> {
        self.read(
            |t| &mut t.api_keys,
            lookup.to_owned(),
            self.store.api_key_and_agent(lookup),
        )
        .await
    }

    /// As [`Store::agent`].
    ///
    /// # Errors
    /// The store's.
    pub async fn agent(&self, agent_id: &AgentId) -> Result<Option<AgentRecord>, StoreError> {
        self.read(
            |t| &mut t.agents,
            agent_id.clone(),
            self.store.agent(agent_id),
        )
        .await
    }

    /// As [`Store::agent_and_token_revoked`].
    ///
    /// # Errors
    /// The store's.
    pub async fn agent_and_token_revoked(
        &self,
        agent_id: &AgentId,
        token_id: &str,
    ) -> Result<TokenAnswer, StoreError> {
        self.read(
            |t| &mut t.tokens,
            (agent_id.clone(), token_id.to_owned()),
            self.store.agent_and_token_revoked(agent_id, token_id),
        )
        .await
    }

    /// The kept answer for `key` if the database has not changed since it was read, else
    /// `fetch`'s, kept under the token read before it ran.
    async fn read<K, V>(
        &self,
        table: fn(&mut Tables) -> &mut HashMap<K, V>,
        key: K,
        fetch: impl Future<Output = Result<V, StoreError>>,
    ) -> Result<V, StoreError>
    where
        K: Eq + Hash,
        V: Clone,
    {
        let token = self.store.change_token();
        if let Some(token) = token {
            let mut tables = self.lock();
            if tables.token == Some(token)
                && let Some(answer) = table(&mut tables).get(&key)
            {
                #[cfg(test)]
                self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok(answer.clone());
            }
        }
        let answer = fetch.await?;
        if let Some(token) = token {
            let mut tables = self.lock();
            tables.enter(token);
            let kept = table(&mut tables);
            if kept.len() >= MAX_ENTRIES {
                kept.clear();
            }
            kept.insert(key, answer.clone());
        }
        Ok(answer)
    }

    /// The tables, even after a panic elsewhere: each change is a single map operation.
    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use clawfirst_core::KeyId;
    use clawfirst_store::{AgentStatus, AuditEvent, NewApiKey, SqliteOptions};

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    async fn store_with_agent(
        path: &std::path::Path,
    ) -> Result<(Store, AgentId), Box<dyn std::error::Error>> {
        let store = Store::open_sqlite(path, SqliteOptions::default()).await?;
        let agent = AgentId::new("agent-1")?;
        store
            .create_agent(&agent, &KeyId::new("key-1")?, AuditEvent::system("test"))
            .await?;
        let key = NewApiKey {
            key_id_public: "aaaaaaaaaaaa".to_owned(),
            agent_id: agent.clone(),
            hash: [3; 32],
        };
        store.add_api_key(key, AuditEvent::system("test")).await?;
        Ok((store, agent))
    }

    #[tokio::test]
    async fn answers_are_reused_until_any_handle_commits() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("db.sqlite");
        let (store, agent) = store_with_agent(&path).await?;
        let other = Store::open_sqlite(&path, SqliteOptions::default()).await?;
        let cache = AuthReadCache::new(store.clone());

        let first = cache.agent(&agent).await?;
        assert_eq!(first.as_ref().map(|a| a.status), Some(AgentStatus::Active));
        assert_eq!(cache.agent(&agent).await?, first);
        let key = cache.api_key_and_agent("aaaaaaaaaaaa").await?;
        assert_eq!(cache.api_key_and_agent("aaaaaaaaaaaa").await?, key);
        assert_eq!(cache.hits.load(Ordering::Relaxed), 2);

        // Revoked through another handle (as another server would): seen at once.
        other
            .set_agent_status(&agent, AgentStatus::Revoked, AuditEvent::system("test"))
            .await?;
        let now = cache.agent(&agent).await?;
        assert_eq!(now.map(|a| a.status), Some(AgentStatus::Revoked));
        other
            .revoke_api_keys(&agent, AuditEvent::system("test"))
            .await?;
        let revoked = cache.api_key_and_agent("aaaaaaaaaaaa").await?;
        assert!(revoked.and_then(|(k, _)| k.revoked_at_ms).is_some());

        // A revoked delegation token, through the cache's own store.
        assert!(!cache.agent_and_token_revoked(&agent, "t1").await?.1);
        store
            .revoke_token("t1", &agent, AuditEvent::system("test"))
            .await?;
        assert!(cache.agent_and_token_revoked(&agent, "t1").await?.1);
        assert_eq!(cache.hits.load(Ordering::Relaxed), 2);
        Ok(())
    }

    #[tokio::test]
    async fn a_full_table_is_emptied_rather_than_grown() -> TestResult {
        let dir = tempfile::tempdir()?;
        let (store, agent) = store_with_agent(&dir.path().join("db.sqlite")).await?;
        let cache = AuthReadCache::new(store);
        for i in 0..MAX_ENTRIES + 5 {
            cache
                .agent_and_token_revoked(&agent, &format!("t{i}"))
                .await?;
        }
        assert!(cache.lock().tokens.len() <= MAX_ENTRIES);
        Ok(())
    }
}
