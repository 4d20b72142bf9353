//! `clawfirst-bench`: payments per second and latency through MCP over HTTP.
//!
//! Starts a real `clawfirst up` stack (release binaries, its own temporary data directory),
//! raises its caps and rate limit so the measurement is of the payment path rather than of
//! policy, creates one agent per concurrent client through the admin API, then for 1, 16 and 64
//! concurrent agents runs payments for a fixed time. A payment is `x402.initialize_payment`
//! followed by `x402.authorize_transaction` returning a transaction the ledger accepted; its
//! latency is the time of both calls. At the end every session is checked with
//! `x402.verify_settlement` until it is finalized. In the same run it measures the raw Ed25519
//! signing rate on one core for comparison.
//!
//! Usage: `cargo run --release -p clawfirst-bench -- [--seconds 10] [--levels 1,16,64]`
//!
//! Exit codes: 0 measured; 1 the stack failed or a payment was not settled.

#![forbid(unsafe_code)]
#![expect(clippy::float_arithmetic, reason = "timing statistics, never money")]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Parser;

mod mcp;
mod stack;

/// Measure ClawFirst's payment path.
#[derive(Debug, Parser)]
struct Args {
    /// Seconds of load per concurrency level.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrency levels (agents), comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    levels: Vec<usize>,
    /// Directory of the `clawfirst` and `clawfirst-signer` binaries.
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// SQLite durability of the server store: full or normal.
    #[arg(long, default_value = "full")]
    synchronous: String,
}

/// One level's results.
#[derive(Debug)]
struct LevelResult {
    agents: usize,
    payments: usize,
    errors: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn main() -> std::process::ExitCode {
    // reqwest is built with rustls but without a provider choice of its own (the workspace
    // keeps aws-lc-rs as its only TLS crypto): install it before any client is made.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("clawfirst-bench: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clawfirst-bench: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
    let signing_rate = ed25519_rate(Duration::from_secs(2));
    let max_agents = args.levels.iter().copied().max().unwrap_or(1);
    let stack = stack::Stack::start(args.bin_dir.clone(), &args.synchronous, max_agents).await?;

    let mut results = Vec::new();
    let mut sessions = Vec::new();
    for &agents in &args.levels {
        eprintln!("level: {agents} agents for {} s", args.seconds);
        let (result, ids) = level(&stack, agents, Duration::from_secs(args.seconds)).await?;
        results.push(result);
        sessions.extend(ids);
    }

    eprintln!("checking that all {} payments settle", sessions.len());
    let settle_start = Instant::now();
    let unsettled = stack.wait_all_finalized(&sessions).await?;
    let settle_secs = settle_start.elapsed().as_secs_f64();
    stack.stop().await;

    println!("| agents | payments | errors | payments/s | p50 ms | p99 ms |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for r in &results {
        println!(
            "| {} | {} | {} | {:.0} | {:.1} | {:.1} |",
            r.agents,
            r.payments,
            r.errors,
            r.payments as f64 / r.seconds,
            r.p50_ms,
            r.p99_ms
        );
    }
    println!();
    println!("raw Ed25519 signing (ed25519-dalek, one core): {signing_rate:.0} signatures/s");
    println!(
        "settlement check: {} of {} sessions finalized ({} unsettled) in {settle_secs:.1} s \
         after the load",
        sessions.len() - unsettled,
        sessions.len(),
        unsettled
    );
    if unsettled > 0 {
        anyhow::bail!("{unsettled} payments did not settle");
    }
    Ok(())
}

async fn level(
    stack: &stack::Stack,
    agents: usize,
    duration: Duration,
) -> Result<(LevelResult, Vec<(usize, String)>)> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for i in 0..agents {
        let client = stack.client(i).await?;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut ids = Vec::new();
            let mut errors = 0usize;
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let t = Instant::now();
                match client.pay("0.01 USDC", n).await {
                    Ok(id) => {
                        latencies.push(t.elapsed());
                        ids.push((i, id));
                    }
                    Err(e) => {
                        errors += 1;
                        if errors <= 3 {
                            eprintln!("agent {i}: {e:#}");
                        }
                    }
                }
            }
            (latencies, ids, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut ids = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, i, e) = t.await?;
        latencies.extend(l);
        ids.extend(i);
        errors += e;
    }
    let seconds = start.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: usize| {
        if latencies.is_empty() {
            return 0.0;
        }
        let idx = (latencies.len() * p / 100).min(latencies.len() - 1);
        latencies[idx].as_secs_f64() * 1000.0
    };
    let result = LevelResult {
        agents,
        payments: latencies.len(),
        errors,
        seconds,
        p50_ms: pct(50),
        p99_ms: pct(99),
    };
    Ok((result, ids))
}

/// Signatures per second of ed25519-dalek on one thread.
fn ed25519_rate(duration: Duration) -> f64 {
    use ed25519_dalek::{Signer, SigningKey};
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let message = [7u8; 200];
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < duration {
        for _ in 0..100 {
            let sig = key.sign(&message);
            std::hint::black_box(sig);
        }
        count += 100;
    }
    count as f64 / start.elapsed().as_secs_f64()
}
