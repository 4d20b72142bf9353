//! Random requests, both engines, the agreement check and the latency measurement.

use std::hint::black_box;
use std::str::FromStr;
use std::time::Instant;

use anyhow::{Context as _, bail};
use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, EntityUid, PolicySet, Request,
    RestrictedExpression,
};
use clawfirst_core::{Address, AgentId, Amount, Asset};
use clawfirst_policy::{AgentState, Decision, PaymentFacts, Policy};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::rules::{BASE_CAPS, RuleSet, agent_id, recipient};

/// 2026-01-05 00:00 UTC: requests fall on this day at a random time.
const DAY_START_MS: u64 = 1_767_571_200_000;

/// One hypothetical payment, in the form each engine takes.
pub struct Req {
    agent: AgentId,
    amount: Amount,
    recipient: Address,
    recipient_text: String,
    at_ms: u64,
    cedar_principal: EntityUid,
}

/// Random requests: half by agents with rules of their own, half by any agent.
pub fn requests(set: &RuleSet, agents: usize, count: usize, seed: u64) -> anyhow::Result<Vec<Req>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let agent = if rng.gen_bool(0.5) && !set.targeted.is_empty() {
            set.targeted[rng.gen_range(0..set.targeted.len())]
        } else {
            rng.gen_range(0..agents)
        };
        let (symbol, cap) = BASE_CAPS[rng.gen_range(0..BASE_CAPS.len())];
        let asset = Asset::from_str(symbol)?;
        let units = rng.gen_range(1..=cap + cap / 5);
        let recipient_text = recipient(rng.gen_range(0..100));
        let id = agent_id(agent);
        out.push(Req {
            agent: AgentId::new(id.as_str())?,
            amount: Amount::from_base_units(asset, units)?,
            recipient: Address::parse(&recipient_text)?,
            recipient_text,
            at_ms: DAY_START_MS + rng.gen_range(0..86_400_000),
            cedar_principal: EntityUid::from_str(&format!("Agent::\"{id}\""))?,
        });
    }
    Ok(out)
}

/// The two engines loaded with one rule set.
pub struct Engines {
    ours: Policy,
    cedar: PolicySet,
    authorizer: Authorizer,
    entities: Entities,
    action: EntityUid,
    resource: EntityUid,
}

impl Engines {
    pub fn new(set: &RuleSet) -> anyhow::Result<Self> {
        let ours = Policy::from_toml_str(&set.toml, "bench.toml")?.policy;
        let cedar = PolicySet::from_str(&set.cedar)
            .map_err(|e| anyhow::anyhow!("cedar policies do not parse: {e}"))?;
        Ok(Self {
            ours,
            cedar,
            authorizer: Authorizer::new(),
            entities: Entities::empty(),
            action: EntityUid::from_str("Action::\"pay\"")?,
            resource: EntityUid::from_str("Payment::\"p\"")?,
        })
    }

    /// ClawFirst's decision: `true` for allow.
    pub fn ours(&self, r: &Req) -> bool {
        let facts = PaymentFacts {
            agent_id: &r.agent,
            agent_state: AgentState::Active,
            network: "devnet",
            amount: r.amount,
            recipient: &r.recipient,
            recipient_label: None,
            purpose: Some("bench"),
            first_payment_to_recipient: false,
            defer_until_approval: false,
            at_ms: r.at_ms,
            usage: None,
        };
        matches!(self.ours.evaluate(&facts), Decision::Allow(_))
    }

    /// Cedar's request for a payment: the context Cedar decides on.
    pub fn cedar_request(&self, r: &Req) -> anyhow::Result<Request> {
        let amount = i64::try_from(r.amount.base_units()).context("amount fits in a Long")?;
        let hour = i64::try_from(r.at_ms / 3_600_000 % 24)?;
        let context = Context::from_pairs([
            ("amount".to_owned(), RestrictedExpression::new_long(amount)),
            (
                "asset".to_owned(),
                RestrictedExpression::new_string(r.amount.asset().symbol().to_owned()),
            ),
            (
                "recipient".to_owned(),
                RestrictedExpression::new_string(r.recipient_text.clone()),
            ),
            ("hour".to_owned(), RestrictedExpression::new_long(hour)),
        ])?;
        Ok(Request::new(
            r.cedar_principal.clone(),
            self.action.clone(),
            self.resource.clone(),
            context,
            None,
        )?)
    }

    /// Cedar's decision on a built request: `true` for allow.
    pub fn cedar(&self, request: &Request) -> bool {
        self.authorizer
            .is_authorized(request, &self.cedar, &self.entities)
            .decision()
            == CedarDecision::Allow
    }
}

/// Fails loudly if the engines disagree on any request; returns how many were allowed.
pub fn verify(engines: &Engines, requests: &[Req]) -> anyhow::Result<usize> {
    let mut allowed = 0;
    for (i, r) in requests.iter().enumerate() {
        let ours = engines.ours(r);
        let cedar = engines.cedar(&engines.cedar_request(r)?);
        if ours != cedar {
            bail!(
                "engines disagree on request {i}: agent {}, {}, recipient {}, at {}: \
                 clawfirst {}, cedar {}",
                r.agent,
                r.amount,
                r.recipient_text,
                r.at_ms,
                if ours { "allow" } else { "deny" },
                if cedar { "allow" } else { "deny" },
            );
        }
        allowed += usize::from(ours);
    }
    Ok(allowed)
}

/// Per-decision latencies in nanoseconds, sorted.
pub struct Samples(Vec<u64>);

impl Samples {
    fn new(mut ns: Vec<u64>) -> Self {
        ns.sort_unstable();
        Self(ns)
    }

    /// The latency at `per_mille` (500 = p50, 999 = p99.9), nearest rank.
    pub fn percentile(&self, per_mille: usize) -> u64 {
        let rank = (per_mille * self.0.len()).div_ceil(1000).max(1);
        self.0.get(rank - 1).copied().unwrap_or(0)
    }

    /// The mean latency.
    pub fn mean(&self) -> u64 {
        let count = u64::try_from(self.0.len()).unwrap_or(u64::MAX).max(1);
        self.0.iter().sum::<u64>() / count
    }
}

fn elapsed_ns(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Times each ClawFirst decision.
pub fn time_ours(engines: &Engines, requests: &[Req]) -> Samples {
    let mut out = Vec::with_capacity(requests.len());
    for r in requests {
        let start = Instant::now();
        black_box(engines.ours(black_box(r)));
        out.push(elapsed_ns(start));
    }
    Samples::new(out)
}

/// Times each Cedar decision: building the request (context) and authorizing, and the
/// authorization alone.
pub fn time_cedar(engines: &Engines, requests: &[Req]) -> anyhow::Result<(Samples, Samples)> {
    let mut full = Vec::with_capacity(requests.len());
    let mut authorize_only = Vec::with_capacity(requests.len());
    for r in requests {
        let start = Instant::now();
        let request = engines.cedar_request(black_box(r))?;
        let built = Instant::now();
        black_box(engines.cedar(&request));
        full.push(elapsed_ns(start));
        authorize_only.push(elapsed_ns(built));
    }
    Ok((Samples::new(full), Samples::new(authorize_only)))
}
