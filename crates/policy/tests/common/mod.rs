//! Helpers shared by the policy test suites.

#![allow(dead_code)]

use clawfirst_core::{Address, AgentId, Amount, Asset};
use clawfirst_policy::{AgentState, Decision, LoadedPolicy, PaymentFacts, Policy, Rule};

/// 2026-01-05 (a Monday) 12:00 UTC.
pub const MONDAY_NOON: u64 = 1_767_614_400_000;

pub fn load(text: &str) -> LoadedPolicy {
    match Policy::from_toml_str(text, "test.toml") {
        Ok(p) => p,
        Err(e) => panic!("policy should load: {e}"),
    }
}

pub fn policy(text: &str) -> Policy {
    load(text).policy
}

pub fn load_error(text: &str) -> String {
    match Policy::from_toml_str(text, "test.toml") {
        Ok(_) => panic!("policy should be refused:\n{text}"),
        Err(e) => e.to_string(),
    }
}

pub fn agent(id: &str) -> AgentId {
    AgentId::new(id).unwrap_or_else(|e| panic!("{e}"))
}

pub fn address(byte: u8) -> Address {
    Address::new([byte; 32])
}

pub fn amount(text: &str) -> Amount {
    Amount::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

/// A payment of `amount` by agent `bot` to `address(1)`, on devnet, Monday noon UTC.
pub struct Pay {
    pub agent: AgentId,
    pub state: AgentState,
    pub network: String,
    pub amount: Amount,
    pub recipient: Address,
    pub label: Option<String>,
    pub purpose: Option<String>,
    pub first: bool,
    pub defer: bool,
    pub at_ms: u64,
    pub usage: Option<clawfirst_policy::Usage>,
}

pub fn pay(text: &str) -> Pay {
    Pay {
        agent: agent("bot"),
        state: AgentState::Active,
        network: "devnet".into(),
        amount: amount(text),
        recipient: address(1),
        label: None,
        purpose: None,
        first: false,
        defer: false,
        at_ms: MONDAY_NOON,
        usage: None,
    }
}

impl Pay {
    pub fn facts(&self) -> PaymentFacts<'_> {
        PaymentFacts {
            agent_id: &self.agent,
            agent_state: self.state,
            network: &self.network,
            amount: self.amount,
            recipient: &self.recipient,
            recipient_label: self.label.as_deref(),
            purpose: self.purpose.as_deref(),
            first_payment_to_recipient: self.first,
            defer_until_approval: self.defer,
            at_ms: self.at_ms,
            usage: self.usage.as_ref(),
        }
    }

    pub fn decide(&self, policy: &Policy) -> Decision {
        let decision = policy.evaluate(&self.facts());
        assert_eq!(
            policy.explain(&self.facts()).decision(),
            &decision,
            "explain agrees"
        );
        decision
    }

    pub fn by(mut self, id: &str) -> Self {
        self.agent = agent(id);
        self
    }

    pub fn to(mut self, byte: u8) -> Self {
        self.recipient = address(byte);
        self
    }
}

/// The denying rule, or a panic naming what happened instead.
pub fn denied_by(decision: &Decision) -> Rule {
    match decision {
        Decision::Deny(d) => d.rule,
        other => panic!("expected a denial, got {other:?}"),
    }
}

/// The allowing rule, or a panic.
pub fn allowed_by(decision: &Decision) -> Rule {
    match decision {
        Decision::Allow(p) => p.rule(),
        other => panic!("expected allow, got {other:?}"),
    }
}

pub fn asset_of(text: &str) -> Asset {
    amount(text).asset()
}
