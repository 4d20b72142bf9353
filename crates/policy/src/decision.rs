//! What goes into an evaluation ([`PaymentFacts`], [`Usage`]) and what comes out ([`Decision`]).

use std::fmt;
use std::sync::Arc;

use clawfirst_core::{Address, AgentId, Amount};

use crate::rule::Rule;

/// The SHA-256 of a policy's canonical form, recorded with every decision.
///
/// Display shows the first 16 hex digits; [`PolicyVersion::to_hex`] gives all 64.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PolicyVersion(pub(crate) [u8; 32]);

impl PolicyVersion {
    /// The full hash as 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The raw hash.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for PolicyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0[..8]))
    }
}

impl fmt::Debug for PolicyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PolicyVersion({self})")
    }
}

/// The agent's standing, as the server's store knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgentState {
    /// May pay, subject to policy.
    Active,
    /// Suspended by an operator: every payment is denied.
    Suspended,
    /// The agent's circuit breaker is open: every payment is denied.
    BreakerOpen,
}

/// The facts of one payment that policy looks at.
#[derive(Clone, Copy, Debug)]
pub struct PaymentFacts<'a> {
    /// Who pays.
    pub agent_id: &'a AgentId,
    /// The agent's standing.
    pub agent_state: AgentState,
    /// The network the payment goes to, e.g. `devnet`.
    pub network: &'a str,
    /// How much of what.
    pub amount: Amount,
    /// The resolved recipient address.
    pub recipient: &'a Address,
    /// The e-mail address the agent named, if it named the payee by e-mail (lower case).
    pub recipient_label: Option<&'a str>,
    /// What the payment is for, as the agent stated it.
    pub purpose: Option<&'a str>,
    /// The agent never paid this recipient before (computed by the server from its store).
    pub first_payment_to_recipient: bool,
    /// The agent asked for a human to approve this payment.
    pub defer_until_approval: bool,
    /// Evaluation time in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Current rolling usage, if known: rolling caps are then checked here too (for `explain`
    /// and early refusals); the store's atomic reservation remains the enforcement.
    pub usage: Option<&'a Usage>,
}

/// What a budget counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Measure {
    /// Base units of the payment's asset, over this agent's payments in that asset.
    BaseUnits,
    /// Micro-USD over all of this agent's payments, every asset.
    UsdMicros,
    /// The number of this agent's payments, every asset.
    Count,
}

/// A rolling budget a payment must fit in, reserved atomically by the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BudgetCap {
    /// The rule that sets the cap; named in the denial if the reservation fails.
    pub rule: Rule,
    /// The length of the rolling window.
    pub window_ms: u64,
    /// The most the window may hold, in the unit of `measure`.
    pub cap: u64,
    /// What the window adds up.
    pub measure: Measure,
}

/// Rolling usage of one agent at evaluation time: how much each (measure, window) already
/// holds, reserved or settled. Base-unit entries are for the payment's asset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    entries: Vec<(Measure, u64, u64)>,
}

impl Usage {
    /// No usage recorded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that the window of `window_ms` already holds `used` in `measure`.
    pub fn record(&mut self, measure: Measure, window_ms: u64, used: u64) {
        self.entries
            .retain(|(m, w, _)| !(*m == measure && *w == window_ms));
        self.entries.push((measure, window_ms, used));
    }

    /// Builder form of [`Usage::record`].
    #[must_use]
    pub fn with(mut self, measure: Measure, window_ms: u64, used: u64) -> Self {
        self.record(measure, window_ms, used);
        self
    }

    /// What the window holds, if recorded.
    pub fn used(&self, measure: Measure, window_ms: u64) -> Option<u64> {
        self.entries
            .iter()
            .find(|(m, w, _)| *m == measure && *w == window_ms)
            .map(|(_, _, used)| *used)
    }
}

/// Permission to proceed with one payment, subject to reserving [`Permit::budgets`].
///
/// Only this crate constructs a permit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permit {
    pub(crate) rule: Rule,
    pub(crate) tier: Option<Arc<str>>,
    pub(crate) budgets: Arc<[BudgetCap]>,
    pub(crate) usd_micros: Option<u64>,
    pub(crate) version: PolicyVersion,
}

impl Permit {
    /// The rule that allowed the payment: [`Rule::Tier`] or [`Rule::Caps`].
    pub fn rule(&self) -> Rule {
        self.rule
    }

    /// The tier that allowed it, if tiers are configured.
    pub fn tier(&self) -> Option<&str> {
        self.tier.as_deref()
    }

    /// The rolling budgets to reserve.
    pub fn budgets(&self) -> &[BudgetCap] {
        &self.budgets
    }

    /// The payment's USD value in micro-USD (rounded up), when prices make it computable.
    /// Always present when a [`Measure::UsdMicros`] budget is returned.
    pub fn usd_micros(&self) -> Option<u64> {
        self.usd_micros
    }

    /// The policy that granted this permit.
    pub fn policy_version(&self) -> PolicyVersion {
        self.version
    }
}

/// The payment may proceed once enough approvers of a group approve it.
///
/// Only this crate constructs one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalRequirement {
    pub(crate) rule: Rule,
    pub(crate) tier: Option<Arc<str>>,
    pub(crate) budgets: Arc<[BudgetCap]>,
    pub(crate) usd_micros: Option<u64>,
    pub(crate) group: Arc<str>,
    pub(crate) approvers: Arc<[String]>,
    pub(crate) required: u32,
    pub(crate) timeout_ms: u64,
    pub(crate) version: PolicyVersion,
}

impl ApprovalRequirement {
    /// The rule whose requirement won: [`Rule::FirstTimeRecipient`], [`Rule::Tier`] or
    /// [`Rule::ApprovalRequested`].
    pub fn rule(&self) -> Rule {
        self.rule
    }

    /// The tier the amount fell in, if tiers are configured.
    pub fn tier(&self) -> Option<&str> {
        self.tier.as_deref()
    }

    /// The rolling budgets to reserve while the payment waits.
    pub fn budgets(&self) -> &[BudgetCap] {
        &self.budgets
    }

    /// The payment's USD value in micro-USD, as for [`Permit::usd_micros`].
    pub fn usd_micros(&self) -> Option<u64> {
        self.usd_micros
    }

    /// The approver group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The group's members, any of whom may approve.
    pub fn approvers(&self) -> &[String] {
        &self.approvers
    }

    /// How many distinct approvers must approve.
    pub fn required(&self) -> u32 {
        self.required
    }

    /// How long the request may wait before it expires.
    pub fn timeout_ms(&self) -> u64 {
        self.timeout_ms
    }

    /// The policy that asked for approval.
    pub fn policy_version(&self) -> PolicyVersion {
        self.version
    }
}

/// A refusal, naming the rule and a reason an agent can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    /// The rule that denied.
    pub rule: Rule,
    /// What the agent can do about it, without revealing the rest of the policy.
    pub reason: String,
    /// The tier that denied, when a `deny` tier did.
    pub tier: Option<String>,
    /// The attempt must trip the agent's circuit breaker (a canary payee).
    pub trips_breaker: bool,
    /// The policy that denied.
    pub policy_version: PolicyVersion,
}

/// The outcome of evaluating a payment. A denial always wins over a need for approval.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Decision {
    /// Proceed, reserving the permit's budgets.
    Allow(Permit),
    /// Wait for human approval.
    NeedsApproval(ApprovalRequirement),
    /// Refuse.
    Deny(Denial),
}

impl Decision {
    /// The rule that decided.
    pub fn rule(&self) -> Rule {
        match self {
            Decision::Allow(p) => p.rule,
            Decision::NeedsApproval(a) => a.rule,
            Decision::Deny(d) => d.rule,
        }
    }

    /// `allow`, `needs_approval` or `deny`.
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::Allow(_) => "allow",
            Decision::NeedsApproval(_) => "needs_approval",
            Decision::Deny(_) => "deny",
        }
    }
}
