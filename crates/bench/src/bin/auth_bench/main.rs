//! `clawfirst-auth-bench`: what authentication costs the MCP endpoint.
//!
//! The server runs in a child process (this binary with `--serve`, see [`serve`]): a real
//! stack serving the MCP endpoint twice on loopback, once as the server does (every request
//! authenticated) and once through a router that skips authentication (the baseline, acting
//! as the same agent). This process is only the load: concurrent clients send MCP `tools/list`
//! requests over HTTP, for a fixed time per method, in several rounds that each run every
//! method (in a rotating order), so that a noisy neighbour on the machine hits all methods
//! alike. `tools/list` is chosen because it does little else, so authentication's share of
//! each request is as large as it gets.
//!
//! Two figures per method, each compared with the baseline of the same round and summarised
//! by the median over rounds (with the lowest and highest round beside it): requests per
//! second, and the server process's CPU time per request (user plus system, from
//! `/proc/PID/stat`, in clock ticks of 10 ms: Linux's fixed `USER_HZ` of 100). Throughput on a
//! shared virtual machine moves with the neighbours; CPU time per request moves less, and is
//! what throughput costs once the server is CPU-bound.

#![forbid(unsafe_code)]
#![expect(clippy::float_arithmetic, reason = "timing statistics, never money")]

mod serve;

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::json;
use tokio::io::AsyncBufReadExt;

use serve::Endpoints;

/// Authenticated MCP requests per second, per method, beside an unauthenticated baseline.
#[derive(Debug, Parser)]
struct Args {
    /// Seconds of load per method in each round.
    #[arg(long, default_value_t = 1)]
    seconds: u64,
    /// Rounds; each runs every method once.
    #[arg(long, default_value_t = 15)]
    rounds: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Be the server side (started by the benchmark itself).
    #[arg(long, hide = true)]
    serve: bool,
}

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
    let outcome = match args.serve {
        true => runtime.block_on(serve::serve()),
        false => runtime.block_on(run(args)),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clawfirst-auth-bench: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// One method's load: a name, the URL and the bearer credential.
struct Method {
    name: &'static str,
    url: String,
    credential: Option<String>,
}

async fn run(args: Args) -> Result<()> {
    if args.rounds == 0 || args.seconds == 0 || args.clients == 0 {
        bail!("--rounds, --seconds and --clients must be at least 1");
    }
    let mut server = tokio::process::Command::new(std::env::current_exe()?)
        .arg("--serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the server process")?;
    let pid = server.id().context("the server process has no pid")?;
    let stdout = server.stdout.take().context("no server stdout")?;
    let mut line = String::new();
    tokio::io::BufReader::new(stdout)
        .read_line(&mut line)
        .await
        .context("reading the server's endpoints")?;
    let endpoints: Endpoints =
        serde_json::from_str(&line).context("the server process did not start")?;

    let methods = [
        Method {
            name: "none (baseline)",
            url: endpoints.open_url.clone(),
            credential: None,
        },
        Method {
            name: "api key",
            url: endpoints.authenticated_url.clone(),
            credential: Some(endpoints.api_key.clone()),
        },
        Method {
            name: "delegation token",
            url: endpoints.authenticated_url.clone(),
            credential: Some(endpoints.delegation_token.clone()),
        },
        Method {
            name: "jwt (EdDSA)",
            url: endpoints.authenticated_url.clone(),
            credential: Some(endpoints.jwt.clone()),
        },
    ];

    // Load: every method in each round, the order rotating from round to round.
    let mut totals: Vec<LoadResult> = methods.iter().map(|_| LoadResult::default()).collect();
    let mut rate_ratios: Vec<Vec<f64>> = methods.iter().map(|_| Vec::new()).collect();
    let mut cpu_ratios: Vec<Vec<f64>> = methods.iter().map(|_| Vec::new()).collect();
    for round in 0..args.rounds {
        let mut rates = vec![0.0; methods.len()];
        let mut cpus = vec![0.0; methods.len()];
        for offset in 0..methods.len() {
            let i = (round + offset) % methods.len();
            let method = &methods[i];
            let ticks_before = cpu_ticks(pid)?;
            let mut result = load(
                &method.url,
                method.credential.clone(),
                args.clients,
                args.seconds,
            )
            .await?;
            result.cpu_ticks = cpu_ticks(pid)?.saturating_sub(ticks_before);
            rates[i] = result.rate();
            cpus[i] = result.cpu_us_per_request();
            totals[i].absorb(result);
        }
        for i in 0..methods.len() {
            rate_ratios[i].push(rates[i] / rates[0]);
            cpu_ratios[i].push(cpus[i] / cpus[0]);
        }
        let shown: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
        eprintln!("round {}: requests/s {}", round + 1, shown.join(" / "));
    }
    drop(server.stdin.take());
    let _ = tokio::time::timeout(Duration::from_secs(30), server.wait()).await;

    println!(
        "MCP tools/list over HTTP, {} clients, {} rounds of {} s per method",
        args.clients, args.rounds, args.seconds
    );
    println!(
        "| method | requests/s | vs baseline: median (min .. max) | \
         server CPU µs/request | vs baseline: median (min .. max) | p50 µs | p99 µs |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (i, (method, total)) in methods.iter().zip(&mut totals).enumerate() {
        total.latencies_us.sort_unstable();
        println!(
            "| {} | {:.0} | {} | {:.1} | {} | {} | {} |",
            method.name,
            total.rate(),
            spread(&mut rate_ratios[i]),
            total.cpu_us_per_request(),
            spread(&mut cpu_ratios[i]),
            total.percentile(50),
            total.percentile(99),
        );
    }
    println!();
    println!("Authentication alone (the server's authenticator, one caller, mean per call):");
    println!("| method | µs per call |");
    println!("|---|---:|");
    for (method, ns) in methods[1..].iter().zip(endpoints.direct_ns) {
        println!("| {} | {:.2} |", method.name, ns as f64 / 1000.0);
    }
    Ok(())
}

/// Ratios to the baseline as "median (lowest .. highest)" changes in percent.
fn spread(ratios: &mut [f64]) -> String {
    ratios.sort_by(f64::total_cmp);
    let percent = |r: f64| (r - 1.0) * 100.0;
    let (Some(low), Some(high)) = (ratios.first(), ratios.last()) else {
        return "-".to_owned();
    };
    let mid = ratios.len() / 2;
    let median = match ratios.len() % 2 {
        1 => ratios[mid],
        _ => (ratios[mid - 1] + ratios[mid]) / 2.0,
    };
    format!(
        "{:+.1}% ({:+.1}% .. {:+.1}%)",
        percent(median),
        percent(*low),
        percent(*high)
    )
}

/// User plus system CPU time of process `pid` so far, in clock ticks (fields 14 and 15 of
/// `/proc/PID/stat`, counted after the command name, which may itself contain spaces).
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .context("cannot read the server's /proc stat")?;
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("unexpected /proc stat")?;
    // Field 3 (state) is the first after the name; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |n: usize| -> Result<u64> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .context("unexpected /proc stat")
    };
    Ok(field(14)? + field(15)?)
}

/// Linux reports process times in units of 1/100 s (`USER_HZ`).
const MICROS_PER_TICK: f64 = 10_000.0;

#[derive(Default)]
struct LoadResult {
    count: usize,
    elapsed: Duration,
    latencies_us: Vec<u64>,
    /// The server's CPU time meanwhile.
    cpu_ticks: u64,
}

impl LoadResult {
    fn rate(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// Adds another run's requests and time to these.
    fn absorb(&mut self, other: LoadResult) {
        self.count += other.count;
        self.elapsed += other.elapsed;
        self.latencies_us.extend(other.latencies_us);
        self.cpu_ticks += other.cpu_ticks;
    }

    fn cpu_us_per_request(&self) -> f64 {
        self.cpu_ticks as f64 * MICROS_PER_TICK / self.count.max(1) as f64
    }

    /// The `p`th percentile; the latencies must be sorted.
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
    Ok(LoadResult {
        count: latencies_us.len(),
        elapsed,
        latencies_us,
        cpu_ticks: 0,
    })
}
