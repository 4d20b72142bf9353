//! `clawfirst-auth-bench`: what authentication costs the MCP endpoint.
//!
//! Starts a real stack in-process (store, ledger, signer process, services) on a temporary
//! data directory with JWT bearer tokens configured, creates one agent with an API key, a
//! delegation token and a JWT, and serves the MCP endpoint twice on loopback: as the server
//! does (every request authenticated), and through a router that skips authentication (the
//! baseline, acting as the same agent). Then, for each method in turn, concurrent clients send
//! MCP `tools/list` requests over HTTP for a fixed time; requests per second and latency
//! percentiles are printed side by side. `tools/list` is chosen because it does little else,
//! so authentication's share of each request is as large as it gets.

#![forbid(unsafe_code)]
#![expect(clippy::float_arithmetic, reason = "timing statistics, never money")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Parser;
use clawfirst_auth::delegation::DelegationRequest;
use clawfirst_core::{AgentId, now_ms};
use clawfirst_server::agent_auth::Authenticated;
use clawfirst_server::datadir::DataDir;
use clawfirst_server::http::{HttpState, dangerous_unauthenticated_mcp_router, router};
use clawfirst_server::up::Stack;
use clawfirst_store::{AuditEvent, NewApiKey};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Authenticated MCP requests per second, per method, beside an unauthenticated baseline.
#[derive(Debug, Parser)]
struct Args {
    /// Seconds of load per method.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
}

const ISSUER: &str = "https://bench.invalid";
const AUDIENCE: &str = "clawfirst-bench";

fn main() -> std::process::ExitCode {
    clawfirst_server::install_crypto_provider();
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("clawfirst-auth-bench: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clawfirst-auth-bench: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
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
    let jwt = sign_jwt(&jwt_key, agent.as_str());

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
    let authed = serve(router(state, mcp.clone(), hosts.clone(), shutdown.clone())).await?;
    let agent_as_is = Authenticated {
        agent_id: agent.clone(),
        method: "none",
        delegated_limits: None,
    };
    let open = serve(dangerous_unauthenticated_mcp_router(
        agent_as_is,
        mcp,
        hosts,
        shutdown.clone(),
    ))
    .await?;

    // 4. Load, one method after another.
    let runs = [
        ("none (baseline)", open.clone(), None),
        (
            "api key",
            authed.clone(),
            Some(api_key.key.expose().to_owned()),
        ),
        (
            "delegation token",
            authed.clone(),
            Some(token.token.expose().to_owned()),
        ),
        ("jwt (EdDSA)", authed, Some(jwt)),
    ];
    println!(
        "MCP tools/list over HTTP, {} clients, {} s per method",
        args.clients, args.seconds
    );
    println!("| method | requests | requests/s | vs baseline | p50 µs | p99 µs |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut baseline = None;
    for (name, url, credential) in runs {
        let result = load(&url, credential, args.clients, args.seconds).await?;
        let rate = result.count as f64 / result.elapsed.as_secs_f64();
        let base = *baseline.get_or_insert(rate);
        println!(
            "| {name} | {} | {rate:.0} | {:+.1}% | {} | {} |",
            result.count,
            (rate / base - 1.0) * 100.0,
            result.percentile(50),
            result.percentile(99),
        );
    }

    shutdown.cancel();
    stack.stop().await;
    Ok(())
}

/// Serves `app` on a loopback port; returns the MCP URL.
async fn serve(app: axum::Router) -> Result<String> {
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

struct LoadResult {
    count: usize,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl LoadResult {
    fn percentile(&self, p: usize) -> u64 {
        if self.latencies_us.is_empty() {
            return 0;
        }
        let index = (self.latencies_us.len() * p / 100).min(self.latencies_us.len() - 1);
        self.latencies_us[index]
    }
}

/// `clients` loops sending `tools/list` for `seconds`; any failed request fails the run.
async fn load(
    url: &str,
    credential: Option<String>,
    clients: usize,
    seconds: u64,
) -> Result<LoadResult> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }).to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, url, body, stop) =
            (client.clone(), url.to_owned(), body.clone(), stop.clone());
        let credential = credential.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let mut request = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .body(body.clone());
                if let Some(c) = &credential {
                    request = request.bearer_auth(c);
                }
                let sent = Instant::now();
                let response = request.send().await?;
                if !response.status().is_success() {
                    bail!("request refused: {}", response.status());
                }
                response.bytes().await?;
                latencies.push(u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX));
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies_us = Vec::new();
    for task in tasks {
        latencies_us.extend(task.await.context("a client task failed")??);
    }
    let elapsed = started.elapsed();
    latencies_us.sort_unstable();
    Ok(LoadResult {
        count: latencies_us.len(),
        elapsed,
        latencies_us,
    })
}
