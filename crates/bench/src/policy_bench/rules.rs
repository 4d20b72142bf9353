//! One rule set, written twice: as a ClawFirst policy file and as Cedar policies.
//!
//! A "rule" is one constraint an operator writes, counted the same way on both sides:
//!
//! - rule 0 is the operator baseline: per-transaction caps for USDC, SOL and BONK (ClawFirst:
//!   `[defaults] per_transaction`; Cedar: one `permit` whose `when` bounds the amount per asset);
//! - every further rule targets one agent (agents spread evenly over the 10,000) and is one of
//!   five kinds, in rotation: a lower per-transaction cap for one asset, a blocked recipient, an
//!   asset restriction (USDC only), an amount tier (allow up to a bound per asset, deny above),
//!   and a time-of-day window (08:00 to 18:00 UTC). ClawFirst writes each in the agent's
//!   `[agents."id"]` table; Cedar writes each as one `forbid` policy scoped to the agent with a
//!   `when` condition over the context attributes `amount`, `asset`, `recipient` and `hour`.

use std::fmt::Write as _;

use clawfirst_core::Address;

/// The agents' ids: `agent-00000` .. `agent-09999`.
pub fn agent_id(i: usize) -> String {
    format!("agent-{i:05}")
}

/// The recipient pool the requests draw from; the first addresses are the blocked ones.
pub fn recipient(i: usize) -> String {
    let mut bytes = [7u8; 32];
    bytes[..8].copy_from_slice(&(i as u64).to_le_bytes());
    Address::new(bytes).to_string()
}

/// Baseline caps in base units: USDC 1,000, SOL 10, BONK 100,000,000.
pub const BASE_CAPS: [(&str, u64); 3] = [
    ("USDC", 1_000_000_000),
    ("SOL", 10_000_000_000),
    ("BONK", 10_000_000_000_000),
];

/// A generated rule set.
pub struct RuleSet {
    /// The ClawFirst policy file.
    pub toml: String,
    /// The Cedar policy set source.
    pub cedar: String,
    /// The agents that have at least one rule of their own.
    pub targeted: Vec<usize>,
}

/// `rules` rules over `agents` agents (rule 0 is the baseline).
pub fn generate(rules: usize, agents: usize) -> RuleSet {
    let mut toml = String::from("[defaults]\nper_transaction = { ");
    let caps: Vec<String> = BASE_CAPS
        .iter()
        .map(|(asset, cap)| format!("{asset} = \"{}\"", whole(asset, *cap)))
        .collect();
    toml.push_str(&caps.join(", "));
    toml.push_str(" }\n");

    let bounds: Vec<String> = BASE_CAPS
        .iter()
        .map(|(asset, cap)| format!("(context.asset == \"{asset}\" && context.amount <= {cap})"))
        .collect();
    let mut cedar = format!(
        "permit(principal, action, resource) when {{ {} }};\n",
        bounds.join(" || ")
    );

    let specific = rules.saturating_sub(1);
    let stride = (agents / specific.max(1)).max(1);
    let mut targeted = Vec::with_capacity(specific);
    for j in 0..specific {
        let agent = (j * stride) % agents;
        targeted.push(agent);
        let id = agent_id(agent);
        let scope = format!("forbid(principal == Agent::\"{id}\", action, resource) when");
        let _ = writeln!(toml, "[agents.{id}]");
        match j % 5 {
            0 => {
                let cap = 10_000_000 * (1 + (j as u64 % 90));
                let _ = writeln!(
                    toml,
                    "per_transaction = {{ USDC = \"{}\" }}",
                    whole("USDC", cap)
                );
                let _ = writeln!(
                    cedar,
                    "{scope} {{ context.asset == \"USDC\" && context.amount > {cap} }};"
                );
            }
            1 => {
                let blocked = recipient(j % 50);
                let _ = writeln!(toml, "recipients.block = [\"{blocked}\"]");
                let _ = writeln!(cedar, "{scope} {{ context.recipient == \"{blocked}\" }};");
            }
            2 => {
                let _ = writeln!(toml, "assets = [\"USDC\"]");
                let _ = writeln!(cedar, "{scope} {{ context.asset != \"USDC\" }};");
            }
            3 => {
                let (usdc, sol, bonk) = (250_000_000, 2_000_000_000, 1_000_000_000_000);
                let _ = writeln!(
                    toml,
                    "[[agents.{id}.tiers]]\nname = \"auto\"\n\
                     up_to = {{ USDC = \"{}\", SOL = \"{}\", BONK = \"{}\" }}\n\
                     action = \"allow\"\n[[agents.{id}.tiers]]\nname = \"rest\"\n\
                     action = \"deny\"",
                    whole("USDC", usdc),
                    whole("SOL", sol),
                    whole("BONK", bonk)
                );
                let _ = writeln!(
                    cedar,
                    "{scope} {{ (context.asset == \"USDC\" && context.amount > {usdc}) || \
                     (context.asset == \"SOL\" && context.amount > {sol}) || \
                     (context.asset == \"BONK\" && context.amount > {bonk}) }};"
                );
            }
            _ => {
                let _ = writeln!(
                    toml,
                    "time_windows = [{{ days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \
                     \"sat\", \"sun\"], from = \"08:00\", to = \"18:00\" }}]"
                );
                let _ = writeln!(
                    cedar,
                    "{scope} {{ context.hour < 8 || context.hour >= 18 }};"
                );
            }
        }
    }
    RuleSet {
        toml,
        cedar,
        targeted,
    }
}

/// Base units of `asset` as a whole-unit decimal string.
fn whole(asset: &str, units: u64) -> String {
    let decimals = match asset {
        "SOL" => 9,
        "USDC" => 6,
        _ => 5,
    };
    let digits = format!("{units:0>width$}", width = decimals + 1);
    let (w, f) = digits.split_at(digits.len() - decimals);
    let f = f.trim_end_matches('0');
    if f.is_empty() {
        w.to_owned()
    } else {
        format!("{w}.{f}")
    }
}
