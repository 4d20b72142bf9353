//! The server side of the benchmark, run in a child process (`--serve`) so that its CPU time
//! can be read apart from the load generator's.
//!
//! Starts a real stack (store, ledger, signer process, services) on a temporary data directory
//! with JWT bearer tokens configured, creates one agent with an API key, a delegation token and
//! a JWT, and serves the MCP endpoint twice on loopback: as the server does (every request
//! authenticated), and through a router that skips authentication (the baseline, acting as the
//! same agent). It prints one JSON line with both URLs and the three credentials, then serves
//! until its standard input closes.
//!
//! The credentials belong to a throwaway stack in a temporary directory and only ever travel
//! over the pipe to the parent.

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clawfirst_auth::delegation::DelegationRequest;
use clawfirst_core::{AgentId, now_ms};
use std::time::Instant;

use clawfirst_server::agent_auth::{AgentAuth, Authenticated};
use clawfirst_server::datadir::DataDir;
use clawfirst_server::http::{HttpState, dangerous_unauthenticated_mcp_router, router};
use clawfirst_server::up::Stack;
use clawfirst_store::{AuditEvent, NewApiKey};
use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

const ISSUER: &str = "https://bench.invalid";
const AUDIENCE: &str = "clawfirst-bench";

/// What the child tells the parent.
#[derive(Debug, Serialize, Deserialize)]
pub struct Endpoints {
    /// The MCP endpoint without authentication (the baseline).
    pub open_url: String,
    /// The MCP endpoint as the server serves it.
    pub authenticated_url: String,
    /// The agent's API key.
    pub api_key: String,
    /// A delegation token for the agent.
    pub delegation_token: String,
    /// An EdDSA JWT for the agent.
    pub jwt: String,
    /// The cost of authentication alone: mean nanoseconds per call of the server's
    /// authenticator, one caller, per method (API key, delegation token, JWT).
    pub direct_ns: [u64; 3],
}

/// Calls of the authenticator timed per method.
const DIRECT_CALLS: u32 = 20_000;

/// Runs the server side until standard input closes.
pub async fn serve() -> Result<()> {
    // 1. A stack whose server accepts JWTs signed by our key.
    let dir = tempfile::TempDir::new()?;
    let data = DataDir::new(&dir.path().join("data"))?;
    data.initialize("127.0.0.1:0")?;
    let jwt_key = SigningKey::generate(&mut rand::rngs::OsRng);
    let jwks = json!({ "keys": [{
        "kty": "OKP", "crv": "Ed25519", "kid": "bench", "alg": "EdDSA",
        "x": URL_SAFE_NO_PAD.encode(jwt_key.verifying_key().to_bytes()),
    }]});
    std::fs::write(data.path("jwks.json"), jwks.to_string())?;
    let config_path = data.path("clawfirst.toml");
    let mut config = std::fs::read_to_string(&config_path)?;
    config.push_str(&format!(
        "\n[auth.jwt]\nissuers = [\"{ISSUER}\"]\naudience = \"{AUDIENCE}\"\n\
         algorithms = [\"EdDSA\"]\njwks_file = \"jwks.json\"\n"
    ));
    std::fs::write(&config_path, config)?;
    let (stack, _) = Stack::start(&data, None).await?;

    // 2. One agent, with a credential of each kind.
    let agent = AgentId::new("bench-agent").map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = &stack.services.store;
    let key_id = stack.services.payments.default_key_id().clone();
    store
        .create_agent(&agent, &key_id, AuditEvent::system("bench.agent"))
        .await?;
    let api_key = clawfirst_server::api_key::generate();
    let new = NewApiKey {
        key_id_public: api_key.lookup_id.clone(),
        agent_id: agent.clone(),
        hash: api_key.hash,
    };
    store
        .add_api_key(new, AuditEvent::system("bench.key"))
        .await?;
    let request = DelegationRequest {
        agent_id: agent.clone(),
        ttl_seconds: 3600,
        max_amounts: Default::default(),
        bound_certificate_sha256: None,
        generation: 0,
    };
    let token = stack
        .services
        .delegation_key
        .issue(request, now_ms() / 1000)
        .map_err(|e| anyhow::anyhow!("delegation token: {e}"))?;

    // 3. The endpoint twice: authenticated, and the unauthenticated baseline.
    let shutdown = CancellationToken::new();
    let state = HttpState {
        store: store.clone(),
        payments: stack.services.payments.clone(),
        admin_token_sha256: None,
        auth: stack.services.auth.clone(),
        delegation_key: stack.services.delegation_key.clone(),
    };
    let hosts = stack.config.allowed_hosts.clone();
    let mcp = stack.services.mcp.clone();
    let authenticated = listen(router(state, mcp.clone(), hosts.clone(), shutdown.clone())).await?;
    let as_the_agent = Authenticated {
        agent_id: agent.clone(),
        method: "none",
        delegated_limits: None,
    };
    let open = listen(dangerous_unauthenticated_mcp_router(
        as_the_agent,
        mcp,
        hosts,
        shutdown.clone(),
    ))
    .await?;

    let jwt = sign_jwt(&jwt_key, agent.as_str());
    let mut direct_ns = [0; 3];
    for (slot, credential) in
        direct_ns
            .iter_mut()
            .zip([api_key.key.expose(), token.token.expose(), jwt.as_str()])
    {
        *slot = time_authentication(&stack.services.auth, credential).await?;
    }
    let endpoints = Endpoints {
        open_url: open,
        authenticated_url: authenticated,
        api_key: api_key.key.expose().to_owned(),
        delegation_token: token.token.expose().to_owned(),
        jwt,
        direct_ns,
    };
    println!("{}", serde_json::to_string(&endpoints)?);

    // 4. Serve until the parent closes our standard input.
    let mut rest = Vec::new();
    tokio::io::stdin()
        .read_to_end(&mut rest)
        .await
        .context("reading standard input")?;
    shutdown.cancel();
    stack.stop().await;
    Ok(())
}

/// Mean nanoseconds per authentication of `credential`, after a warm-up.
async fn time_authentication(auth: &AgentAuth, credential: &str) -> Result<u64> {
    for _ in 0..DIRECT_CALLS / 10 {
        auth.authenticate(Some(credential), None)
            .await
            .map_err(|e| anyhow::anyhow!("authentication refused: {e:?}"))?;
    }
    let started = Instant::now();
    for _ in 0..DIRECT_CALLS {
        auth.authenticate(Some(credential), None)
            .await
            .map_err(|e| anyhow::anyhow!("authentication refused: {e:?}"))?;
    }
    let elapsed = started.elapsed().as_nanos() / u128::from(DIRECT_CALLS);
    Ok(u64::try_from(elapsed).unwrap_or(u64::MAX))
}

/// Serves `app` on a loopback port; returns the MCP URL.
async fn listen(app: axum::Router) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/mcp", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}

/// A compact EdDSA JWT for `agent`, valid for an hour.
fn sign_jwt(key: &SigningKey, agent: &str) -> String {
    let header = json!({ "alg": "EdDSA", "kid": "bench", "typ": "JWT" });
    let claims = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": agent, "exp": now_ms() / 1000 + 3600,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}
