//! `clawfirst-policy-bench`: decision latency of the ClawFirst policy engine beside Cedar, on
//! equivalent rule sets of 10, 100 and 1,000 rules over 10,000 agents.
//!
//! For each size it generates the rules in both languages (see `policy_bench/rules.rs` for what
//! one rule is), checks on a sample that both engines reach the same allow/deny outcome (and
//! exits non-zero if they ever differ), then times every decision on one thread and prints
//! p50, p99, p99.9 and the mean. Run it in release mode:
//! `cargo run --release --locked -p clawfirst-bench --bin clawfirst-policy-bench`.
//!
//! Exit codes: 0 when done, 1 on any error (including a disagreement between the engines).

#![forbid(unsafe_code)]

#[path = "../policy_bench/rules.rs"]
mod rules;
#[path = "../policy_bench/run.rs"]
mod run;

use clap::Parser;

use run::{Engines, Samples};

/// Decision latency of ClawFirst's policy engine and Cedar on equivalent rules.
#[derive(Debug, Parser)]
struct Args {
    /// Agents the rules are spread over.
    #[arg(long, default_value_t = 10_000)]
    agents: usize,
    /// Rule-set sizes to measure.
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
    sizes: Vec<usize>,
    /// Timed ClawFirst decisions per size.
    #[arg(long, default_value_t = 200_000)]
    requests: usize,
    /// Timed Cedar decisions per size (Cedar is slower; fewer keep the run short).
    #[arg(long, default_value_t = 20_000)]
    cedar_requests: usize,
    /// Requests per size on which both engines must agree.
    #[arg(long, default_value_t = 20_000)]
    verify: usize,
    /// Seed of the request generator.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

fn main() {
    if let Err(e) = run_bench(&Args::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// Microseconds with three decimals, from nanoseconds.
fn us(ns: u64) -> String {
    format!("{}.{:03}", ns / 1000, ns % 1000)
}

fn row(rules: usize, engine: &str, s: &Samples) {
    println!(
        "| {rules:>5} | {engine:<28} | {:>9} | {:>9} | {:>9} | {:>9} |",
        us(s.percentile(500)),
        us(s.percentile(990)),
        us(s.percentile(999)),
        us(s.mean())
    );
}

fn run_bench(args: &Args) -> anyhow::Result<()> {
    println!(
        "policy decision latency, single thread, {} agents; microseconds per decision\n",
        args.agents
    );
    println!(
        "| rules | engine                       |       p50 |       p99 |     p99.9 |      mean |"
    );
    println!(
        "|------:|------------------------------|----------:|----------:|----------:|----------:|"
    );
    let mut notes = Vec::new();
    for &size in &args.sizes {
        let set = rules::generate(size, args.agents);
        let engines = Engines::new(&set)?;

        let sample = run::requests(&set, args.agents, args.verify, args.seed ^ 0xA5A5)?;
        let allowed = run::verify(&engines, &sample)?;
        notes.push(format!(
            "{size} rules: both engines agree on all {} sampled requests \
             ({allowed} allowed, {} denied)",
            sample.len(),
            sample.len() - allowed
        ));

        let ours_requests = run::requests(&set, args.agents, args.requests, args.seed)?;
        let cedar_requests = run::requests(&set, args.agents, args.cedar_requests, args.seed)?;
        // Warm both engines (caches, lazy initialisation) before timing.
        for r in ours_requests.iter().take(10_000) {
            std::hint::black_box(engines.ours(r));
        }
        for r in cedar_requests.iter().take(2_000) {
            std::hint::black_box(engines.cedar(&engines.cedar_request(r)?));
        }

        let ours = run::time_ours(&engines, &ours_requests);
        let (cedar_full, cedar_only) = run::time_cedar(&engines, &cedar_requests)?;
        row(size, "clawfirst-policy", &ours);
        row(size, "cedar (request + authorize)", &cedar_full);
        row(size, "cedar (authorize only)", &cedar_only);
    }
    println!();
    for note in notes {
        println!("{note}");
    }
    Ok(())
}
