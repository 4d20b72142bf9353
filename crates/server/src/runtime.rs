//! Assembling the running server from a validated [`Config`]: store, ledger, signer link,
//! grant key, payment service, crash recovery, settlement watcher.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clawfirst_auth::delegation::{DelegationKey, DelegationVerifier};
use clawfirst_auth::jwt::JwksCache;
use clawfirst_core::{Address, AgentId, KeyId};
use clawfirst_localnet::{Localnet, LocalnetOptions};
use clawfirst_solana::ledger::Ledger;
use clawfirst_store::{SqliteOptions, Store, Synchronous};
use tracing::info;

use crate::agent_auth::AgentAuth;
use crate::config::{Config, Durability};
use crate::datadir::{load_delegation_key, load_grant_key, read_webhook_secret};
use crate::mcp::McpApp;
use crate::payments::{PaymentDeps, PaymentService, PaymentSettings, start_watcher};
use crate::periodic::Periodic;
use crate::policy_reload::{PolicyHandle, start_reloader};
use crate::signer_client::SignerClient;
use crate::webhook::{Notifier, WebhookTarget};

/// How long a grant stays valid after it is issued.
const GRANT_TTL_MS: u64 = 60_000;
/// How often the settlement watcher runs. Callers of `verify_settlement` get fresh answers
/// regardless; the watcher only commits budgets and expires sessions nobody asks about.
const WATCH_INTERVAL: Duration = Duration::from_millis(1000);

/// How often the policy file is checked for changes.
const POLICY_CHECK_INTERVAL: Duration = Duration::from_millis(1000);

/// The demo wallet's starting balances on localnet.
#[derive(Clone, Copy, Debug)]
pub struct DemoFunding {
    /// Lamports.
    pub lamports: u64,
    /// USDC base units.
    pub usdc: u64,
    /// BONK base units.
    pub bonk: u64,
}

impl DemoFunding {
    /// 100 SOL, 10,000 USDC and 50,000,000 BONK.
    pub const DEFAULT: DemoFunding = DemoFunding {
        lamports: 100_000_000_000,
        usdc: 10_000_000_000,
        bonk: 5_000_000_000_000,
    };
}

/// The running services.
#[derive(Debug)]
pub struct Services {
    /// Persistence.
    pub store: Store,
    /// The payment service.
    pub payments: Arc<PaymentService>,
    /// The MCP application.
    pub mcp: Arc<McpApp>,
    /// The embedded ledger.
    pub localnet: Arc<Localnet>,
    /// Agent authentication for the HTTP transport.
    pub auth: Arc<AgentAuth>,
    /// Signs delegation tokens.
    pub delegation_key: Arc<DelegationKey>,
    watcher: Option<Periodic>,
    reloader: Option<Periodic>,
    webhook: Option<tokio::task::JoinHandle<()>>,
}

impl Services {
    /// Opens everything and recovers what a crash left behind.
    ///
    /// # Errors
    /// When storage, the ledger, the grant key or the signer cannot be used.
    pub async fn start(config: &Config, fund: Option<(&AgentId, DemoFunding)>) -> Result<Self> {
        // 1. Storage.
        let synchronous = match config.durability {
            Durability::Full => Synchronous::Full,
            Durability::Normal => Synchronous::Normal,
        };
        let store = Store::open_sqlite(
            &config.sqlite_path,
            SqliteOptions {
                synchronous,
                ..SqliteOptions::default()
            },
        )
        .await
        .with_context(|| format!("cannot open {}", config.sqlite_path.display()))?;

        // 2. The ledger.
        let options = LocalnetOptions {
            slot_interval: Duration::from_millis(config.slot_interval_ms),
            durability: match config.durability {
                Durability::Full => clawfirst_localnet::Durability::PowerLoss,
                Durability::Normal => clawfirst_localnet::Durability::ProcessCrash,
            },
            ..LocalnetOptions::default()
        };
        let localnet = Arc::new(
            Localnet::open(&config.localnet_state, options).with_context(|| {
                format!(
                    "cannot open the ledger at {}",
                    config.localnet_state.display()
                )
            })?,
        );

        // 3. The signer and the wallets it holds.
        let signer = SignerClient::from_config(config)
            .map_err(|e| anyhow::anyhow!("the signer link cannot be set up: {e}"))?;
        signer
            .health()
            .await
            .with_context(|| format!("the signer does not answer on {}", signer.endpoint()))?;
        let mut key_ids: Vec<KeyId> = vec![config.default_key_id.clone()];
        for agent in store.list_agents().await? {
            if !key_ids.contains(&agent.key_id) {
                key_ids.push(agent.key_id);
            }
        }
        let mut wallets: HashMap<KeyId, Address> = HashMap::new();
        for key_id in key_ids {
            match signer.public_key(&key_id).await {
                Ok(address) => {
                    info!(key.id = %key_id, wallet = %address, "wallet available");
                    wallets.insert(key_id, address);
                }
                Err(e) => tracing::warn!(key.id = %key_id, error = %e, "wallet key unavailable"),
            }
        }

        // 4. Demo funds, first start only.
        if let Some((_, funding)) = fund
            && let Some(wallet) = wallets.get(&config.default_key_id)
        {
            localnet
                .fund(wallet, funding.lamports, funding.usdc, funding.bonk)
                .context("cannot fund the demo wallet")?;
        }

        // 5. The policy, and where approval notifications go.
        let policy = Arc::new(
            PolicyHandle::from_file(&config.policy_file)
                .map_err(|e| anyhow::anyhow!("{e}; check it with `clawfirst policy check`"))?,
        );
        let (notifier, webhook) = match &config.webhook_url {
            None => (Notifier::disabled(), None),
            Some(url) => {
                let secret = match &config.webhook_secret_file {
                    None => None,
                    Some(path) => Some(read_webhook_secret(path)?),
                };
                let target = WebhookTarget {
                    url: url.clone(),
                    secret,
                };
                let (notifier, task) = Notifier::start(target);
                (notifier, Some(task))
            }
        };

        // 6. Agent authentication: delegation tokens, and JWTs if configured.
        let delegation_key = Arc::new(load_delegation_key(&config.auth.delegation_key_file)?);
        let delegation = DelegationVerifier::new(&delegation_key.public_key())
            .map_err(|e| anyhow::anyhow!("delegation key: {e}"))?;
        let jwt = match &config.auth.jwt {
            None => None,
            Some(jwt) => Some(Arc::new(
                JwksCache::load(jwt.settings.clone(), jwt.source.clone(), jwt.cache.clone())
                    .await
                    .map_err(|e| anyhow::anyhow!("auth.jwt: cannot load the key set: {e}"))?,
            )),
        };
        let auth = Arc::new(AgentAuth::new(store.clone(), delegation, jwt));

        // 7. The payment service, recovered.
        let grant_signer = load_grant_key(&config.grant_key_file)?;
        let ledger: Arc<dyn Ledger> = localnet.clone();
        let payments = Arc::new(PaymentService::new(PaymentDeps {
            store: store.clone(),
            ledger,
            signer,
            grant_signer,
            policy: policy.clone(),
            notifier,
            payees: config.payees.clone(),
            wallets,
            settings: PaymentSettings {
                session_ttl_ms: config.session_ttl_ms,
                compute_unit_price_micro_lamports: config.compute_unit_price_micro_lamports,
                grant_ttl_ms: GRANT_TTL_MS,
                default_key_id: config.default_key_id.clone(),
            },
        }));
        payments
            .recover()
            .await
            .map_err(|e| anyhow::anyhow!("recovery failed: {e}"))?;
        let watcher = start_watcher(payments.clone(), WATCH_INTERVAL);
        let reloader = start_reloader(policy, store.clone(), POLICY_CHECK_INTERVAL);
        let mcp = Arc::new(McpApp::new(
            payments.clone(),
            config.tool_naming,
            config.rate_limits.clone(),
        ));
        Ok(Self {
            store,
            payments,
            mcp,
            localnet,
            auth,
            delegation_key,
            watcher: Some(watcher),
            reloader: Some(reloader),
            webhook,
        })
    }

    /// Stops the background work.
    pub async fn stop(&mut self) {
        if let Some(w) = self.watcher.take() {
            w.stop().await;
        }
        if let Some(r) = self.reloader.take() {
            r.stop().await;
        }
        if let Some(task) = self.webhook.take() {
            task.abort();
        }
    }
}
